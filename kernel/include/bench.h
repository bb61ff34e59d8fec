/*
 * The memory-manager benchmark (`bench` on the kernel command line; the
 * host side is tools/bench.ts, `deno task bench`). It prints one
 * `# BENCH op=OP page_size=BYTES region_bytes=BYTES pages=N ticks=T` line per
 * measurement (T: TSC ticks, i.e. instructions under QEMU's -icount shift=0),
 * then `# BENCH done`, checks that every frame is back in the PMM, and exits.
 */
#ifndef OUROBOROS_BENCH_H
#define OUROBOROS_BENCH_H

#include <types.h>

/* Run every benchmark, then leave QEMU (pass, or fail when frames leaked). Call after vmm_init. */
NORETURN void bench_run(void);

/*
 * The SMP benchmark (`bench.smp`, booted with several CPUs): the cost of an
 * unmap whose shootdown reaches 0, 1 and 3 other CPUs, of a 64-page unmap,
 * the IPIs per operation (`# BENCH-IPIS` lines), and the boot time to all
 * CPUs up (`smp_boot`); then leave QEMU like bench_run.
 */
NORETURN void bench_smp_run(void);

#endif
