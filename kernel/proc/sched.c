/*
 * The round-robin scheduler: a FIFO run queue of threads (one per process),
 * context_switch (isr.asm) between their kernel stacks. Kernel code is never
 * preempted (interrupts stay off in it); the timer preempts user mode only,
 * by asking for a switch on the way back (proc_return_to_user). With nothing
 * runnable the CPU waits for an interrupt on the stack of the thread that
 * blocked (sti; hlt is atomic: no wakeup can slip in between).
 */
#include <cpu.h>
#include <image.h>
#include <layout.h>
#include <panic.h>
#include <percpu.h>
#include <pmm.h>
#include <proc.h>
#include <sched.h>
#include <spinlock.h>
#include <string.h>
#include <timer.h>
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

static struct proc *run_head, *run_tail;
/* Each proc's place in the run queue (parallel to proc_table: no field to forget). */
static struct proc *run_next[NPROC];
static bool queued[NPROC];
static u64 switches;
/* A thread that ended: its kernel stack is freed by the next thread to run. */
static struct proc *dead_thread;

static int slot_of(const struct proc *p)
{
	return (int)(p - proc_table);
}

static void rq_push(struct proc *p)
{
	int i = slot_of(p);
	ASSERT(!queued[i]);
	queued[i] = true;
	run_next[i] = NULL;
	if (run_tail)
		run_next[slot_of(run_tail)] = p;
	else
		run_head = p;
	run_tail = p;
}

static struct proc *rq_pop(void)
{
	struct proc *p = run_head;
	if (!p)
		return NULL;
	int i = slot_of(p);
	run_head = run_next[i];
	if (!run_head)
		run_tail = NULL;
	queued[i] = false;
	return p;
}

u64 sched_switches(void)
{
	return switches;
}

/* Give the kernel stack of a thread that ended back (it is not running: we are on another). */
static void release_dead_thread(void)
{
	struct proc *p = dead_thread;
	if (!p)
		return;
	dead_thread = NULL;
	u64 base = p->kstack_top - KERNEL_STACK_SIZE;
	MUST(unmap_region(base, KERNEL_STACK_PAGES, VMM_FREE_FRAMES) == 0);
	p->kstack_top = 0;
	/* Nobody will wait for an orphan: its slot goes now. */
	if (!p->parent)
		p->state = PROC_UNUSED;
}

/* Run the next runnable thread; `prev` (current) must already be queued or blocked. */
static void switch_to_next(void)
{
	struct percpu *cpu = this_cpu();
	struct proc *prev = cpu->current, *next;
	lock_check_switch("switch_to_next");
	while (!(next = rq_pop())) {
		/* Idle until an interrupt (the timer) makes someone runnable. */
		__asm__ volatile("sti; hlt; cli" : : : "memory");
	}
	next->state = PROC_RUNNING;
	if (next == prev)
		return;
	cpu->current = next;
	percpu_set_kernel_stack(next->kstack_top);
	if (next->space != prev->space)
		switch_page_map(next->space);
	switches++;
	context_switch(&prev->saved_rsp, next->saved_rsp);
	/* prev runs again here, possibly much later. */
	release_dead_thread();
}

void sched_thread_begin(void)
{
	release_dead_thread();
	/* Killed before it ever ran: it ends without running a single instruction of its own. */
	if (sched_current()->killed)
		proc_exit(-1);
}

void sched_yield(void)
{
	struct proc *cur = sched_current();
	lock_check_switch("sched_yield");
	if (!run_head)
		return;
	cur->state = PROC_RUNNABLE;
	rq_push(cur);
	switch_to_next();
}

void sched_block(void)
{
	struct proc *cur = sched_current();
	ASSERT(cur->state != PROC_RUNNING && cur->state != PROC_RUNNABLE);
	if (cur->state == PROC_ZOMBIE) {
		ASSERT(!dead_thread);
		dead_thread = cur;
	}
	switch_to_next();
}

void sched_wakeup(struct proc *p)
{
	if (p->state == PROC_RUNNABLE || p->state == PROC_RUNNING)
		return;
	ASSERT(p->state != PROC_UNUSED && p->state != PROC_ZOMBIE);
	p->state = PROC_RUNNABLE;
	rq_push(p);
}

void sched_sleep_ns(u64 ns)
{
	struct proc *cur = sched_current();
	u64 wake = clock_ns() + ns;
	while (clock_ns() < wake && !cur->killed) {
		cur->wake_ns = wake;
		cur->state = PROC_SLEEPING;
		sched_block();
	}
}

void sched_tick(struct trap_frame *f)
{
	u64 now = clock_ns();
	for (int i = 0; i < NPROC; i++) {
		struct proc *p = &proc_table[i];
		if (p->state == PROC_SLEEPING && p->wake_ns <= now)
			sched_wakeup(p);
		if (p->deadline_ns && p->deadline_ns <= now && p->state != PROC_ZOMBIE &&
		    p->state != PROC_UNUSED) {
			p->deadline_ns = 0;
			proc_kill(p, "deadline passed: ran longer than its time limit");
		}
	}
	if (trap_from_user(f))
		this_cpu()->need_resched = true;
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

/* Map the kernel stack of slot i (a guard page below stays unmapped): 0 or -E_NOMEM. */
static int kstack_map(int i, u64 *top)
{
	u64 base = KSTACKS_BASE + (u64)i * (KERNEL_STACK_SIZE + PAGE_SIZE) + PAGE_SIZE;
	int err = kstack_map_at(base);
	if (err == 0)
		*top = base + KERNEL_STACK_SIZE;
	return err;
}

/* Give back the kernel stack of a thread that never ran. */
void kstack_unmap(struct proc *p)
{
	MUST(unmap_region(p->kstack_top - KERNEL_STACK_SIZE, KERNEL_STACK_PAGES,
			    VMM_FREE_FRAMES) == 0);
	p->kstack_top = 0;
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
	struct proc *p = NULL;
	for (int i = 1; i < NPROC && !p; i++)
		if (proc_table[i].state == PROC_UNUSED && !proc_table[i].kstack_top)
			p = &proc_table[i];
	if (!p) {
		*err = -E_NOSPC;
		return NULL;
	}
	u64 top;
	if ((*err = kstack_map(slot_of(p), &top)) != 0)
		return NULL;
	memset(p, 0, sizeof(*p));
	p->pid = next_pid++;
	strlcpy(p->name, name, sizeof(p->name));
	p->kstack_top = top;
	p->space = proc_table[0].space;
	p->parent = sched_current();
	p->session = p->parent->session;
	u64 *sp = (u64 *)(top - frame_bytes);
	*--sp = (u64)trampoline;
	for (int r = 0; r < SWITCH_SAVED_REGS; r++)
		*--sp = 0;
	p->saved_rsp = (u64)sp;
	p->state = PROC_WAITING; /* not runnable until the caller is done with it */
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
	int err;
	struct proc *p = proc_alloc(name, kthread_trampoline, 0, &err);
	if (!p)
		return err;
	proc_set_entry(p, fn, arg);
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
	this_cpu()->current = p;
	percpu_set_kernel_stack(p->kstack_top);
}

/* Let a thread ended by proc_exit be released once another runs (proc.c). */
NORETURN void sched_exit_current(void)
{
	sched_block();
	panic("sched: a dead thread was switched back to");
}
