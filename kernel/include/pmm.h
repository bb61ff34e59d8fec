/*
 * The physical frame allocator: free frames kept on a stack in the
 * PMM_STACK_BASE region, no bitmap and no per-frame array. The stack grows
 * by turning a frame being freed into its next page, and shrinks by handing
 * out a page that has emptied. alloc and free are O(1).
 */
#ifndef OUROBOROS_PMM_H
#define OUROBOROS_PMM_H

#include <types.h>

/* Counters, in frames. Invariant: total == free + used. */
struct pmm_stats {
	u64 total; /* RAM frames the allocator manages (stack pages included) */
	u64 free;  /* frames on the stack, plus the stack pages themselves */
	u64 used;  /* frames handed out and not yet freed */
};

/* Build the allocator from the sanitized firmware memory map in boot_info. Panics only on a broken invariant. */
void pmm_init(void);

/* Take one frame: 0 and *frame set, or -E_NOMEM with the allocator unchanged. */
int pmm_alloc(u64 *frame);

/*
 * Give a frame back: 0, or -E_INVAL for a frame that is misaligned, outside
 * managed RAM or part of the kernel/boot data (nothing changes then), or
 * -E_DOUBLE (debug builds) for a frame already free.
 */
int pmm_free(u64 frame);

/* Current counters. */
void pmm_get_stats(struct pmm_stats *out);

#endif
