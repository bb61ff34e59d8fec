/*
 * The boot page tables as the CPU sees them, read through the self-map, and
 * the early window that maps physical pages through it.
 */
#include <bootinfo.h>
#include <cpu.h>
#include <early_map.h>
#include <image.h>
#include <ktest.h>
#include <layout.h>
#include <paging.h>
#include <string.h>
#include <trap.h>

/*
 * Where each level's index starts in a linear address (SDM Vol. 3A Figure
 * 4-8), restated here so the walk below does not depend on paging.h.
 */
enum { PD_SHIFT = 21, PDPT_SHIFT = 30, PML4_SHIFT = 39, ENTRY_SHIFT = 3 };
/* The brief's formula: PTE address = SELFMAP_PT_BASE + ((va & this) >> 9). */
#define PT_INDEX_BITS 0x0000fffffffff000ULL

/* Something certainly in .data (initialised, so not .bss). */
static volatile u64 data_word = 1;

/*
 * The PTE of va, reached level by level through the SELFMAP_* bases with
 * the formula written out (not via paging.h), or 0 if a level is missing or
 * is a large page.
 */
static u64 manual_pte(u64 va)
{
	u64 bits = va & VA_INDEX_MASK;
	u64 pml4e = *(volatile u64 *)(SELFMAP_PML4 + ((bits >> PML4_SHIFT) << ENTRY_SHIFT));
	u64 pdpte = *(volatile u64 *)(SELFMAP_PDPT_BASE + ((bits >> PDPT_SHIFT) << ENTRY_SHIFT));
	u64 pde = *(volatile u64 *)(SELFMAP_PD_BASE + ((bits >> PD_SHIFT) << ENTRY_SHIFT));
	if (!(pml4e & PTE_P) || !(pdpte & PTE_P) || (pdpte & PTE_PS) || !(pde & PTE_P) ||
	    (pde & PTE_PS))
		return 0;
	return *(volatile u64 *)(SELFMAP_PT_BASE + ((va & PT_INDEX_BITS) >> (PAGE_SHIFT - ENTRY_SHIFT)));
}

KTEST(selfmap, pml4_is_cr3)
{
	u64 cr3_frame = read_cr3() & PTE_ADDR_MASK;
	u64 self = ((volatile u64 *)SELFMAP_PML4)[RECURSIVE_SLOT];
	KASSERT_EQ(pte_frame(self), cr3_frame);
	KASSERT_EQ(self & (PTE_P | PTE_W), PTE_P | PTE_W);
	KASSERT_EQ(self & PTE_G, 0); /* a global self-map would outlive a CR3 switch */
	KASSERT_EQ((u64)selfmap_entry(LEVEL_PML4, SELFMAP_PML4), SELFMAP_PML4 + RECURSIVE_SLOT * sizeof(u64));
}

KTEST(selfmap, text_walk)
{
	u64 va = (u64)__text_start;
	u64 pte = manual_pte(va);
	KASSERT(pte & PTE_P);
	KASSERT_EQ(pte_frame(pte), va - KERNEL_VIRT_OFFSET);
	KASSERT_EQ(pte & PTE_W, 0);
	/* The helper walk agrees with the hand-written one. */
	int level;
	KASSERT_EQ(paging_walk(va, &level), pte);
	KASSERT_EQ(level, LEVEL_PT);
}

KTEST(selfmap, rodata_readonly)
{
	u64 va = (u64)__rodata_start;
	u64 pte = manual_pte(va);
	KASSERT(pte & PTE_P);
	KASSERT_EQ(pte_frame(pte), va - KERNEL_VIRT_OFFSET);
	KASSERT_EQ(pte & PTE_W, 0);
}

KTEST(selfmap, data_writable)
{
	u64 va = (u64)&data_word;
	u64 pte = manual_pte(va);
	KASSERT(va >= (u64)__data_start && va < (u64)__data_end);
	KASSERT_EQ(pte & (PTE_P | PTE_W), PTE_P | PTE_W);
	KASSERT_EQ(pte_frame(pte), ALIGN_DOWN(va, PAGE_SIZE) - KERNEL_VIRT_OFFSET);
	u64 stack = manual_pte((u64)__builtin_frame_address(0));
	KASSERT_EQ(stack & (PTE_P | PTE_W), PTE_P | PTE_W);
}

