/*
 * The page-table write API: every store to a paging-structure entry goes
 * through here, and the TLB rule goes with it (Intel SDM Vol. 3A §4.10.4):
 *
 *  - An entry that may have been present and is changed or cleared: drop
 *    what the CPU may have cached from it (pte_flush). That is the page it
 *    maps when used as a PTE (through the self-map a table entry is also
 *    the PTE of its child table's window page), and for the current space
 *    the page at va itself (a PTE, or a 2 MiB / 1 GiB page).
 *  - A not-present entry made present: nothing is cached from a
 *    not-present entry, so nothing to drop (pte_run_install).
 *  - A space seen through the other window has no TLB entries of its own;
 *    the window pages it shows are dropped here, the rest goes with the CR3
 *    reload that detaches it (vmm_space.c).
 *  - A new table is zeroed in place, then pte_table_ready drops whatever a
 *    walk cached from its old contents.
 *  - Many present PTEs of the current space's user half changed at once: a
 *    pte_batch drops their TLB entries together when it ends (one CR3
 *    reload instead of an invlpg each).
 *
 * paging.h gives entries only to read. Writers: pte_set for one entry whose
 * table exists (pmm.c, early_map.c, vmm), the pte_run_* functions for a run
 * of entries of one table after one walk (the VMM's bulk paths),
 * pte_batch_change for fork's write-protection of the parent, and, in the
 * VMM only, pte_write_flush / pte_run_install_new, whose store may fault a missing
 * table into existence (vmm_internal.h).
 */
#ifndef OUROBOROS_PTE_H
#define OUROBOROS_PTE_H

#include <cpu.h>
#include <paging.h>
#include <types.h>

/* The entry of `level` for va in window w, to write: for this API's writers only. */
static inline volatile u64 *pte_slot(enum pt_window w, int level, u64 va)
{
	return (volatile u64 *)window_entry_addr(w, level, va);
}

/* After the entry of `level` for va in w changed from a present value: drop what it cached. */
static inline void pte_flush(enum pt_window w, int level, u64 va)
{
	u64 entry = window_entry_addr(w, level, va);
	/* A table entry through the self-map is the PTE of its child's window page. */
	if (level > LEVEL_PT && in_selfmap(entry))
		invlpg(selfmap_leaf_va((volatile const u64 *)entry));
	/* The current space's page at va: a PTE's page, or a large page (cached under any of its addresses). */
	if (w == WINDOW_SELF)
		invlpg(va);
}

/* Set the entry of `level` for va in w (its table exists) to value, then pte_flush. */
static inline void pte_set(enum pt_window w, int level, u64 va, u64 value)
{
	*pte_slot(w, level, va) = value;
	pte_flush(w, level, va);
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

/* Entry i, present, changed or cleared: store, then pte_flush. */
static inline void pte_run_change(const struct pte_run *r, u64 i, u64 value)
{
	r->entry[i] = value;
	pte_flush(r->w, r->level, r->va + i * level_span(r->level));
}

/*
 * A batch of changes to present PTEs of the current space's user half
 * (pte_batch_change), whose TLB entries are dropped together when the batch
 * ends: one CR3 reload, which drops every non-global TLB entry and
 * paging-structure cache entry, and user pages are never global (vmm.h).
 * Declare it with PTE_BATCH(name): the compiler ends it (pte_batch_end) when
 * name goes out of scope, on every return path, so the flush cannot be
 * forgotten; it flushes whether or not an entry changed (a store each
 * change, nothing more). Until then this CPU may still use the old entries:
 * the batch's owner must not touch those pages meanwhile.
 *
 * The flush is this CPU's only: a batch is for a space no other CPU has
 * loaded (fork write-protecting the parent's own space, current here and
 * on no other CPU); a cross-CPU shootdown, where one is needed, belongs in
 * pte_batch_end as in pte_flush.
 */
struct pte_batch {
	bool open; /* the batch has yet to drop what it changed */
};

#define PTE_BATCH(name) \
	struct pte_batch name __attribute__((cleanup(pte_batch_end))) = {true}

/* Entry i of a run of the current space's user-half PTEs, present, changed to value (present). */
static inline void pte_batch_change(struct pte_batch *b, const struct pte_run *r, u64 i, u64 value)
{
	(void)b; /* the batch's flush is owed from its declaration on */
	r->entry[i] = value;
}

/* Drop what the batch's changed entries left in this CPU's TLB (PTE_BATCH calls it). */
static inline void pte_batch_end(struct pte_batch *b)
{
	if (b->open)
		load_cr3(read_cr3());
	b->open = false;
}

/* A table just created at window address `table` and zeroed: drop what a walk cached from its old contents. */
static inline void pte_table_ready(u64 table)
{
	invlpg(table);
}

#endif
