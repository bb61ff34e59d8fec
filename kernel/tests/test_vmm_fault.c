/*
 * The #PF handler: page tables created by faults (counted, nested three
 * deep), released bottom-up when they empty, out-of-frames (injected at
 * each allocation in turn) turned into -E_NOMEM with everything rolled
 * back, demand-zero pages, and the faults it must refuse (guard page,
 * unregistered addresses, reads of missing tables); new tables zeroed
 * without the COW scratch page too (the fallback of early boot).
 */
#include "test_vmm_util.h"
#include <cow.h>
#include <image.h>
#include <ktest.h>
#include <panic.h>
#include <pmm.h>
#include <string.h>
#include <trap.h>
#include <vmm.h>

#define FAKE_PHYS 0x100000000ULL

static const u64 BASE = INDICES_VA(TSLOT_FAULT, 0, 0, 0);

/* Table faults since boot. */
static u64 table_faults(void)
{
	struct vmm_stats s;
	vmm_get_stats(&s);
	return s.table_faults;
}

KTEST(vmm_fault, tables_created_by_nested_faults)
{
	u64 free0 = free_frames(), faults0 = table_faults();
	KASSERT(!pml4_present(TSLOT_FAULT));
	/* Nothing below the PML4: the PTE store faults, then its PDE, then its PDPTE. */
	KASSERT_EQ(map_region(BASE, FAKE_PHYS, 1, 0), 0);
	KASSERT_EQ(table_faults() - faults0, 3);
	struct vmm_stats s;
	vmm_get_stats(&s);
	KASSERT_EQ(s.max_depth, 3);
	KASSERT_EQ(free_frames(), free0 - 3);
	/* Same PT: no fault. Next PT: one. Next PD: two. Next PDPT (next PML4 slot): three. */
	KASSERT_EQ(map_region(BASE + PAGE_SIZE, FAKE_PHYS, 1, 0), 0);
	KASSERT_EQ(table_faults() - faults0, 3);
	KASSERT_EQ(map_region(BASE + LARGE_PAGE_SIZE, FAKE_PHYS, 1, 0), 0);
	KASSERT_EQ(table_faults() - faults0, 4);
	KASSERT_EQ(map_region(BASE + HUGE_PAGE_SIZE, FAKE_PHYS, 1, 0), 0);
	KASSERT_EQ(table_faults() - faults0, 6);
	KASSERT_EQ(map_region(BASE + PML4_SLOT_SIZE, FAKE_PHYS, 1, 0), 0);
	KASSERT_EQ(table_faults() - faults0, 9);
	KASSERT_EQ(free_frames(), free0 - 9);
	/* User-half tables carry U (the leaf decides), and P|W. */
	KASSERT_EQ(*selfmap_entry(LEVEL_PD, BASE) & (PTE_P | PTE_W | PTE_U), PTE_P | PTE_W | PTE_U);
	KASSERT_EQ(*selfmap_entry(LEVEL_PML4, BASE) & (PTE_P | PTE_W | PTE_U), PTE_P | PTE_W | PTE_U);
	/* A fresh table is zeroed: the neighbours of the one PTE written are empty. */
	KASSERT_EQ(*selfmap_pte(BASE + HUGE_PAGE_SIZE + PAGE_SIZE), 0);
	KASSERT_EQ(*selfmap_entry(LEVEL_PD, BASE + HUGE_PAGE_SIZE + LARGE_PAGE_SIZE), 0);
	KASSERT_EQ(unmap_region(BASE, 2 * PML4_SLOT_SIZE / PAGE_SIZE, 0), 0);
	KASSERT(!pml4_present(TSLOT_FAULT));
	KASSERT(!pml4_present(TSLOT_FAULT + 1));
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm_fault, kernel_tables_have_no_user_bit)
{
	u64 kva = HEAP_BASE + PML4_SLOT_SIZE / 4;
	KASSERT_EQ(map_region(kva, FAKE_PHYS, 1, 0), 0);
	KASSERT_EQ(*selfmap_entry(LEVEL_PD, kva) & (PTE_P | PTE_W | PTE_U), PTE_P | PTE_W);
	KASSERT_EQ(*selfmap_entry(LEVEL_PDPT, kva) & (PTE_P | PTE_W | PTE_U), PTE_P | PTE_W);
	KASSERT_EQ(unmap_region(kva, 1, 0), 0);
}

