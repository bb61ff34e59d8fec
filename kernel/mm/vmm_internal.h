/* What the VMM's files share: the entry writer, range walking, table release. */
#ifndef OUROBOROS_VMM_INTERNAL_H
#define OUROBOROS_VMM_INTERNAL_H

#include <cpu.h>
#include <paging.h>
#include <pte.h>
#include <smp.h>
#include <vmm.h>

/* Deepest nesting of table-creating faults: a missing PT, PD and PDPT (the PML4 always exists). */
#define MAX_TABLE_FAULT_DEPTH 3

/* Flags map_region and set_page_flags accept. */
#define VMM_PROT_FLAGS (VMM_WRITE | VMM_USER | VMM_EXEC | VMM_GLOBAL)

extern struct vmm_stats vmm_stats;

/*
 * Store value at entry (vmm_fault.c, in assembly): true, or false when the
 * store faulted for a missing page table, the #PF handler found no frame for
 * it and skipped the store through the fixup. Only pte_write_flush and
 * pte_run_install_new call it.
 */
MUST_CHECK bool vmm_entry_store(volatile u64 *entry, u64 value);

/*
 * The page-table write API's (pte.h) writers whose table may be missing:
 * the store faults it into existence through the #PF handler. false when
 * the store was skipped for want of a frame (nothing changed then).
 *
 * pte_write_flush: set the entry of `level` for va in window w, then
 * pte_flush into batch b (the entry may have been present).
 */
MUST_CHECK bool pte_write_flush(enum pt_window w, int level, u64 va, u64 value,
				struct tlb_batch *b);

/*
 * pte_run_install_new: pte_run_install (entry i, known not present, made
 * present: nothing to drop) where the run's table may be missing yet.
 */
static inline MUST_CHECK bool pte_run_install_new(const struct pte_run *r, u64 i, u64 value)
{
	return vmm_entry_store(&r->entry[i], value);
}

/* The entry linking the table in `frame` on va's path: P|W, U in the user half, never G or NX. */
static inline u64 table_link(u64 frame, u64 va)
{
	return frame | PTE_P | PTE_W | (va < USER_END ? PTE_U : 0);
}

/* Bytes from va to the end of the table at `level` that holds va's entry. */
static inline u64 table_left(u64 va, int level)
{
	u64 span = level_span(level + 1);
	return ALIGN_DOWN(va, span) + span - va;
}

/*
 * The first index in [i, n) whose entry of t is present, else n. Runs of
 * zero entries (every hole this kernel leaves) go by `repe scasq`, one
 * instruction an entry; a non-zero entry that is not present is passed over.
 */
static inline u64 table_next_present(volatile const u64 *t, u64 i, u64 n)
{
	while (i < n) {
		volatile const u64 *p = t + i;
		u64 left = n - i;
		bool nonzero;
		__asm__ volatile("repe scasq"
				 : "+D"(p), "+c"(left), "=@ccnz"(nonzero)
				 : "a"(0ULL)
				 : "memory");
		if (!nonzero)
			return n;
		/* scasq stopped past the first non-zero entry. */
		i = (u64)(p - t) - 1;
		if (t[i] & PTE_P)
			return i;
		i++;
	}
	return n;
}

/* One step of a range walk: the leaf at va (entry != 0), or the hole around it. */
struct range_step {
	u64 entry;  /* the leaf entry, 0 for a hole */
	int level;  /* the leaf's level, or the level of the missing entry */
	u64 start;  /* first address the leaf (or hole) covers */
	u64 size;   /* bytes it covers (a hole: one entry, or a run after range_step_skip_holes) */
};

/* Fill *s for va in window w. */
void range_step_at(enum pt_window w, u64 va, struct range_step *s);

/*
 * For a hole s at va (s->entry == 0): extend it over the not-present entries
 * that follow in the same table while they start below va + bytes, so a run
 * of holes costs one walk. [va, va + bytes) must not leave its half.
 */
void range_step_skip_holes(enum pt_window w, struct range_step *s, u64 va, u64 bytes);

/* Bytes from va to the end of step s (at most 2^63, so it never wraps). */
static inline u64 range_step_left(const struct range_step *s, u64 va)
{
	return s->start + s->size - va;
}

/*
 * When va's PT exists (s->level == LEVEL_PT, whether va's PTE is present or
 * not): the bytes of [va, va + bytes) its PTEs cover, which a caller may
 * handle entry by entry without walking again; else 0.
 */
static inline u64 range_step_pt_bytes(const struct range_step *s, u64 va, u64 bytes)
{
	if (s->level != LEVEL_PT)
		return 0;
	u64 left = table_left(va, LEVEL_PT);
	return left < bytes ? left : bytes;
}

/*
 * Clear the leaves of [va, va + bytes) in w (large pages must lie inside),
 * releasing tables that empty; with VMM_FREE_FRAMES give the frames back.
 * The changes go into batch b. Returns 0 or the first pmm_free error.
 */
MUST_CHECK int clear_range(enum pt_window w, u64 va, u64 bytes, u32 options,
			   struct tlb_batch *b);

