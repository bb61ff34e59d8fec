/*
 * The external oracle: states of the address space that QEMU is asked about
 * (over QMP, by the runner) and compared with the kernel's own page dump and
 * virt_to_phys. Skipped unless the kernel was booted with `oracle`.
 */
#include <image.h>
#include <ktest.h>
#include <layout.h>
#include <oracle.h>
#include <pmm.h>
#include <vmm.h>

/* Where the tests map: user pages low, a 2 MiB page in the kernel's own slot, far above the image. */
#define USER_VA 0x400000ULL
#define USER_PAGES 4
#define LARGE_VA (KERNEL_VIRT_OFFSET + 256 * LARGE_PAGE_SIZE)

#define SKIP_WITHOUT_ORACLE()                                              \
	do {                                                               \
		if (!oracle_enabled())                                     \
			KTEST_SKIP("needs the runner's QEMU oracle (boot with oracle)"); \
	} while (0)

KTEST(oracle, boot_state)
{
	SKIP_WITHOUT_ORACLE();
	const u64 probes[] = {
		(u64)__text_start, (u64)__data_start, (u64)__stack_guard, (u64)__stack_top - PAGE_SIZE,
		SELFMAP_PML4,      HEAP_BASE,         0,
	};
	oracle_checkpoint("boot_state", probes, sizeof(probes) / sizeof(probes[0]));
}

KTEST(oracle, mapped_then_released)
{
	SKIP_WITHOUT_ORACLE();
	struct pmm_stats before, after;
	pmm_get_stats(&before);
	u64 frame;
	KASSERT_EQ(pmm_alloc(&frame), 0);
	KASSERT_EQ(map_region(USER_VA, frame, 1, VMM_USER | VMM_WRITE), 0);
	KASSERT_EQ(map_region(USER_VA + PAGE_SIZE, frame, USER_PAGES - 1, VMM_USER), 0);
	KASSERT_EQ(map_region(LARGE_VA, LARGE_PAGE_SIZE, 1, VMM_WRITE | VMM_LARGE), 0);
	const u64 probes[] = {USER_VA, USER_VA + PAGE_SIZE, LARGE_VA + 0x1234, LARGE_VA + LARGE_PAGE_SIZE};
	oracle_checkpoint("mapped", probes, 4);

	KASSERT_EQ(set_page_flags(USER_VA, USER_PAGES, VMM_USER), 0);
	oracle_checkpoint("protected", probes, 4);

	KASSERT_EQ(unmap_region(USER_VA, USER_PAGES, 0), 0);
	KASSERT_EQ(unmap_region(LARGE_VA, LARGE_PAGE_SIZE / PAGE_SIZE, 0), 0);
	oracle_checkpoint("released", probes, 4);
	KASSERT_EQ(pmm_free(frame), 0);
	pmm_get_stats(&after);
	KASSERT_EQ(after.free, before.free);
}
