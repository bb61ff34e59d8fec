/*
 * The TLB shootdown and the memory manager's locks under concurrency
 * (issue 16 §2, §3). The CPUs run kernel work at once: CPU 0 is the test,
 * the others run a worker through smp_run (interrupts on, so they take the
 * shootdowns' IPIs). Workers never KASSERT: they record the first thing
 * that went wrong, and the test asserts after joining them. Every wait of
 * CPU 0 (which runs tests with interrupts off) serves the shootdowns aimed
 * at it (tlb_poll). Tests that need two CPUs skip on one.
 */
#include <cow.h>
#include <cpu.h>
#include <ktest.h>
#include <layout.h>
#include <paging.h>
#include <panic.h>
#include <percpu.h>
#include <pmm.h>
#include <smp.h>
#include <string.h>
#include <timer.h>
#include <tlb.h>
#include <trap.h>
#include <vmm.h>
#include "test_vmm_util.h"

/* Kernel-half test area: the upper half of the device slot (not demand-zero, unused). */
#define KAREA (MMIO_BASE + PML4_SLOT_SIZE / 2)
/* User-half test area: its own PML4 slot (test_vmm_util.h's slots stop at 115). */
#define TSLOT_TLB 120
/* A fake physical range map tests point pages at (never accessed). */
#define FAKE_PHYS 0x100000000ULL
/* How long CPU 0 waits for a worker (TCG on a loaded host can be slow). */
#define JOIN_MS 120000ULL
/* Sparse-range and gather tests: 1 GiB apart. */
#define GIB (1ULL << 30)

/* The one thing a worker saw go wrong (the first), for the test to report. */
struct failure {
	const char *what;
	u64 cpu, a, b;
};

static struct failure failed;

static void fail(u32 cpu, const char *what, u64 a, u64 b)
{
	const char *none = NULL;
	if (__atomic_compare_exchange_n(&failed.what, &none, what, false, __ATOMIC_SEQ_CST,
					__ATOMIC_SEQ_CST)) {
		failed.cpu = cpu;
		failed.a = a;
		failed.b = b;
	}
}

