/*
 * fork and copy-on-write from the kernel's side, with assembly programs that
 * touch only the pages they mean to (test_proc.c's way): copies and
 * takeovers counted by cow_get_stats, -E_NOMEM with nothing changed at every
 * point a fork can run out of frames, and no leak after 1,000 cycles.
 */
#include "test_vmm_util.h"
#include "user_blob.h"
#include <cow.h>
#include <ktest.h>
#include <layout.h>
#include <panic.h>
#include <pmm.h>
#include <proc.h>
#include <sched.h>
#include <syscalls.h>
#include <tlb.h>
#include <vmm.h>

#define STACK_PAGES 4

/*
 * The stack word at -8(%rsp) is 1; fork; the child exits at once (it writes
 * nothing); the parent waits for it, then writes 2 there: the frame is its
 * own again, so that write takes it over. Exit 0 when the word reads 2.
 */
BLOB(blob_takeover, "movq $1, -8(%rsp)\n" SYSCALL(SYS_fork)
     "test %rax, %rax\n jnz 1f\n" EXIT_WITH(0)
     "1: mov %rax, %rdi\n xor %esi, %esi\n" SYSCALL(SYS_wait)
     "movq $2, -8(%rsp)\n cmpq $2, -8(%rsp)\n jne 9f\n" EXIT_WITH(0) "9:" EXIT_WITH(1));

/*
 * The same, but the parent writes while the child still shares the page (the
 * child sleeps until the test ends its sleep, once the parent has written and
 * waits, then checks it still reads 1): one copy. Exit 0 when both saw their
 * own value. The sleep's length (4 s) only bounds a test that never ends it.
 */
BLOB(blob_copy, "movq $1, -8(%rsp)\n" SYSCALL(SYS_fork)
     "test %rax, %rax\n jnz 1f\n"
     "mov $4000000000, %edi\n" SYSCALL(SYS_sleep)
     "cmpq $1, -8(%rsp)\n jne 9f\n" EXIT_WITH(0)
     "1: movq $2, -8(%rsp)\n mov %rax, %rdi\n lea -16(%rsp), %rsi\n" SYSCALL(SYS_wait)
     "cmpl $0, -16(%rsp)\n jne 9f\n cmpq $2, -8(%rsp)\n jne 9f\n" EXIT_WITH(0)
     "9:" EXIT_WITH(1));

/* 1,000 times: fork, the child exits 0, the parent waits. Exit 0, or 1 at a failure. */
BLOB(blob_fork_cycles, "movq $1, -8(%rsp)\n mov $1000, %ebx\n"
     "1:" SYSCALL(SYS_fork)
     "test %rax, %rax\n jnz 2f\n" EXIT_WITH(0)
     "2: js 9f\n mov %rax, %rdi\n xor %esi, %esi\n" SYSCALL(SYS_wait)
     "test %rax, %rax\n js 9f\n dec %ebx\n jnz 1b\n" EXIT_WITH(0) "9:" EXIT_WITH(1));

/*
 * Touch a stack page, sleep 20 ms (the test takes frames away meanwhile and
 * ends the sleep: sched_end_sleep), fork: the child exits 0, the parent
 * waits and exits 100; a failed fork exits with -error after checking its
 * stack word is intact. The test thread runs on its CPU and does not block
 * until it has taken the frames, so the process cannot fork before.
 */
BLOB(blob_sleep_fork, "movq $7, -8(%rsp)\n mov $20000000, %edi\n" SYSCALL(SYS_sleep)
     SYSCALL(SYS_fork)
     "test %rax, %rax\n jnz 1f\n" EXIT_WITH(0)
     "1: js 2f\n mov %rax, %rdi\n xor %esi, %esi\n" SYSCALL(SYS_wait) EXIT_WITH(100)
     "2: cmpq $7, -8(%rsp)\n jne 9f\n movq $8, -8(%rsp)\n neg %rax\n mov %eax, %edi\n"
     SYSCALL(SYS_exit) "9:" EXIT_WITH(99));

static u64 frames(void)
{
	struct pmm_stats s;
	pmm_get_stats(&s);
	return s.free;
}

/* Spawn blob [b, e) and wait: 0 and its exit info, or an error. */
static int run(const u8 *b, const u8 *e, struct exit_info *x)
{
	int pid = proc_spawn_blob(b, (u64)(e - b), USER_PROGRAM_BASE, USER_STACK_TOP, STACK_PAGES,
				  "forker");
	if (pid < 0)
		return pid;
	return proc_wait(pid, x) == pid ? 0 : -E_CHILD;
}