KTEST(vmm_fault, release_bottom_up)
{
	u64 free0 = free_frames();
	struct vmm_stats s0, s1;
	vmm_get_stats(&s0);
	/* Two PTs under one PD. */
	KASSERT_EQ(map_region(BASE, FAKE_PHYS, 2, 0), 0);
	KASSERT_EQ(map_region(BASE + LARGE_PAGE_SIZE, FAKE_PHYS, 1, 0), 0);
	KASSERT_EQ(free_frames(), free0 - 4);
	/* Half of the first PT: it stays. */
	KASSERT_EQ(unmap_region(BASE, 1, 0), 0);
	KASSERT(*selfmap_entry(LEVEL_PD, BASE) & PTE_P);
	/* All of it: the PT goes, the PD (still holding the other PT) stays. */
	KASSERT_EQ(unmap_region(BASE + PAGE_SIZE, 1, 0), 0);
	KASSERT_EQ(*selfmap_entry(LEVEL_PD, BASE) & PTE_P, 0);
	KASSERT(*selfmap_entry(LEVEL_PDPT, BASE) & PTE_P);
	KASSERT_EQ(free_frames(), free0 - 3);
	/* The last page: PT, PD, PDPT go, bottom-up, and the PML4 entry is cleared. */
	KASSERT_EQ(unmap_region(BASE + LARGE_PAGE_SIZE, 1, 0), 0);
	KASSERT(!pml4_present(TSLOT_FAULT));
	vmm_get_stats(&s1);
	KASSERT_EQ(s1.tables_released - s0.tables_released, 4);
	KASSERT_EQ(free_frames(), free0);
}

/* 16 pages across two PTs of a fresh slot: a PDPT, a PD and two PTs, so four allocations. */
#define OOM_VA (BASE + LARGE_PAGE_SIZE - 8 * PAGE_SIZE)
#define OOM_PAGES 16
/* More allocation sites than any operation here has: the campaigns stop long before. */
#define MAX_SITES 64

/* True when any page of [OOM_VA, +OOM_PAGES) is mapped. */
static bool oom_range_mapped(void)
{
	u64 pa;
	bool any = false;
	for (u64 i = 0; i < OOM_PAGES; i++)
		any |= virt_to_phys(OOM_VA + i * PAGE_SIZE, &pa) == 0;
	return any;
}

/*
 * Fail each allocation of the map in turn (fault injection, pmm.h): the
 * PDPT, PD and PT made by nested faults, then the second PT after the
 * first PT's pages were written. Each failure must leave nothing mapped and
 * no table behind; the run without a failure maps everything.
 */
KTEST(vmm_fault, oom_in_map_region_rolls_back)
{
	u64 free0 = free_frames(), sites = 0;
	struct vmm_stats s0, s1;
	vmm_get_stats(&s0);
	bool completed = false;
	for (u64 nth = 1; nth <= MAX_SITES && !completed; nth++) {
		u64 injected0 = pmm_inject_failures();
		pmm_inject_fail_nth(nth);
		int r = map_region(OOM_VA, FAKE_PHYS, OOM_PAGES, 0);
		pmm_inject_off();
		/* Fewer than nth allocations: it completed. */
		completed = pmm_inject_failures() == injected0;
		bool mapped = oom_range_mapped();
		if (completed) {
			if (r == 0)
				KASSERT_EQ(unmap_region(OOM_VA, OOM_PAGES, 0), 0);
			KASSERT_EQ(r, 0);
			KASSERT(mapped);
			KASSERT_EQ(free_frames(), free0);
			break;
		}
		sites++;
		KASSERT_EQ(r, -E_NOMEM);
		KASSERT(!mapped);                    /* the first PT's pages were unmapped again */
		/* Every table made on the way was given back. */
		KASSERT(!pml4_present(TSLOT_FAULT));
		KASSERT_EQ(free_frames(), free0);
	}
	KASSERT(completed);
	KASSERT_EQ(sites, 4);
	vmm_get_stats(&s1);
	KASSERT_EQ(s1.oom_fixups - s0.oom_fixups, 4);
	KASSERT(!pml4_present(TSLOT_FAULT));
}

