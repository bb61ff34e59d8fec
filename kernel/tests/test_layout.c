/*
 * The generated layout constants, seen from C: every derived value is
 * recomputed here from first principles, so a wrong generator (or a header
 * out of step with the image) fails a test instead of corrupting memory.
 */
#include <image.h>
#include <ktest.h>
#include <layout.h>
#include <paging.h>

/* The widest physical address a page entry can hold (SDM Vol. 3A §4.5: MAXPHYADDR <= 52). */
#define MAX_PHYS_BITS 52

/* Sign-extend a 48-bit linear address (bit 47 into 63..48) to its canonical form. */
static u64 canonical(u64 va)
{
	va &= VA_INDEX_MASK;
	return (va & (1ULL << (VA_BITS - 1))) ? va | ~VA_INDEX_MASK : va;
}

KTEST(layout, constants)
{
	KASSERT_EQ(PAGE_SIZE, 1ULL << PAGE_SHIFT);
	KASSERT_EQ(TABLE_ENTRIES * sizeof(u64), PAGE_SIZE);
	KASSERT_EQ(1ULL << INDEX_BITS, TABLE_ENTRIES);
	KASSERT_EQ(PAGE_SHIFT + PAGING_LEVELS * INDEX_BITS, VA_BITS);
	KASSERT_EQ(LARGE_PAGE_SIZE, PAGE_SIZE * TABLE_ENTRIES);
	KASSERT_EQ(HUGE_PAGE_SIZE, LARGE_PAGE_SIZE * TABLE_ENTRIES);
	KASSERT_EQ(KERNEL_STACK_SIZE, KERNEL_STACK_PAGES * PAGE_SIZE);
}

KTEST(layout, selfmap_addresses)
{
	u64 s = RECURSIVE_SLOT;
	/* Where each level's index starts in a linear address (SDM Vol. 3A Figure 4-8). */
	const u64 l4 = 39, l3 = 30, l2 = 21, l1 = 12;
	KASSERT_EQ(SELFMAP_PML4, canonical(s << l4 | s << l3 | s << l2 | s << l1));
	KASSERT_EQ(SELFMAP_PDPT_BASE, canonical(s << l4 | s << l3 | s << l2));
	KASSERT_EQ(SELFMAP_PD_BASE, canonical(s << l4 | s << l3));
	KASSERT_EQ(SELFMAP_PT_BASE, canonical(s << l4));
	KASSERT_EQ(SELFMAP_BASE, SELFMAP_PT_BASE);
	KASSERT_EQ(SELFMAP_END - SELFMAP_BASE, 1ULL << l4);
	/* Kernel half, not the last slot, not the kernel's own slot. */
	KASSERT(RECURSIVE_SLOT >= TABLE_ENTRIES / 2 && RECURSIVE_SLOT < TABLE_ENTRIES - 1);
	KASSERT_NE(RECURSIVE_SLOT, KERNEL_PML4_SLOT);
}

KTEST(layout, pte_bits)
{
	KASSERT_EQ(PTE_ADDR_MASK, ((1ULL << MAX_PHYS_BITS) - 1) & ~(PAGE_SIZE - 1));
	KASSERT_EQ(ktest_bits_set(PTE_ADDR_MASK), MAX_PHYS_BITS - PAGE_SHIFT);
	/* The architectural flag positions (SDM Vol. 3A Table 4-19). */
	KASSERT_EQ(PTE_P, 1ULL << 0);
	KASSERT_EQ(PTE_W, 1ULL << 1);
	KASSERT_EQ(PTE_U, 1ULL << 2);
	KASSERT_EQ(PTE_PS, 1ULL << 7);
	KASSERT_EQ(PTE_G, 1ULL << 8);
	KASSERT_EQ(PTE_NX, 1ULL << 63);
	u64 flags = PTE_P | PTE_W | PTE_U | PTE_PWT | PTE_PCD | PTE_A | PTE_D | PTE_PS | PTE_G | PTE_NX;
	KASSERT_EQ(ktest_bits_set(flags), 10); /* ten distinct single bits */
	KASSERT_EQ(flags & PTE_ADDR_MASK, 0);
}

KTEST(layout, kernel_placement)
{
	KASSERT_EQ(KERNEL_VIRT_OFFSET, canonical(KERNEL_VIRT_OFFSET));
	KASSERT_EQ(KERNEL_VIRT_OFFSET % HUGE_PAGE_SIZE, 0);
	KASSERT_EQ(KERNEL_PML4_SLOT, va_index(KERNEL_VIRT_OFFSET, LEVEL_PML4));
	KASSERT_EQ(KERNEL_PHYS_BASE % PAGE_SIZE, 0);
	/* The early window: one PT's worth, 2 MiB-aligned, after the image, in the kernel's GiB. */
	KASSERT_EQ(EARLY_WINDOW_SIZE, TABLE_ENTRIES * PAGE_SIZE);
	KASSERT_EQ(EARLY_WINDOW_BASE % LARGE_PAGE_SIZE, 0);
	KASSERT((u64)__image_end <= EARLY_WINDOW_BASE);
	KASSERT_EQ(EARLY_WINDOW_BASE / HUGE_PAGE_SIZE, KERNEL_VIRT_OFFSET / HUGE_PAGE_SIZE);
}

