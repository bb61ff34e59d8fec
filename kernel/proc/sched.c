/*
 * The round-robin scheduler: a FIFO run queue of threads (one per process),
 * context_switch (isr.asm) between their kernel stacks. Kernel code is never
 * preempted (interrupts stay off in it); the timer preempts user mode only,
 * by asking for a switch on the way back (proc_return_to_user).
 *
 * Every CPU shares the queue (sched.h): sched_lock guards it and every
 * proc's state. A CPU with nothing it may run switches to its idle context
 * (idle_procs[cpu], not in the process table: CPU 0's on a stack of its
 * own, an AP's on its boot stack), which waits with sti; hlt (atomic: a
 * wakeup's IPI cannot slip in between) and polls the queue after every
 * interrupt. The lock is held across context_switch and released by the
 * context switched to (finish_switch), which also clears the previous
 * thread's on_cpu: until then no CPU can pick it, and one that did would
 * panic (switch_to).
 */
#include <cmdline.h>
#include <cpu.h>
#include <image.h>
#include <layout.h>
#include <panic.h>
#include <percpu.h>
#include <pmm.h>
#include <proc.h>
#include <sched.h>
#include <smp.h>
#include <spinlock.h>
#include <string.h>
#include <timer.h>
#include <tlb.h>
#include <trap.h>
#include <vmm.h>

/* Callee-saved registers context_switch keeps on a stack (rbp, rbx, r12..r15). */
#define SWITCH_SAVED_REGS 6
/* Their positions from the saved rsp (context_switch pops r15 first). */
#define SAVED_R13 2
#define SAVED_R12 3

extern void context_switch(u64 *save_rsp, u64 new_rsp);
extern const u8 kthread_trampoline[], uthread_trampoline[];

struct proc proc_table[NPROC];

static struct spinlock sched_lock = SPINLOCK_INIT("sched", LOCK_ORDER_SCHED);
static struct proc *run_head, *run_tail;
/* Each proc's place in the run queue (parallel to proc_table: no field to forget). */
static struct proc *run_next[NPROC];
static bool queued[NPROC];
static u64 switches;
/* Wakeup IPIs sent to idle CPUs (smp_kick) since boot. */
static u64 kicks;
static u64 cpu_switches[MAX_CPUS];
/* Each CPU's idle context: never queued, never in proc_table. */
static struct proc idle_procs[MAX_CPUS];
/* Per CPU: the thread it switched away from, for the next context to finish the switch. */
static struct proc *switched_from[MAX_CPUS];
/* Per CPU: a thread that ended there; its kernel stack is released by the next context. */
static struct proc *dead_thread[MAX_CPUS];
/*
 * Kept kernel stacks: once a second CPU is up, every slot's stack is mapped
 * (sched_keep_kstacks) and stays mapped for good. A thread's exit then
 * unmaps nothing, so it sends no kernel-half shootdown (an IPI to every CPU
 * and a wait for each, under the paging lock), and a thread's creation maps
 * nothing. A slot's stack is used by one thread at a time: the slot is
 * reused only once its stack is released (kstack_top 0), which happens
 * after the dead thread's CPU has switched off it (finish_switch). Its
 * guard page is never mapped. With one CPU stacks are mapped and unmapped
 * per thread (an unmap there costs no IPI), under page tables made at boot
 * and kept (no table made, zeroed and freed per thread).
 */
static bool kstacks_kept;
/* With one CPU: the page tables over the slots' stacks are made and kept (sched_keep_kstacks). */
static bool kstack_tables_kept;
/* Per CPU: it waits in its idle loop (a wakeup sends it an IPI). */
static bool cpu_idle[MAX_CPUS];
/*
 * The CPUs process 0's new children may run on: every CPU (bits of CPUs
 * not up are never looked at), or CPU 0 with `sched.cpu0`.
 */
static u32 spawn_cpus = ~0u;