/* Unmap, flag changes and dropping a space only give frames back: with none left, all complete. */
KTEST(vmm_fault, unmap_flags_and_drop_need_no_frames)
{
	u64 free0 = free_frames();
	KASSERT_EQ(map_region(OOM_VA, FAKE_PHYS, OOM_PAGES, VMM_WRITE), 0);
	KASSERT_EQ(map_region(BASE + HUGE_PAGE_SIZE, FAKE_PHYS, 1, 0), 0);
	pml4_t space = 0;
	KASSERT_EQ(copy_page_map(&space), 0);
	u64 injected0 = pmm_inject_failures();
	pmm_inject_budget(0);
	int flags = set_page_flags(OOM_VA, OOM_PAGES, 0);
	int unmapped = unmap_region(OOM_VA, OOM_PAGES, 0);
	int dropped = drop_page_map(space, 0);
	int unmapped2 = unmap_region(BASE + HUGE_PAGE_SIZE, 1, 0);
	pmm_inject_off();
	KASSERT_EQ(flags, 0);
	KASSERT_EQ(unmapped, 0);
	KASSERT_EQ(dropped, 0);
	KASSERT_EQ(unmapped2, 0);
	KASSERT_EQ(pmm_inject_failures(), injected0); /* not one allocation was tried */
	KASSERT(!pml4_present(TSLOT_FAULT));
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm_fault, demand_zero_heap)
{
	u64 free0 = free_frames();
	struct vmm_stats s0, s1;
	vmm_get_stats(&s0);
	/* Far from where a heap allocator starts handing out memory. */
	volatile u64 *p = (volatile u64 *)(HEAP_BASE + PML4_SLOT_SIZE / 2 + 3 * PAGE_SIZE);
	KASSERT_EQ(leaf_of((u64)p, NULL), 0);
	KASSERT_EQ(p[7], 0);
	p[7] = 0x5a5a;
	KASSERT_EQ(p[7], 0x5a5a);
	u64 pte = leaf_of((u64)p, NULL);
	KASSERT_EQ(pte & (PTE_P | PTE_W | PTE_U | PTE_NX), PTE_P | PTE_W | nx_bit());
	vmm_get_stats(&s1);
	KASSERT_EQ(s1.demand_zero_faults - s0.demand_zero_faults, 1);
	KASSERT_EQ(free_frames(), free0 - 3); /* the page, its PT and PD (the PDPT is shared) */
	/* The whole page is zero, not only what was read. */
	bool zero = true;
	for (u64 i = 8; i < PAGE_SIZE / sizeof(u64); i++)
		zero &= p[i] == 0;
	KASSERT(zero);
	KASSERT_EQ(unmap_region(ALIGN_DOWN((u64)p, PAGE_SIZE), 1, VMM_FREE_FRAMES), 0);
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm_fault, demand_zero_read_only_region)
{
	u64 free0 = free_frames(), region = BASE + HUGE_PAGE_SIZE;
	KASSERT_EQ(vmm_register_demand_zero(region, 4 * PAGE_SIZE, 0), 0);
	volatile u64 *p = (volatile u64 *)(region + PAGE_SIZE);
	KASSERT_EQ(p[0], 0);
	KASSERT_EQ(leaf_of((u64)p, NULL) & (PTE_P | PTE_W), PTE_P);
	/* Read-only: a write is a protection fault the handler does not resolve. */
	u8 byte = 1;
	trap_expect(VEC_PF);
	__asm__ volatile(TRAP_FIXUP_SITE("movb %0, (%1)") : : "q"(byte), "r"(p) : TRAP_FIXUP_CLOBBERS);
	struct trap_record r = trap_expect_end();
	KASSERT(r.hit);
	KASSERT_EQ(r.error_code & (PF_ERR_P | PF_ERR_W), PF_ERR_P | PF_ERR_W);
	/* Outside the region, nothing is created. */
	u64 value = 0;
	trap_expect(VEC_PF);
	__asm__ volatile(TRAP_FIXUP_SITE("movq (%1), %0")
			 : "+r"(value)
			 : "r"(region + 4 * PAGE_SIZE)
			 : TRAP_FIXUP_CLOBBERS);
	KASSERT(trap_expect_end().hit);
	KASSERT_EQ(vmm_unregister_demand_zero(region), 0);
	KASSERT_EQ(vmm_unregister_demand_zero(region), -E_NOENT);
	KASSERT_EQ(unmap_region(region, 4, VMM_FREE_FRAMES), 0);
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm_fault, demand_zero_registration_errors)
{
	KASSERT_EQ(vmm_register_demand_zero(BASE, 0, 0), -E_INVAL);
	KASSERT_EQ(vmm_register_demand_zero(BASE, PAGE_SIZE, VMM_LARGE), -E_INVAL);
	KASSERT_EQ(vmm_register_demand_zero(HEAP_BASE - PAGE_SIZE, PAGE_SIZE, VMM_USER), -E_INVAL);
	KASSERT_EQ(vmm_register_demand_zero(BASE + 8, PAGE_SIZE, 0), -E_ALIGN);
	KASSERT_EQ(vmm_register_demand_zero(BASE, 8, 0), -E_ALIGN);
	KASSERT_EQ(vmm_register_demand_zero(USER_END - PAGE_SIZE, 2 * PAGE_SIZE, 0), -E_CANON);
	KASSERT_EQ(vmm_register_demand_zero(SELFMAP_BASE, PAGE_SIZE, 0), -E_SELFMAP);
	KASSERT_EQ(vmm_register_demand_zero(OTHER_PT_BASE, PAGE_SIZE, 0), -E_SELFMAP);
	KASSERT_EQ(vmm_register_demand_zero(HEAP_BASE + PAGE_SIZE, PAGE_SIZE, 0), -E_EXIST);
	/* The table fills up. */
	int registered = 0, r;
	while ((r = vmm_register_demand_zero(BASE + (u64)registered * PAGE_SIZE, PAGE_SIZE, 0)) == 0)
		registered++;
	KASSERT_EQ(r, -E_NOSPC);
	KASSERT(registered > 0);
	for (int i = 0; i < registered; i++)
		KASSERT_EQ(vmm_unregister_demand_zero(BASE + (u64)i * PAGE_SIZE), 0);
}

