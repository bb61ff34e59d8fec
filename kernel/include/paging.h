/*
 * 4-level paging as seen through the self-map (Intel SDM Vol. 3A §4.5).
 *
 * PML4[RECURSIVE_SLOT] points at the PML4 itself, so every paging structure
 * of the current address space is visible at a fixed virtual address: the
 * entry that translates `va` at level L lies at SELFMAP_<L>_BASE plus the
 * index bits of va above that level, times the entry size.
 */
#ifndef OUROBOROS_PAGING_H
#define OUROBOROS_PAGING_H

#include <layout.h>
#include <types.h>

/* The bits of a linear address that index the paging structures. */
#define VA_INDEX_MASK ((1ULL << VA_BITS) - 1)

/* Paging levels, numbered as layout.ts does: 1 = PT .. 4 = PML4. */
#define LEVEL_PT 1
#define LEVEL_PD 2
#define LEVEL_PDPT 3
#define LEVEL_PML4 4

/* #PF error-code bits (SDM Vol. 3A §4.7). */
#define PF_ERR_P (1ULL << 0)    /* 0: not present, 1: protection violation */
#define PF_ERR_W (1ULL << 1)    /* the access was a write */
#define PF_ERR_U (1ULL << 2)    /* the access was from user mode */
#define PF_ERR_RSVD (1ULL << 3) /* a reserved bit was set in an entry */
#define PF_ERR_I (1ULL << 4)    /* the access was an instruction fetch */

/* Bits of va below the index of `level` (12, 21, 30, 39). */
#define LEVEL_SHIFT(level) (PAGE_SHIFT + INDEX_BITS * ((level) - 1))

/* Bits of va that the table at `level` (and all above) uses. */
static inline u64 va_shift(int level)
{
	return LEVEL_SHIFT(level);
}

/* Bytes one entry at `level` maps: 4 KiB, 2 MiB, 1 GiB, 512 GiB. */
static inline u64 level_span(int level)
{
	return 1ULL << va_shift(level);
}

/* Sign-extend bit 47 of a 48-bit linear address: its canonical form. */
#define CANONICAL_VA(a) ((u64)((i64)((u64)(a) << (64 - VA_BITS)) >> (64 - VA_BITS)))

/* The canonical address with these PML4, PDPT, PD and PT indices. */
#define INDICES_VA(i4, i3, i2, i1)                                                       \
	CANONICAL_VA(((u64)(i4) << LEVEL_SHIFT(4)) | ((u64)(i3) << LEVEL_SHIFT(3)) |      \
		     ((u64)(i2) << LEVEL_SHIFT(2)) | ((u64)(i1) << LEVEL_SHIFT(1)))

/* True when bits 63..47 of va are all equal (SDM Vol. 1 §3.3.7.1). */
static inline bool va_is_canonical(u64 va)
{
	return CANONICAL_VA(va) == va;
}

/*
 * The second recursive slot: while a non-current address space is being
 * copied or dropped, PML4[OTHER_SLOT] of the current space points at that
 * space's PML4 (the MetalSVM "other" self-reference). Its tables then appear
 * in a second window: its PTs at OTHER_PT_BASE (slot OTHER_SLOT), its PDs,
 * PDPTs and PML4 inside the self-map window, one R replaced by OTHER_SLOT.
 * OTHER_SLOT comes from linker/layout.ts, next to the other slots.
 */
#define OTHER_PT_BASE INDICES_VA(OTHER_SLOT, 0, 0, 0)
#define OTHER_PT_END (OTHER_PT_BASE + PML4_SLOT_SIZE)
#define OTHER_PD_BASE INDICES_VA(RECURSIVE_SLOT, OTHER_SLOT, 0, 0)
#define OTHER_PDPT_BASE INDICES_VA(RECURSIVE_SLOT, RECURSIVE_SLOT, OTHER_SLOT, 0)
#define OTHER_PML4 INDICES_VA(RECURSIVE_SLOT, RECURSIVE_SLOT, RECURSIVE_SLOT, OTHER_SLOT)

_Static_assert(INDICES_VA(RECURSIVE_SLOT, 0, 0, 0) == SELFMAP_PT_BASE, "self-map PT window");
_Static_assert(INDICES_VA(RECURSIVE_SLOT, RECURSIVE_SLOT, 0, 0) == SELFMAP_PD_BASE, "PD window");
_Static_assert(INDICES_VA(RECURSIVE_SLOT, RECURSIVE_SLOT, RECURSIVE_SLOT, 0) == SELFMAP_PDPT_BASE,
	       "PDPT window");
_Static_assert(INDICES_VA(RECURSIVE_SLOT, RECURSIVE_SLOT, RECURSIVE_SLOT, RECURSIVE_SLOT) ==
		       SELFMAP_PML4, "PML4 page");
_Static_assert(OTHER_SLOT >= KERNEL_FIRST_SLOT && OTHER_SLOT != KERNEL_PML4_SLOT &&
		       OTHER_SLOT != PMM_STACK_SLOT && OTHER_SLOT != HEAP_SLOT,
	       "the other slot must be a free kernel-half PML4 slot");

