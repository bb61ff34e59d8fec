/*
 * TLB shootdown: a paging change that another CPU may have cached is
 * invalidated there before the operation that made it returns.
 *
 * Every write of a present paging entry goes through the page-table write
 * API (pte.h), and each of its writers takes a struct tlb_batch: the entry is
 * invalidated on this CPU at once (invlpg), and its range is added to the
 * batch. The operation (map_region, unmap_region, set_page_flags, the
 * space operations, the PMM's stack pages, the COW paths) opens one batch,
 * makes all its changes, then finishes the batch: one round of IPIs to the
 * CPUs that may hold the entries, and a wait until each has acknowledged.
 * A batch left open is caught: lock_check_switch (before every context
 * switch) panics while this CPU has one open, and the tlb ktests check that
 * every operation closes what it opens. With one CPU up a batch records
 * nothing (there is no other TLB) and costs a few instructions: the checks
 * run in the smp2/smp4 configurations.
 *
 * Who is asked (the CPU mask of an address space): a CPU holds entries of
 * the user half of space S only while S is loaded in its CR3 (no PCID: a CR3
 * load drops every non-global entry). switch_page_map (vmm_space.c), the one
 * function that loads CR3 for a switch, records it in the CPU's per-CPU area
 * (percpu.h: space, and leaving while the switch is under way), so the mask
 * of S, tlb_space_cpus(S), is the set of CPUs whose record names S. The
 * kernel half is shared by every space: its batches go to every CPU up.
 *
 * What they do: a range of at most TLB_FLUSH_CEILING pages (layout.h, from
 * linker/arch.ts) is invalidated page by page, anything larger, and any
 * change of a table entry (a page table freed or replaced: the paging-
 * structure caches), flushes everything (a CR3 reload: CR4.PGE is off, so no
 * entry survives it).
 *
 * Freed frames (the gather, after Linux's mmu_gather): a frame or page
 * table unmapped by a batch may still be cached by another CPU until the
 * batch's round, so the batch holds it (tlb_batch_free_frame) and gives it to
 * the PMM only after the acknowledgements: at tlb_batch_finish, or, when its
 * TLB_GATHER_FRAMES slots are full, after an early round (the range is
 * kept and sent again at the finish). A batch that records nothing (one
 * CPU) frees at once. Page tables go through tlb_batch_free_table, and
 * those unlinked through the other window only through a window batch
 * (tlb_batch_begin_window; release_tables panics otherwise), which reloads
 * CR3 here and shoots down before it frees them, with one CPU up too.
 *
 * Acknowledgement: a target acknowledges from the IPI handler, or, when it
 * waits with interrupts off (spinning on a lock, or waiting for its own
 * shootdown's acknowledgements), from that wait loop (tlb_poll), so two CPUs
 * shooting at each other, or one waiting for a lock the other holds, cannot
 * deadlock. A CPU that has not acknowledged after TLB_ACK_TIMEOUT_MS (a
 * selftest may set a shorter wait) is a broken invariant: panic, naming it.
 */
#ifndef OUROBOROS_TLB_H
#define OUROBOROS_TLB_H

#include <cpu.h>
#include <layout.h>
#include <percpu.h>
#include <pmm.h>
#include <smp.h>
#include <types.h>

/* A batch's space for kernel-half changes: every CPU up may hold them. */
#define TLB_KERNEL 0ULL
/* A batch's space for the user half of the space this CPU has loaded (no PML4 frame is 1). */
#define TLB_CURRENT 1ULL
/* A CPU that has not acknowledged a shootdown after this long is broken (TCG on a loaded host is slow; the runner calls 10 s of silence a hang). */
#define TLB_ACK_TIMEOUT_MS 5000ULL
/* tlb_batch.state bits. */
#define TLB_BATCH_OPEN 0x7eb00000u /* between tlb_batch_begin and tlb_batch_finish */
#define TLB_BATCH_OPEN_MASK 0xffff0000u
#define TLB_BATCH_FULL 1u /* flush everything: tables changed, or more than TLB_FLUSH_CEILING pages */
#define TLB_BATCH_SMP 2u  /* other CPUs were up at begin: the batch records and is counted */
#define TLB_BATCH_TABLES 4u /* a table entry changed: idle CPUs are asked too (tlb.c) */
#define TLB_BATCH_WINDOW 8u /* tables freed through the other window: see tlb_batch_begin_window */