/*
 * How long a watch logs: a long program (1,000 forks) takes seconds under
 * TCG, and the runner takes a silent boot for a hung one. Past this a hang
 * goes silent again, and the runner names the test.
 */
#define WATCH_LOG_S 60

/* A kernel thread's watch over a program the test waits for. */
struct watch {
	int pid;
	bool done; /* the test has reaped it */
};

/* A line each second of the guest clock until the test has reaped it, for WATCH_LOG_S at most. */
static int watch_fn(void *arg)
{
	struct watch *w = arg;
	for (u64 s = 1; s <= WATCH_LOG_S; s++) {
		sched_sleep_ns(NS_PER_SEC);
		if (__atomic_load_n(&w->done, __ATOMIC_ACQUIRE))
			break;
		ktest_log("process %d still runs after %llu s", w->pid, s);
	}
	return 0;
}

/* End a watch whose program is reaped: wake it from its sleep, reap it. */
static void watch_end(struct watch *w, int watcher)
{
	__atomic_store_n(&w->done, true, __ATOMIC_RELEASE);
	struct proc *p = proc_by_pid(watcher);
	while (__atomic_load_n(&p->state, __ATOMIC_ACQUIRE) != PROC_ZOMBIE && !sched_end_sleep(p))
		blob_wait_step(); /* it is logging: it sleeps again in a moment */
	struct exit_info x;
	/* Broken invariant, not a failed test: returning would leave it reading a dead stack frame. */
	if (proc_wait(watcher, &x) != watcher)
		panic("ktest: the watch thread %d could not be reaped", watcher);
}

/*
 * run(), with a watch thread's line each second while the test waits in
 * proc_wait as run() does (the watch wakes once a second: the program runs
 * as it would unwatched).
 */
static int run_watched(const u8 *b, const u8 *e, struct exit_info *x)
{
	int pid = proc_spawn_blob(b, (u64)(e - b), USER_PROGRAM_BASE, USER_STACK_TOP, STACK_PAGES,
				  "forker");
	if (pid < 0)
		return pid;
	struct watch w = {.pid = pid};
	int watcher = kthread_create("watch", watch_fn, &w);
	int got = proc_wait(pid, x);
	if (watcher > 0)
		watch_end(&w, watcher);
	return got == pid ? 0 : -E_CHILD;
}

/* Nothing shared, nothing reserved: what every test ends with. */
static bool cow_idle(void)
{
	struct cow_stats s;
	cow_get_stats(&s);
	return s.shared == 0 && s.reserved == 0 && s.table_pages == 0;
}

KTEST(cow, write_after_the_other_side_exited_takes_the_page_over)
{
	struct exit_info x;
	KASSERT_EQ(run(blob_takeover, blob_takeover_end, &x), 0); /* once: the scratch tables */
	struct cow_stats a, b;
	cow_get_stats(&a);
	u64 free0 = frames();
	KASSERT_EQ(run(blob_takeover, blob_takeover_end, &x), 0);
	cow_get_stats(&b);
	KASSERT(!x.killed);
	KASSERT_EQ(x.status, 0);
	KASSERT_EQ(b.copies - a.copies, 0);
	KASSERT_EQ(b.takeovers - a.takeovers, 1);
	KASSERT_EQ(frames(), free0);
	KASSERT(cow_idle());
}

/* The child of p, or NULL if it has none (or it is gone). */
static struct proc *child_of(const struct proc *p)
{
	for (int i = 1; i < NPROC; i++)
		if (proc_table[i].parent == p && proc_table[i].state != PROC_UNUSED)
			return &proc_table[i];
	return NULL;
}

