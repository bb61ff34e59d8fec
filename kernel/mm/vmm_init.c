/*
 * vmm_init: take over the boot page tables. The image is checked W^X against
 * the linker symbols (the boot tables already are; a page that differs is
 * rewritten), the stack's guard page stays unmapped, the identity map of the
 * 32-bit boot code goes (the GDT, IDT and TSS the CPU uses are the kernel's
 * own, in the higher half), the kernel-half PDPTs every address space shares
 * are created, and the heap becomes demand-zero.
 */
#include "vmm_internal.h"
#include <cpu.h>
#include <image.h>
#include <panic.h>
#include <pmm.h>
#include <printf.h>

/* The image page that va should be: W^X by section, the guard page unmapped (0). */
static u64 image_pte(u64 va)
{
	if (va >= (u64)__stack_guard && va < (u64)__stack_bottom)
		return 0;
	u64 pte = (va - KERNEL_VIRT_OFFSET) | PTE_P;
	if (va >= (u64)__data_start)
		pte |= PTE_W;
	if (va >= (u64)__text_end)
		pte |= paging_nx_bit();
	return pte;
}

/* Check every page of the image, rewriting those that differ from image_pte. */
static void image_wx(void)
{
	struct tlb_batch b;
	tlb_batch_begin(&b, TLB_KERNEL);
	for (u64 va = (u64)__text_start; va < (u64)__image_end; va += PAGE_SIZE) {
		u64 want = image_pte(va);
		int level;
		u64 have = window_walk(WINDOW_SELF, va, &level);
		if (have && level != LEVEL_PT)
			panic("vmm: image page 0x%llx is part of a large page", va);
		if ((have & ~(PTE_A | PTE_D)) == want)
			continue;
		if (want)
			want |= have & (PTE_A | PTE_D);
		if (!pte_write_flush(WINDOW_SELF, LEVEL_PT, va, want, &b))
			panic("vmm: no frame for a page table of the image at 0x%llx", va);
		vmm_stats.image_pages_fixed++;
	}
	tlb_batch_finish(&b);
}

/* Unmap the boot code's identity map; its boot tables are unlinked as they empty. */
static void remove_identity_map(void)
{
	u64 start = (u64)__boot_start, pages = ((u64)__boot_end - start) / PAGE_SIZE;
	ASSERT(sgdt().base >= KERNEL_HALF_START);
	ASSERT(sidt().base >= KERNEL_HALF_START);
	ASSERT(start < USER_END);
	MUST(unmap_region(start, pages, 0) == 0);
	ASSERT(!(*selfmap_entry(LEVEL_PML4, start) & PTE_P));
}

/* Make the PDPT of each kernel-half slot the kernel uses exist (the write faults it in). */
static void create_kernel_pdpts(void)
{
	static const u64 slots[] = {PMM_STACK_SLOT, HEAP_SLOT, INITRD_SLOT, KSTACKS_SLOT, MMIO_SLOT};
	for (size_t i = 0; i < ARRAY_SIZE(slots); i++) {
		u64 va = INDICES_VA(slots[i], 0, 0, 0);
		if (*selfmap_entry(LEVEL_PML4, va) & PTE_P)
			continue;
		/* Entry 0 of the missing PDPT: writing its (zero) value creates the table. */
		if (!vmm_entry_store(pte_slot(WINDOW_SELF, LEVEL_PDPT, va), 0))
			panic("vmm: no frame for the PDPT of kernel slot %llu", slots[i]);
	}
}

/* Free frames in the PMM. */
static u64 pmm_free_count(void)
{
	struct pmm_stats s;
	pmm_get_stats(&s);
	return s.free;
}

void vmm_init(void)
{
	u64 free0 = pmm_free_count();
	image_wx();
	remove_identity_map();
	create_kernel_pdpts();
	if (vmm_register_demand_zero(HEAP_BASE, PML4_SLOT_SIZE, VMM_WRITE) != 0)
		panic("vmm: cannot register the heap as demand-zero");
	/* The frame count lets the toolchain tell the PMM's init count from what is free later. */
	kprintf("# vmm: image W^X checked (%llu pages rewritten), boot identity map removed, "
		"kernel-half PDPTs took %llu frames, heap demand-zero at 0x%llx\n",
		vmm_stats.image_pages_fixed, free0 - pmm_free_count(), (u64)HEAP_BASE);
}
