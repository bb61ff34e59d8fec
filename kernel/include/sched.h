/*
 * Threads and the round-robin scheduler. Every process has one thread (the
 * kernel's own boot thread is process 0), so a thread is its struct proc.
 * The kernel is not preempted: it runs with interrupts off and gives the CPU
 * up only in sched_yield/sched_block (and in the idle loop, where it waits
 * with interrupts on). User mode is preempted by the timer: a tick that
 * arrives in user mode switches to the next runnable thread.
 *
 * SMP: one run queue for every CPU, under one lock (sched_lock_acquire),
 * which also guards every proc's state, parent and slot. A thread runs on
 * the CPUs its cpus_allowed mask names; each CPU takes the first runnable
 * thread it may run, else switches to its own idle context (which waits
 * with sti; hlt and is woken by its timer tick or by a wakeup's IPI). The
 * lock is handed over across context_switch (spinlock.h), and on_cpu is
 * cleared by the next context: a thread is never picked while it runs.
 * Process 0 stays on CPU 0; new processes of process 0 get the mask
 * sched_spawn_cpus (every CPU, unless `sched.cpu0` is on the command
 * line), others inherit their parent's.
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

/*
 * The scheduler's lock (LOCK_ORDER_SCHED; no lock at all on one CPU, where
 * the kernel is not preempted). Whoever blocks sets its state under it.
 */
void sched_lock_acquire(void);
void sched_lock_release(void);

/*
 * Block the current thread, its state already set by the caller under the
 * scheduler's lock (taken by the caller; released when this returns, once
 * the thread is runnable again and runs): a wakeup from another CPU cannot
 * fall between the caller's check and the block.
 */
void sched_block(void);

/* Make p runnable (it was blocked or new); takes the scheduler's lock. */
void sched_wakeup(struct proc *p);

/* The same with the scheduler's lock held. */
void sched_wakeup_locked(struct proc *p);

/*
 * A wakeup by a thread about to block or end on this CPU (lock held): p
 * is queued without waking an idle CPU when it may run here, as Linux's
 * synchronous wakeups (an exiting child waking its parent).
 */
void sched_wakeup_sync_locked(struct proc *p);

/*
 * Let p run only on the CPUs of mask (bit c: CPU c; CPUs not up are
 * ignored): 0, or -E_INVAL when no CPU of the mask is up. A CPU running p
 * now that the mask leaves out is asked to switch at its next chance.
 */
int sched_set_cpus(struct proc *p, u32 mask);

/*
 * Keep the current thread on CPU 0 from now on (moving it there first):
 * what a self-paging system call does before it touches the self-paging
 * state (frames.c, upcall.c), which has no lock of its own. Its children
 * inherit the mask. No lock held.
 */
void sched_pin_boot_cpu(void);

/* The mask process 0's new children get; returns the previous one (tests set it). */
u32 sched_set_spawn_cpus(u32 mask);

/* A mask of every CPU up. */
u32 sched_all_cpus(void);

/* An AP's last step of bring-up (smp.c): become this CPU's idle context on stack `top`. */
NORETURN void sched_run_ap(u64 top);

/* Sleep at least ns nanoseconds of clock_ns(); returns early only if killed or ended. */
void sched_sleep_ns(u64 ns);

/*
 * End the sleep of p, SLEEPING in sched_sleep_ns, as if its time had come: it
 * returns once p runs again (tests that park a process in a sleep: no wait
 * for the timer). False, and nothing changed, when p is not sleeping.
 */
bool sched_end_sleep(struct proc *p);

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

/*
 * With a second CPU up, map every thread slot's kernel stack now and keep
 * them mapped (sched.c): threads' exits then unmap nothing (no shootdown).
 * With one CPU, make the page tables over the slots' stacks now and keep
 * them. 0 (also when called again), or -E_NOMEM (stacks) or an error of
 * vmm_make_kept_tables (tables) with nothing kept: they stay per thread.
 * Boot only.
 */
int sched_keep_kstacks(void);

/* Wakeup IPIs sent to idle CPUs since boot (for tests' figures). */
u64 sched_kicks(void);

/* Context switches since boot (for tests). */
u64 sched_switches(void);

/* Threads switched to on CPU cpu since boot, its idle context excluded (for tests, reports). */
u64 sched_cpu_switches(u32 cpu);

/*
 * A kernel thread running fn(arg) in process slot of its own (address
 * space: the kernel's). Its return value is its exit status. pid or -E_x.
 */
int kthread_create(const char *name, int (*fn)(void *), void *arg);

/* kthread_create on the CPUs of mask cpus (0: as kthread_create); -E_INVAL if none is up. */
int kthread_create_cpus(const char *name, int (*fn)(void *), void *arg, u32 cpus);

/* End the current kernel thread (what a thread function's return does). */
NORETURN void kthread_exit(int status);

#endif
