/* Helpers shared by the VMM's tests (test_vmm*.c, test_model.c). */
#ifndef OUROBOROS_TEST_VMM_UTIL_H
#define OUROBOROS_TEST_VMM_UTIL_H

#include <cpu.h>
#include <paging.h>
#include <types.h>

/*
 * User-half PML4 slots the VMM tests own, one per test family, so a test
 * that leaks shows up as a present slot in the next one. (The selftests use
 * slot 32 as "never mapped"; nothing here goes near it.)
 */
#define TSLOT_VMM 64    /* test_vmm.c: slots 64..67 */
#define TSLOT_FAULT 80  /* test_vmm_fault.c: slots 80..87 */
#define TSLOT_SPACE 96  /* test_vmm_space.c: slots 96..99 */
#define TSLOT_MODEL 112 /* test_model.c: slots 112..115 */
#define TSLOT_FORK 120  /* test_fork.c: slot 120 */
#define TSLOT_PMM 124   /* test_pmm.c: slot 124 */

/* The first address of user-half PML4 slot `slot`. */
static inline u64 tslot(u64 slot)
{
	return INDICES_VA(slot, 0, 0, 0);
}

/*
 * The NX bit map_region puts on a page without VMM_EXEC, read from EFER
 * here on purpose: the tests check paging_nx_bit against it, not with it.
 */
static inline u64 nx_bit(void)
{
	return cpu_nx_enabled() ? PTE_NX : 0;
}

/* A kernel-half PML4 slot the kernel does not use (the layout decides which ones it does). */
static inline u64 unused_kernel_slot(void)
{
	u64 slot = TABLE_ENTRIES / 2;
	while (slot == RECURSIVE_SLOT || slot == OTHER_SLOT || slot == PMM_STACK_SLOT ||
	       slot == HEAP_SLOT || slot == INITRD_SLOT || slot == KERNEL_PML4_SLOT)
		slot++;
	return slot;
}

/* Free frames in the PMM now. */
u64 free_frames(void);

/* The leaf entry of va in the current space (0 if unmapped) and, if level, its level. */
u64 leaf_of(u64 va, int *level);

/* True when PML4 entry `slot` of the current space is present. */
bool pml4_present(u64 slot);

/* Allocate a frame and fill it with `pattern` (through a temporary mapping at va). */
u64 frame_with_pattern(u64 va, u64 pattern);

#endif