/* A deterministic per-CPU random stream (xorshift). */
static u64 rnd(u64 *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Wait with interrupts maybe off: serve shootdowns meanwhile. */
static void relax(void)
{
	tlb_poll();
	__builtin_ia32_pause();
}

/*
 * CPU 0, every PROGRESS_NS inside a long run: a line for the runner, whose
 * silence deadline would take four vCPUs on two loaded host cores for a hang.
 */
#define PROGRESS_NS NS_PER_SEC
static u64 progress_at;

static void progress(u32 round)
{
	u64 now = clock_ns();
	if (round == 0)
		progress_at = now + PROGRESS_NS;
	else if (now >= progress_at) {
		ktest_log("CPU 0 at round %u", round);
		progress_at = now + PROGRESS_NS;
	}
}

/* Wait until n CPUs have arrived at *count. */
static void barrier(u32 *count, u32 n)
{
	__atomic_add_fetch(count, 1, __ATOMIC_SEQ_CST);
	bool cpu0 = this_cpu()->cpu_id == 0;
	u64 next = clock_ns() + PROGRESS_NS;
	while (__atomic_load_n(count, __ATOMIC_SEQ_CST) < n) {
		relax();
		if (cpu0 && clock_ns() >= next) {
			ktest_log("CPU 0 waits for the others: %u of %u there", *count, n);
			next += PROGRESS_NS;
		}
	}
}

struct job {
	void (*fn)(u32 cpu, void *ctx);
	void *ctx;
	u32 cpu;
};

static void job_run(void *arg)
{
	struct job *j = arg;
	j->fn(j->cpu, j->ctx);
}

/* Wait for CPU c's smp_run work, up to JOIN_MS, with a line every second for the runner. */
static int join(u32 c)
{
	int err = -E_TIMEDOUT;
	for (u64 waited = 0; err == -E_TIMEDOUT && waited < JOIN_MS; waited += PROGRESS_NS / NS_PER_MS) {
		err = smp_run_wait(c, PROGRESS_NS / NS_PER_MS);
		if (err == -E_TIMEDOUT)
			ktest_log("CPU 0 waits for CPU %u to finish", c);
	}
	return err;
}

/* Join every AP: 0, or the first error. */
static int join_all(void)
{
	int err = 0;
	for (u32 c = 1; c < smp_cpu_count(); c++) {
		int e = join(c);
		err = err ? err : e;
	}
	return err;
}

/* Run fn(cpu, ctx) on every CPU up at once (CPU 0 here); 0, or the first join error. */
static int run_on_all(void (*fn)(u32 cpu, void *ctx), void *ctx)
{
	static struct job jobs[MAX_CPUS];
	u32 n = smp_cpu_count();
	for (u32 c = 1; c < n; c++) {
		jobs[c] = (struct job){fn, ctx, c};
		int err = smp_run(c, job_run, &jobs[c]);
		if (err)
			return err;
	}
	fn(0, ctx);
	return join_all();
}

#define NEED_CPUS(n)                                                    \
	do {                                                            \
		if (smp_cpu_count() < (n))                              \
			KTEST_SKIP("needs " #n " CPUs (smp2, smp4)");   \
		failed = (struct failure){0};                           \
	} while (0)

/* Report the workers' first failure, if any. */
#define KASSERT_NO_FAILURE()                                                            \
	do {                                                                            \
		if (failed.what)                                                        \
			ktest_log("CPU %llu: %s (0x%llx, 0x%llx)", failed.cpu, failed.what, \
				  failed.a, failed.b);                                  \
		KASSERT(failed.what == NULL);                                           \
	} while (0)

/* ---- the stale read ---- */

#define OLD_WORD 0x01d01d01d01d01d0ULL
#define NEW_WORD 0x4e574e574e574e57ULL
#define NO_VALUE 0xfafafafafafafafaULL /* what the read leaves when it faulted */

struct stale {
	volatile u64 *page;
	u64 reads, new_seen, other_seen;
	bool stop, stopped;
	struct trap_record fault;
};

/*
 * Read the word at `at` under trap_expect(VEC_PF) and count it in s (the
 * new word, or one neither old nor new); false if the read faulted (it
 * resumed at the fixup).
 */
static inline bool stale_read(struct stale *s, volatile u64 *at)
{
	u64 v = NO_VALUE;
	__asm__ volatile(TRAP_FIXUP_SITE("movq (%1), %0") : "+r"(v) : "r"(at) : TRAP_FIXUP_CLOBBERS);
	if (v == NO_VALUE)
		return false;
	if (v == NEW_WORD)
		s->new_seen++;
	else if (v != OLD_WORD)
		s->other_seen++;
	return true;
}

/* CPU 1: read the page until it faults (or CPU 0 says stop); never through a stale entry. */
static void stale_reader(void *arg)
{
	struct stale *s = arg;
	trap_expect(VEC_PF);
	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		if (!stale_read(s, s->page))
			break;
		__atomic_store_n(&s->reads, s->reads + 1, __ATOMIC_RELEASE);
	}
	s->fault = trap_expect_end();
	__atomic_store_n(&s->stopped, true, __ATOMIC_RELEASE);
}

/*
 * Wait until the reader has made `reads` reads or stopped (faulted), for at
 * most 20 s: a vCPU thread may wait long for its turn on a loaded host. A
 * line every second, for the runner's silence deadline.
 */
static void wait_reads(struct stale *s, u64 reads)
{
	u64 start = clock_ns(), next = start + PROGRESS_NS;
	while (__atomic_load_n(&s->reads, __ATOMIC_ACQUIRE) < reads &&
	       !__atomic_load_n(&s->stopped, __ATOMIC_ACQUIRE) && clock_ns() - start < 20 * NS_PER_SEC) {
		relax();
		if (clock_ns() >= next) {
			ktest_log("waiting for CPU 1: %llu reads", s->reads);
			next += PROGRESS_NS;
		}
	}
}

/*
 * One run: CPU 1 reads KAREA while CPU 0 unmaps it and maps its frame
 * elsewhere with new content. Returns what the reader saw in *s.
 */
/* Map frame at KAREA holding OLD_WORD and start CPU 1 reading it into *s: 0 or the error. */
static int stale_reader_start(struct stale *s, u64 frame)
{
	int err = map_region(KAREA, frame, 1, VMM_WRITE);
	if (err)
		return err;
	*(volatile u64 *)KAREA = OLD_WORD;
	*s = (struct stale){.page = (volatile u64 *)KAREA};
	return smp_run(1, stale_reader, s);
}

static int stale_run(struct stale *s, u64 *frame_out)
{
	u64 frame;
	if (pmm_alloc(&frame) != 0)
		return -E_NOMEM;
	*frame_out = frame;
	volatile u64 *again = (volatile u64 *)(KAREA + PAGE_SIZE);
	int err = stale_reader_start(s, frame);
	if (err)
		return err;
	/* Let it read a while: its TLB holds the entry now. */
	wait_reads(s, 2000);
	MUST(unmap_region(KAREA, 1, 0) == 0);
	/* The frame reused: new content through another mapping. */
	MUST(map_region(KAREA + PAGE_SIZE, frame, 1, VMM_WRITE) == 0);
	*again = NEW_WORD;
	/* Give a reader that missed the shootdown time to read the new content. */
	wait_reads(s, __atomic_load_n(&s->reads, __ATOMIC_ACQUIRE) + 20000);
	__atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
	return join(1);
}

static void flush_here(void *arg)
{
	(void)arg;
	load_cr3(read_cr3());
}

KTEST(tlb, stale_read_faults)
{
	NEED_CPUS(2);
	struct stale s;
	u64 frame = 0;
	int err = stale_run(&s, &frame);
	MUST(unmap_region(KAREA + PAGE_SIZE, 1, 0) == 0);
	MUST(pmm_free(frame) == 0);
	KASSERT_EQ(err, 0);
	ktest_log("CPU 1 read %llu times, then: fault %s at 0x%llx", s.reads,
		  s.fault.hit ? "taken" : "NOT taken", s.fault.cr2);
	KASSERT(s.reads >= 1);
	KASSERT_EQ(s.new_seen, 0);
	KASSERT_EQ(s.other_seen, 0);
	KASSERT(s.fault.hit);
	KASSERT_EQ(s.fault.vector, VEC_PF);
	KASSERT_EQ(s.fault.cr2, KAREA);
	KASSERT_EQ(s.fault.error_code & PF_ERR_P, 0);
}

/*
 * The same run with the remote invalidation suppressed (tlb_test_skip_remote):
 * the broken kernel the test above must catch. CPU 1 keeps its stale entry
 * and reads the frame's new content; this shows the stale-read test can fail.
 */
KTEST(tlb, stale_read_seen_without_shootdown)
{
	NEED_CPUS(2);
	struct stale s;
	u64 frame = 0;
	tlb_test_skip_remote = true;
	int err = stale_run(&s, &frame);
	tlb_test_skip_remote = false;
	/* CPU 1 still holds the stale entry: drop it before the frame goes back. */
	MUST(smp_call(1, flush_here, NULL) == 0);
	MUST(unmap_region(KAREA + PAGE_SIZE, 1, 0) == 0);
	MUST(pmm_free(frame) == 0);
	KASSERT_EQ(err, 0);
	ktest_log("without the shootdown CPU 1 read the new content %llu times (fault %s)",
		  s.new_seen, s.fault.hit ? "taken" : "not taken");
	KASSERT(s.new_seen > 0);
	KASSERT(!s.fault.hit);
}

/* ---- lazy TLB: an idle CPU is left out and flushes on leaving idle ---- */

/* Wait until CPU c halts lazily in its idle loop (tlb_cpu_lazy), for at most 20 s. */
static bool wait_lazy(u32 c)
{
	u64 start = clock_ns();
	while (!tlb_cpu_lazy(c))
		if (clock_ns() - start >= 20 * NS_PER_SEC)
			return false;
		else
			relax();
	return true;
}

/*
 * CPU 1 reads KAREA (its TLB holds the entry) and goes idle; CPU 0 unmaps
 * KAREA while every other CPU is idle (no IPI: each is left to flush) and
 * maps the frame elsewhere with new content; then CPU 1 reads KAREA again.
 * Tries until the unmap found every other CPU idle (*deferred), at most 20 times.
 */
static int idle_stale_rounds(struct stale *s, u64 frame, bool *deferred)
{
	volatile u64 *page = (volatile u64 *)KAREA, *again = (volatile u64 *)(KAREA + PAGE_SIZE);
	u32 others = smp_cpu_count() - 1;
	*deferred = false;
	for (int attempt = 0; attempt < 20 && !*deferred; attempt++) {
		int err = stale_reader_start(s, frame);
		if (err)
			return err;
		wait_reads(s, 200);
		__atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
		if ((err = join(1)) != 0)
			return err;
		if (s->reads == 0)
			return -E_FAULT;
		for (u32 c = 1; c <= others; c++)
			if (!wait_lazy(c))
				return -E_TIMEDOUT;
		struct tlb_stats t0, t1;
		tlb_get_stats(&t0);
		MUST(unmap_region(KAREA, 1, 0) == 0);
		tlb_get_stats(&t1);
		*deferred = t1.ipis == t0.ipis && t1.idle_deferred - t0.idle_deferred == others;
		MUST(map_region(KAREA + PAGE_SIZE, frame, 1, VMM_WRITE) == 0);
		*again = NEW_WORD;
		if (!*deferred) /* a CPU woke in between and took an IPI: again */
			MUST(unmap_region(KAREA + PAGE_SIZE, 1, 0) == 0);
	}
	if (!*deferred)
		return 0;
	/* CPU 1 leaves idle to run this: it must fault, never read through its old entry. */
	*s = (struct stale){.page = page};
	int err = smp_run(1, stale_reader, s);
	if (err)
		return err;
	wait_reads(s, 2000);
	__atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
	err = join(1);
	MUST(unmap_region(KAREA + PAGE_SIZE, 1, 0) == 0);
	return err;
}

/* A page that keeps KAREA's PT while the run unmaps: its freeing would be a round that asks idle CPUs too. */
#define KAREA_PIN (KAREA + 32 * PAGE_SIZE)

/* idle_stale_rounds with KAREA's page table kept (only PTEs change: idle CPUs may be left out). */
static int idle_stale_run(struct stale *s, u64 frame, bool *deferred)
{
	u64 pin;
	int err = pmm_alloc(&pin);
	if (err)
		return err;
	if ((err = map_region(KAREA_PIN, pin, 1, VMM_WRITE)) != 0) {
		MUST(pmm_free(pin) == 0);
		return err;
	}
	err = idle_stale_rounds(s, frame, deferred);
	MUST(unmap_region(KAREA_PIN, 1, VMM_FREE_FRAMES) == 0);
	return err;
}

KTEST(tlb, idle_cpu_left_out_flushes_before_it_runs)
{
	NEED_CPUS(2);
	struct stale s;
	u64 frame;
	bool deferred;
	KASSERT_EQ(pmm_alloc(&frame), 0);
	int err = idle_stale_run(&s, frame, &deferred);
	MUST(pmm_free(frame) == 0);
	KASSERT_EQ(err, 0);
	ktest_log("the unmap %s every other CPU idle; CPU 1 then read %llu times, fault %s",
		  deferred ? "found" : "never found", s.reads, s.fault.hit ? "taken" : "NOT taken");
	KASSERT(deferred);
	KASSERT_EQ(s.new_seen, 0);
	KASSERT_EQ(s.other_seen, 0);
	KASSERT(s.fault.hit);
	KASSERT_EQ(s.fault.cr2, KAREA);
}

/*
 * The same with the flush on leaving idle suppressed (tlb_test_skip_idle_flush):
 * the broken lazy TLB the test above must catch. CPU 1 reads the frame's
 * new content through the entry it kept.
 */
KTEST(tlb, idle_cpu_stale_without_flush_on_wake)
{
	NEED_CPUS(2);
	struct stale s;
	u64 frame;
	bool deferred;
	KASSERT_EQ(pmm_alloc(&frame), 0);
	tlb_test_skip_idle_flush = true;
	int err = idle_stale_run(&s, frame, &deferred);
	tlb_test_skip_idle_flush = false;
	/* CPU 1 may still hold the stale entry: drop it before the frame goes back. */
	MUST(smp_call(1, flush_here, NULL) == 0);
	MUST(pmm_free(frame) == 0);
	KASSERT_EQ(err, 0);
	ktest_log("without the flush on leaving idle CPU 1 read the new content %llu times (fault %s)",
		  s.new_seen, s.fault.hit ? "taken" : "not taken");
	KASSERT(deferred);
	KASSERT(s.new_seen > 0);
	KASSERT(!s.fault.hit);
}

/* ---- who is asked, and how often ---- */

KTEST(tlb, space_mask_follows_switches)
{
	pml4_t boot = current_page_map(), space;
	u32 me = 1u << this_cpu()->cpu_id;
	KASSERT(tlb_space_cpus(boot) & me);
	KASSERT_EQ(new_page_map(&space), 0);
	KASSERT_EQ(tlb_space_cpus(space), 0);
	switch_page_map(space);
	u32 in_new = tlb_space_cpus(space), in_boot = tlb_space_cpus(boot);
	switch_page_map(boot);
	KASSERT_EQ(in_new, me);
	KASSERT_EQ(in_boot & me, 0);
	KASSERT_EQ(tlb_space_cpus(space), 0);
	KASSERT(tlb_space_cpus(boot) & me);
	/* The APs idle in the boot space. */
	for (u32 c = 1; c < smp_cpu_count(); c++)
		KASSERT(tlb_space_cpus(boot) & (1u << c));
	KASSERT_EQ(drop_page_map(space, 0), 0);
}

/* An AP switches to `space`, then back to the boot space when told. */
struct visit {
	pml4_t space, boot;
	bool there, leave;
};

static void visit_space(void *arg)
{
	struct visit *v = arg;
	switch_page_map(v->space);
	__atomic_store_n(&v->there, true, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&v->leave, __ATOMIC_ACQUIRE))
		__builtin_ia32_pause();
	switch_page_map(v->boot);
}

