/*
 * The initrd the loader passed: present (the toolchain passes build/initrd.cpio
 * on every boot path), mapped read-only and NX in the initrd window, a valid
 * cpio archive whose programs all pass the ELF validator.
 */
#include <bootinfo.h>
#include <cpio.h>
#include <elf.h>
#include <initrd.h>
#include <ktest.h>
#include <layout.h>
#include <string.h>
#include <vmm.h>
#include "test_vmm_util.h"

KTEST(initrd, present_and_mapped_read_only)
{
	const void *base;
	u64 len;
	int err = initrd_get(&base, &len);
	if (err == -E_NOENT)
		ktest_log("no boot module: the loader was not given build/initrd.cpio");
	KASSERT_EQ(err, 0);
	KASSERT(len > 0);
	KASSERT((u64)base >= INITRD_BASE && (u64)base < INITRD_BASE + PAGE_SIZE);
	const void *again;
	u64 len2;
	KASSERT_EQ(initrd_get(&again, &len2), 0);
	KASSERT_EQ((u64)again, (u64)base);
	KASSERT_EQ(len2, len);
	int level;
	u64 pte = leaf_of((u64)base, &level);
	KASSERT(pte & PTE_P);
	KASSERT(!(pte & PTE_W));
	KASSERT(!(pte & PTE_U));
	KASSERT_EQ(pte & PTE_NX, nx_bit());
	u64 phys;
	KASSERT_EQ(virt_to_phys((u64)base, &phys), 0);
	KASSERT_EQ(phys, boot_info.modules[0].phys);
}

KTEST(initrd, lists_the_programs)
{
	const void *base;
	u64 len;
	KASSERT_EQ(initrd_get(&base, &len), 0);
	int n = cpio_validate(base, len);
	KASSERT(n > 0);
	struct cpio_iter it;
	struct cpio_file f;
	static struct elf_plan plan;
	int programs = 0, r;
	cpio_iter_init(&it, base, len);
	while ((r = cpio_next(&it, &f)) == 1) {
		if ((f.mode & CPIO_MODE_TYPE) != CPIO_MODE_FILE)
			continue;
		int err = elf_parse(f.data, f.size, &plan);
		ktest_log("%s: %llu bytes, elf_parse %d, entry 0x%llx, %u segments", f.name, f.size,
			  err, err ? 0ULL : plan.entry, err ? 0 : plan.nsegments);
		KASSERT_EQ(err, 0);
		programs++;
	}
	KASSERT_EQ(r, 0);
	KASSERT(programs > 0);
	KASSERT_EQ(cpio_find(base, len, "bin/hello", &f), 0);
	KASSERT_EQ(cpio_find(base, len, "tests/basic", &f), 0);
}
