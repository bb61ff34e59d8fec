/*
 * The TLB shootdown (tlb.h): requests, IPIs, acknowledgements.
 *
 * Each CPU has one request slot it fills as initiator (a CPU runs one
 * shootdown at a time: tlb_shootdown returns before the operation goes on),
 * and one pending mask as target: bit s set means CPU s's request waits for
 * it. The initiator fills its slot, sets its bit in each target's mask (the
 * release orders the slot before the bit), sends the IPIs, and waits until
 * every target has set its bit in the slot's acknowledgement mask, serving
 * requests aimed at itself meanwhile.
 *
 * Lazy TLB for idle CPUs: a CPU waiting in its idle loop's hlt is not sent
 * IPIs (under TCG, waking a halted vCPU costs milliseconds of host time, and
 * kernel-half changes go to every CPU). Each CPU has a
 * state word, IDLE_ACTIVE, IDLE_LAZY or IDLE_STALE, changed only by atomic
 * operations on that one word, so they happen in one total order:
 *   - tlb_idle_enter (the CPU, before sti; hlt): ACTIVE -> LAZY.
 *   - a shootdown, for each target, after its entry stores and a full fence:
 *     CAS LAZY -> STALE; if it succeeds, or the word already says STALE, the
 *     target is left out (no IPI, no wait); if it reads ACTIVE, the target is
 *     sent its IPI and waited for as always.
 *   - tlb_idle_exit (the CPU, after hlt, before it touches anything a
 *     shootdown may have changed): exchange -> ACTIVE; if the old word was
 *     STALE, reload CR3 (CR4.PGE is off: every entry and every
 *     paging-structure cache goes).
 * If the initiator's CAS comes first in that order, the CPU's exchange reads
 * STALE and flushes, and the entry stores came before the CAS (fence), so the
 * flush drops every entry they made stale; until then the CPU only halts
 * (see below). If the exchange comes first, the CAS reads ACTIVE and the
 * initiator sends the IPI and waits: the ordinary path. A CPU that goes
 * LAZY after an initiator chose to IPI it still takes the IPI in its hlt and
 * acknowledges. While LAZY, the CPU runs nothing but its hlt and the
 * interrupt handlers that may end it: the timer (its own counters, the run
 * queue), the TLB IPI (tlb_poll) and the call IPI, which leaves the lazy
 * state itself before it calls anything (smp_ipi_call: tlb_idle_exit).
 */
#include <cpu.h>
#include <lapic.h>
#include <panic.h>
#include <percpu.h>
#include <smp.h>
#include <timer.h>
#include <tlb.h>

struct tlb_request {
	u64 space, lo, hi;
	bool full;
	u32 acked; /* bit t: CPU t has invalidated */
};

enum { IDLE_ACTIVE, IDLE_LAZY, IDLE_STALE };

static struct tlb_request requests[MAX_CPUS];
/* Per CPU: IDLE_ACTIVE, IDLE_LAZY (halted in its idle loop), IDLE_STALE (must flush). */
static u32 idle_state[MAX_CPUS];
static u32 pending[MAX_CPUS];
static struct tlb_stats stats;
bool tlb_test_skip_remote;
bool tlb_test_skip_idle_flush;
/* The acknowledgement wait, ms: TLB_ACK_TIMEOUT_MS unless a selftest set another. */
static u64 ack_timeout_ms = TLB_ACK_TIMEOUT_MS;

void tlb_test_set_ack_timeout_ms(u64 ms)
{
	__atomic_store_n(&ack_timeout_ms, ms, __ATOMIC_RELAXED);
}

void tlb_idle_enter(void)
{
	__atomic_store_n(&idle_state[this_cpu()->cpu_id], IDLE_LAZY, __ATOMIC_SEQ_CST);
}

void tlb_idle_exit(void)
{
	u32 me = this_cpu()->cpu_id;
	/* A plain load first: most often nothing changed (the caller may be an IPI handler). */
	if (__atomic_load_n(&idle_state[me], __ATOMIC_RELAXED) == IDLE_ACTIVE)
		return;
	u32 old = __atomic_exchange_n(&idle_state[me], IDLE_ACTIVE, __ATOMIC_SEQ_CST);
	if (old == IDLE_STALE) {
		__atomic_fetch_add(&stats.idle_flushes, 1, __ATOMIC_RELAXED);
		if (!tlb_test_skip_idle_flush)
			load_cr3(read_cr3());
	}
}