KTEST(tlb, ipis_per_operation)
{
	NEED_CPUS(2);
	u32 others = smp_cpu_count() - 1;
	struct tlb_stats s0, s1;
	KASSERT_EQ(map_region(KAREA, FAKE_PHYS, 64, VMM_WRITE), 0);
	/* One kernel page: every other CPU, once, page by page. */
	tlb_get_stats(&s0);
	KASSERT_EQ(unmap_region(KAREA, 1, 0), 0);
	tlb_get_stats(&s1);
	KASSERT_EQ(s1.shootdowns - s0.shootdowns, 1);
	/* Each by an IPI, or left to flush on leaving idle (lazy TLB: tlb.c). */
	KASSERT_EQ(s1.ipis - s0.ipis + s1.idle_deferred - s0.idle_deferred, others);
	KASSERT_EQ(s1.full - s0.full, 0);
	/* 63 pages: still one round, now a full flush (above TLB_FLUSH_CEILING). */
	KASSERT_EQ(unmap_region(KAREA + PAGE_SIZE, 63, 0), 0);
	tlb_get_stats(&s0);
	KASSERT_EQ(s0.shootdowns - s1.shootdowns, 1);
	KASSERT_EQ(s0.ipis - s1.ipis + s0.idle_deferred - s1.idle_deferred, others);
	KASSERT_EQ(s0.full - s1.full, 1);
	/* Nothing mapped: nothing changed, nobody asked. */
	KASSERT_EQ(unmap_region(KAREA, 64, 0), 0);
	tlb_get_stats(&s1);
	KASSERT_EQ(s1.ipis - s0.ipis, 0);
	/* A user page of a space only this CPU has loaded: nobody else asked. */
	pml4_t boot = current_page_map(), space;
	KASSERT_EQ(new_page_map(&space), 0);
	switch_page_map(space);
	int e1 = map_region(tslot(TSLOT_TLB), FAKE_PHYS, 1, VMM_WRITE | VMM_USER);
	tlb_get_stats(&s0);
	int e2 = unmap_region(tslot(TSLOT_TLB), 1, 0);
	tlb_get_stats(&s1);
	switch_page_map(boot);
	KASSERT_EQ(e1, 0);
	KASSERT_EQ(e2, 0);
	KASSERT_EQ(s1.ipis - s0.ipis, 0);
	/* The same with CPU 1 in that space too: it alone is asked. */
	struct visit v = {.space = space, .boot = boot};
	switch_page_map(space);
	e1 = map_region(tslot(TSLOT_TLB), FAKE_PHYS, 1, VMM_WRITE | VMM_USER);
	KASSERT_EQ(smp_run(1, visit_space, &v), 0);
	while (!__atomic_load_n(&v.there, __ATOMIC_ACQUIRE))
		relax();
	tlb_get_stats(&s0);
	e2 = unmap_region(tslot(TSLOT_TLB), 1, 0);
	tlb_get_stats(&s1);
	__atomic_store_n(&v.leave, true, __ATOMIC_RELEASE);
	int joined = join(1);
	switch_page_map(boot);
	KASSERT_EQ(e1, 0);
	KASSERT_EQ(e2, 0);
	KASSERT_EQ(joined, 0);
	KASSERT_EQ(s1.ipis - s0.ipis, 1);
	KASSERT_EQ(drop_page_map(space, 0), 0);
	KASSERT_EQ(this_cpu()->tlb_open, 0);
}