KTEST(layout, stack)
{
	u64 sp = (u64)__builtin_frame_address(0);
	KASSERT_EQ((u64)(__stack_top - __stack_bottom), KERNEL_STACK_SIZE);
	KASSERT_EQ((u64)(__stack_bottom - __stack_guard), PAGE_SIZE);
	KASSERT(sp >= (u64)__stack_bottom && sp < (u64)__stack_top);
}

KTEST(layout, image_symbols)
{
	const u64 ordered[] = {
		(u64)__text_start,  (u64)__text_end,	 (u64)__rodata_start, (u64)__rodata_end,
		(u64)__data_start,  (u64)__data_end,	 (u64)__bss_start,    (u64)__bss_end,
		(u64)__stack_guard, (u64)__stack_bottom, (u64)__stack_top,    (u64)__image_end,
	};
	for (size_t i = 0; i < ARRAY_SIZE(ordered); i++) {
		KASSERT_EQ(ordered[i] % PAGE_SIZE, 0);
		if (i > 0)
			KASSERT(ordered[i - 1] <= ordered[i]);
	}
	KASSERT((u64)__text_start < (u64)__text_end); /* this code is in there */
	KASSERT((u64)__boot_end <= (u64)__text_start - KERNEL_VIRT_OFFSET);
	KASSERT((u64)__boot_start >= KERNEL_PHYS_BASE);
	KASSERT((u64)__image_end - KERNEL_VIRT_OFFSET <= KERNEL_PHYS_BASE + MAX_KERNEL_SIZE);
	u64 here = (u64)&ktest_yaml_escape;
	KASSERT(here >= (u64)__text_start && here < (u64)__text_end);
}

KTEST(layout, ktest_section)
{
	u64 start = (u64)__ktest_start, end = (u64)__ktest_end;
	KASSERT(start >= (u64)__rodata_start && end <= (u64)__rodata_end);
	KASSERT_EQ(start % sizeof(u64), 0);
	KASSERT_EQ((end - start) % sizeof(struct ktest), 0);
	KASSERT(end > start);
}

KTEST(layout, user_regions)
{
	/* The user half: [0, USER_END); program area, mmap region and stack in that order. */
	KASSERT(USER_PROGRAM_BASE >= LARGE_PAGE_SIZE); /* a NULL guard below programs */
	KASSERT(IS_ALIGNED(USER_PROGRAM_BASE, LARGE_PAGE_SIZE));
	KASSERT(USER_PROGRAM_BASE < USER_PROGRAM_END);
	KASSERT(USER_PROGRAM_END <= USER_MMAP_BASE);
	KASSERT(IS_ALIGNED(USER_MMAP_BASE, PML4_SLOT_SIZE) && IS_ALIGNED(USER_MMAP_END, PML4_SLOT_SIZE));
	KASSERT(USER_MMAP_END <= USER_STACK_GUARD);
	KASSERT_EQ(USER_STACK_BOTTOM - USER_STACK_GUARD, PAGE_SIZE);
	KASSERT_EQ(USER_STACK_TOP - USER_STACK_BOTTOM, USER_STACK_PAGES * PAGE_SIZE);
	KASSERT(USER_STACK_TOP < USER_END && IS_ALIGNED(USER_STACK_TOP, PAGE_SIZE));
	/* The whole stack and its guard lie in one PML4 slot. */
	KASSERT_EQ(USER_STACK_GUARD / PML4_SLOT_SIZE, (USER_STACK_TOP - 1) / PML4_SLOT_SIZE);
}

KTEST(layout, initrd_window)
{
	KASSERT_EQ(INITRD_BASE, canonical(INITRD_SLOT << 39));
	KASSERT(INITRD_BASE >= KERNEL_HALF_START);
	KASSERT_NE(INITRD_SLOT, RECURSIVE_SLOT);
	KASSERT_NE(INITRD_SLOT, OTHER_SLOT);
	KASSERT_NE(INITRD_SLOT, KERNEL_PML4_SLOT);
	KASSERT_NE(INITRD_SLOT, PMM_STACK_SLOT);
	KASSERT_NE(INITRD_SLOT, HEAP_SLOT);
}
