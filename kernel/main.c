/*
 * kmain: the first C code, entered from boot.asm in long mode on the
 * higher-half stack with interrupts off. It brings up the console and the
 * exception handlers first, so everything after can report failures, then
 * reads the boot information and runs the in-kernel tests (or a selftest).
 */
#include <bench.h>
#include <bootinfo.h>
#include <cmdline.h>
#include <cow.h>
#include <gdt.h>
#include <initrd.h>
#include <ktest.h>
#include <layout.h>
#include <percpu.h>
#include <panic.h>
#include <pmm.h>
#include <printf.h>
#include <sched.h>
#include <serial.h>
#include <smap.h>
#include <smp.h>
#include <timer.h>
#include <trap.h>
#include <vmm.h>

NORETURN void kmain(u32 protocol, u32 boot_info_phys);

/* Free frames in the PMM. */
static u64 free_frame_count(void)
{
	struct pmm_stats s;
	pmm_get_stats(&s);
	return s.free;
}

/*
 * Threads, the timer (its LAPIC window) and the initrd window, made at boot
 * so that what their page tables take is counted once, here (the memory
 * tests subtract it), and never shows up as a leak in a later test.
 */
static void boot_windows(void)
{
	u64 before = free_frame_count();
	const void *initrd;
	u64 initrd_len;
	/*
	 * The scratch page first: from then on every new table is zeroed
	 * before it is linked, so table_zero_linked (and its full rounds) runs
	 * before the APs exist and later only under the test switch
	 * cow_test_scratch_off. Unless this call finds no frame (-E_NOMEM,
	 * ignored: the first fork tries again): then every new table takes that
	 * fallback until a fork's cow_init succeeds, with full rounds to every
	 * CPU once the APs are up.
	 */
	(void)cow_init();
	sched_init();
	timer_init();
	smp_init();
	if (sched_keep_kstacks() != 0)
		kprintf("# warning: no frames to keep the threads' kernel stacks (or their tables): "
			"each exit unmaps its stack and its tables\n");
	(void)initrd_get(&initrd, &initrd_len); /* -E_NOENT without a boot module: nothing mapped */
	kprintf("# boot: the LAPIC, initrd and copy-on-write windows and the CPUs' and threads' stacks took %llu frames\n",
		before - free_frame_count());
}

NORETURN void kmain(u32 protocol, u32 boot_info_phys)
{
	serial_init();
	gdt_init();
	idt_init();
	percpu_init(0);
	syscall_init();
	bootinfo_init(protocol, boot_info_phys);
	cmdline_parse(boot_info.cmdline, &kernel_options);

	/* selftest=garbage stands for a kernel that prints no TAP at all. */
	if (kernel_options.selftest && !selftest_prints_tap(kernel_options.selftest))
		selftest_run(kernel_options.selftest);
	ktest_print_version();
	kprintf("# ouroboros: booted by %s, command line '%s'%s\n",
		boot_protocol_name(boot_info.protocol), boot_info.cmdline,
		boot_info.cmdline_truncated ? " (truncated)" : "");
	cmdline_print_warnings(&kernel_options);
	if (kernel_options.selftest && kernel_options.ktest_filter)
		kprintf("# warning: ktest.filter is ignored: selftest=%s runs instead of the tests\n",
			kernel_options.selftest);
	pmm_init();
	vmm_init();
	smap_init();
	boot_windows();
	if (kernel_options.pmm_fail && pmm_inject_parse(kernel_options.pmm_fail) != 0)
		kprintf("# warning: pmm.fail='%s' is not nth:N, budget:N or random:SEED:PERMILLE "
			"(PERMILLE <= 1000); no failures injected\n", kernel_options.pmm_fail);
	else if (kernel_options.pmm_fail)
		kprintf("# pmm: injecting allocation failures: pmm.fail=%s\n",
			kernel_options.pmm_fail);
	if (kernel_options.selftest)
		selftest_run(kernel_options.selftest);
	if (kernel_options.bench)
		bench_run();
	if (kernel_options.bench_smp)
		bench_smp_run();
	debug_exit(ktest_run(kernel_options.ktest_filter));
}
