/* The per-CPU areas (percpu.h) and the GS bases that reach them. */
#include <cpu.h>
#include <gdt.h>
#include <panic.h>
#include <paging.h>
#include <percpu.h>

_Static_assert(offsetof(struct percpu, self) == PERCPU_SELF, "entry code reads gs:0");
_Static_assert(offsetof(struct percpu, kernel_rsp) == PERCPU_KERNEL_RSP, "syscall entry");
_Static_assert(offsetof(struct percpu, user_rsp) == PERCPU_USER_RSP, "syscall entry");
_Static_assert(offsetof(struct percpu, current) == PERCPU_CURRENT, "sched_current");

static struct percpu cpus[MAX_CPUS];

void percpu_init(u32 cpu)
{
	ASSERT(cpu < MAX_CPUS);
	struct percpu *p = &cpus[cpu];
	p->self = p;
	p->cpu_id = cpu;
	/* Every CPU starts in the space it was brought up in (the boot CPU's, for APs). */
	__atomic_store_n(&p->space, read_cr3() & PTE_ADDR_MASK, __ATOMIC_SEQ_CST);
	wrmsr(MSR_GS_BASE, (u64)p);
	/* What swapgs brings in for user mode: processes start with GS base 0. */
	wrmsr(MSR_KERNEL_GS_BASE, 0);
}

struct percpu *percpu_of(u32 cpu)
{
	ASSERT(cpu < MAX_CPUS);
	return &cpus[cpu];
}

void percpu_set_kernel_stack(u64 top)
{
	this_cpu()->kernel_rsp = top;
	tss_set_kernel_stack(top);
}
