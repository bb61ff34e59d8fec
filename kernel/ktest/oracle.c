/* Page-table checkpoints answered by the runner's QEMU oracle (see oracle.h). */
#include <cmdline.h>
#include <cpu.h>
#include <io.h>
#include <layout.h>
#include <oracle.h>
#include <printf.h>
#include <vmm.h>

/* Dumps are printed inside a TAP subtest. */
#define INDENT "    "

bool oracle_enabled(void)
{
	return kernel_options.oracle;
}

/*
 * Wait until the runner writes a byte to the oracle UART, and consume it.
 * Between two looks the CPU halts until its timer tick (timer_init ran before
 * any test or selftest): a vCPU reading the port in a tight loop takes QEMU's
 * I/O lock so often that the QMP queries the runner is answering crawl, and
 * the host spent seconds of CPU per checkpoint.
 */
static void wait_for_runner(void)
{
	while (!(inb(ORACLE_UART_PORT + UART_LSR) & UART_LSR_DATA_READY))
		wait_for_interrupt();
	(void)inb(ORACLE_UART_PORT + UART_RBR);
}

void oracle_begin(const char *name)
{
	kprintf(INDENT "# oracle-begin %s\n", name);
}

void oracle_end(const char *name)
{
	kprintf(INDENT "# CHECKPOINT %s\n", name);
	wait_for_runner();
}

void oracle_checkpoint(const char *name, const u64 *probes, size_t nprobes)
{
	if (!oracle_enabled())
		return;
	oracle_begin(name);
	vmm_dump(INDENT);
	for (size_t i = 0; i < nprobes; i++) {
		u64 pa;
		if (virt_to_phys(probes[i], &pa) == 0)
			kprintf(INDENT "# v2p %016llx %016llx\n", probes[i], pa);
		else
			kprintf(INDENT "# v2p %016llx none\n", probes[i]);
	}
	oracle_end(name);
}
