/*
 * The physical frame allocator: free frames kept on a stack in the
 * PMM_STACK_BASE region, no per-frame array. The stack grows by turning a
 * frame being freed into its next page, and shrinks by handing out a page
 * that has emptied. alloc and free are O(1).
 */
#ifndef OUROBOROS_PMM_H
#define OUROBOROS_PMM_H

#include <types.h>

/*
 * Double-free detection: a bitmap with one bit per managed frame, set while
 * the frame is free (pmm.c says how). It is exact, costs O(1) per call and
 * frames/8 bytes of RAM (4 KiB per 128 MiB), so it is on in every build but
 * the benchmark's (-DOUROBOROS_BENCH measures the allocator as a release
 * build would have it); building with -DPMM_NO_DEBUG removes it and its
 * memory.
 */
#if !defined(PMM_NO_DEBUG) && !defined(OUROBOROS_BENCH)
#define PMM_DEBUG 1
#endif

/* Counters, in frames. Invariant: total == free + used. */
struct pmm_stats {
	u64 total; /* RAM frames the allocator manages (stack pages included) */
	u64 free;  /* frames on the stack, plus the stack pages themselves */
	u64 used;  /* frames handed out and not yet freed */
	u64 reserved; /* free frames set aside by pmm_reserve (included in free) */
};

/* Build the allocator from the sanitized firmware memory map in boot_info. Panics only on a broken invariant. */
void pmm_init(void);

/*
 * Take one frame: 0 and *frame set, or -E_NOMEM with the allocator unchanged
 * (also when only reserved frames are left).
 */
MUST_CHECK int pmm_alloc(u64 *frame);

/*
 * Set n free frames aside for later pmm_alloc_reserved calls (copy-on-write
 * faults must not fail): 0, or -E_NOMEM with nothing reserved.
 */
MUST_CHECK int pmm_reserve(u64 n);

/* Give n reserved frames back to the common pool (panics if fewer are reserved). */
void pmm_unreserve(u64 n);

/* Take one of the reserved frames (panics if none is reserved: a broken invariant). */
u64 pmm_alloc_reserved(void);

/*
 * Give a frame back: 0, or -E_INVAL for a frame that is misaligned, outside
 * managed RAM or part of the kernel/boot data (nothing changes then), or
 * -E_DOUBLE for a frame already free (nothing changes then): in every build
 * when every frame is free already, and with PMM_DEBUG (all builds but the
 * benchmark's) for any free frame, stack pages included.
 */
MUST_CHECK int pmm_free(u64 frame);

/* True when frame is RAM the allocator manages (not the kernel's image or boot data). */
bool pmm_manages(u64 frame);

/* Current counters. */
void pmm_get_stats(struct pmm_stats *out);

/* Free frames now (pmm_get_stats' free, for leak checks: compare before and after). */
u64 pmm_nr_free(void);

/*
 * Fault injection (Linux's fail_page_alloc): make pmm_alloc return -E_NOMEM,
 * changing nothing, as if memory had run out, so out-of-memory paths can be
 * tested at every allocation site without exhausting RAM. One mode at a
 * time; setting one replaces the last. Every pmm_alloc call counts, whether
 * or not a real frame was left. The kernel command line sets one at boot
 * (after the memory manager is up) with pmm.fail=nth:N, budget:N or
 * random:SEED:PERMILLE.
 */
/* The n-th pmm_alloc from now (1: the next one) fails, once; then injection is off. n == 0: off. */
void pmm_inject_fail_nth(u64 n);
/* The next n pmm_allocs behave normally; every one after fails until pmm_inject_off. */
void pmm_inject_budget(u64 n);
/* Each pmm_alloc fails with probability permille/1000, the same sequence for the same seed. */
void pmm_inject_random(u64 seed, u32 permille);
/* No more injected failures. */
void pmm_inject_off(void);
/* True while a mode is set (a fired fail_nth is off again). */
bool pmm_inject_active(void);
/* Failures injected since boot: an operation reached the failing allocation iff this grew. */
u64 pmm_inject_failures(void);
/* Set a mode from a pmm.fail= value (nth:N, budget:N, random:SEED:PERMILLE): 0 or -E_INVAL. */
int pmm_inject_parse(const char *spec);

/* The shape of the free-frame stack (for tests and diagnostics). */
struct pmm_stack_info {
	u64 depth;        /* entries on the stack */
	u64 pages;        /* stack pages mapped (each is a free frame too) */
	u64 per_page;     /* entries one stack page holds */
	u64 page0;        /* virtual address of stack page 0; page k is k pages above */
	u64 table_frames; /* frames the region's page tables took at init (never managed) */
	u64 bitmap;       /* virtual address of the double-free bitmap; 0 without PMM_DEBUG */
	u64 bitmap_frames; /* frames the bitmap took at init (never managed); 0 without PMM_DEBUG */
};

/* Current stack shape. */
void pmm_get_stack_info(struct pmm_stack_info *out);

struct memmap;
/* The sanitized and carved memory map the allocator was built from. */
const struct memmap *pmm_memmap(void);

#endif
