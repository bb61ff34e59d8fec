/* Helpers shared by the VMM's tests: PMM counts, entry reads, frames with a pattern. */
#include "test_vmm_util.h"
#include <panic.h>
#include <pmm.h>
#include <vmm.h>

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