/* What the handler says of a fault at cr2 with error code err (no side effect when refused). */
static const char *fault_verdict(u64 cr2, u64 err)
{
	struct trap_frame f;
	memset(&f, 0, sizeof(f));
	f.vector = VEC_PF;
	f.error_code = err;
	return vmm_page_fault(&f, cr2);
}

KTEST(vmm_fault, refusals)
{
	u64 free0 = free_frames();
	KASSERT_STREQ(fault_verdict((u64)__stack_guard + 8, 0), "guard page below the kernel stack");
	KASSERT_STREQ(fault_verdict(BASE, PF_ERR_W),
		      "no mapping and no demand-zero region at this address");
	/* A read of a missing table is a bug (walks go top-down), never a reason to make one. */
	KASSERT_STREQ(fault_verdict((u64)selfmap_pte(BASE), 0),
		      "read of a page table that does not exist (walk top-down first)");
	KASSERT_STREQ(fault_verdict((u64)selfmap_pte(BASE), PF_ERR_P | PF_ERR_W),
		      "protection violation inside a page-table window");
	KASSERT_STREQ(fault_verdict(OTHER_PT_BASE, PF_ERR_W),
		      "the other-space window is used with no space attached");
	KASSERT_STREQ(fault_verdict((u64)selfmap_entry(LEVEL_PDPT, INDICES_VA(unused_kernel_slot(), 0, 0, 0)), PF_ERR_W),
		      "a new kernel-half PDPT would not be shared by the other spaces");
	KASSERT_STREQ(fault_verdict((u64)__text_start, PF_ERR_P | PF_ERR_W),
		      "protection violation: the page does not allow this access");
	KASSERT_STREQ(fault_verdict(HEAP_BASE, PF_ERR_P | PF_ERR_W),
		      "protection violation in a demand-zero region");
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm_fault, guard_page_faults_and_stays_unmapped)
{
	u64 addr = (u64)__stack_guard + 64, value = 0;
	trap_expect(VEC_PF);
	__asm__ volatile(TRAP_FIXUP_SITE("movq (%1), %0") : "+r"(value) : "r"(addr) : TRAP_FIXUP_CLOBBERS);
	struct trap_record r = trap_expect_end();
	KASSERT(r.hit);
	KASSERT_EQ(r.cr2, addr);
	KASSERT_EQ(leaf_of(addr, NULL), 0);
}

