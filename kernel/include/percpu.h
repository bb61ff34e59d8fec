/*
 * The per-CPU area, reached through GS in the kernel. Each CPU has its own
 * (cpus[] is indexed by CPU number, 0 the boot CPU; smp.c starts the
 * others, each calling percpu_init(n) first). In user mode GS belongs to the
 * process: every entry from user mode (syscall, interrupt, exception) runs
 * swapgs first and every return to user mode runs it last, so the kernel's
 * GS base sits in IA32_KERNEL_GS_BASE while user code runs.
 */
#ifndef OUROBOROS_PERCPU_H
#define OUROBOROS_PERCPU_H

#include <spinlock.h>
#include <types.h>

/* CPUs the kernel has room for. */
#define MAX_CPUS 8

/* Byte offsets of the fields the entry code uses (asserted against the struct in percpu.c). */
#define PERCPU_SELF 0
#define PERCPU_KERNEL_RSP 8
#define PERCPU_USER_RSP 16
#define PERCPU_CURRENT 24
#define PERCPU_CURRENT_STR "24"

struct proc;
struct spinlock;

struct percpu {
	struct percpu *self; /* gs:0: the area's own address */
	u64 kernel_rsp;      /* top of the running thread's kernel stack (syscall entry loads it) */
	u64 user_rsp;        /* the user rsp while the syscall entry builds its frame */
	struct proc *current; /* the thread this CPU runs */
	u32 cpu_id;
	bool need_resched;   /* the timer asks for a switch before returning to user mode */
	u32 apic_id;         /* its local APIC's ID (smp.c) */
	u64 ticks;           /* timer interrupts this CPU took */
	u64 last_tick_ns;    /* clock_ns() at its last timer interrupt */
	u64 tick_gap_ns;     /* clock_ns() between its last two timer interrupts (written before ticks) */
	/* Locks this CPU holds, in the order taken (spinlock.c). */
	u32 nheld;
	bool irq_was_on; /* interrupts were on before the outermost lock */
	struct spinlock *held[LOCK_HELD_MAX];
	/*
	 * The address space this CPU has loaded (its PML4 frame), and the one it
	 * is switching away from while switch_page_map runs (else 0): the CPU
	 * mask of a space is the CPUs naming it here (tlb.h). Written only by
	 * switch_page_map and at bring-up; read by every CPU's shootdowns.
	 */
	u64 space;
	u64 leaving;
	u32 tlb_open; /* TLB batches open on this CPU (tlb.h) */
	/*
	 * The other window was detached here since this CPU's last CR3 load
	 * for a switch, so its TLB may still hold window entries: the next
	 * attach here reloads CR3 first (vmm_space.c). Leaf entries only: the
	 * detach's invlpg dropped every paging-structure cache entry here
	 * (SDM 4.10.4.1; on AMD with EFER.TCE clear, as boot.asm keeps it,
	 * APM Vol. 2 §3.1.7).
	 */
	bool window_stale;
};

/* The area of CPU `cpu` (any CPU's, for the SMP code and its tests). */
struct percpu *percpu_of(u32 cpu);

/* MSRs (SDM Vol. 4 Table 2-2). */
#define MSR_GS_BASE 0xC0000101u
#define MSR_KERNEL_GS_BASE 0xC0000102u

/* Make cpus[cpu] this CPU's area: GS base in the kernel, 0 for user mode. */
void percpu_init(u32 cpu);

/* This CPU's area. */
static inline struct percpu *this_cpu(void)
{
	struct percpu *p;
	__asm__ volatile("movq %%gs:0, %0" : "=r"(p));
	return p;
}

/* Set the stack entries from user mode land on (syscall: kernel_rsp; interrupts: TSS.RSP0). */
void percpu_set_kernel_stack(u64 top);

/* Enable syscall/sysret on this CPU: entry point, segments, the RFLAGS it clears. */
void syscall_init(void);

#endif
