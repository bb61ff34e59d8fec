/*
 * The page-table write API: every store to a paging-structure entry goes
 * through here, and the TLB rule goes with it (Intel SDM Vol. 3A §4.10.4):
 *
 *  - An entry that may have been present and is changed or cleared: drop
 *    what this CPU may have cached from it (pte_flush), and record it in
 *    the operation's TLB batch (tlb.h), which the operation finishes with
 *    one shootdown round to the other CPUs that may hold it. The writers
 *    of present entries cannot be called without an open batch. What this
 *    CPU drops: the page the entry maps when used as a PTE (through the
 *    self-map a table entry is also the PTE of its child table's window
 *    page), and for the current space the page at va itself (a PTE, or a
 *    2 MiB / 1 GiB page). A table entry's change covers at least 2 MiB,
 *    above TLB_FLUSH_CEILING pages: its batch flushes everything on the
 *    other CPUs (their paging-structure caches too).
 *  - A not-present entry made present: nothing is cached from a
 *    not-present entry, so nothing to drop (pte_install, pte_run_install).
 *  - A space seen through the other window has no TLB entries of its own;
 *    the window pages it shows are dropped here, the rest goes with a CR3
 *    load after it is detached (vmm_space.c).
 *  - A new table is zeroed before the entry linking it is made present
 *    (vmm_fault.c, through the COW scratch page); where no other mapping
 *    of its frame exists yet, it is zeroed in place after the link and
 *    everything a walk may have cached meanwhile is flushed (a CR3 reload,
 *    and a table round when other CPUs are up).
 *  - Many present PTEs of the current space's user half changed at once: a
 *    pte_batch drops their TLB entries together when it ends (an invlpg
 *    each for at most TLB_FLUSH_CEILING, else one CR3 reload).
 *
 * paging.h gives entries only to read. Writers: pte_set / pte_install for
 * one entry whose table exists (pmm.c, early_map.c, vmm), the pte_run_*
 * functions for a run of entries of one table after one walk (the VMM's
 * bulk paths; a run that changes present entries is a struct pte_change_run,
 * which only exists with a batch), pte_batch_change for fork's
 * write-protection of the parent, and, in the VMM only, pte_write_flush /
 * pte_run_install_new, whose store may fault a missing table into existence
 * (vmm_internal.h).
 */
#ifndef OUROBOROS_PTE_H
#define OUROBOROS_PTE_H

#include <cpu.h>
#include <paging.h>
#include <tlb.h>
#include <types.h>

/* The entry of `level` for va in window w, to write: for this API's writers only. */
static inline volatile u64 *pte_slot(enum pt_window w, int level, u64 va)
{
	return (volatile u64 *)window_entry_addr(w, level, va);
}

/* After the entry of `level` for va in w changed from a present value: drop what it cached, here and (batch b) elsewhere. */
static inline void pte_flush(enum pt_window w, int level, u64 va, struct tlb_batch *b)
{
	/* Above a PTE: a table (paging-structure caches) or a page of 2 MiB and more: flush all. */
	if (level > LEVEL_PT)
		tlb_batch_tables_changed(b);
	else
		tlb_batch_add(b, va, PAGE_SIZE);
	u64 entry = window_entry_addr(w, level, va);
	/* A table entry through the self-map is the PTE of its child's window page. */
	if (level > LEVEL_PT && in_selfmap(entry))
		invlpg(selfmap_leaf_va((volatile const u64 *)entry));
	/* The current space's page at va: a PTE's page, or a large page (cached under any of its addresses). */
	if (w == WINDOW_SELF)
		invlpg(va);
}

/* Set the entry of `level` for va in w (its table exists) to value, then pte_flush into b. */
static inline void pte_set(enum pt_window w, int level, u64 va, u64 value, struct tlb_batch *b)
{
	*pte_slot(w, level, va) = value;
	pte_flush(w, level, va, b);
}

/*
 * Set the PTE of a kernel scratch page (its PT exists) and drop it on this
 * CPU only. For the COW scratch pages (cow.c), which only the CPU holding
 * the paging lock maps, uses and unmaps (to 0) before it releases the lock.
 * Another CPU's TLB may still hold an old translation of va: the kernel
 * half is shared, and a CPU may cache any translation of a present entry,
 * speculatively too, while another CPU has the page mapped. That entry is
 * harmless, so no shootdown is sent: it is a leaf (no paging-structure
 * cache points through it), no CPU accesses va but under the lock and
 * after its own call here (whose invlpg drops its own old entry first), and
 * a speculative access through it writes nothing.
 */
static inline void pte_scratch_set(u64 va, u64 value)
{
	*pte_slot(WINDOW_SELF, LEVEL_PT, va) = value;
	invlpg(va);
}

/* Make the entry of `level` for va in w (its table exists), known not present, value: nothing to drop. */
static inline void pte_install(enum pt_window w, int level, u64 va, u64 value)
{
	*pte_slot(w, level, va) = value;
}

/* The entries of one table from va's, after one walk: written without walking again. */
struct pte_run {
	volatile u64 *entry; /* the entry of `level` for va */
	enum pt_window w;
	int level;
	u64 va;
};