/*
 * A demand-zero fault needs a frame for the page and maybe tables for it:
 * fail each allocation in turn. The handler must then refuse the fault
 * (a real access would panic with that reason) and leave nothing behind.
 */
KTEST(vmm_fault, demand_zero_out_of_frames_changes_nothing)
{
	/* A heap page far from others: its PD and PT do not exist yet. */
	u64 page = HEAP_BASE + PML4_SLOT_SIZE / 2 + 5 * HUGE_PAGE_SIZE + 7 * PAGE_SIZE;
	u64 free0 = free_frames(), sites = 0;
	bool completed = false;
	KASSERT_EQ(leaf_of(page, NULL), 0);
	for (u64 nth = 1; nth <= MAX_SITES && !completed; nth++) {
		u64 injected0 = pmm_inject_failures();
		pmm_inject_fail_nth(nth);
		const char *why = fault_verdict(page + 16, PF_ERR_W);
		pmm_inject_off();
		completed = pmm_inject_failures() == injected0;
		u64 leaf = leaf_of(page, NULL);
		if (completed) {
			if (leaf)
				KASSERT_EQ(unmap_region(page, 1, VMM_FREE_FRAMES), 0);
			KASSERT_STREQ(why, NULL);
			KASSERT(leaf & PTE_P);
			break;
		}
		sites++;
		KASSERT(why && strncmp(why, "out of physical frames", 22) == 0);
		KASSERT_EQ(leaf, 0);
		KASSERT_EQ(free_frames(), free0);
	}
	KASSERT(completed);
	KASSERT_EQ(sites, 3); /* the page, its PD, its PT */
	KASSERT_EQ(free_frames(), free0);
}

/* What a table's frame held before, if it was not zeroed: not present (bit 0 clear), not 0. */
#define STALE_ENTRY 0x0badf00d0badf00eULL
/* Where the fallback tests fill frames, and map (slots of their own, unused at first). */
static const u64 FILL = INDICES_VA(TSLOT_FAULT + 4, 0, 0, 0);
static const u64 FALLBACK = INDICES_VA(TSLOT_FAULT + 5, 0, 0, 0);
static const u64 FALLBACK_COPY = INDICES_VA(TSLOT_FAULT + 6, 0, 0, 0);

/*
 * Give n frames full of STALE_ENTRY back to the PMM, so that its next n
 * allocations take them (a stack: the last freed comes first): in out.
 */
static void push_stale_frames(u64 *out, u64 n)
{
	for (u64 i = 0; i < n; i++)
		MUST(pmm_alloc(&out[i]) == 0);
	for (u64 i = 0; i < n; i++) {
		MUST(map_region(FILL + i * PAGE_SIZE, out[i], 1, VMM_WRITE) == 0);
		for (u64 k = 0; k < TABLE_ENTRIES; k++)
			((volatile u64 *)(FILL + i * PAGE_SIZE))[k] = STALE_ENTRY;
	}
	/* Its tables go back first, the filled frames after them, on top. */
	MUST(unmap_region(FILL, n, 0) == 0);
	for (u64 i = 0; i < n; i++)
		MUST(pmm_free(out[i]) == 0);
}

/* True when frame is one of the n in stale. */
static bool is_stale_frame(u64 frame, const u64 *stale, u64 n)
{
	for (u64 i = 0; i < n; i++)
		if (stale[i] == frame)
			return true;
	return false;
}

/* Entries of the table holding `entry` (in the current space's self-map) that are not 0. */
static u64 nonzero_entries(volatile const u64 *entry)
{
	volatile const u64 *t = (volatile const u64 *)ALIGN_DOWN((u64)entry, PAGE_SIZE);
	u64 n = 0;
	for (u64 i = 0; i < TABLE_ENTRIES; i++)
		n += t[i] != 0;
	return n;
}

