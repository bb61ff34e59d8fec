/*
 * Threads and the round-robin scheduler. Every process has one thread (the
 * kernel's own boot thread is process 0), so a thread is its struct proc.
 * The kernel is not preempted: it runs with interrupts off and gives the CPU
 * up only in sched_yield/sched_block (and in the idle loop, where it waits
 * with interrupts on). User mode is preempted by the timer: a tick that
 * arrives in user mode switches to the next runnable thread.
 */
#ifndef OUROBOROS_SCHED_H
#define OUROBOROS_SCHED_H

#include <percpu.h>
#include <types.h>

struct trap_frame;
struct proc;

/* Make the running boot thread process 0 ("kernel") and set up the kernel stacks. */
void sched_init(void);

/* The thread running on this CPU (one load through GS). */
static inline struct proc *sched_current(void)
{
	struct proc *p;
	__asm__ volatile("movq %%gs:" PERCPU_CURRENT_STR ", %0" : "=r"(p));
	return p;
}

/* Put the current thread at the end of the run queue and run the next one (if any). */
void sched_yield(void);

/* Block the current thread (its state already set by the caller) until made runnable. */
void sched_block(void);

/* Make p runnable (it was blocked or new). */
void sched_wakeup(struct proc *p);

/* Sleep at least ns nanoseconds of clock_ns(); returns early only if killed. */
void sched_sleep_ns(u64 ns);

/* The timer's tick (interrupts off): wake sleepers, and preempt if it came from user mode. */
void sched_tick(struct trap_frame *f);

/* Called by a new thread first (isr.asm trampolines): finish the switch that started it. */
void sched_thread_begin(void);

/* The thread slot whose kernel stack's guard page holds va, or -1. */
int kstack_guard_slot(u64 va);

/*
 * Map KERNEL_STACK_PAGES fresh frames at base (the guard page below stays
 * unmapped): 0, or -E_NOMEM with nothing leaked.
 */
int kstack_map_at(u64 base);

/* Context switches since boot (for tests). */
u64 sched_switches(void);

/*
 * A kernel thread running fn(arg) in process slot of its own (address
 * space: the kernel's). Its return value is its exit status. pid or -E_x.
 */
int kthread_create(const char *name, int (*fn)(void *), void *arg);

/* End the current kernel thread (what a thread function's return does). */
NORETURN void kthread_exit(int status);

#endif