/* Release the tables on va's path in w that are empty, bottom-up (into batch b). */
void release_empty_tables(enum pt_window w, u64 va, struct tlb_batch *b);

/*
 * The paging operations' lock (spinlock.h: LOCK_ORDER_VMM): every operation
 * that reads or writes page tables for a change (map_region, unmap_region,
 * set_page_flags, the space operations and the other-space window, the #PF
 * handler's table creation and demand-zero pages, the COW table and paths)
 * runs under it once a second CPU is up. It nests: an operation may call
 * another on the same CPU (a demand-zero fault maps a page; the COW table
 * grows with map_region). vmm_lock_take returns whether it took it, for
 * vmm_lock_drop.
 */
bool vmm_lock_take_smp(void);
void vmm_lock_drop_smp(void);

static inline bool vmm_lock_take(void)
{
	return __builtin_expect(smp_cpu_count() >= 2, 0) ? vmm_lock_take_smp() : false;
}

static inline void vmm_lock_drop(bool taken)
{
	if (__builtin_expect(taken, 0))
		vmm_lock_drop_smp();
}

/* True when this CPU holds the paging lock (always true with one CPU up: nothing races then). */
bool vmm_lock_held(void);

/* The batch space for changes of the current space at va: the kernel half, or this space's user half. */
static inline u64 vmm_batch_space(u64 va)
{
	return va >= KERNEL_HALF_START ? TLB_KERNEL : TLB_CURRENT;
}

/*
 * Keep the page tables (PT, PD) over the kernel range [va, va + bytes) once
 * they exist: never released when they empty, so unmapping a page there
 * changes one PTE, never a table (no table round for idle CPUs, tlb.c).
 * For a window whose pages come and go; its tables are made by the caller.
 * 0, -E_INVAL, or -E_NOSPC when KEPT_RANGES ranges are kept already.
 */
int vmm_keep_tables(u64 va, u64 bytes);

/* True for a frame of the kernel image (boot tables): never handed to the PMM. */
bool frame_in_image(u64 frame);

/* True when a new PDPT may be created for kernel-half PML4 slot `slot`. */
bool kernel_slot_may_grow(u64 slot);

/*
 * The one address-range check of the API: -E_ALIGN (va not aligned to
 * size), -E_CANON (non-canonical, wrapping, larger than a half or leaving
 * its half) or -E_SELFMAP (touches a page-table window: the self-map or the
 * other-space window) for [va, va + n*size), else 0 (n > 0).
 */
static inline int vmm_check_range(u64 va, u64 n, u64 size)
{
	if (!IS_ALIGNED(va, size))
		return -E_ALIGN;
	/* No range may be larger than a half of the address space. */
	if (!va_is_canonical(va) || n > USER_END / size)
		return -E_CANON;
	u64 last = va + n * size - 1;
	if (last < va || (va < USER_END && last >= USER_END))
		return -E_CANON;
	bool hits_self = va <= SELFMAP_END - 1 && last >= SELFMAP_BASE;
	bool hits_other = va <= OTHER_PT_END - 1 && last >= OTHER_PT_BASE;
	return hits_self || hits_other ? -E_SELFMAP : 0;
}

/* Zero the 4 KiB page at `page` (mapped, writable): new tables and demand-zero frames. */
void vmm_zero_page(void *page);

/*
 * Zero frame through cow.c's scratch page (paging lock held): true, or
 * false when the scratch page's table is not made yet (before cow_init, or
 * it found no frame) or a test turned it off (cow_test_scratch_off). A new
 * table's frame is zeroed so before the entry that links it is made present
 * (SDM 4.10.4: a walk may cache any present entry, speculatively too); when
 * this says false, the caller links it, then calls table_zero_linked.
 */
bool scratch_zero_frame(u64 frame);

/*
 * The fallback when scratch_zero_frame says false: zero the table just linked at
 * window address `table`, then drop on every CPU what a walk may have cached
 * from its old contents meanwhile (any page and table under it: a CR3
 * reload here and a full table round elsewhere). Paging lock held.
 */
void table_zero_linked(void *table);

/* True while PML4[OTHER_SLOT] shows another space (vmm_space.c). */
bool vmm_other_attached(void);

/*
 * A new space with the kernel half shared and an empty user half, attached
 * in the other window for its caller to fill (WINDOW_OTHER): 0 and *out,
 * or -E_NOMEM. other_space_close must follow.
 */
MUST_CHECK int other_space_open(pml4_t *out);

/*
 * Detach the space other_space_open gave; when err is not 0 (the caller
 * failed to fill it), first remove its user half's tables (not the frames
 * they map) and free it. Returns err.
 */
int other_space_close(pml4_t space, int err);

/*
 * Make the PT for va in the attached other space, which has none yet, with
 * the PDPT and PD above it where they are missing (zeroed, as the #PF
 * handler makes them, without the fault). With zero false the PT is NOT
 * zeroed: the caller stores every one of its entries before anything walks
 * it, and nothing does meanwhile (the other space is loaded on no CPU, so
 * to the CPU its PTs are data pages of the window). true, or false when
 * frames were missing (nothing changed).
 */
MUST_CHECK bool other_pt_new(u64 va, bool zero);

#endif