KTEST(selfmap, data_not_executable)
{
	if (!cpu_nx_enabled())
		KTEST_SKIP("the CPU has no NX");
	/* W^X: nothing writable or merely read may be executed. */
	KASSERT(manual_pte((u64)__rodata_start) & PTE_NX);
	KASSERT(manual_pte((u64)&data_word) & PTE_NX);
	KASSERT(manual_pte((u64)__builtin_frame_address(0)) & PTE_NX);
	KASSERT_EQ(manual_pte((u64)__text_start) & PTE_NX, 0);
}

KTEST(selfmap, guard_page_unmapped)
{
	KASSERT_EQ(manual_pte((u64)__stack_guard) & PTE_P, 0);
	KASSERT(manual_pte((u64)__stack_bottom) & PTE_P);
}

KTEST(selfmap, nothing_past_image)
{
	/* Only the image is mapped in its GiB: the page after it is not. */
	KASSERT_EQ(manual_pte((u64)__image_end) & PTE_P, 0);
	/* The early window's PT is present but starts (and between tests stays) empty. */
	KASSERT(*selfmap_entry(LEVEL_PD, EARLY_WINDOW_BASE) & PTE_P);
	KASSERT_EQ(early_map_pages_in_use(), 0);
}

KTEST(selfmap, early_window_reads_boot_info)
{
	if (boot_info.protocol != BOOT_PROTOCOL_PVH)
		KTEST_SKIP("not booted by PVH");
	const u32 *magic = early_map(boot_info.info_phys, sizeof(u32));
	KASSERT(magic != NULL);
	u64 va = (u64)magic;
	KASSERT(va >= EARLY_WINDOW_BASE && va < EARLY_WINDOW_BASE + EARLY_WINDOW_SIZE);
	KASSERT_EQ(va % PAGE_SIZE, boot_info.info_phys % PAGE_SIZE);
	u32 value = *magic;
	u64 pte = manual_pte(va);
	early_unmap(magic, sizeof(u32));
	KASSERT_EQ(value, PVH_START_MAGIC);
	KASSERT_EQ(pte_frame(pte), ALIGN_DOWN(boot_info.info_phys, PAGE_SIZE));
	KASSERT_EQ(pte & (PTE_P | PTE_W), PTE_P);
	KASSERT_EQ(pte & PTE_NX, cpu_nx_enabled() ? PTE_NX : 0);
	KASSERT_EQ(manual_pte(va) & PTE_P, 0);
}

KTEST(selfmap, early_window_spans_pages)
{
	/* The kernel's own text, read through its physical address across a page boundary. */
	KASSERT((u64)(__text_end - __text_start) >= 2 * PAGE_SIZE);
	const u8 *virt = __text_start + PAGE_SIZE - 16;
	const u8 *phys_view = early_map((u64)virt - KERNEL_VIRT_OFFSET, 32);
	KASSERT(phys_view != NULL);
	int diff = memcmp(phys_view, virt, 32);
	early_unmap(phys_view, 32);
	KASSERT_EQ(diff, 0);
}

KTEST(selfmap, early_window_unmap_invalidates)
{
	const volatile u64 *p = early_map((u64)__text_start - KERNEL_VIRT_OFFSET, sizeof(u64));
	KASSERT(p != NULL);
	u64 first = *p, again = 0;
	early_unmap((const void *)p, sizeof(u64));
	/* A stale TLB entry would let this read succeed. */
	trap_expect(VEC_PF);
	__asm__ volatile(TRAP_FIXUP_SITE("movq (%1), %0") : "+r"(again) : "r"(p) : TRAP_FIXUP_CLOBBERS);
	struct trap_record r = trap_expect_end();
	KASSERT(r.hit);
	KASSERT_EQ(r.cr2, (u64)p);
	KASSERT_EQ(r.error_code & PF_ERR_P, 0);
	KASSERT_EQ(first, *(const u64 *)__text_start);
}

KTEST(selfmap, early_window_full)
{
	/* The whole window at once, then nothing more fits. */
	u64 phys = (u64)__text_start - KERNEL_VIRT_OFFSET;
	const void *all = early_map(phys, EARLY_WINDOW_SIZE);
	KASSERT(all != NULL);
	KASSERT_EQ((u64)all, EARLY_WINDOW_BASE);
	const void *more = early_map(phys, 1);
	u64 in_use = early_map_pages_in_use();
	early_unmap(all, EARLY_WINDOW_SIZE);
	KASSERT(more == NULL);
	KASSERT_EQ(in_use, EARLY_WINDOW_SIZE / PAGE_SIZE);
}