/*
 * The ceiling bounds a batch's whole span, not each range added: two small
 * ranges 1 GiB apart, or a range ending at 2^64 (its end wraps to 0), ask a
 * full flush; two ranges within the ceiling do not.
 */
KTEST(tlb, batch_ceiling_bounds_the_whole_span)
{
	NEED_CPUS(2);
	struct tlb_batch b;
	tlb_batch_begin(&b, TLB_KERNEL);
	tlb_batch_add(&b, KAREA, PAGE_SIZE);
	tlb_batch_add(&b, KAREA + 10 * PAGE_SIZE, 2 * PAGE_SIZE);
	u32 near = b.state & TLB_BATCH_FULL;
	tlb_batch_add(&b, KAREA + GIB, PAGE_SIZE);
	u32 far = b.state & TLB_BATCH_FULL;
	tlb_batch_finish(&b);
	tlb_batch_begin(&b, TLB_KERNEL);
	tlb_batch_add(&b, ~0ULL - PAGE_SIZE + 1, PAGE_SIZE);
	u32 wrap = b.state & TLB_BATCH_FULL;
	tlb_batch_finish(&b);
	KASSERT_EQ(near, 0);
	KASSERT(far != 0);
	KASSERT(wrap != 0);
}

/*
 * An unmap over a large sparse range (the last page of one page table and
 * the first of another 1 GiB on, each table keeping a page, so none is
 * freed, and each table's part of the range one page) is one round and a
 * full flush: before the fix it asked every other CPU for about 2^18 invlpg.
 */
KTEST(tlb, sparse_unmap_is_one_full_round)
{
	NEED_CPUS(2);
	struct tlb_stats s0, s1;
	/* The last two pages of one page table, the first two of one 1 GiB on. */
	u64 lo = KAREA + TABLE_ENTRIES * PAGE_SIZE - 2 * PAGE_SIZE, hi = KAREA + GIB;
	KASSERT_EQ(map_region(lo, FAKE_PHYS, 2, VMM_WRITE), 0);
	KASSERT_EQ(map_region(hi, FAKE_PHYS, 2, VMM_WRITE), 0);
	tlb_get_stats(&s0);
	int err = unmap_region(lo + PAGE_SIZE, (hi - lo) / PAGE_SIZE, 0); /* [lo + 1 page, hi + 1 page) */
	tlb_get_stats(&s1);
	KASSERT_EQ(unmap_region(lo, 1, 0), 0);
	KASSERT_EQ(unmap_region(hi + PAGE_SIZE, 1, 0), 0);
	KASSERT_EQ(err, 0);
	KASSERT_EQ(s1.shootdowns - s0.shootdowns, 1);
	KASSERT_EQ(s1.full - s0.full, 1);
}

/* ---- freed frames wait for the shootdown (the gather) ---- */

#define GATHER_PAGES 48 /* one early round of TLB_GATHER_FRAMES, then the finish's; fits TCG's TLB */
/* CPU 1 serves shootdowns only every this many reads: it reads on after a round was asked. */
#define GATHER_ACK_EVERY 65536
/* The fill's frames, mapped after the freed area. */
#define GATHER_FILL (KAREA + 2 * GIB)

struct gather {
	struct stale s;
	u64 free_before; /* the PMM's free frames just before the unmap (0: not yet) */
	u64 reached;     /* reads CPU 1 made after the PMM had more free frames than that */
};

static struct gather gather;

/*
 * CPU 1: read the first word of each page of the area in turn until a read
 * faults, with interrupts off, serving shootdowns only every
 * GATHER_ACK_EVERY reads (a slow acknowledger). Before each read it looks
 * at the PMM's free count: more free frames than before the unmap, and the
 * read after still succeeds, is the defect (`reached`): a frame of the area
 * was the PMM's to hand out (and write) while this CPU still reached it.
 * (Taking frames here would not do: a marked frame's invlpg makes TCG drop
 * this vCPU's whole TLB, the stale entries with it.)
 */
static void gather_reader(void *arg)
{
	struct gather *g = arg;
	struct stale *s = &g->s;
	cli();
	trap_expect(VEC_PF);
	for (u64 n = 0; !__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE); n++) {
		volatile u64 *at = s->page + (n % GATHER_PAGES) * (PAGE_SIZE / sizeof(u64));
		u64 before = __atomic_load_n(&g->free_before, __ATOMIC_ACQUIRE);
		bool freed = before && free_frames() > before;
		if (!stale_read(s, at))
			break;
		if (freed)
			g->reached++;
		__atomic_store_n(&s->reads, n + 1, __ATOMIC_RELEASE);
		if ((n + 1) % GATHER_ACK_EVERY == 0)
			tlb_poll();
	}
	s->fault = trap_expect_end();
	__asm__ volatile("sti" : : : "memory"); /* smp_run runs fn with interrupts on */
	__atomic_store_n(&s->stopped, true, __ATOMIC_RELEASE);
}

/*
 * CPU 1 reads the area (gather_reader) while CPU 0 unmaps it with
 * VMM_FREE_FRAMES, then takes frames from the PMM and fills them. Returns
 * the early rounds of the unmap in *early.
 */
