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
 * every operation closes what it opens.
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
 * With one CPU up a batch costs its open and close: no IPI, no wait.
 *
 * Acknowledgement: a target acknowledges from the IPI handler, or, when it
 * waits with interrupts off (spinning on a lock, or waiting for its own
 * shootdown's acknowledgements), from that wait loop (tlb_poll), so two CPUs
 * shooting at each other, or one waiting for a lock the other holds, cannot
 * deadlock. A CPU that has not acknowledged after TLB_ACK_TIMEOUT_MS is a
 * broken invariant: panic, naming it.
 */
#ifndef OUROBOROS_TLB_H
#define OUROBOROS_TLB_H

#include <cpu.h>
#include <layout.h>
#include <percpu.h>
#include <smp.h>
#include <types.h>

/* A batch's space for kernel-half changes: every CPU up may hold them. */
#define TLB_KERNEL 0ULL
/* A CPU that has not acknowledged a shootdown after this long is broken (TCG may be slow). */
#define TLB_ACK_TIMEOUT_MS 10000ULL
/* tlb_batch.open while the batch is open. */
#define TLB_BATCH_OPEN 0x7eb0u

struct tlb_batch {
	u64 space;  /* TLB_KERNEL, or the PML4 frame of the space whose user half changes */
	u64 lo, hi; /* [lo, hi): the addresses whose entries changed (lo >= hi: none) */
	bool full;  /* flush everything: tables changed, or more than TLB_FLUSH_CEILING pages */
	bool local; /* only this CPU can hold the entries (a scratch page used under a lock) */
	u32 open;   /* TLB_BATCH_OPEN between tlb_batch_begin and tlb_batch_finish */
};

/* Open a batch for the CPUs that may hold `space`'s entries (TLB_KERNEL: the kernel half). */
static inline void tlb_batch_begin(struct tlb_batch *b, u64 space)
{
	*b = (struct tlb_batch){space, ~0ULL, 0, false, false, TLB_BATCH_OPEN};
	this_cpu()->tlb_open++;
}

/*
 * Open a batch for entries only this CPU can have cached: a scratch mapping
 * that is mapped, used and unmapped under one lock (every user invalidates
 * it locally before releasing the lock, so no other TLB keeps it).
 */
static inline void tlb_batch_begin_local(struct tlb_batch *b)
{
	tlb_batch_begin(b, TLB_KERNEL);
	b->local = true;
}

/* Panic unless b is open (a writer given a batch that was never opened or is finished). */
void tlb_batch_check(const struct tlb_batch *b);

/* Record that the entries of [va, va + bytes) changed (this CPU has invalidated them). */
static inline void tlb_batch_add(struct tlb_batch *b, u64 va, u64 bytes)
{
	if (bytes > (u64)TLB_FLUSH_CEILING * PAGE_SIZE)
		b->full = true;
	if (va < b->lo)
		b->lo = va;
	if (va + bytes > b->hi)
		b->hi = va + bytes;
}

/* IPI the CPUs that may hold b's entries and wait for them (tlb.c). */
void tlb_shootdown(const struct tlb_batch *b);

/* Finish b: invalidate its entries on every other CPU that may hold them, then close it. */
static inline void tlb_batch_finish(struct tlb_batch *b)
{
	if (b->open != TLB_BATCH_OPEN)
		tlb_batch_check(b);
	if (smp_cpu_count() >= 2 && !b->local && (b->full || b->lo < b->hi))
		tlb_shootdown(b);
	b->open = 0;
	this_cpu()->tlb_open--;
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
};

void tlb_get_stats(struct tlb_stats *out);

/* For the stale-read test: while set, tlb_shootdown sends nothing (a broken kernel). */
extern bool tlb_test_skip_remote;

#endif
