/*
 * Symmetric multiprocessing: the application processors (APs) the firmware
 * lists are started at boot (INIT, SIPI, SIPI through a real-mode
 * trampoline), each with its own GDT, TSS, IST stacks, per-CPU area, kernel
 * stack with a guard page and LAPIC timer. CPU numbers are dense: 0 is the
 * boot CPU, then the APs that answered, in MADT order. A CPU that does not
 * answer within SMP_START_TIMEOUT_MS is reported and left out.
 */
#ifndef OUROBOROS_SMP_H
#define OUROBOROS_SMP_H

#include <acpi.h>
#include <types.h>

/* How long the BSP waits for an AP to reach ap_entry after its SIPIs. */
#define SMP_START_TIMEOUT_MS 2000
/* TRAMPOLINE_PHYS (layout.h): below 1 MiB, its SIPI vector is its page number. */
#include <layout.h>

/* Find the CPUs and start the APs; prints "# smp: ..." lines. After timer_init. */
void smp_init(void);

/* CPUs running (the boot CPU included); written only by smp_init. */
extern u32 smp_cpus_up;

/* CPUs running (the boot CPU included): inline, the PMM asks on every call. */
static inline u32 smp_cpu_count(void)
{
	return __atomic_load_n(&smp_cpus_up, __ATOMIC_RELAXED);
}

/* Guest TSC ticks smp_init took, from its start until every CPU that answered was up. */
u64 smp_boot_ticks(void);

/* What the firmware listed (for tests). */
const struct acpi_cpus *smp_firmware_cpus(void);

/* CPUs listed that did not answer in time (left out). */
u32 smp_cpus_left_out(void);

/*
 * Start the CPU with APIC ID apic_id as CPU number smp_cpu_count(), waiting
 * timeout_ms for its answer (the trampoline is mapped and unmapped around
 * it): 0 (it runs, idle, and is counted), -E_TIMEDOUT (it did not answer:
 * it is sent INIT again, so it cannot wake later on a stale trampoline, and
 * its stack is given back), -E_NOMEM, -E_NOSPC (MAX_CPUS reached), or a
 * map_region error for the trampoline page.
 */
int smp_start_cpu(u32 apic_id, u64 timeout_ms);

/*
 * Run fn(arg) on CPU `cpu` in interrupt context (interrupts off) and wait
 * until it has returned: 0, -E_INVAL (no such CPU), -E_TIMEDOUT. On the
 * calling CPU it is a plain call.
 */
int smp_call(u32 cpu, void (*fn)(void *arg), void *arg);

/*
 * Interrupt CPU cpu (VEC_IPI_CALL with an empty mailbox: only its hlt
 * returns), so that its idle loop looks at the run queue (sched.c).
 */
void smp_kick(u32 cpu);

/*
 * Start fn(arg) on application processor `cpu` in its idle loop, with
 * interrupts on (it takes IPIs, TLB shootdowns included, while fn runs), and
 * return at once: 0, -E_INVAL (CPU 0, this CPU or no such CPU), -E_NOSPC
 * (its previous work has not finished). For kernel work on several CPUs at
 * once (the SMP tests); smp_run_wait waits for the end.
 */
int smp_run(u32 cpu, void (*fn)(void *arg), void *arg);

/* Wait until the work smp_run gave `cpu` has returned: 0, -E_INVAL, -E_TIMEDOUT. */
int smp_run_wait(u32 cpu, u64 timeout_ms);

/* Send IPI `vector` to CPU `cpu` (fixed delivery), waiting until its APIC has it. */
void smp_send_ipi(u32 cpu, u32 vector);

/*
 * In an AP's idle loop (sched.c, interrupts off, no lock held): run the work
 * smp_run gave this CPU, with interrupts on; true if there was some.
 */
bool smp_run_poll(void);

/* The IPI handler of VEC_IPI_CALL (trap.c). */
void smp_ipi_call(void);

/* Bounds of CPU cpu's kernel stack [lo, hi) and its guard page below lo (for tests, reports). */
void smp_stack_bounds(u32 cpu, u64 *lo, u64 *hi);

/* CPU number whose AP stack guard page holds va, or -1. */
int smp_stack_guard_cpu(u64 va);

#endif