KTEST(cow, write_while_shared_copies_once)
{
	struct exit_info x;
	struct cow_stats a, b;
	cow_get_stats(&a);
	u64 free0 = frames();
	int pid = proc_spawn_blob(blob_copy, (u64)(blob_copy_end - blob_copy), USER_PROGRAM_BASE,
				  USER_STACK_TOP, STACK_PAGES, "forker");
	KASSERT(pid > 0);
	/* The order the test is about: the parent has written (it waits now), the child sleeps. */
	struct proc *p = proc_by_pid(pid), *child = NULL;
	while (p->state != PROC_ZOMBIE &&
	       !(p->state == PROC_WAITING && (child = child_of(p)) && child->state == PROC_SLEEPING))
		blob_wait_step();
	KASSERT(child && sched_end_sleep(child));
	KASSERT_EQ(proc_wait(pid, &x), pid);
	cow_get_stats(&b);
	KASSERT(!x.killed);
	KASSERT_EQ(x.status, 0);
	KASSERT_EQ(b.copies - a.copies, 1);
	KASSERT_EQ(b.takeovers - a.takeovers, 0);
	KASSERT_EQ(frames(), free0);
	KASSERT(cow_idle());
}

KTEST(cow, no_leak_after_1000_fork_exit_wait)
{
	struct exit_info x;
	KASSERT_EQ(run(blob_takeover, blob_takeover_end, &x), 0);
	u64 free0 = frames();
	struct tlb_stats t0, t1;
	tlb_get_stats(&t0);
	u64 kicks0 = sched_kicks();
	KASSERT_EQ(run_watched(blob_fork_cycles, blob_fork_cycles_end, &x), 0);
	tlb_get_stats(&t1);
	/* What cross-CPU work 1,000 cycles cost (the figures of the SMP section in README). */
	ktest_log("%llu shootdown rounds (%llu flushing everything), %llu IPIs, %llu idle CPUs left "
		  "to flush, %llu kicks; %llu migrations",
		  t1.shootdowns - t0.shootdowns, t1.full - t0.full, t1.ipis - t0.ipis,
		  t1.idle_deferred - t0.idle_deferred, sched_kicks() - kicks0, x.migrations);
	KASSERT(!x.killed);
	KASSERT_EQ(x.status, 0);
	/*
	 * A cycle's last count ends by unmapping one leaf page of the count
	 * window, whose tables stay (cow.c): never a table round, which flushes
	 * everything and wakes every halted CPU. The few full rounds left are
	 * other work's (the program's own spawn). The kept tables cover the
	 * leaves of the first ~4 GiB of physical memory: the frames shared here
	 * lie there on every SMP machine of the matrix (128 MiB); with RAM above
	 * 4 GiB a leaf of another table could be unmapped, and this bound would
	 * have to count those rounds.
	 */
	KASSERT(t1.full - t0.full < 10);
	KASSERT_EQ(frames(), free0);
	KASSERT(cow_idle());
	KASSERT_EQ(proc_count(), 1);
}

KTEST(cow, fork_without_frames_fails_with_enomem_and_changes_nothing)
{
	struct exit_info x;
	KASSERT_EQ(run(blob_takeover, blob_takeover_end, &x), 0);
	u64 free0 = frames();
	int failures = 0, left;
	/* Leave 0, 1, 2... frames when fork runs, until it succeeds: every way it can run out. */
	for (left = 0; left < 64; left++) {
		int pid = proc_spawn_blob(blob_sleep_fork, (u64)(blob_sleep_fork_end - blob_sleep_fork),
					  USER_PROGRAM_BASE, USER_STACK_TOP, STACK_PAGES, "forker");
		KASSERT(pid > 0);
		/* Its stack page and tables come with its first store: let it reach its sleep. */
		struct proc *p = proc_by_pid(pid);
		while (p->state == PROC_RUNNABLE || p->state == PROC_RUNNING)
			sched_yield();
		KASSERT_EQ(p->state, PROC_SLEEPING);
		struct pmm_stats s;
		pmm_get_stats(&s);
		u64 take = s.free - s.reserved > (u64)left ? s.free - s.reserved - (u64)left : 0;
		KASSERT_EQ(pmm_reserve(take), 0);
		/* The frames are set aside: end its sleep rather than wait for the timer. */
		KASSERT(sched_end_sleep(p));
		int got = proc_wait(pid, &x);
		pmm_unreserve(take);
		KASSERT_EQ(got, pid);
		if (x.killed)
			ktest_log("with %d frames left: killed: %s", left, x.reason);
		KASSERT(!x.killed);
		KASSERT_EQ(frames(), free0);
		KASSERT(cow_idle());
		if (x.status == 100)
			break;
		KASSERT_EQ(x.status, E_NOMEM);
		failures++;
	}
	ktest_log("fork failed with -E_NOMEM with 0..%d frames left, succeeded with %d", left - 1,
		  left);
	KASSERT(failures > 0);
	KASSERT(left < 64);
}