static int gather_run(struct gather *g, u64 *early)
{
	*g = (struct gather){.s = {.page = (volatile u64 *)KAREA}};
	for (u64 i = 0; i < GATHER_PAGES; i++) {
		u64 frame;
		if (pmm_alloc(&frame) != 0)
			return -E_NOMEM;
		MUST(map_region(KAREA + i * PAGE_SIZE, frame, 1, VMM_WRITE) == 0);
		*(volatile u64 *)(KAREA + i * PAGE_SIZE) = OLD_WORD;
	}
	int err = smp_run(1, gather_reader, g);
	if (err)
		return err;
	wait_reads(&g->s, 2000);
	struct tlb_stats t0, t1;
	tlb_get_stats(&t0);
	__atomic_store_n(&g->free_before, free_frames(), __ATOMIC_RELEASE);
	MUST(unmap_region(KAREA, GATHER_PAGES, VMM_FREE_FRAMES) == 0);
	tlb_get_stats(&t1);
	*early = t1.early - t0.early;
	/* The frames reused at once: new content. */
	u64 filled = 0;
	for (; filled < GATHER_PAGES; filled++) {
		u64 frame, va = GATHER_FILL + filled * PAGE_SIZE;
		if (pmm_alloc(&frame) != 0)
			break;
		MUST(map_region(va, frame, 1, VMM_WRITE) == 0);
		for (u64 w = 0; w < PAGE_SIZE / sizeof(u64); w++)
			((volatile u64 *)va)[w] = NEW_WORD;
	}
	wait_reads(&g->s, __atomic_load_n(&g->s.reads, __ATOMIC_ACQUIRE) + 20000);
	__atomic_store_n(&g->s.stop, true, __ATOMIC_RELEASE);
	err = join(1);
	if (filled)
		MUST(unmap_region(GATHER_FILL, filled, VMM_FREE_FRAMES) == 0);
	return err;
}

KTEST(tlb, freed_frames_wait_for_the_shootdown)
{
	NEED_CPUS(2);
	u64 free0 = free_frames(), early = 0;
	int err = gather_run(&gather, &early);
	KASSERT_EQ(err, 0);
	struct stale *s = &gather.s;
	ktest_log("CPU 1 read %llu times, %llu after frames of the area were free, then: fault %s at "
		  "0x%llx; %llu early round(s)",
		  s->reads, gather.reached, s->fault.hit ? "taken" : "NOT taken", s->fault.cr2, early);
	KASSERT(s->reads >= 1);
	KASSERT_EQ(gather.reached, 0);
	KASSERT_EQ(s->new_seen, 0);
	KASSERT_EQ(s->other_seen, 0);
	KASSERT(s->fault.hit);
	KASSERT(s->fault.cr2 >= KAREA && s->fault.cr2 < KAREA + GATHER_PAGES * PAGE_SIZE);
	KASSERT_EQ(early, 1); /* 48 frames: 32 after an early round, 16 (and the PT) at the finish */
	KASSERT_EQ(free_frames(), free0);
}

/*
 * The same run with each frame freed at once (tlb_test_free_at_once: the
 * kernel before the gather): the area's frames are free in the PMM while
 * CPU 1 still reads the area through its stale entries.
 */
KTEST(tlb, freed_frame_reached_without_gather)
{
	NEED_CPUS(2);
	u64 free0 = free_frames(), early = 0;
	tlb_test_free_at_once = true;
	int err = gather_run(&gather, &early);
	tlb_test_free_at_once = false;
	KASSERT_EQ(err, 0);
	ktest_log("freed at once: CPU 1 read %llu times, %llu after frames of the area were free, then: "
		  "fault %s at 0x%llx",
		  gather.s.reads, gather.reached, gather.s.fault.hit ? "taken" : "NOT taken",
		  gather.s.fault.cr2);
	KASSERT(gather.reached > 0);
	KASSERT_EQ(free_frames(), free0);
}

/* ---- concurrent map/unmap with a model ---- */

#define MODEL_PAGES 256
#define MODEL_ROUNDS 200 /* operations per CPU */
#define NOBODY 0xFFu

struct model_run {
	u64 base;      /* first page of the area */
	u32 flags;     /* VMM_WRITE, | VMM_USER in the user half */
	bool overlap;  /* all CPUs share one area (else each its own MODEL_PAGES) */
	u32 rounds;
	u8 owner[MAX_CPUS * MODEL_PAGES]; /* who mapped each page (NOBODY) */
	u32 start;
	u64 maps, refusals;
};

/* The fake frame CPU c maps at page index i (distinct per CPU and page). */
static u64 model_phys(u32 c, u64 i)
{
	return FAKE_PHYS + ((u64)c * MAX_CPUS * MODEL_PAGES + i) * PAGE_SIZE;
}

/* Unmap CPU c's pages among [i, i + n), run by run. */
static void model_unmap_own(struct model_run *m, u32 c, u64 i, u64 n)
{
	u64 k = i;
	while (k < i + n) {
		if (m->owner[k] != c) {
			k++;
			continue;
		}
		u64 run = k;
		while (run < i + n && m->owner[run] == c)
			m->owner[run++] = NOBODY; /* before the unmap: nobody else maps a present page */
		int err = unmap_region(m->base + k * PAGE_SIZE, run - k, 0);
		if (err)
			fail(c, "unmap_region of own pages failed", k, (u64)err);
		k = run;
	}
}

static void model_worker(u32 c, void *ctx)
{
	struct model_run *m = ctx;
	u64 seed = 0x9E3779B97F4A7C15ULL * (c + 1);
	u64 first = m->overlap ? 0 : (u64)c * MODEL_PAGES;
	barrier(&m->start, smp_cpu_count());
	for (u32 r = 0; r < m->rounds && !failed.what; r++) {
		if (c == 0)
			progress(r);
		u64 i = first + rnd(&seed) % MODEL_PAGES;
		u64 n = 1 + rnd(&seed) % 8;
		if (i + n > first + MODEL_PAGES)
			n = first + MODEL_PAGES - i;
		if (rnd(&seed) & 1) {
			int err = map_region(m->base + i * PAGE_SIZE, model_phys(c, i), n, m->flags);
			if (err == 0) {
				for (u64 k = i; k < i + n; k++) {
					if (m->owner[k] != NOBODY)
						fail(c, "map_region mapped over a page the model says is mapped", k, m->owner[k]);
					m->owner[k] = (u8)c;
				}
				__atomic_fetch_add(&m->maps, 1, __ATOMIC_RELAXED);
			} else if (err == -E_EXIST) {
				/* Distinct areas: only a page of our own can be in the way. */
				bool own = false;
				for (u64 k = i; k < i + n; k++)
					own |= m->owner[k] == c;
				if (!m->overlap && !own)
					fail(c, "map_region found a page mapped the model does not know", i, n);
				__atomic_fetch_add(&m->refusals, 1, __ATOMIC_RELAXED);
			} else {
				fail(c, "map_region failed", i, (u64)err);
			}
		} else {
			model_unmap_own(m, c, i, n);
		}
		/* Our own pages read back as we mapped them. */
		u64 k = first + rnd(&seed) % MODEL_PAGES, pa;
		if (m->owner[k] == c &&
		    (virt_to_phys(m->base + k * PAGE_SIZE, &pa) != 0 || pa != model_phys(c, k)))
			fail(c, "an own page does not map to its frame", k, pa);
	}
	/* Leave nothing: every page this CPU holds goes. */
	model_unmap_own(m, c, first, MODEL_PAGES);
}

