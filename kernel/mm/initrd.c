/* The initrd window (initrd.h): the first boot module, mapped once, read-only. */
#include <bootinfo.h>
#include <initrd.h>
#include <layout.h>
#include <vmm.h>

static const void *initrd_base;
static u64 initrd_len;

/* Map the first module's pages at INITRD_BASE: 0 or an error (nothing mapped then). */
static int initrd_map(void)
{
	if (boot_info.nr_modules == 0 || boot_info.modules[0].size == 0)
		return -E_NOENT;
	u64 phys = boot_info.modules[0].phys, size = boot_info.modules[0].size;
	/* The loader need not page-align a module: map the pages around it. */
	u64 first = ALIGN_DOWN(phys, PAGE_SIZE);
	if (size > PML4_SLOT_SIZE - PAGE_SIZE || phys + size < phys)
		return -E_RANGE;
	u64 npages = (ALIGN_UP(phys + size, PAGE_SIZE) - first) / PAGE_SIZE;
	int err = map_region(INITRD_BASE, first, npages, 0); /* read-only, NX, kernel only */
	if (err < 0)
		return err;
	initrd_base = (const void *)(INITRD_BASE + (phys - first));
	initrd_len = size;
	return 0;
}

int initrd_get(const void **base, u64 *len)
{
	if (!initrd_base) {
		int err = initrd_map();
		if (err < 0)
			return err;
	}
	*base = initrd_base;
	*len = initrd_len;
	return 0;
}