/* The two page-table windows: the current space's own, and the other space's. */
enum pt_window { WINDOW_SELF, WINDOW_OTHER };

/* Base of `window`'s view of all tables at `level`. */
static inline u64 window_base(enum pt_window w, int level)
{
	static const u64 base[2][LEVEL_PML4 + 1] = {
		[WINDOW_SELF] = {0, SELFMAP_PT_BASE, SELFMAP_PD_BASE, SELFMAP_PDPT_BASE, SELFMAP_PML4},
		[WINDOW_OTHER] = {0, OTHER_PT_BASE, OTHER_PD_BASE, OTHER_PDPT_BASE, OTHER_PML4},
	};
	return base[w][level];
}

/* Address of the entry translating va at `level` in the space `w` shows. */
static inline u64 window_entry_addr(enum pt_window w, int level, u64 va)
{
	return window_base(w, level) + ((va & VA_INDEX_MASK) >> va_shift(level)) * sizeof(u64);
}

/*
 * The entry translating va at `level` in the space `w` shows (its tables
 * above must be present), to read: entries are written only through pte.h,
 * which applies the TLB rule with every store.
 */
static inline volatile const u64 *window_entry(enum pt_window w, int level, u64 va)
{
	return (volatile const u64 *)window_entry_addr(w, level, va);
}

/* True when va lies in the self-map window (all of the current space's tables). */
static inline bool in_selfmap(u64 va)
{
	return va >= SELFMAP_BASE && va < SELFMAP_END;
}

/*
 * The page an entry maps when the CPU uses it as a PTE, for an entry inside
 * the self-map window: for a PTE the page it translates, for a table entry
 * the window page where its child table appears. (The self-map shifts the
 * indices by one level, so the entry is the PTE of that page.)
 */
static inline u64 selfmap_leaf_va(volatile const u64 *entry)
{
	return CANONICAL_VA(((u64)entry - SELFMAP_PT_BASE) << (LEVEL_SHIFT(1) - 3));
}

/* Index of va in its table at `level`. */
static inline u64 va_index(u64 va, int level)
{
	return (va >> va_shift(level)) & (TABLE_ENTRIES - 1);
}

/* The entry translating va at `level`, through the self-map (the tables above must be present). */
static inline volatile const u64 *selfmap_entry(int level, u64 va)
{
	return window_entry(WINDOW_SELF, level, va);
}

/* The PTE of va (its PT must exist: check the levels above first). */
static inline volatile const u64 *selfmap_pte(u64 va)
{
	return selfmap_entry(LEVEL_PT, va);
}

/* Physical frame an entry points at. */
static inline u64 pte_frame(u64 entry)
{
	return entry & PTE_ADDR_MASK;
}

/*
 * True when the present entry e at `level` maps a page rather than a table:
 * a PTE, or a PS entry of a PD (2 MiB) or PDPT (1 GiB). (PS is reserved in
 * a PML4 entry.)
 */
static inline bool pte_is_leaf(u64 e, int level)
{
	return level == LEVEL_PT || ((level == LEVEL_PD || level == LEVEL_PDPT) && (e & PTE_PS));
}

/*
 * Walk va in window w. Returns the leaf entry (PTE, or a PS entry of a
 * large page) and its level through *level, or 0 with the level where the
 * walk met a non-present entry.
 */
u64 window_walk(enum pt_window w, u64 va, int *level);

/* window_walk of the current space. */
static inline u64 paging_walk(u64 va, int *level)
{
	return window_walk(WINDOW_SELF, va, level);
}

/* What the CPU's paging offers, read once (paging.c); use the accessors below. */
struct paging_caps {
	bool known;
	bool huge;      /* 1 GiB pages */
	u64 nx;         /* PTE_NX or 0 */
	u64 phys_limit; /* 1 << MAXPHYADDR */
};
extern struct paging_caps paging_caps;

/* Fill paging_caps from CPUID and EFER (they never change after boot). */
void paging_caps_init(void);

/* paging_caps, filled on first use (inline: map_region and the #PF handler read them each call). */
static inline const struct paging_caps *paging_caps_get(void)
{
	if (!paging_caps.known)
		paging_caps_init();
	return &paging_caps;
}

/* PTE_NX when EFER.NXE is on (boot.asm sets it where CPUID has NX), else 0: bit 63 is reserved then. */
static inline u64 paging_nx_bit(void)
{
	return paging_caps_get()->nx;
}

/* The physical-address limit, 1 << MAXPHYADDR: no entry may map a frame at or above it. */
static inline u64 paging_phys_limit(void)
{
	return paging_caps_get()->phys_limit;
}

/* True when the CPU has 1 GiB pages (CPUID.80000001H:EDX.Page1GB[bit 26]). */
static inline bool paging_has_huge_pages(void)
{
	return paging_caps_get()->huge;
}

#endif
