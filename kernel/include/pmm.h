/*
 * The physical frame allocator: free frames kept on a stack in the
 * PMM_STACK_BASE region, no bitmap and no per-frame array. The stack grows
 * by turning a frame being freed into its next page, and shrinks by handing
 * out a page that has emptied. alloc and free are O(1).
 */
#ifndef OUROBOROS_PMM_H
#define OUROBOROS_PMM_H

#include <types.h>

/*
 * Double-free detection (pmm.c says how, and its limits). It costs O(1) per
 * call and writes only into frames that are free, so it is on in every
 * build but the benchmark's (-DOUROBOROS_BENCH measures the allocator as a
 * release build would have it); building with -DPMM_NO_DEBUG removes it.
 */
#if !defined(PMM_NO_DEBUG) && !defined(OUROBOROS_BENCH)
#define PMM_DEBUG 1
#endif

/* Counters, in frames. Invariant: total == free + used. */
struct pmm_stats {
	u64 total; /* RAM frames the allocator manages (stack pages included) */
	u64 free;  /* frames on the stack, plus the stack pages themselves */
	u64 used;  /* frames handed out and not yet freed */
};

/* Build the allocator from the sanitized firmware memory map in boot_info. Panics only on a broken invariant. */
void pmm_init(void);

/* Take one frame: 0 and *frame set, or -E_NOMEM with the allocator unchanged. */
MUST_CHECK int pmm_alloc(u64 *frame);

/*
 * Give a frame back: 0, or -E_INVAL for a frame that is misaligned, outside
 * managed RAM or part of the kernel/boot data (nothing changes then), or
 * -E_DOUBLE for a frame already free: in every build when every frame is
 * free already, and with PMM_DEBUG (all builds but the benchmark's) for any
 * frame found free (pmm.c says how, and its limits).
 */
MUST_CHECK int pmm_free(u64 frame);

/* Current counters. */
void pmm_get_stats(struct pmm_stats *out);

/* The shape of the free-frame stack (for tests and diagnostics). */
struct pmm_stack_info {
	u64 depth;        /* entries on the stack */
	u64 pages;        /* stack pages mapped (each is a free frame too) */
	u64 per_page;     /* entries one stack page holds */
	u64 page0;        /* virtual address of stack page 0; page k is k pages above */
	u64 table_frames; /* frames the region's page tables took at init (never managed) */
};

/* Current stack shape. */
void pmm_get_stack_info(struct pmm_stack_info *out);

struct memmap;
/* The sanitized and carved memory map the allocator was built from. */
const struct memmap *pmm_memmap(void);

#endif