bool tlb_cpu_lazy(u32 cpu)
{
	return cpu < MAX_CPUS && __atomic_load_n(&idle_state[cpu], __ATOMIC_SEQ_CST) != IDLE_ACTIVE;
}

/* Leave target t to flush when it leaves idle: true if it is idle (no IPI, no wait). */
static bool defer_to_idle_exit(u32 t)
{
	/* A plain load first: reading ACTIVE only means the IPI, which is always safe. */
	u32 seen = __atomic_load_n(&idle_state[t], __ATOMIC_RELAXED);
	if (seen == IDLE_ACTIVE)
		return false;
	if (seen == IDLE_STALE)
		return true; /* it flushes anyway; STALE only ever goes to ACTIVE through its flush */
	seen = IDLE_LAZY;
	if (__atomic_compare_exchange_n(&idle_state[t], &seen, IDLE_STALE, false, __ATOMIC_SEQ_CST,
					__ATOMIC_SEQ_CST))
		return true;
	return seen == IDLE_STALE;
}
bool tlb_test_free_at_once;

void tlb_batch_check(const struct tlb_batch *b)
{
	if (!tlb_batch_is_open(b))
		panic("tlb: a page-table entry written with a TLB batch that is not open (CPU %u)",
		      this_cpu()->cpu_id);
}

void tlb_check_closed(const char *where)
{
	struct percpu *c = this_cpu();
	if (c->tlb_open)
		panic("tlb: %u batch(es) left open (%s) on CPU %u: a shootdown was never sent",
		      c->tlb_open, where, c->cpu_id);
}

u32 tlb_space_cpus(u64 space)
{
	u32 mask = 0, n = smp_cpu_count();
	for (u32 c = 0; c < n; c++) {
		const struct percpu *p = percpu_of(c);
		if (__atomic_load_n(&p->space, __ATOMIC_SEQ_CST) == space ||
		    __atomic_load_n(&p->leaving, __ATOMIC_SEQ_CST) == space)
			mask |= 1u << c;
	}
	return mask;
}

/* Every CPU up. */
static u32 all_cpus(void)
{
	u32 n = smp_cpu_count();
	return n >= 32 ? ~0u : (1u << n) - 1;
}

/* Invalidate what request r asks for on this CPU. */
static void serve(const struct tlb_request *r)
{
	if (r->full) {
		/* CR4.PGE is off: G is ignored and a CR3 load drops every entry and the paging-structure caches. */
		load_cr3(read_cr3());
		return;
	}
	/* A span above the ceiling is a full flush whatever the batch said (never 2^28 invlpg). */
	if (r->hi - r->lo > (u64)TLB_FLUSH_CEILING * PAGE_SIZE) {
		load_cr3(read_cr3());
		return;
	}
	for (u64 va = r->lo & ~(PAGE_SIZE - 1); va < r->hi; va += PAGE_SIZE)
		invlpg(va);
}

void tlb_poll(void)
{
	u32 me = this_cpu()->cpu_id;
	/* A plain load first: wait loops call this on every turn, most often for nothing. */
	if (!__atomic_load_n(&pending[me], __ATOMIC_RELAXED))
		return;
	u32 from = __atomic_exchange_n(&pending[me], 0, __ATOMIC_ACQUIRE);
	while (from) {
		u32 s = (u32)__builtin_ctz(from);
		from &= from - 1;
		serve(&requests[s]);
		__atomic_fetch_add(&stats.served, 1, __ATOMIC_RELAXED);
		__atomic_fetch_or(&requests[s].acked, 1u << me, __ATOMIC_RELEASE);
	}
}

void tlb_ipi(void)
{
	tlb_poll();
	lapic_eoi();
}