struct tlb_batch {
	u64 space;  /* TLB_KERNEL, TLB_CURRENT, or the PML4 frame of the space whose user half changes */
	u64 lo, hi; /* [lo, hi): the addresses whose entries changed (lo >= hi: none) */
	u32 state;  /* TLB_BATCH_OPEN while open, | TLB_BATCH_FULL, TLB_BATCH_SMP */
	u32 nframes; /* frames[0, nframes): freed, held until the round (TLB_BATCH_SMP only) */
	int err;     /* the first error pmm_free returned for a held frame (0: none) */
	u64 frames[TLB_GATHER_FRAMES];
};

/* True while b is open. */
static inline bool tlb_batch_is_open(const struct tlb_batch *b)
{
	return (b->state & TLB_BATCH_OPEN_MASK) == TLB_BATCH_OPEN;
}

/* Open a batch for the CPUs that may hold `space`'s entries (TLB_KERNEL: the kernel half; TLB_CURRENT). */
static inline void tlb_batch_begin(struct tlb_batch *b, u64 space)
{
	/* One CPU: no other TLB to reach, so nothing to record (the bench's figures stay). */
	if (__builtin_expect(smp_cpu_count() < 2, 1)) {
		b->state = TLB_BATCH_OPEN;
		return;
	}
	b->space = space;
	b->lo = ~0ULL;
	b->hi = 0;
	b->state = TLB_BATCH_OPEN | TLB_BATCH_SMP;
	b->nframes = 0;
	b->err = 0;
	this_cpu()->tlb_open++;
}

/*
 * Open a batch for a space worked on through the other window (vmm_space.c)
 * whose tables it frees: the space is loaded nowhere, but its tables are
 * reachable through the window, which is in the current space's PML4, so
 * this CPU and every CPU sharing the current space may hold them in its
 * paging-structure caches (a walk may be speculative). Such a batch holds
 * the tables it frees even with one CPU, and before it gives them to the
 * PMM it reloads CR3 here and sends a full round to those CPUs (idle ones
 * too): the order of SDM 4.10.4 (invalidate every cached copy of an entry
 * before its frame is reused), kept by the batch, not by its caller. (A CPU
 * whose earlier detach left its window TLB entries for later holds no
 * paging-structure cache entry: vmm_space.c, other_detach.) Data frames
 * are freed at once: a space loaded nowhere has no TLB entry of its pages.
 */
static inline void tlb_batch_begin_window(struct tlb_batch *b)
{
	tlb_batch_begin(b, TLB_CURRENT);
	b->state |= TLB_BATCH_WINDOW | TLB_BATCH_FULL | TLB_BATCH_TABLES;
	b->nframes = 0;
	b->err = 0;
}

/* Panic unless b is open (a writer given a batch that was never opened or is finished). */
void tlb_batch_check(const struct tlb_batch *b);

/* Mark b to flush everything (a change a range cannot describe). */
static inline void tlb_batch_flush_all(struct tlb_batch *b)
{
	b->state |= TLB_BATCH_FULL;
}

/* Mark b: a paging-structure entry changed (a table freed or replaced, a large page): flush all, everywhere. */
static inline void tlb_batch_tables_changed(struct tlb_batch *b)
{
	b->state |= TLB_BATCH_FULL | TLB_BATCH_TABLES;
}

/* Record that the entries of [va, va + bytes) changed (this CPU has invalidated them). */
static inline void tlb_batch_add(struct tlb_batch *b, u64 va, u64 bytes)
{
	if (__builtin_expect(!(b->state & TLB_BATCH_SMP), 1))
		return;
	u64 end = va + bytes;
	if (va < b->lo)
		b->lo = va;
	if (end > b->hi)
		b->hi = end;
	/* The ceiling bounds the whole span (two small ranges far apart too); an end past 2^64 wraps. */
	if (end < va || !end || b->hi - b->lo > (u64)TLB_FLUSH_CEILING * PAGE_SIZE)
		b->state |= TLB_BATCH_FULL;
}

/* IPI the CPUs that may hold b's entries and wait for them (tlb.c). */
void tlb_shootdown(const struct tlb_batch *b);

/* Reload CR3 here for a window batch, send b's round (if it recorded anything), then give its held frames to the PMM (tlb.c). */
void tlb_batch_drain(struct tlb_batch *b, bool early);

/* For the gather tests: while set, a batch frees at once (a broken kernel). */
extern bool tlb_test_free_at_once;

/*
 * True when b holds the data frames it frees until its round (else
 * tlb_batch_free_frame frees at once): with other CPUs up, but for a window
 * batch, whose space no CPU has loaded.
 */
static inline bool tlb_batch_gathers(const struct tlb_batch *b)
{
	return (b->state & (TLB_BATCH_SMP | TLB_BATCH_WINDOW)) == TLB_BATCH_SMP &&
	       !tlb_test_free_at_once;
}