/* After a run: every page of the area unmapped, as the model says (and no table left). */
static u64 model_leftovers(const struct model_run *m, u64 pages)
{
	u64 bad = 0, pa;
	for (u64 k = 0; k < pages; k++)
		if (m->owner[k] != NOBODY || virt_to_phys(m->base + k * PAGE_SIZE, &pa) == 0)
			bad++;
	return bad;
}

static struct model_run model;

/* A model run on `base` (kernel or user half), distinct or overlapping areas. */
static int model_check(u64 base, u32 flags, bool overlap, u32 rounds)
{
	model = (struct model_run){.base = base, .flags = flags, .overlap = overlap, .rounds = rounds};
	memset(model.owner, NOBODY, sizeof(model.owner));
	return run_on_all(model_worker, &model);
}

KTEST(tlb, concurrent_map_unmap_distinct_kernel)
{
	NEED_CPUS(2);
	u64 free0 = free_frames();
	KASSERT_EQ(model_check(KAREA, VMM_WRITE, false, MODEL_ROUNDS), 0);
	KASSERT_NO_FAILURE();
	ktest_log("%llu maps on %u CPUs", model.maps, smp_cpu_count());
	KASSERT_EQ(model_leftovers(&model, MAX_CPUS * MODEL_PAGES), 0);
	KASSERT_EQ(free_frames(), free0);
}

KTEST(tlb, concurrent_map_unmap_overlapping_kernel)
{
	NEED_CPUS(2);
	u64 free0 = free_frames();
	KASSERT_EQ(model_check(KAREA, VMM_WRITE, true, MODEL_ROUNDS), 0);
	KASSERT_NO_FAILURE();
	ktest_log("%llu maps, %llu refused (-E_EXIST) on %u CPUs", model.maps, model.refusals,
		  smp_cpu_count());
	KASSERT(model.refusals > 0); /* they did overlap */
	KASSERT_EQ(model_leftovers(&model, MODEL_PAGES), 0);
	KASSERT_EQ(free_frames(), free0);
}

KTEST(tlb, concurrent_map_unmap_overlapping_user)
{
	NEED_CPUS(2);
	u64 free0 = free_frames();
	KASSERT_EQ(model_check(tslot(TSLOT_TLB), VMM_WRITE | VMM_USER, true, MODEL_ROUNDS), 0);
	KASSERT_NO_FAILURE();
	ktest_log("%llu maps, %llu refused (-E_EXIST)", model.maps, model.refusals);
	KASSERT_EQ(model_leftovers(&model, MODEL_PAGES), 0);
	KASSERT(!pml4_present(TSLOT_TLB));
	KASSERT_EQ(free_frames(), free0);
}

/* ---- the PMM from every CPU ---- */

#define PMM_HOLD 1500 /* frames a CPU holds at most: several stack pages of churn each */

struct pmm_run {
	u64 held[MAX_CPUS][PMM_HOLD];
	u64 count[MAX_CPUS];
	u32 start, checked, go_on;
	u32 rounds;
};

static struct pmm_run pmm_run;

static void pmm_worker(u32 c, void *ctx)
{
	struct pmm_run *p = ctx;
	u64 seed = 0xC0FFEE + c, n = 0, *held = p->held[c];
	barrier(&p->start, smp_cpu_count());
	for (u32 r = 0; r < p->rounds && !failed.what; r++) {
		/* Grow to a random size, then shrink to another: stack pages come and go. */
		u64 want = rnd(&seed) % PMM_HOLD;
		while (n < want) {
			if (pmm_alloc(&held[n]) != 0) {
				fail(c, "pmm_alloc failed", n, 0);
				break;
			}
			n++;
		}
		want = rnd(&seed) % (n + 1);
		while (n > want) {
			int err = pmm_free(held[--n]);
			if (err)
				fail(c, "pmm_free refused a frame it gave", held[n], (u64)err);
		}
	}
	/* Hold a full set while CPU 0 checks that no frame was handed out twice. */
	while (n < PMM_HOLD && pmm_alloc(&held[n]) == 0)
		n++;
	p->count[c] = n;
	barrier(&p->checked, smp_cpu_count());
	while (!__atomic_load_n(&p->go_on, __ATOMIC_ACQUIRE))
		relax();
	while (n)
		if (pmm_free(held[--n]) != 0)
			fail(c, "pmm_free at the end", held[n], 0);
}

/* Frames found twice among every CPU's held ones (gathered into all[cap], Shell-sorted). */
static u64 frames_held_twice(struct pmm_run *p, u64 *all, u64 cap)
{
	u64 n = 0, dups = 0;
	for (u32 c = 0; c < smp_cpu_count(); c++)
		for (u64 i = 0; i < p->count[c] && n < cap; i++)
			all[n++] = p->held[c][i];
	for (u64 gap = n / 2; gap; gap /= 2)
		for (u64 i = gap; i < n; i++) {
			u64 f = all[i], j = i;
			for (; j >= gap && all[j - gap] > f; j -= gap)
				all[j] = all[j - gap];
			all[j] = f;
		}
	for (u64 i = 1; i < n; i++)
		dups += all[i] == all[i - 1];
	return dups;
}

/* CPU 0's part: work, then check, then let everybody free. */
static void pmm_cpu0(struct pmm_run *p, u64 *dups)
{
	static u64 all[MAX_CPUS * PMM_HOLD];
	u64 seed = 0xC0FFEE, n = 0, *held = p->held[0];
	barrier(&p->start, smp_cpu_count());
	for (u32 r = 0; r < p->rounds && !failed.what; r++) {
		progress(r);
		u64 want = rnd(&seed) % PMM_HOLD;
		while (n < want && pmm_alloc(&held[n]) == 0)
			n++;
		want = rnd(&seed) % (n + 1);
		while (n > want)
			if (pmm_free(held[--n]) != 0)
				fail(0, "pmm_free refused a frame it gave", held[n], 0);
	}
	while (n < PMM_HOLD && pmm_alloc(&held[n]) == 0)
		n++;
	p->count[0] = n;
	barrier(&p->checked, smp_cpu_count());
	*dups = frames_held_twice(p, all, ARRAY_SIZE(all));
	__atomic_store_n(&p->go_on, 1, __ATOMIC_RELEASE);
	while (n)
		if (pmm_free(held[--n]) != 0)
			fail(0, "pmm_free at the end", held[n], 0);
}