void tlb_shootdown(const struct tlb_batch *b)
{
	u32 me = this_cpu()->cpu_id;
	/* The entry stores above before reading who holds the space (switch_page_map's side). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	u64 space = b->space == TLB_CURRENT ? this_cpu()->space : b->space;
	bool full = (b->state & TLB_BATCH_FULL) != 0, tables = (b->state & TLB_BATCH_TABLES) != 0;
	u32 targets = (space == TLB_KERNEL ? all_cpus() : tlb_space_cpus(space)) & ~(1u << me);
	if (!targets || tlb_test_skip_remote)
		return;
	__atomic_fetch_add(&stats.shootdowns, 1, __ATOMIC_RELAXED);
	if (full)
		__atomic_fetch_add(&stats.full, 1, __ATOMIC_RELAXED);
	for (u32 left = targets; left; left &= left - 1) {
		u32 t = (u32)__builtin_ctz(left);
		/*
		 * A round that changed table entries (a table freed or replaced)
		 * asks idle CPUs too: an interrupt taken in idle runs before its
		 * flush, and a walk through a paging-structure cache of a freed
		 * table could set an accessed bit in the frame's next use (Linux
		 * also IPIs its lazy CPUs when tables are freed).
		 */
		if (!tables && defer_to_idle_exit(t)) {
			targets &= ~(1u << t);
			__atomic_fetch_add(&stats.idle_deferred, 1, __ATOMIC_RELAXED);
		}
	}
	if (!targets)
		return;
	struct tlb_request *r = &requests[me];
	ASSERT(r->acked == 0 || r->acked == ~0u);
	r->space = space;
	r->lo = b->lo;
	r->hi = b->hi;
	r->full = full;
	__atomic_store_n(&r->acked, 0, __ATOMIC_RELEASE);
	for (u32 left = targets; left; left &= left - 1) {
		u32 t = (u32)__builtin_ctz(left);
		__atomic_fetch_or(&pending[t], 1u << me, __ATOMIC_RELEASE);
		smp_send_ipi(t, VEC_IPI_TLB);
		__atomic_fetch_add(&stats.ipis, 1, __ATOMIC_RELAXED);
	}
	u64 wait_ms = __atomic_load_n(&ack_timeout_ms, __ATOMIC_RELAXED);
	u64 deadline = clock_ns() + wait_ms * NS_PER_MS;
	u32 acked;
	while (((acked = __atomic_load_n(&r->acked, __ATOMIC_ACQUIRE)) & targets) != targets) {
		tlb_poll();
		if (clock_ns() >= deadline) {
			u32 late = (u32)__builtin_ctz(targets & ~acked);
			panic("tlb: CPU %u did not acknowledge a shootdown from CPU %u within %llu ms",
			      late, me, wait_ms);
		}
		__builtin_ia32_pause();
	}
	__atomic_store_n(&r->acked, ~0u, __ATOMIC_RELAXED);
}

void tlb_batch_drain(struct tlb_batch *b, bool early)
{
	ASSERT(b->state & (TLB_BATCH_SMP | TLB_BATCH_WINDOW));
	if (b->state & TLB_BATCH_WINDOW) {
		/* This CPU's window entries and paging-structure caches (its window_stale: vmm_space.c). */
		load_cr3(read_cr3());
	}
	if ((b->state & TLB_BATCH_SMP) && ((b->state & TLB_BATCH_FULL) || b->lo < b->hi))
		tlb_shootdown(b);
	if (early)
		__atomic_fetch_add(&stats.early, 1, __ATOMIC_RELAXED);
	/* Acknowledged (or nobody else had the space), and reloaded here: no CPU reaches these frames now. */
	for (u32 i = 0; i < b->nframes; i++) {
		int r = pmm_free(b->frames[i]);
		if (r && !b->err)
			b->err = r;
	}
	/*
	 * The range stays: a PTE run (pte.h) records its whole range before it
	 * changes the entries, so entries changed after an early round may lie
	 * in the range already sent; the finish sends it again (a superset).
	 */
	b->nframes = 0;
}

void tlb_get_stats(struct tlb_stats *out)
{
	out->shootdowns = __atomic_load_n(&stats.shootdowns, __ATOMIC_RELAXED);
	out->ipis = __atomic_load_n(&stats.ipis, __ATOMIC_RELAXED);
	out->full = __atomic_load_n(&stats.full, __ATOMIC_RELAXED);
	out->served = __atomic_load_n(&stats.served, __ATOMIC_RELAXED);
	out->idle_deferred = __atomic_load_n(&stats.idle_deferred, __ATOMIC_RELAXED);
	out->idle_flushes = __atomic_load_n(&stats.idle_flushes, __ATOMIC_RELAXED);
	out->early = __atomic_load_n(&stats.early, __ATOMIC_RELAXED);
}