/* Hold frame in b until its round (an early round first when its slots are full): 0. */
static inline int tlb_batch_hold(struct tlb_batch *b, u64 frame)
{
	if (b->nframes == TLB_GATHER_FRAMES)
		tlb_batch_drain(b, true);
	b->frames[b->nframes++] = frame;
	return 0;
}

/*
 * Free data frame `frame` (unmapped through b) once no CPU can reach it: at
 * once with one CPU, else after b's round. 0 or pmm_free's error; a held
 * frame's error comes from tlb_batch_finish.
 */
static inline int tlb_batch_free_frame(struct tlb_batch *b, u64 frame)
{
	if (__builtin_expect(!tlb_batch_gathers(b), 1))
		return pmm_free(frame);
	return tlb_batch_hold(b, frame);
}

/*
 * Free page table `frame` (b unlinked it) once no CPU can cache it: at once
 * with one CPU (the unlink's invlpg dropped this CPU's paging-structure
 * caches, SDM 4.10.4.1; AMD APM Vol. 2 §3.1.7 with EFER.TCE clear, as
 * boot.asm keeps it), else after b's round; through a window batch
 * always after its CR3 reload and round (tlb_batch_begin_window).
 */
static inline int tlb_batch_free_table(struct tlb_batch *b, u64 frame)
{
	if (__builtin_expect(!(b->state & (TLB_BATCH_SMP | TLB_BATCH_WINDOW)), 1) ||
	    tlb_test_free_at_once)
		return pmm_free(frame);
	return tlb_batch_hold(b, frame);
}

/*
 * Finish b: invalidate its entries on every other CPU that may hold them,
 * free its held frames, close it. 0, or the first error freeing a held frame.
 */
static inline int tlb_batch_finish(struct tlb_batch *b)
{
	int err = 0;
	if (!tlb_batch_is_open(b))
		tlb_batch_check(b);
	if (__builtin_expect(b->state & (TLB_BATCH_SMP | TLB_BATCH_WINDOW), 0)) {
		tlb_batch_drain(b, false);
		err = b->err;
		if (b->state & TLB_BATCH_SMP)
			this_cpu()->tlb_open--;
	}
	b->state = 0;
	return err;
}

/* The CPUs that may hold entries of space's user half (bit n: CPU n), this CPU included. */
u32 tlb_space_cpus(u64 space);

/* Serve the shootdowns waiting for this CPU (interrupts off): wait loops call it. */
void tlb_poll(void);

/* The VEC_IPI_TLB handler (trap.c): tlb_poll, then EOI. */
void tlb_ipi(void);

/* Panic when this CPU has a batch open (before a context switch). */
void tlb_check_closed(const char *where);

/* What the shootdown has done since boot (every CPU's together). */
struct tlb_stats {
	u64 shootdowns; /* batches that needed other CPUs (tlb_shootdown rounds) */
	u64 ipis;       /* IPIs sent */
	u64 full;       /* rounds that flushed everything */
	u64 served;     /* requests served by targets */
	u64 idle_deferred; /* targets left out because idle (they flush on leaving idle) */
	u64 idle_flushes;  /* full flushes on leaving idle */
	u64 early;      /* rounds sent before the finish: a batch's held frames filled its slots */
};

void tlb_get_stats(struct tlb_stats *out);

/* For the stale-read test: while set, tlb_shootdown sends nothing (a broken kernel). */
extern bool tlb_test_skip_remote;

/*
 * Lazy TLB for idle CPUs (tlb.c): between tlb_idle_enter and tlb_idle_exit
 * (interrupts off around both, only hlt between) this CPU is sent no
 * shootdown; tlb_idle_exit reloads CR3 if one was left to it.
 */
void tlb_idle_enter(void);
void tlb_idle_exit(void);

/* Whether CPU cpu is between tlb_idle_enter and tlb_idle_exit (for tests). */
bool tlb_cpu_lazy(u32 cpu);

/* For the idle-flush test: while set, tlb_idle_exit skips its flush (a broken kernel). */
extern bool tlb_test_skip_idle_flush;

/*
 * For the tlb-noack selftest: how long tlb_shootdown waits for an
 * acknowledgement before it panics (TLB_ACK_TIMEOUT_MS until set; the
 * panic names the wait used). A deaf CPU is as deaf after 50 ms as after
 * 5 s; the selftest need not burn 5 s of two host cores to show the panic.
 */
void tlb_test_set_ack_timeout_ms(u64 ms);

#endif