KTEST(tlb, pmm_stress_every_cpu)
{
	NEED_CPUS(2);
	u64 free0 = free_frames(), dups = 0;
	pmm_run = (struct pmm_run){.rounds = 40};
	static struct job jobs[MAX_CPUS];
	for (u32 c = 1; c < smp_cpu_count(); c++) {
		jobs[c] = (struct job){pmm_worker, &pmm_run, c};
		KASSERT_EQ(smp_run(c, job_run, &jobs[c]), 0);
	}
	pmm_cpu0(&pmm_run, &dups);
	KASSERT_EQ(join_all(), 0);
	KASSERT_NO_FAILURE();
	u64 total = 0;
	for (u32 c = 0; c < smp_cpu_count(); c++)
		total += pmm_run.count[c];
	ktest_log("%llu frames held at once by %u CPUs, %llu handed out twice", total,
		  smp_cpu_count(), dups);
	KASSERT_EQ(dups, 0);
	KASSERT_EQ(total, (u64)smp_cpu_count() * PMM_HOLD);
	KASSERT_EQ(free_frames(), free0);
}

/* ---- two CPUs faulting on the same missing table ---- */

#define RACE_ROUNDS 64

struct table_race {
	u64 base; /* round r uses the 2 MiB region base + r * 2 MiB: its PT is missing */
	u32 arrived[RACE_ROUNDS];
	u32 done[RACE_ROUNDS];
};

static struct table_race race;

/* Every CPU maps its own page of the same missing PT at the same moment, round after round. */
static void race_worker(u32 c, void *ctx)
{
	struct table_race *t = ctx;
	u32 n = smp_cpu_count();
	for (u32 r = 0; r < RACE_ROUNDS; r++) {
		u64 va = t->base + (u64)r * LARGE_PAGE_SIZE + (u64)c * PAGE_SIZE;
		barrier(&t->arrived[r], n);
		int err = map_region(va, model_phys(c, r), 1, VMM_WRITE);
		if (err)
			fail(c, "map_region into the missing table failed", va, (u64)err);
		barrier(&t->done[r], n);
	}
}

KTEST(tlb, table_race_one_table_no_leak)
{
	NEED_CPUS(2);
	u64 free0 = free_frames();
	struct vmm_stats s0, s1;
	vmm_get_stats(&s0);
	race = (struct table_race){.base = KAREA + LARGE_PAGE_SIZE * 512}; /* its own PD too */
	KASSERT_EQ(run_on_all(race_worker, &race), 0);
	KASSERT_NO_FAILURE();
	vmm_get_stats(&s1);
	/* One PT a round, and the PD over them (the slot's PDPT exists). */
	u64 tables = s1.table_faults - s0.table_faults;
	ktest_log("%u CPUs, %d rounds: %llu tables created, %llu frames taken", smp_cpu_count(),
		  RACE_ROUNDS, tables, free0 - free_frames());
	KASSERT_EQ(tables, RACE_ROUNDS + 1);
	KASSERT_EQ(free0 - free_frames(), RACE_ROUNDS + 1);
	/* Every CPU's page is there (a table installed twice would have lost some). */
	u64 lost = 0, pa;
	for (u32 r = 0; r < RACE_ROUNDS; r++)
		for (u32 c = 0; c < smp_cpu_count(); c++) {
			u64 va = race.base + (u64)r * LARGE_PAGE_SIZE + (u64)c * PAGE_SIZE;
			if (virt_to_phys(va, &pa) != 0 || pa != model_phys(c, r))
				lost++;
		}
	KASSERT_EQ(unmap_region(race.base, RACE_ROUNDS * TABLE_ENTRIES, 0), 0);
	KASSERT_EQ(lost, 0);
	KASSERT_EQ(free_frames(), free0);
}

/* ---- address spaces made and destroyed on every CPU: the other-space window is shared ---- */

#define SPACE_ROUNDS 40

struct space_run {
	pml4_t boot;
	u32 start;
};

static struct space_run space_run;

/* Each round: a new space, a page mapped in it, a copy of it (through the window), both dropped. */
static void space_worker(u32 c, void *ctx)
{
	struct space_run *r = ctx;
	u64 va = tslot(TSLOT_TLB) + (u64)c * PAGE_SIZE, pa;
	barrier(&r->start, smp_cpu_count());
	for (u32 i = 0; i < SPACE_ROUNDS && !failed.what; i++) {
		if (c == 0)
			progress(i);
		pml4_t mine, copy;
		int err = new_page_map(&mine);
		if (err) {
			fail(c, "new_page_map failed", i, (u64)err);
			break;
		}
		switch_page_map(mine);
		if ((err = map_region(va, model_phys(c, i), 1, VMM_WRITE | VMM_USER)) != 0)
			fail(c, "map_region in a new space failed", i, (u64)err);
		if ((err = copy_page_map(&copy)) != 0)
			fail(c, "copy_page_map failed", i, (u64)err);
		/* The copy, seen from inside: the page is there, with its frame. */
		if (!err) {
			switch_page_map(copy);
			if (virt_to_phys(va, &pa) != 0 || pa != model_phys(c, i))
				fail(c, "the copy lacks the page", i, pa);
			switch_page_map(mine);
		}
		switch_page_map(r->boot);
		if (!err && (err = drop_page_map(copy, 0)) != 0)
			fail(c, "drop_page_map of the copy failed", i, (u64)err);
		if ((err = drop_page_map(mine, 0)) != 0)
			fail(c, "drop_page_map failed", i, (u64)err);
	}
}

KTEST(tlb, spaces_made_and_dropped_on_every_cpu)
{
	NEED_CPUS(2);
	u64 free0 = free_frames();
	space_run = (struct space_run){.boot = current_page_map()};
	KASSERT_EQ(run_on_all(space_worker, &space_run), 0);
	KASSERT_NO_FAILURE();
	for (u32 c = 0; c < smp_cpu_count(); c++)
		KASSERT_EQ(percpu_of(c)->space, space_run.boot);
	KASSERT_EQ(free_frames(), free0);
}

/* ---- the batch is part of the write API ---- */