/* Two full PTs of user pages: fork makes the child's without zeroing them. */
#define SPACE_PAGES (2 * TABLE_ENTRIES)
/* Physical addresses the pages map (never touched): 1 GiB apart, so counted in different leaves. */
#define FAKE_A 0x100000000ULL
#define FAKE_B 0x140000000ULL
/* More allocation sites than such a fork has. */
#define SPACE_MAX_SITES 64

static const u64 SPACE_BASE = INDICES_VA(TSLOT_FORK, 0, 0, 0);
static u64 space_ptes[SPACE_PAGES];

/* The PTE of page k of the region (current space). */
static u64 space_pte(u64 k)
{
	return leaf_of(SPACE_BASE + k * PAGE_SIZE, NULL);
}

/* Frames counted now, and frames reserved for copies. */
static void cow_now(u64 *shared, u64 *reserved)
{
	struct cow_stats s;
	cow_get_stats(&s);
	*shared = s.shared;
	*reserved = s.reserved;
}

/*
 * cow_fork_space of a space whose pages alternate between two leaves (a
 * leaf switch at every page) with each of its allocations failing in turn
 * (the child's tables, full PTs made unzeroed, the leaves, one made in the
 * middle of a PT): every failure is -E_NOMEM with the parent's PTEs, the
 * free and reserved counts and the counts as before; then it succeeds.
 */
KTEST(cow, fork_space_out_of_frames_at_every_allocation_changes_nothing)
{
	u64 free0 = free_frames(), shared0, reserved0;
	cow_now(&shared0, &reserved0);
	for (u64 k = 0; k < SPACE_PAGES; k++) {
		u64 pa = (k & 1 ? FAKE_B : FAKE_A) + (k / 2) * PAGE_SIZE;
		KASSERT_EQ(map_region(SPACE_BASE + k * PAGE_SIZE, pa, 1, VMM_USER | VMM_WRITE), 0);
		space_ptes[k] = space_pte(k);
	}
	u64 free1 = free_frames(), sites = 0;
	bool completed = false;
	pml4_t space = 0;
	for (u64 nth = 1; nth <= SPACE_MAX_SITES && !completed; nth++) {
		u64 injected0 = pmm_inject_failures();
		pmm_inject_fail_nth(nth);
		int r = cow_fork_space(&space);
		pmm_inject_off();
		completed = pmm_inject_failures() == injected0;
		if (completed) {
			KASSERT_EQ(r, 0);
			break;
		}
		sites++;
		KASSERT_EQ(r, -E_NOMEM);
		u64 shared, reserved;
		cow_now(&shared, &reserved);
		KASSERT_EQ(free_frames(), free1);
		KASSERT_EQ(shared, shared0);
		KASSERT_EQ(reserved, reserved0);
		u64 differ = 0;
		for (u64 k = 0; k < SPACE_PAGES; k++)
			differ += space_pte(k) != space_ptes[k];
		KASSERT_EQ(differ, 0);
	}
	KASSERT(completed);
	ktest_log("the fork failed at %llu allocation sites, then succeeded", sites);
	KASSERT(sites >= 4); /* the PML4, a PDPT, a PD, a PT, the leaves */
	/* Shared: read-only with PTE_COW in the parent, counted twice, a frame reserved each. */
	u64 shared, reserved, wrong = 0;
	cow_now(&shared, &reserved);
	KASSERT_EQ(shared, shared0 + SPACE_PAGES);
	KASSERT_EQ(reserved, reserved0 + SPACE_PAGES);
	for (u64 k = 0; k < SPACE_PAGES; k++)
		wrong += space_pte(k) != ((space_ptes[k] & ~PTE_W) | PTE_COW) ||
			 cow_count(pte_frame(space_ptes[k])) != 2;
	KASSERT_EQ(wrong, 0);
	/* The child's mappings go (the frames stay: the parent maps them), then the parent's. */
	KASSERT_EQ(drop_page_map(space, VMM_FREE_FRAMES), 0);
	cow_now(&shared, &reserved);
	KASSERT_EQ(shared, shared0);
	KASSERT_EQ(reserved, reserved0);
	KASSERT_EQ(unmap_region(SPACE_BASE, SPACE_PAGES, 0), 0);
	KASSERT(!pml4_present(TSLOT_FORK));
	KASSERT_EQ(free_frames(), free0);
	KASSERT(cow_idle());
}
