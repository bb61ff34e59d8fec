/*
 * Address spaces: copy (kernel half shared, user half copied into new tables
 * made by faults through the other-space window), switch, drop, and their
 * unhappy paths. While another space is current, a test only records what
 * it sees: it asserts after switching back, so a failure cannot leave the
 * rest of the run in the wrong space.
 */
#include "test_vmm_util.h"
#include <image.h>
#include <ktest.h>
#include <pmm.h>
#include <string.h>
#include <vmm.h>

#define FAKE_PHYS 0x100000000ULL

static const u64 BASE = INDICES_VA(TSLOT_SPACE, 0, 0, 0);
static const u64 KBASE = HEAP_BASE + PML4_SLOT_SIZE / 2 + HUGE_PAGE_SIZE;

static u64 table_faults(void)
{
	struct vmm_stats s;
	vmm_get_stats(&s);
	return s.table_faults;
}

KTEST(vmm_space, current_is_cr3)
{
	KASSERT_EQ(current_page_map(), read_cr3() & PTE_ADDR_MASK);
	KASSERT(IS_ALIGNED(current_page_map(), PAGE_SIZE));
}

/* What a test saw inside another space. */
struct seen {
	pml4_t cr3;
	u64 self_frame;      /* frame PML4[RECURSIVE_SLOT] points at */
	bool other_slot;     /* PML4[OTHER_SLOT] present */
	u64 shared_word;     /* read through the copied mapping */
	int large_cmp;       /* memcmp of the copied large page against the kernel text */
	int private_map;     /* map_region of a page only this space has */
	u64 kernel_word;     /* read through a kernel-half page mapped after the copy */
};

KTEST(vmm_space, copy_switch_drop)
{
	u64 free0 = free_frames(), pa;
	pml4_t boot = current_page_map();
	u64 shared = frame_with_pattern(BASE, 0x5151), priv;
	KASSERT_EQ(pmm_alloc(&priv), 0);
	KASSERT_EQ(map_region(BASE, shared, 1, VMM_WRITE), 0);
	u64 text_phys = (u64)__text_start - KERNEL_VIRT_OFFSET;
	KASSERT_EQ(map_region(BASE + LARGE_PAGE_SIZE, ALIGN_DOWN(text_phys, LARGE_PAGE_SIZE), 1,
			      VMM_LARGE),
		   0);
	u64 free1 = free_frames(), faults1 = table_faults();
	pml4_t space = 0;
	KASSERT_EQ(copy_page_map(&space), 0);
	/* A PML4, and a PDPT, PD and PT made by faults in the other window; the large page shares the PD. */
	KASSERT_EQ(free1 - free_frames(), 4);
	KASSERT_EQ(table_faults() - faults1, 3);
	KASSERT_NE(space, boot);
	KASSERT(!pml4_present(OTHER_SLOT)); /* detached again */

	struct seen s;
	switch_page_map(space);
	s.cr3 = current_page_map();
	s.self_frame = pte_frame(((volatile u64 *)SELFMAP_PML4)[RECURSIVE_SLOT]);
	s.other_slot = pml4_present(OTHER_SLOT);
	s.shared_word = ((volatile u64 *)BASE)[3];
	((volatile u64 *)BASE)[4] = 0x77; /* same frame: the boot space sees it */
	s.large_cmp = memcmp((const void *)(BASE + LARGE_PAGE_SIZE + text_phys % LARGE_PAGE_SIZE),
			     __text_start, 64);
	s.private_map = map_region(BASE + PAGE_SIZE, priv, 1, VMM_WRITE);
	switch_page_map(boot);

	KASSERT_EQ(s.cr3, space);
	KASSERT_EQ(s.self_frame, space);
	KASSERT(!s.other_slot);
	KASSERT_EQ(s.shared_word, 0x5151 ^ 3);
	KASSERT_EQ(((volatile u64 *)BASE)[4], 0x77);
	KASSERT_EQ(s.large_cmp, 0);
	KASSERT_EQ(s.private_map, 0);
	KASSERT_EQ(virt_to_phys(BASE + PAGE_SIZE, &pa), -E_NOTMAPPED); /* not in this space */
	KASSERT_EQ(drop_page_map(space, 0), 0);
	KASSERT_EQ(free_frames(), free1);
	KASSERT_EQ(unmap_region(BASE, 2 * TABLE_ENTRIES, 0), 0);
	KASSERT_EQ(pmm_free(shared), 0);
	KASSERT_EQ(pmm_free(priv), 0);
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm_space, kernel_half_is_shared)
{
	u64 free0 = free_frames();
	pml4_t boot = current_page_map(), space;
	KASSERT_EQ(copy_page_map(&space), 0);
	/* Mapped after the copy, in a PD that did not exist: still seen by the copy. */
	u64 frame = frame_with_pattern(BASE, 0x4242);
	KASSERT_EQ(*selfmap_entry(LEVEL_PDPT, KBASE) & PTE_P, 0);
	KASSERT_EQ(map_region(KBASE, frame, 1, 0), 0);
	struct seen s;
	switch_page_map(space);
	s.kernel_word = ((volatile u64 *)KBASE)[9];
	switch_page_map(boot);
	KASSERT_EQ(s.kernel_word, 0x4242 ^ 9);
	KASSERT_EQ(unmap_region(KBASE, 1, VMM_FREE_FRAMES), 0);
	KASSERT_EQ(drop_page_map(space, 0), 0);
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm_space, drop_frees_frames_when_asked)
{
	u64 free0 = free_frames();
	pml4_t boot = current_page_map(), space;
	KASSERT_EQ(copy_page_map(&space), 0);
	u64 frames[3];
	for (int i = 0; i < 3; i++)
		KASSERT_EQ(pmm_alloc(&frames[i]), 0);
	int mapped[3];
	switch_page_map(space);
	/* Spread over two PDPTs: the drop releases every level. */
	mapped[0] = map_region(BASE, frames[0], 1, VMM_WRITE | VMM_USER);
	mapped[1] = map_region(BASE + HUGE_PAGE_SIZE, frames[1], 1, VMM_WRITE);
	mapped[2] = map_region(BASE + PML4_SLOT_SIZE, frames[2], 1, 0);
	switch_page_map(boot);
	for (int i = 0; i < 3; i++)
		KASSERT_EQ(mapped[i], 0);
	KASSERT(!pml4_present(TSLOT_SPACE)); /* none of it in this space */
	KASSERT_EQ(drop_page_map(space, VMM_FREE_FRAMES), 0);
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm_space, drop_errors)
{
	u64 free0 = free_frames();
	KASSERT_EQ(drop_page_map(current_page_map(), 0), -E_INVAL);
	KASSERT_EQ(drop_page_map(0, 0), -E_INVAL);
	pml4_t space;
	KASSERT_EQ(copy_page_map(&space), 0);
	KASSERT_EQ(drop_page_map(space + 8, 0), -E_INVAL);
	KASSERT_EQ(drop_page_map(space, 1u << 4), -E_INVAL);
	/* A frame that is no PML4 (its self-map slot does not point at itself) is refused, untouched. */
	u64 frame = frame_with_pattern(BASE, 0);
	KASSERT_EQ(drop_page_map(frame, 0), -E_INVAL);
	KASSERT(!pml4_present(OTHER_SLOT));
	KASSERT_EQ(pmm_free(frame), 0);
	KASSERT_EQ(drop_page_map(space, 0), 0);
	KASSERT_EQ(free_frames(), free0);
}