KTEST(vmm_fault, tables_zeroed_without_the_scratch_page)
{
	u64 free0 = free_frames(), stale[3];
	KASSERT(!pml4_present(TSLOT_FAULT + 4) && !pml4_present(TSLOT_FAULT + 5));
	push_stale_frames(stale, 3);
	/* The PT, PD and PDPT are made by faults, zeroed in place after their link. */
	cow_test_scratch_off = true;
	int err = map_region(FALLBACK, FAKE_PHYS, 1, 0);
	cow_test_scratch_off = false;
	KASSERT_EQ(err, 0);
	/* The three frames filled above are the new tables: the test saw what it checks. */
	KASSERT(is_stale_frame(pte_frame(*selfmap_entry(LEVEL_PML4, FALLBACK)), stale, 3));
	KASSERT(is_stale_frame(pte_frame(*selfmap_entry(LEVEL_PDPT, FALLBACK)), stale, 3));
	KASSERT(is_stale_frame(pte_frame(*selfmap_entry(LEVEL_PD, FALLBACK)), stale, 3));
	/* Each holds the one entry on FALLBACK's path, and zeros: none of the frame's old words. */
	KASSERT_EQ(nonzero_entries(selfmap_entry(LEVEL_PDPT, FALLBACK)), 1);
	KASSERT_EQ(nonzero_entries(selfmap_entry(LEVEL_PD, FALLBACK)), 1);
	KASSERT_EQ(nonzero_entries(selfmap_entry(LEVEL_PT, FALLBACK)), 1);
	KASSERT_EQ(unmap_region(FALLBACK, 1, 0), 0);
	KASSERT(!pml4_present(TSLOT_FAULT + 5));
	KASSERT_EQ(free_frames(), free0);
}

/* What the fallback copy test saw inside the copy. */
struct copy_seen {
	u64 user_slots; /* entries of the copy's PML4 below the kernel half that are not 0 */
	u64 nonzero[LEVEL_PML4 + 1]; /* entries not 0 in each table on FALLBACK_COPY's path */
	u64 frames[LEVEL_PML4 + 1];  /* each table's frame (LEVEL_PML4: the copy's own) */
};

KTEST(vmm_fault, copy_zeroed_without_the_scratch_page)
{
	u64 free0 = free_frames(), stale[4];
	KASSERT(!pml4_present(TSLOT_FAULT + 4) && !pml4_present(TSLOT_FAULT + 6));
	KASSERT_EQ(map_region(FALLBACK_COPY, FAKE_PHYS, 1, 0), 0);
	u64 free1 = free_frames();
	push_stale_frames(stale, 4);
	/* The copy's PML4 (zeroed after it is attached) and its PDPT, PD and PT (made by faults). */
	pml4_t boot = current_page_map(), space = 0;
	cow_test_scratch_off = true;
	int err = copy_page_map(&space);
	cow_test_scratch_off = false;
	KASSERT_EQ(err, 0);
	struct copy_seen s = {0};
	switch_page_map(space);
	volatile const u64 *pml4 = (volatile const u64 *)SELFMAP_PML4;
	for (u64 i = 0; i < KERNEL_FIRST_SLOT; i++)
		s.user_slots += pml4[i] != 0;
	for (int l = LEVEL_PT; l <= LEVEL_PML4; l++) {
		volatile const u64 *e = selfmap_entry(l, FALLBACK_COPY);
		s.nonzero[l] = l == LEVEL_PML4 ? 0 : nonzero_entries(e);
		s.frames[l] = l == LEVEL_PML4 ? current_page_map()
					      : pte_frame(*selfmap_entry(l + 1, FALLBACK_COPY));
	}
	switch_page_map(boot);
	KASSERT_EQ(s.user_slots, 1);
	for (int l = LEVEL_PT; l <= LEVEL_PML4; l++) {
		KASSERT(is_stale_frame(s.frames[l], stale, 4));
		if (l != LEVEL_PML4)
			KASSERT_EQ(s.nonzero[l], 1);
	}
	KASSERT_EQ(drop_page_map(space, 0), 0);
	KASSERT_EQ(free_frames(), free1);
	KASSERT_EQ(unmap_region(FALLBACK_COPY, 1, 0), 0);
	KASSERT_EQ(free_frames(), free0);
}