KTEST(tlb, operations_close_their_batches)
{
	u32 open0 = this_cpu()->tlb_open;
	KASSERT_EQ(map_region(KAREA, FAKE_PHYS, 40, VMM_WRITE), 0);
	KASSERT_EQ(set_page_flags(KAREA, 40, 0), 0);
	KASSERT_EQ(unmap_region(KAREA, 40, 0), 0);
	pml4_t space;
	KASSERT_EQ(copy_page_map(&space), 0);
	KASSERT_EQ(drop_page_map(space, 0), 0);
	KASSERT_EQ(this_cpu()->tlb_open, open0);
	KASSERT_EQ(open0, 0);
}

/*
 * A window batch (tables freed through the other window) holds a table it
 * frees until its finish, which reloads CR3 here and shoots down first,
 * with one CPU up too: no frame reaches the PMM while a paging-structure
 * cache may still point into it.
 */
KTEST(tlb, window_batch_frees_tables_after_its_flush)
{
	u64 table;
	KASSERT_EQ(pmm_alloc(&table), 0);
	u64 free0 = free_frames();
	struct tlb_batch b;
	tlb_batch_begin_window(&b);
	KASSERT_EQ(tlb_batch_free_table(&b, table), 0);
	u64 held = free_frames();
	KASSERT_EQ(tlb_batch_finish(&b), 0);
	KASSERT_EQ(held, free0);
	KASSERT_EQ(free_frames(), free0 + 1);
	KASSERT_EQ(this_cpu()->tlb_open, 0);
}

/*
 * Dropping a space through the window sends its one full round to the CPUs
 * sharing this space (the window is in this space's PML4: their walks may
 * cache the dropped tables), idle ones too, not to the dropped space's
 * CPUs (none: it is loaded nowhere). The copy has a PDPT, a PD and a PT.
 */
KTEST(tlb, window_drop_rounds_on_this_spaces_cpus)
{
	NEED_CPUS(2);
	pml4_t here = current_page_map(), space = 0;
	u32 others = ktest_bits_set(tlb_space_cpus(here) & ~(1u << this_cpu()->cpu_id));
	struct tlb_stats s0, s1;
	KASSERT_EQ(map_region(tslot(TSLOT_TLB), FAKE_PHYS, 1, VMM_USER), 0);
	int copied = copy_page_map(&space);
	KASSERT_EQ(unmap_region(tslot(TSLOT_TLB), 1, 0), 0);
	KASSERT_EQ(copied, 0);
	tlb_get_stats(&s0);
	int dropped = drop_page_map(space, 0);
	tlb_get_stats(&s1);
	KASSERT_EQ(dropped, 0);
	/* The test needs somebody to reach: every CPU idles in the boot space. */
	KASSERT_EQ(others, smp_cpu_count() - 1);
	KASSERT_EQ(s1.shootdowns - s0.shootdowns, 1);
	KASSERT_EQ(s1.full - s0.full, 1);
	KASSERT_EQ(s1.ipis - s0.ipis, others);
	KASSERT_EQ(s1.idle_deferred - s0.idle_deferred, 0);
	KASSERT_EQ(this_cpu()->tlb_open, 0);
}

/*
 * The same drop with CPU 1 in another space (spinning, interrupts on): the
 * round goes to this space's other CPUs and not to CPU 1, whose walks never
 * see this space's window. Sent as a kernel-half round (to every CPU), the
 * batch would ask CPU 1 too: one IPI more.
 */
KTEST(tlb, window_drop_skips_cpus_in_other_spaces)
{
	NEED_CPUS(2);
	pml4_t here = current_page_map(), space = 0, away = 0;
	struct tlb_stats s0, s1;
	KASSERT_EQ(new_page_map(&away), 0);
	KASSERT_EQ(map_region(tslot(TSLOT_TLB), FAKE_PHYS, 1, VMM_USER), 0);
	int copied = copy_page_map(&space);
	KASSERT_EQ(unmap_region(tslot(TSLOT_TLB), 1, 0), 0);
	KASSERT_EQ(copied, 0);
	struct visit v = {.space = away, .boot = here};
	KASSERT_EQ(smp_run(1, visit_space, &v), 0);
	while (!__atomic_load_n(&v.there, __ATOMIC_ACQUIRE))
		relax();
	u32 asked = tlb_space_cpus(here) & ~(1u << this_cpu()->cpu_id);
	tlb_get_stats(&s0);
	int dropped = drop_page_map(space, 0);
	tlb_get_stats(&s1);
	__atomic_store_n(&v.leave, true, __ATOMIC_RELEASE);
	int joined = join(1);
	KASSERT_EQ(joined, 0);
	KASSERT_EQ(dropped, 0);
	KASSERT_EQ(drop_page_map(away, 0), 0);
	/* Every CPU but this one and CPU 1 idles here: asked, idle or not. */
	KASSERT_EQ(asked & (1u << 1), 0);
	KASSERT_EQ(ktest_bits_set(asked), smp_cpu_count() - 2);
	u64 rounds = smp_cpu_count() > 2;
	KASSERT_EQ(s1.shootdowns - s0.shootdowns, rounds);
	KASSERT_EQ(s1.full - s0.full, rounds);
	KASSERT_EQ(s1.ipis - s0.ipis, smp_cpu_count() - 2);
	KASSERT_EQ(s1.idle_deferred - s0.idle_deferred, 0);
	KASSERT_EQ(this_cpu()->tlb_open, 0);
}

/* The rounds new_page_map sent, with the scratch page off (`off`) or on. */
static int new_space_rounds(bool off, struct tlb_stats *d)
{
	struct tlb_stats s0, s1;
	pml4_t space = 0;
	tlb_get_stats(&s0);
	cow_test_scratch_off = off;
	int err = new_page_map(&space);
	cow_test_scratch_off = false;
	tlb_get_stats(&s1);
	d->shootdowns = s1.shootdowns - s0.shootdowns;
	d->full = s1.full - s0.full;
	d->ipis = s1.ipis - s0.ipis;
	return err ? err : drop_page_map(space, 0);
}

/*
 * A new space's PML4 not zeroed through the scratch page is zeroed in
 * place in PML4[OTHER_SLOT] of this space, which every CPU sharing it may
 * walk: one more full round than with the scratch page, to every other CPU.
 */
KTEST(tlb, pml4_zeroed_in_place_rounds_on_every_cpu)
{
	NEED_CPUS(2);
	struct tlb_stats on, off;
	KASSERT_EQ(new_space_rounds(false, &on), 0);
	KASSERT_EQ(new_space_rounds(true, &off), 0);
	KASSERT_EQ(off.shootdowns - on.shootdowns, 1);
	KASSERT_EQ(off.full - on.full, 1);
	KASSERT_EQ(off.ipis - on.ipis, smp_cpu_count() - 1);
	KASSERT_EQ(this_cpu()->tlb_open, 0);
}
