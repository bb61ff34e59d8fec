/*
 * The early window (EARLY_WINDOW_BASE, EARLY_WINDOW_SIZE): its page table is
 * in the boot tables but empty. Pages are mapped by writing its PTEs with
 * pte_set (pte.h), through the self-map. The PTEs themselves are the allocation state: a slot is free
 * exactly when its PTE is not present, so there is nothing to get out of sync.
 */
#include <cpu.h>
#include <early_map.h>
#include <layout.h>
#include <paging.h>
#include <panic.h>
#include <pte.h>

#define WINDOW_PAGES (EARLY_WINDOW_SIZE / PAGE_SIZE)

static u64 slot_va(size_t slot)
{
	return EARLY_WINDOW_BASE + slot * PAGE_SIZE;
}

/* The PTE of window slot `slot`, through the self-map. */
static volatile const u64 *slot_pte(size_t slot)
{
	return selfmap_pte(slot_va(slot));
}

/* First slot of a run of `pages` free slots, or -E_NOSPC. */
static i64 find_free_run(size_t pages)
{
	size_t run = 0;
	for (size_t slot = 0; slot < WINDOW_PAGES; slot++) {
		run = (*slot_pte(slot) & PTE_P) ? 0 : run + 1;
		if (run == pages)
			return (i64)(slot + 1 - pages);
	}
	return -E_NOSPC;
}

const void *early_map(u64 phys, size_t len)
{
	ASSERT(len > 0 && phys + len > phys && phys + len <= paging_phys_limit());
	u64 first = ALIGN_DOWN(phys, PAGE_SIZE);
	size_t pages = (ALIGN_UP(phys + len, PAGE_SIZE) - first) / PAGE_SIZE;
	i64 start = find_free_run(pages);
	if (start < 0)
		return NULL;
	/* Read-only: boot information is only read; NX only where the CPU honours it. */
	u64 flags = PTE_P | paging_nx_bit();
	for (size_t i = 0; i < pages; i++) {
		/* A free slot is not present: nothing cached (its unmap shot it down). */
		pte_install(WINDOW_SELF, LEVEL_PT, slot_va((size_t)start + i), (first + i * PAGE_SIZE) | flags);
	}
	return (const void *)(slot_va((size_t)start) + (phys - first));
}

void early_unmap(const void *va, size_t len)
{
	u64 v = (u64)va;
	ASSERT(len > 0 && v >= EARLY_WINDOW_BASE && v + len <= EARLY_WINDOW_BASE + EARLY_WINDOW_SIZE);
	size_t first = (ALIGN_DOWN(v, PAGE_SIZE) - EARLY_WINDOW_BASE) / PAGE_SIZE;
	size_t end = (ALIGN_UP(v + len, PAGE_SIZE) - EARLY_WINDOW_BASE) / PAGE_SIZE;
	struct tlb_batch b;
	tlb_batch_begin(&b, TLB_KERNEL); /* the kernel half: every CPU up may have it cached */
	for (size_t slot = first; slot < end; slot++) {
		if (!(*slot_pte(slot) & PTE_P))
			panic("early_unmap: page 0x%llx of the window is not mapped", slot_va(slot));
		pte_set(WINDOW_SELF, LEVEL_PT, slot_va(slot), 0, &b);
	}
	tlb_batch_finish(&b);
}

size_t early_map_pages_in_use(void)
{
	size_t n = 0;
	for (size_t slot = 0; slot < WINDOW_PAGES; slot++)
		if (*slot_pte(slot) & PTE_P)
			n++;
	return n;
}