/* The current space dropped where it is loaded: every frame back, this CPU on `next`. */
KTEST(vmm_space, drop_current_frees_frames_and_switches)
{
	u64 free0 = free_frames();
	pml4_t boot = current_page_map(), space;
	/* The boot space is the image's: never destroyed; nor is a switch to itself a drop. */
	KASSERT_EQ(drop_current_page_map(KBASE, 0), -E_INVAL);
	KASSERT_EQ(drop_current_page_map(boot, 0), -E_INVAL);
	KASSERT_EQ(copy_page_map(&space), 0);
	u64 frames[3];
	for (int i = 0; i < 3; i++)
		KASSERT_EQ(pmm_alloc(&frames[i]), 0);
	int mapped[3], refused[4], dropped;
	switch_page_map(space);
	mapped[0] = map_region(BASE, frames[0], 1, VMM_WRITE | VMM_USER);
	mapped[1] = map_region(BASE + HUGE_PAGE_SIZE, frames[1], 1, VMM_WRITE);
	mapped[2] = map_region(BASE + PML4_SLOT_SIZE, frames[2], 1, 0);
	refused[0] = drop_current_page_map(space, 0);
	refused[1] = drop_current_page_map(0, 0);
	refused[2] = drop_current_page_map(boot + 8, 0);
	refused[3] = drop_current_page_map(boot, 1u << 4);
	pml4_t still = current_page_map();
	dropped = drop_current_page_map(boot, VMM_FREE_FRAMES);
	pml4_t now = current_page_map();
	if (now != boot)
		switch_page_map(boot);
	for (int i = 0; i < 3; i++)
		KASSERT_EQ(mapped[i], 0);
	for (int i = 0; i < 4; i++)
		KASSERT_EQ(refused[i], -E_INVAL);
	KASSERT_EQ(still, space);
	KASSERT_EQ(dropped, 0);
	KASSERT_EQ(now, boot);
	KASSERT(!pml4_present(TSLOT_SPACE));
	KASSERT(!pml4_present(OTHER_SLOT));
	KASSERT_EQ(free_frames(), free0);
}

/* More allocation sites than a copy of this space has: the campaign stops long before. */
#define MAX_SITES 64

/*
 * The copy needs a PML4, then a PDPT, PD and PT for the one user page:
 * fail each allocation in turn (fault injection, pmm.h). A failed copy
 * gives back everything it took and leaves the other-space window closed.
 */
KTEST(vmm_space, copy_out_of_frames)
{
	u64 free0 = free_frames(), sites = 0;
	KASSERT_EQ(map_region(BASE, FAKE_PHYS, 1, 0), 0);
	u64 free1 = free_frames();
	bool completed = false;
	for (u64 nth = 1; nth <= MAX_SITES && !completed; nth++) {
		u64 injected0 = pmm_inject_failures();
		pml4_t space = 0;
		pmm_inject_fail_nth(nth);
		int r = copy_page_map(&space);
		pmm_inject_off();
		completed = pmm_inject_failures() == injected0;
		u64 after = free_frames();
		if (r == 0)
			KASSERT_EQ(drop_page_map(space, 0), 0);
		KASSERT(!pml4_present(OTHER_SLOT));
		if (completed) {
			KASSERT_EQ(r, 0);
			KASSERT_EQ(after, free1 - 4);
			break;
		}
		sites++;
		KASSERT_EQ(r, -E_NOMEM);
		KASSERT_EQ(after, free1); /* nothing leaked on failure */
	}
	KASSERT(completed);
	KASSERT_EQ(sites, 4);
	KASSERT_EQ(unmap_region(BASE, 1, 0), 0);
	KASSERT_EQ(free_frames(), free0);
}
