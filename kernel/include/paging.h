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

/* Linear-address width under 4-level paging (SDM Vol. 3A §4.5). */
#define VA_BITS 48
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

/* Bits of va that the table at `level` (and all above) uses. */
static inline u64 va_shift(int level)
{
	return PAGE_SHIFT + INDEX_BITS * (u64)(level - 1);
}

/* Index of va in its table at `level`. */
static inline u64 va_index(u64 va, int level)
{
	return (va >> va_shift(level)) & (TABLE_ENTRIES - 1);
}

/* The entry translating va at `level`, through the self-map (the tables above must be present). */
static inline volatile u64 *selfmap_entry(int level, u64 va)
{
	static const u64 base[] = {
		[LEVEL_PT] = SELFMAP_PT_BASE,
		[LEVEL_PD] = SELFMAP_PD_BASE,
		[LEVEL_PDPT] = SELFMAP_PDPT_BASE,
		[LEVEL_PML4] = SELFMAP_PML4,
	};
	return (volatile u64 *)(base[level] + ((va & VA_INDEX_MASK) >> va_shift(level)) * sizeof(u64));
}

/* The PTE of va (its PT must exist: check the levels above first). */
static inline volatile u64 *selfmap_pte(u64 va)
{
	return selfmap_entry(LEVEL_PT, va);
}

/* Physical frame an entry points at. */
static inline u64 pte_frame(u64 entry)
{
	return entry & PTE_ADDR_MASK;
}

/*
 * Walk va through the self-map. Returns the leaf entry (PTE, or a PS entry
 * of a large page) and its level through *level, or 0 with the level where
 * the walk met a non-present entry.
 */
u64 paging_walk(u64 va, int *level);

#endif
