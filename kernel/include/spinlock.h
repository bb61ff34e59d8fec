/*
 * Spinlocks with a fixed acquisition order and debug checks that cannot be
 * turned off (they cost a compare or two).
 *
 * LOCK ORDER (take lower numbers first; never take a lock whose order is
 * not above every lock this CPU already holds). The one list of the kernel's
 * locks:
 *   LOCK_ORDER_TEST      1  selftests and ktests' own locks
 *   LOCK_ORDER_LOAD      3  program loading's static buffers (spawn, exec:
 *                           proc.c, sys.c); held while a process is made
 *   LOCK_ORDER_SCHED     5  the scheduler: run queue, every proc's state,
 *                           parent and slot (sched.c); the one lock held
 *                           across a context switch (see below)
 *   LOCK_ORDER_VMM      10  the paging operations (vmm.c "vmm"): map_region,
 *                           unmap_region, set_page_flags, copy/new/drop_page_map
 *                           and the other-space window, the #PF handler's table
 *                           creation and demand-zero pages, the COW count table
 *                           and its fork/write-fault paths (cow.c). It nests on
 *                           its holder (vmm_lock_take): an operation may call
 *                           another.
 *   LOCK_ORDER_PMM      30  the frame allocator (pmm.c "pmm"), taken inside the
 *                           paging operations (tables, frames)
 *   LOCK_ORDER_CONSOLE  90  the console: one kprintf or write at a time
 *                           (printf.c, sys.c); innermost, any lock may be
 *                           held while printing
 * All are taken only once a second CPU is up (one CPU: nothing can race, and
 * the bench's figures stay those of the lock-free kernel).
 * The TLB shootdown takes no lock: it runs under whatever lock the operation
 * holds, and waits with interrupts off; a CPU spinning here serves the
 * shootdowns aimed at it while it waits (tlb_poll), so waiting for a lock
 * never blocks another CPU's shootdown.
 * No lock is held across a context switch but the scheduler's, by design
 * (xv6's hand-over): the switching thread takes it, the thread switched to
 * releases it on the same CPU, so no other CPU can pick the previous thread
 * before its registers are saved. sched.c checks on every switch that it
 * is the only one held (lock_check_switch_except), and that no TLB batch is
 * left open. spin_lock disables interrupts and the outermost spin_unlock
 * restores them.
 * Violations panic naming the locks: "lock order violation" and
 * "held across a context switch".
 */
#ifndef OUROBOROS_SPINLOCK_H
#define OUROBOROS_SPINLOCK_H

#include <types.h>

#define LOCK_ORDER_TEST 1
#define LOCK_ORDER_LOAD 3
#define LOCK_ORDER_SCHED 5
#define LOCK_ORDER_VMM 10
#define LOCK_ORDER_PMM 30
#define LOCK_ORDER_CONSOLE 90
/* Locks one CPU may hold at once. */
#define LOCK_HELD_MAX 8
#define LOCK_NO_CPU 0xFFFFFFFFu

struct spinlock {
	u32 locked;
	u32 cpu; /* holder's CPU number, LOCK_NO_CPU when free */
	u32 order;
	const char *name;
};

#define SPINLOCK_INIT(name_, order_) {0, LOCK_NO_CPU, (order_), (name_)}

/* Take l (interrupts off until the outermost unlock); panics on an order violation. */
void spin_lock(struct spinlock *l);

/* Release l, the last lock this CPU took (panics otherwise). */
void spin_unlock(struct spinlock *l);

/* True when this CPU holds l. */
bool spin_held(const struct spinlock *l);

/*
 * Take l for a section that may nest (a console line printed while one is
 * being printed, a program load inside another's): not when only one CPU
 * is up (nothing to exclude) or this CPU holds it already. Returns whether
 * it took it, for spin_unlock_taken.
 */
bool spin_lock_outer(struct spinlock *l);

/* Release l if spin_lock_outer took it. */
void spin_unlock_taken(struct spinlock *l, bool took);

/* Panic when this CPU holds any lock: called by the scheduler before every switch. */
void lock_check_switch(const char *where);

/*
 * Panic when this CPU holds any lock but `allowed` (the scheduler's, handed
 * over across the switch), naming the first other one.
 */
void lock_check_switch_except(const char *where, const struct spinlock *allowed);

/* Locks this CPU holds. */
u32 locks_held(void);

#endif