/* The run of entries of `level` from va's in w (their table exists). */
static inline struct pte_run pte_run_at(enum pt_window w, int level, u64 va)
{
	return (struct pte_run){pte_slot(w, level, va), w, level, va};
}

/* Move the run k entries on: its entry 0 is then the one for va + k pages of its level. */
static inline void pte_run_advance(struct pte_run *r, u64 k)
{
	r->entry += k;
	r->va += k * level_span(r->level);
}

/* Entry i of the run (the one for va + i pages of its level). */
static inline u64 pte_run_get(const struct pte_run *r, u64 i)
{
	return r->entry[i];
}

/* Entry i, known not present, made present: nothing cached, nothing to drop. */
static inline void pte_run_install(const struct pte_run *r, u64 i, u64 value)
{
	r->entry[i] = value;
}

/*
 * A run whose present entries may change: n entries from va's, recorded in
 * batch b when the run is made (one range for the run, nothing per entry).
 */
struct pte_change_run {
	struct pte_run run;
	u64 n;
};

/* The run of n entries of `level` from va's in w (their table exists), to change under batch b. */
static inline struct pte_change_run pte_run_change_at(enum pt_window w, int level, u64 va, u64 n,
						      struct tlb_batch *b)
{
	if (!tlb_batch_is_open(b))
		tlb_batch_check(b);
	tlb_batch_add(b, va, n * level_span(level));
	return (struct pte_change_run){pte_run_at(w, level, va), n};
}

/* Entry i (< n) of a change run, present, changed or cleared: store, then drop it on this CPU. */
static inline void pte_run_change(const struct pte_change_run *c, u64 i, u64 value)
{
	const struct pte_run *r = &c->run;
	r->entry[i] = value;
	u64 va = r->va + i * level_span(r->level);
	if (r->level > LEVEL_PT && in_selfmap((u64)&r->entry[i]))
		invlpg(selfmap_leaf_va(&r->entry[i]));
	if (r->w == WINDOW_SELF)
		invlpg(va);
}

/*
 * A batch of changes to present PTEs of the current space's user half
 * (pte_batch_change), whose TLB entries are dropped together when the batch
 * ends: an invlpg of each changed page when there are at most
 * TLB_FLUSH_CEILING (each also drops every paging-structure cache entry:
 * SDM 4.10.4.1; AMD APM Vol. 2 §3.1.7 with EFER.TCE clear, boot.asm),
 * else one CR3 reload, which drops every non-global TLB entry and
 * paging-structure cache entry, and user pages are never global (vmm.h).
 * A fork of a small program changes a few entries: under TCG a CR3 load
 * drops QEMU's whole soft TLB and jump cache, an invlpg one page's.
 * Declare it with PTE_BATCH(name): the compiler ends it (pte_batch_end) when
 * name goes out of scope, on every return path, so the flush cannot be
 * forgotten; it flushes whether or not an entry changed (a store each
 * change, nothing more). Until then this CPU may still use the old entries:
 * the batch's owner must not touch those pages meanwhile.
 *
 * The other CPUs that have this space loaded flush with it: the batch holds
 * a TLB batch (tlb.h) for the current space, finished with a full flush, so
 * one shootdown round when the batch ends (none with one CPU up, or when no
 * other CPU runs this space, as for fork today).
 */
struct pte_batch {
	bool open;           /* the batch has yet to drop what it changed */
	u32 changed;         /* entries changed, counted up to TLB_FLUSH_CEILING + 1 */
	u64 va[TLB_FLUSH_CEILING]; /* the pages of the first changed[] of them */
	struct tlb_batch tlb; /* the other CPUs' part */
};

/* Start a batch (PTE_BATCH's initializer). */
static inline struct pte_batch pte_batch_begin(void)
{
	/* Not zeroed whole: va[] and the TLB batch's held-frame slots are written only as they fill. */
	struct pte_batch b;
	b.open = true;
	b.changed = 0;
	tlb_batch_begin(&b.tlb, TLB_CURRENT);
	return b;
}

#define PTE_BATCH(name) \
	struct pte_batch name __attribute__((cleanup(pte_batch_end))) = pte_batch_begin()

/* Entry i of a run of the current space's user-half PTEs, present, changed to value (present). */
static inline void pte_batch_change(struct pte_batch *b, const struct pte_run *r, u64 i, u64 value)
{
	/* The batch's flush is owed from its declaration on; this only says where. */
	r->entry[i] = value;
	if (b->changed < TLB_FLUSH_CEILING)
		b->va[b->changed] = r->va + i * level_span(r->level);
	if (b->changed <= TLB_FLUSH_CEILING)
		b->changed++;
}

/* Drop what the batch's changed entries left in this CPU's TLB, then on the others (PTE_BATCH calls it). */
static inline void pte_batch_end(struct pte_batch *b)
{
	if (!b->open)
		return;
	if (b->changed <= TLB_FLUSH_CEILING) {
		for (u32 k = 0; k < b->changed; k++)
			invlpg(b->va[k]);
	} else {
		load_cr3(read_cr3());
	}
	tlb_batch_flush_all(&b->tlb);
	tlb_batch_finish(&b->tlb);
	b->open = false;
}

#endif