/* One CPU needs no lock: the kernel is not preempted and interrupts are off in it. */
static inline bool sched_locking(void)
{
	return smp_cpu_count() >= 2;
}

/* The scheduler's lock, inlined on the switch path (its cost on one CPU: one compare). */
static inline void lock_take(void)
{
	if (sched_locking())
		spin_lock(&sched_lock);
}

/*
 * Idle CPUs halted until the scheduler's lock is released (bit c: CPU c).
 * Under TCG a vCPU spinning for the lock burns a host core while the
 * holder's vCPU may not be running at all (more vCPUs than host cores): an
 * idle CPU that finds the lock still held after IDLE_LOCK_SPINS turns halts
 * instead, and the release kicks it (idle_lock_take).
 */
static u32 lock_sleepers;
#define IDLE_LOCK_SPINS 64

/* Kick the CPUs halted for the lock (it was just released). */
static __attribute__((noinline)) void wake_lock_sleepers(void)
{
	u32 cpus = __atomic_exchange_n(&lock_sleepers, 0, __ATOMIC_SEQ_CST);
	for (; cpus; cpus &= cpus - 1)
		smp_kick((u32)__builtin_ctz(cpus));
}

/* Release the scheduler's lock (SMP), then kick the idle CPUs halted for it. */
static inline void sched_unlock(void)
{
	spin_unlock(&sched_lock);
	/*
	 * The release before the look at the sleepers (a store, then a load:
	 * only a full fence keeps them in order), against idle_lock_take's
	 * bit, then its look at the lock: one of the two sees the other.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__builtin_expect(__atomic_load_n(&lock_sleepers, __ATOMIC_RELAXED) != 0, 0))
		wake_lock_sleepers();
}

static inline void lock_drop(void)
{
	if (sched_locking())
		sched_unlock();
}

/*
 * Take the scheduler's lock from an idle context (interrupts off, no lock
 * held): spin a little, then halt until a release kicks this CPU (or any
 * interrupt comes: the loop looks again).
 */
static void idle_lock_take(void)
{
	if (!sched_locking())
		return;
	u32 bit = 1u << this_cpu()->cpu_id;
	for (;;) {
		for (int i = 0; i < IDLE_LOCK_SPINS; i++) {
			if (!__atomic_load_n(&sched_lock.locked, __ATOMIC_RELAXED)) {
				spin_lock(&sched_lock);
				return;
			}
			tlb_poll(); /* the holder may wait for this CPU (tlb.h) */
			__builtin_ia32_pause();
		}
		__atomic_fetch_or(&lock_sleepers, bit, __ATOMIC_SEQ_CST);
		/* Released since: the release may have looked at the sleepers before the bit. */
		if (__atomic_load_n(&sched_lock.locked, __ATOMIC_SEQ_CST))
			wait_for_interrupt();
		__atomic_fetch_and(&lock_sleepers, ~bit, __ATOMIC_SEQ_CST);
	}
}

void sched_lock_acquire(void)
{
	lock_take();
}

void sched_lock_release(void)
{
	lock_drop();
}

/* No lock held here (a switch may follow). */
static inline void check_no_lock(const char *where)
{
	if (__builtin_expect(this_cpu()->nheld != 0, 0))
		lock_check_switch(where);
	tlb_check_closed(where);
}

static bool sched_lock_held(void)
{
	return !sched_locking() || spin_held(&sched_lock);
}

static int slot_of(const struct proc *p)
{
	return (int)(p - proc_table);
}

static void rq_push(struct proc *p)
{
	int i = slot_of(p);
	ASSERT(i >= 0 && i < NPROC && !queued[i]);
	queued[i] = true;
	run_next[i] = NULL;
	if (run_tail)
		run_next[slot_of(run_tail)] = p;
	else
		run_head = p;
	run_tail = p;
}

/* The first queued thread CPU cpu may run, taken off the queue; NULL if none. */
static struct proc *rq_pop(u32 cpu)
{
	struct proc *prev = NULL, *p = run_head;
	/* The common case first: the head may run here. */
	if (p && (p->cpus_allowed & (1u << cpu))) {
		int i = slot_of(p);
		run_head = run_next[i];
		if (!run_head)
			run_tail = NULL;
		queued[i] = false;
		return p;
	}
	while (p && !(p->cpus_allowed & (1u << cpu))) {
		prev = p;
		p = run_next[slot_of(p)];
	}
	if (!p)
		return NULL;
	int i = slot_of(p);
	if (prev)
		run_next[slot_of(prev)] = run_next[i];
	else
		run_head = run_next[i];
	if (run_tail == p)
		run_tail = prev;
	queued[i] = false;
	return p;
}

u64 sched_switches(void)
{
	return switches;
}

u64 sched_cpu_switches(u32 cpu)
{
	return cpu < MAX_CPUS ? cpu_switches[cpu] : 0;
}

u64 sched_kicks(void)
{
	return __atomic_load_n(&kicks, __ATOMIC_RELAXED);
}

u32 sched_all_cpus(void)
{
	return (u32)((1ULL << smp_cpu_count()) - 1);
}

u32 sched_set_spawn_cpus(u32 mask)
{
	lock_take();
	u32 old = spawn_cpus;
	spawn_cpus = mask;
	lock_drop();
	return old;
}

/* Wake an idle CPU other than this one that may run p (an IPI: its hlt returns). */
static void kick_idle_cpu(const struct proc *p)
{
	u32 self = this_cpu()->cpu_id;
	for (u32 c = 0; c < smp_cpu_count(); c++)
		if (c != self && cpu_idle[c] && (p->cpus_allowed & (1u << c))) {
			cpu_idle[c] = false;
			kicks++; /* under the lock */
			smp_kick(c);
			return;
		}
}

static void kstack_release(const struct proc *p);

/*
 * Give the kernel stack of a thread that ended back (it is not running: we
 * are on another stack), then let its parent reap it. No lock held.
 */
static __attribute__((noinline)) void release_dead_thread(struct proc *p)
{
	kstack_release(p);
	lock_take();
	p->kstack_top = 0;
	/* Nobody will wait for an orphan: its slot goes now. */
	if (!p->parent)
		p->state = PROC_UNUSED;
	else if (p->parent->state == PROC_WAITING)
		sched_wakeup_locked(p->parent); /* its wait saw the stack still there */
	lock_drop();
}

/*
 * The first thing a context does once switched to (the lock held, handed
 * over): the previous thread may now run elsewhere; release the lock, then
 * the stack of a thread that ended on this CPU.
 */
static inline void finish_switch(bool smp)
{
	u32 id = this_cpu()->cpu_id;
	struct proc *last = switched_from[id], *dead = dead_thread[id];
	last->on_cpu = false;
	dead_thread[id] = NULL;
	if (smp)
		sched_unlock();
	if (__builtin_expect(dead != NULL, 0))
		release_dead_thread(dead);
}

/*
 * Switch from prev (current, lock held) to next; returns when prev runs
 * again, lock released. Inlined: one call less on every switch.
 */
static inline __attribute__((always_inline)) void switch_to(struct proc *prev, struct proc *next)
{
	struct percpu *cpu = this_cpu();
	u32 id = cpu->cpu_id;
	/* Only the scheduler's lock (none on one CPU), handed over across the switch. */
	bool smp = sched_locking();
	if (__builtin_expect(cpu->nheld != smp || (smp && cpu->held[0] != &sched_lock), 0)) {
		lock_check_switch_except("switch_to", &sched_lock);
		panic("sched: switch_to without the scheduler's lock on CPU %u", id);
	}
	tlb_check_closed("switch_to");
	if (next->on_cpu)
		panic("sched: '%s' (pid %d) picked by CPU %u while it still runs on CPU %u",
		      next->name, next->pid, id, next->cpu);
	next->on_cpu = true;
	next->state = PROC_RUNNING;
	if (next->cpu != id && next->cpus_ran)
		next->migrations++;
	next->cpu = id;
	next->cpus_ran |= 1u << id;
	cpu->current = next;
	percpu_set_kernel_stack(next->kstack_top);
	if (next->space != prev->space)
		switch_page_map(next->space);
	switches++;
	if (next->pid >= 0) /* not an idle context */
		cpu_switches[id]++;
	switched_from[id] = prev;
	context_switch(&prev->saved_rsp, next->saved_rsp);
	/* prev runs again here, possibly much later and on another CPU. */
	finish_switch(smp);
}

/* Switch to the next thread this CPU may run, or to its idle context (lock held). */
static void switch_to_next(struct proc *prev)
{
	u32 id = this_cpu()->cpu_id;
	struct proc *next = rq_pop(id);
	switch_to(prev, next ? next : &idle_procs[id]);
}

/* An idle context's loop (lock held): run what is runnable here, else wait for an interrupt. */
static NORETURN void idle_loop(void)
{
	struct proc *idle = sched_current();
	u32 id = this_cpu()->cpu_id;
	for (;;) {
		struct proc *next = rq_pop(id);
		if (next) {
			cpu_idle[id] = false;
			switch_to(idle, next);
			idle_lock_take();
			continue;
		}
		cpu_idle[id] = true;
		lock_drop();
		/* An AP's kernel work from smp_run (tests), with interrupts on. */
		if (id != 0 && smp_run_poll()) {
			idle_lock_take();
			continue;
		}
		/* Lazy TLB (tlb.c): no shootdown IPIs while halted; a flush on the way out if one was left. */
		tlb_idle_enter();
		wait_for_interrupt();
		tlb_idle_exit();
		idle_lock_take();
	}
}

/* CPU 0's idle context, entered through kthread_trampoline. */
static int idle_main(void *arg)
{
	(void)arg;
	lock_take();
	idle_loop();
}

/* Fill idle_procs[cpu] (its stack's top `top`). */
static struct proc *idle_init(u32 cpu, u64 top)
{
	struct proc *p = &idle_procs[cpu];
	memset(p, 0, sizeof(*p));
	p->pid = -1;
	strlcpy(p->name, "idle", sizeof(p->name));
	p->space = proc_table[0].space;
	p->kstack_top = top;
	p->cpus_allowed = 1u << cpu;
	p->cpu = cpu;
	p->state = PROC_RUNNING;
	return p;
}

NORETURN void sched_run_ap(u64 top)
{
	u32 id = this_cpu()->cpu_id;
	struct proc *idle = idle_init(id, top);
	idle->on_cpu = true;
	idle->cpus_ran = 1u << id;
	this_cpu()->current = idle;
	lock_take();
	idle_loop();
}

void sched_thread_begin(void)
{
	finish_switch(sched_locking());
	/* Killed before it ever ran: it ends without running a single instruction of its own. */
	if (sched_current()->killed)
		proc_exit(-1);
}

void sched_yield(void)
{
	check_no_lock("sched_yield");
	bool smp = sched_locking();
	if (smp) {
		/* A kernel thread that only yields never opens interrupts: serve shootdowns here. */
		tlb_poll();
		spin_lock(&sched_lock);
	}
	struct proc *cur = sched_current();
	u32 id = this_cpu()->cpu_id;
	struct proc *next = rq_pop(id);
	/* Nothing else to run: go on, unless its mask no longer has this CPU (sched_set_cpus). */
	if (!next && (cur->cpus_allowed & (1u << id))) {
		if (smp)
			sched_unlock();
		return;
	}
	cur->state = PROC_RUNNABLE;
	rq_push(cur);
	if (smp)
		kick_idle_cpu(cur);
	switch_to(cur, next ? next : &idle_procs[id]);
}

void sched_block(void)
{
	struct proc *cur = sched_current();
	ASSERT(sched_lock_held());
	ASSERT(cur->state != PROC_RUNNING && cur->state != PROC_RUNNABLE);
	if (cur->state == PROC_ZOMBIE) {
		u32 id = this_cpu()->cpu_id;
		ASSERT(!dead_thread[id]);
		dead_thread[id] = cur;
	}
	switch_to_next(cur);
}

void sched_pin_boot_cpu(void)
{
	struct proc *cur = sched_current();
	if (cur->cpus_allowed == 1u && this_cpu()->cpu_id == 0)
		return;
	lock_check_switch("sched_pin_boot_cpu");
	lock_take();
	cur->cpus_allowed = 1u;
	if (this_cpu()->cpu_id == 0) {
		lock_drop();
		return;
	}
	cur->state = PROC_RUNNABLE;
	rq_push(cur);
	kick_idle_cpu(cur);
	switch_to_next(cur);
	ASSERT(this_cpu()->cpu_id == 0);
}

void sched_wakeup_locked(struct proc *p)
{
	ASSERT(sched_lock_held());
	if (p->state == PROC_RUNNABLE || p->state == PROC_RUNNING)
		return;
	ASSERT(p->state != PROC_UNUSED && p->state != PROC_ZOMBIE);
	p->state = PROC_RUNNABLE;
	rq_push(p);
	kick_idle_cpu(p);
}

void sched_wakeup_sync_locked(struct proc *p)
{
	ASSERT(sched_lock_held());
	if (!(p->cpus_allowed & (1u << this_cpu()->cpu_id))) {
		sched_wakeup_locked(p);
		return;
	}
	if (p->state == PROC_RUNNABLE || p->state == PROC_RUNNING)
		return;
	ASSERT(p->state != PROC_UNUSED && p->state != PROC_ZOMBIE);
	/* No kick: this CPU is about to leave the current thread and finds p in the queue. */
	p->state = PROC_RUNNABLE;
	rq_push(p);
}

void sched_wakeup(struct proc *p)
{
	lock_take();
	sched_wakeup_locked(p);
	lock_drop();
}

int sched_set_cpus(struct proc *p, u32 mask)
{
	mask &= sched_all_cpus();
	if (!mask)
		return -E_INVAL;
	lock_take();
	p->cpus_allowed = mask;
	if (p->state == PROC_RUNNING && !(mask & (1u << p->cpu)))
		percpu_of(p->cpu)->need_resched = true;
	else if (p->state == PROC_RUNNABLE)
		kick_idle_cpu(p);
	lock_drop();
	return 0;
}

void sched_sleep_ns(u64 ns)
{
	struct proc *cur = sched_current();
	lock_take();
	/* The deadline lives in the proc, under the lock: sched_end_sleep may bring it forward. */
	cur->wake_ns = clock_ns() + ns;
	for (;;) {
		if (clock_ns() >= cur->wake_ns || cur->killed) {
			lock_drop();
			return;
		}
		cur->state = PROC_SLEEPING;
		sched_block();
		lock_take();
	}
}

bool sched_end_sleep(struct proc *p)
{
	lock_take();
	bool sleeping = p->state == PROC_SLEEPING;
	if (sleeping) {
		p->wake_ns = 0;
		sched_wakeup_locked(p);
	}
	lock_drop();
	return sleeping;
}

void sched_tick(struct trap_frame *f)
{
	struct percpu *cpu = this_cpu();
	/* Sleepers and deadlines: CPU 0's clock only. */
	if (cpu->cpu_id == 0) {
		u64 now = clock_ns();
		lock_take();
		for (int i = 0; i < NPROC; i++) {
			struct proc *p = &proc_table[i];
			if (p->state == PROC_SLEEPING && p->wake_ns <= now)
				sched_wakeup_locked(p);
			if (p->deadline_ns && p->deadline_ns <= now && p->state != PROC_ZOMBIE &&
			    p->state != PROC_UNUSED) {
				p->deadline_ns = 0;
				proc_kill_locked(p, "deadline passed: ran longer than its time limit");
			}
		}
		lock_drop();
	}
	if (trap_from_user(f))
		cpu->need_resched = true;
}

int kstack_map_at(u64 base)
{
	for (u64 k = 0; k < KERNEL_STACK_PAGES; k++) {
		u64 frame;
		if (pmm_alloc(&frame) != 0)
			goto fail;
		if (map_region(base + k * PAGE_SIZE, frame, 1, VMM_WRITE) != 0) {
			MUST(pmm_free(frame) == 0);
			goto fail;
		}
	}
	return 0;
fail:
	MUST(unmap_region(base, KERNEL_STACK_PAGES, VMM_FREE_FRAMES) == 0);
	return -E_NOMEM;
}

/* The lowest address of slot i's kernel stack (its guard page is the page below). */
static u64 kstack_base(int i)
{
	return KSTACKS_BASE + (u64)i * (KERNEL_STACK_SIZE + PAGE_SIZE) + PAGE_SIZE;
}

/* Slot i's kernel stack, mapped unless kept: its top in *top, 0 or -E_NOMEM. */
static int kstack_map(int i, u64 *top)
{
	u64 base = kstack_base(i);
	int err = kstacks_kept ? 0 : kstack_map_at(base);
	if (err == 0)
		*top = base + KERNEL_STACK_SIZE;
	return err;
}

/* Give p's kernel stack back (nobody runs on it): unmapped, or kept mapped for the slot's next thread. */
static void kstack_release(const struct proc *p)
{
	if (kstacks_kept)
		return;
	MUST(unmap_region(p->kstack_top - KERNEL_STACK_SIZE, KERNEL_STACK_PAGES,
			    VMM_FREE_FRAMES) == 0);
}

/* Give back the kernel stack of a thread that never ran. */
void kstack_unmap(struct proc *p)
{
	kstack_release(p);
	p->kstack_top = 0;
}

int sched_keep_kstacks(void)
{
	if (kstacks_kept)
		return 0;
	/* One CPU: the stacks come and go with their threads, their page tables stay. */
	if (smp_cpu_count() < 2) {
		if (kstack_tables_kept)
			return 0;
		int err = vmm_make_kept_tables(KSTACKS_BASE, kstack_base(NPROC) - KSTACKS_BASE);
		kstack_tables_kept = !err;
		return err;
	}
	for (int i = 1; i < NPROC; i++) {
		/* A slot in use has its stack already (none at boot but the tests' thread, slot 0). */
		if (proc_table[i].kstack_top)
			continue;
		int err = kstack_map_at(kstack_base(i));
		if (err) {
			for (int k = 1; k < i; k++)
				if (!proc_table[k].kstack_top)
					MUST(unmap_region(kstack_base(k), KERNEL_STACK_PAGES,
							  VMM_FREE_FRAMES) == 0);
			return err;
		}
	}
	kstacks_kept = true;
	return 0;
}

/* Where a guard page of a thread's kernel stack lies, if va is one: the thread's slot, else -1. */
int kstack_guard_slot(u64 va)
{
	if (va < KSTACKS_BASE || va >= KSTACKS_BASE + NPROC * (KERNEL_STACK_SIZE + PAGE_SIZE))
		return -1;
	u64 off = (va - KSTACKS_BASE) % (KERNEL_STACK_SIZE + PAGE_SIZE);
	return off < PAGE_SIZE ? (int)((va - KSTACKS_BASE) / (KERNEL_STACK_SIZE + PAGE_SIZE)) : -1;
}

static int next_pid = 1;

/*
 * A fresh slot with a kernel stack whose first switch enters `trampoline`
 * with r12 = fn, r13 = arg, `frame_bytes` reserved at the top. NULL when
 * no slot or frame is left (*err says which).
 */
struct proc *proc_alloc(const char *name, const u8 *trampoline, u64 frame_bytes, int *err)
{
	struct proc *p = NULL, *parent = sched_current();
	lock_take();
	for (int i = 1; i < NPROC && !p; i++)
		if (proc_table[i].state == PROC_UNUSED && !proc_table[i].kstack_top)
			p = &proc_table[i];
	if (p) {
		/* Claimed: not unused, not runnable, nobody's child yet. */
		memset(p, 0, sizeof(*p));
		p->state = PROC_EMBRYO;
		p->pid = next_pid++;
		p->cpus_allowed = parent == &proc_table[0] ? spawn_cpus : parent->cpus_allowed;
	}
	lock_drop();
	if (!p) {
		*err = -E_NOSPC;
		return NULL;
	}
	u64 top = 0;
	*err = kstack_map(slot_of(p), &top);
	if (*err) {
		p->state = PROC_UNUSED;
		return NULL;
	}

	strlcpy(p->name, name, sizeof(p->name));
	p->kstack_top = top;
	p->space = proc_table[0].space;
	p->session = parent->session;
	u64 *sp = (u64 *)(top - frame_bytes);
	*--sp = (u64)trampoline;
	for (int r = 0; r < SWITCH_SAVED_REGS; r++)
		*--sp = 0;
	p->saved_rsp = (u64)sp;
	/* Not runnable until the caller is done with it; a child from now on. */
	lock_take();
	p->parent = parent;
	lock_drop();
	return p;
}

/* Set the function a kernel thread's trampoline calls. */
static void proc_set_entry(struct proc *p, int (*fn)(void *), void *arg)
{
	u64 *sp = (u64 *)p->saved_rsp;
	sp[SAVED_R12] = (u64)fn;
	sp[SAVED_R13] = (u64)arg;
}

int kthread_create(const char *name, int (*fn)(void *), void *arg)
{
	return kthread_create_cpus(name, fn, arg, 0);
}

int kthread_create_cpus(const char *name, int (*fn)(void *), void *arg, u32 cpus)
{
	if (cpus && !(cpus & sched_all_cpus()))
		return -E_INVAL;
	int err;
	struct proc *p = proc_alloc(name, kthread_trampoline, 0, &err);
	if (!p)
		return err;
	proc_set_entry(p, fn, arg);
	if (cpus)
		p->cpus_allowed = cpus & sched_all_cpus();
	sched_wakeup(p);
	return p->pid;
}

NORETURN void kthread_exit(int status)
{
	proc_exit(status);
}

void sched_init(void)
{
	struct proc *p = &proc_table[0];
	memset(p, 0, sizeof(*p));
	p->state = PROC_RUNNING;
	p->pid = 0;
	strlcpy(p->name, "kernel", sizeof(p->name));
	p->space = current_page_map();
	p->kstack_top = (u64)__stack_top;
	p->cpus_allowed = 1; /* the tests' thread: CPU 0's, always */
	p->cpus_ran = 1;
	p->on_cpu = true;
	this_cpu()->current = p;
	percpu_set_kernel_stack(p->kstack_top);
	if (kernel_options.sched_cpu0)
		spawn_cpus = 1;
	/* CPU 0's idle context: on the AP stacks' slot 0, unused by the APs. */
	u64 lo, hi;
	smp_stack_bounds(0, &lo, &hi);
	MUST(kstack_map_at(lo) == 0);
	struct proc *idle = idle_init(0, hi);
	u64 *sp = (u64 *)hi;
	*--sp = (u64)kthread_trampoline;
	for (int r = 0; r < SWITCH_SAVED_REGS; r++)
		*--sp = 0;
	idle->saved_rsp = (u64)sp;
	sp[SAVED_R12] = (u64)idle_main;
}

/* End the current thread (a zombie, the lock held): its stack goes once another runs (proc.c). */
NORETURN void sched_exit_current(void)
{
	sched_block();
	panic("sched: a dead thread was switched back to");
}
