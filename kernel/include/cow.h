/*
 * Copy-on-write sharing of user frames (kernel/mm/cow.c).
 *
 * A frame mapped by more than one PTE (after fork) has a count: the number
 * of PTEs mapping it. Frames mapped once count 0 beyond the first mapping,
 * and the bookkeeping costs memory only where frames are shared: a sparse
 * array indexed by frame number whose pages ("leaves", one per 8 MiB of
 * physical memory) are mapped from the PMM while a frame of theirs is shared
 * and given back when none is; the page tables over it are the radix tree,
 * and lookups, increments and decrements are O(1).
 *
 * Out of memory: every share reserves one PMM frame (pmm_reserve), so
 * Sum(count - 1) frames stay reserved, one for each copy a write fault may
 * still have to make. A write fault therefore never fails for lack of a
 * frame; the last mapping of a frame takes it over without copying.
 *
 * Shared PTEs are read-only in every space; one that was writable carries
 * PTE_COW (an available bit) so that a failed fork can give W back.
 */
#ifndef OUROBOROS_COW_H
#define OUROBOROS_COW_H

#include <types.h>
#include <vmm.h>

/* What copy-on-write has done since boot (for tests and diagnostics). */
struct cow_stats {
	u64 shared;     /* frames with a count now (mapped more than once) */
	u64 capacity;   /* frames the mapped leaves can count (0: no leaf) */
	u64 table_pages; /* frames the leaves hold */
	u64 copies;     /* write faults that copied a page */
	u64 takeovers;  /* write faults that found the frame no longer shared */
	u64 reserved;   /* frames reserved for future copies: Sum(count - 1) */
};

void cow_get_stats(struct cow_stats *out);

/*
 * Make the page tables of the scratch pages copies go through (at boot, so
 * they are not counted against a later test; the first fork retries): 0 or
 * -E_NOMEM.
 */
int cow_init(void);

/*
 * For the fallback tests: while set, the scratch page does not zero new
 * tables and PML4s, as before cow_init made its table: they are zeroed in
 * place after they are linked (vmm_internal.h). A test sets it around one
 * operation of its own and clears it right after.
 */
extern bool cow_test_scratch_off;

/* The number of PTEs mapping frame: its count, or 1 when it is not shared. */
u64 cow_count(u64 frame);

/*
 * A copy-on-write copy of the current space's user half into a new space:
 * every present user page is shared (read-only in both, counted, one frame
 * reserved for it) in one pass over the parent's page tables. 0 and *out
 * set, or -E_NOMEM (frames for the reservation, the counts' leaves or the
 * new tables are missing) or -E_INVAL (a 2 MiB/1 GiB page in the user half:
 * the user half uses 4 KiB pages only), with the current space and the
 * PMM's free and reserved counts as before.
 */
int cow_fork_space(pml4_t *out);

/*
 * A mapping of frame goes away (unmap, drop of a space): true when other
 * mappings remain (the frame must not be freed; its count and one reserved
 * frame go), false when it was the last (the caller frees it).
 */
bool cow_release(u64 frame);

/*
 * Resolve a write fault on the present, read-only PTE of va (current space)
 * in a region that allows writes: copy the page into a reserved frame while
 * it is shared, else take the frame over. NULL when done, else why not.
 */
const char *cow_write_fault(u64 va);

/*
 * The flags set_page_flags should give a present page of a writable region:
 * VMM_WRITE is dropped while its frame is shared (mprotect keeps COW).
 */
u32 cow_page_flags(u64 frame, u32 flags);

#endif
