/*
 * The memory-hierarchy benchmark after Saavedra-Barrera's membench: strided
 * reads over ranges from 4 KiB to 256 MiB of 4 KiB pages, strides from 8 B
 * to 4 KiB. It prints one line per point,
 *   `# MEMBENCH range_bytes=R stride_bytes=S accesses=N ticks=T`
 * (T: TSC ticks of the timed passes), first `# MEMBENCH cpu hypervisor=V`
 * (V: the CPUID hypervisor vendor, e.g. TCGTCGTCGTCG or KVMKVMKVM, or none),
 * then `# MEMBENCH done`. The host (tools/bench/membench.ts) divides, draws
 * the curves and infers cache sizes and the TLB reach from them, except
 * under TCG, which models neither.
 */
#ifndef OUROBOROS_MEMBENCH_H
#define OUROBOROS_MEMBENCH_H

#include <types.h>

/* Run the walk over every range and stride, free the buffer, and leave QEMU. Call after vmm_init. */
NORETURN void membench_run(void);

#endif
