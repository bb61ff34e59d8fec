/* Helpers shared by the VMM's tests: PMM counts, entry reads, a hold on free frames. */
#include "test_vmm_util.h"
#include <panic.h>
#include <pmm.h>
#include <vmm.h>

/* Frame numbers one holder page lists. */
#define HOLD_PER_PAGE (PAGE_SIZE / sizeof(u64))

u64 free_frames(void)
{
	struct pmm_stats s;
	pmm_get_stats(&s);
	return s.free;
}

u64 leaf_of(u64 va, int *level)
{
	int l;
	u64 e = paging_walk(va, &l);
	if (level)
		*level = l;
	return e;
}

bool pml4_present(u64 slot)
{
	return *selfmap_entry(LEVEL_PML4, INDICES_VA(slot, 0, 0, 0)) & PTE_P;
}

/* Holder page k. */
static volatile u64 *hold_page(u64 k)
{
	return (volatile u64 *)(HOLD_VA + k * PAGE_SIZE);
}

/* List frame, or make it the next holder page when the last one is full. 0 or an error. */
static int hold_push(struct frame_hold *h, u64 frame)
{
	if (h->count < h->pages * HOLD_PER_PAGE) {
		hold_page(h->count / HOLD_PER_PAGE)[h->count % HOLD_PER_PAGE] = frame;
		h->count++;
		return 0;
	}
	int err = map_region((u64)hold_page(h->pages), frame, 1, VMM_WRITE);
	if (err == 0)
		h->pages++;
	if (err == -E_NOMEM && !h->spare) {
		h->spare = frame; /* no frame was left for the holder page's table */
		err = 0;
	}
	return err;
}

int hold_all(struct frame_hold *h)
{
	*h = (struct frame_hold){0};
	u64 frame;
	while (pmm_alloc(&frame) == 0) {
		int err = hold_push(h, frame);
		if (err) {
			MUST(pmm_free(frame) == 0);
			return err;
		}
	}
	return 0;
}

u64 hold_release(struct frame_hold *h, u64 n)
{
	u64 done = 0;
	if (n && h->spare) {
		MUST(pmm_free(h->spare) == 0);
		h->spare = 0;
		done++;
	}
	for (; done < n && h->count; done++) {
		h->count--;
		u64 frame = hold_page(h->count / HOLD_PER_PAGE)[h->count % HOLD_PER_PAGE];
		MUST(pmm_free(frame) == 0);
	}
	return done;
}

u64 hold_take(struct frame_hold *h, u64 n)
{
	u64 done = 0, frame;
	for (; done < n && pmm_alloc(&frame) == 0; done++)
		MUST(hold_push(h, frame) == 0);
	return done;
}

void hold_release_all(struct frame_hold *h)
{
	hold_release(h, h->count + 1);
	if (h->pages)
		MUST(unmap_region(HOLD_VA, h->pages, VMM_FREE_FRAMES) == 0);
	h->pages = 0;
}

u64 frame_with_pattern(u64 va, u64 pattern)
{
	u64 frame;
	MUST(pmm_alloc(&frame) == 0);
	MUST(map_region(va, frame, 1, VMM_WRITE) == 0);
	for (u64 i = 0; i < PAGE_SIZE / sizeof(u64); i++)
		((volatile u64 *)va)[i] = pattern ^ i;
	MUST(unmap_region(va, 1, 0) == 0);
	return frame;
}
