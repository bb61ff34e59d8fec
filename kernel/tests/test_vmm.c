/*
 * The paging API on the current address space: each operation, each of its
 * error codes provoked, W^X of the kernel, TLB invalidation, large pages,
 * the page dump and accessed/dirty statistics. Every test gives back what it
 * took: the PMM's free count at the end equals the one at the start.
 */
#include "test_vmm_util.h"
#include <smap.h>
#include <cpu.h>
#include <gdt.h>
#include <image.h>
#include <ktest.h>
#include <pmm.h>
#include <printf.h>
#include <string.h>
#include <trap.h>
#include <vmm.h>

/*
 * A physical address no RAM backs at any size the tests boot with (up to 4 GiB,
 * some of it above 4 GiB) and below every MAXPHYADDR (36 bits at least): 32 GiB.
 * Only mapped, never accessed.
 */
#define FAKE_PHYS 0x800000000ULL
/* x86 `ret`: executed where execution must fault. */
#define OPCODE_RET 0xc3

static const u64 BASE = INDICES_VA(TSLOT_VMM, 0, 0, 0);
/* A 1 GiB-aligned address of the tests' second slot. */
static const u64 BASE2 = INDICES_VA(TSLOT_VMM + 1, 0, 0, 0);
/* A kernel-half address in the heap's slot, far from anything the heap hands out. */
static const u64 KBASE = HEAP_BASE + PML4_SLOT_SIZE / 2;

/* 1 << MAXPHYADDR, straight from CPUID. */
static u64 phys_limit(void)
{
	return 1ULL << (cpuid(CPUID_EXT_ADDR_SIZES, 0).eax & 0xff);
}

/* Write a byte at va expecting a #PF; returns the record. */
static struct trap_record write_faults(u64 va)
{
	u8 byte = *(volatile u8 *)va;
	trap_expect(VEC_PF);
	__asm__ volatile(TRAP_FIXUP_SITE("movb %0, (%1)") : : "q"(byte), "r"(va) : TRAP_FIXUP_CLOBBERS);
	return trap_expect_end();
}

/*
 * Call code at va expecting a #PF on the fetch. The fault is at va itself
 * (not at a fixup label), after the call pushed its return address: resume
 * at 2:, which drops it. Should va execute after all, its `ret` comes back
 * to the jmp.
 */
static struct trap_record call_faults(u64 va)
{
	trap_expect(VEC_PF);
	trap_expected.fault_rip = va;
	__asm__ volatile("leaq 2f(%%rip), %%r11\n\t"
			 "movq %%r11, trap_expected+8(%%rip)\n\t"
			 "call *%0\n\t"
			 "jmp 3f\n"
			 "2:\n\t"
			 "addq $8, %%rsp\n"
			 "3:\n\t"
			 :
			 : "r"(va)
			 : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory");
	return trap_expect_end();
}

KTEST(vmm, map_translate_unmap)
{
	u64 free0 = free_frames();
	u64 frame = frame_with_pattern(BASE, 0x1111);
	KASSERT_EQ(map_region(BASE + PAGE_SIZE, frame, 1, VMM_WRITE), 0);
	u64 pa = 0;
	KASSERT_EQ(virt_to_phys(BASE + PAGE_SIZE + 0x123, &pa), 0);
	KASSERT_EQ(pa, frame + 0x123);
	volatile u64 *p = (volatile u64 *)(BASE + PAGE_SIZE);
	KASSERT_EQ(p[5], 0x1111 ^ 5); /* what frame_with_pattern wrote through another address */
	p[5] = 42;
	KASSERT_EQ(p[5], 42);
	int level;
	u64 pte = leaf_of(BASE + PAGE_SIZE, &level);
	KASSERT_EQ(level, LEVEL_PT);
	KASSERT_EQ(pte_frame(pte), frame);
	KASSERT_EQ(pte & (PTE_P | PTE_W | PTE_U | PTE_G | PTE_PS), PTE_P | PTE_W);
	KASSERT_EQ(pte & PTE_NX, nx_bit());
	KASSERT_EQ(unmap_region(BASE + PAGE_SIZE, 1, VMM_FREE_FRAMES), 0);
	KASSERT_EQ(virt_to_phys(BASE + PAGE_SIZE, &pa), -E_NOTMAPPED);
	KASSERT(!pml4_present(TSLOT_VMM)); /* its tables went with it */
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm, map_invalid_arguments)
{
	u64 free0 = free_frames();
	KASSERT_EQ(map_region(BASE, FAKE_PHYS, 1, 1u << 12), -E_INVAL); /* unknown flag */
	KASSERT_EQ(map_region(BASE, FAKE_PHYS, 0, 0), -E_INVAL);
	KASSERT_EQ(map_region(BASE, FAKE_PHYS, 1, VMM_LARGE | VMM_HUGE), -E_INVAL);
	KASSERT_EQ(map_region(BASE, FAKE_PHYS, 1, VMM_GLOBAL), -E_INVAL);  /* global user page */
	KASSERT_EQ(map_region(KBASE, FAKE_PHYS, 1, VMM_USER), -E_INVAL);   /* user kernel page */
	/* A kernel slot no one uses: a PDPT made there would not be in the other spaces. */
	KASSERT_EQ(map_region(INDICES_VA(unused_kernel_slot(), 0, 0, 0), FAKE_PHYS, 1, 0), -E_INVAL);
	/* Physical addresses stop at MAXPHYADDR. */
	u64 limit = phys_limit();
	KASSERT_EQ(map_region(BASE, limit, 1, 0), -E_INVAL);
	KASSERT_EQ(map_region(BASE, limit - PAGE_SIZE, 2, 0), -E_INVAL);
	KASSERT_EQ(map_region(BASE, limit - PAGE_SIZE, 1, 0), 0);
	KASSERT_EQ(unmap_region(BASE, 1, 0), 0);
	if (!vmm_has_huge_pages())
		KASSERT_EQ(map_region(BASE, 0, 1, VMM_HUGE), -E_INVAL);
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm, map_align_canon_selfmap)
{
	u64 free0 = free_frames();
	KASSERT_EQ(map_region(BASE + 8, FAKE_PHYS, 1, 0), -E_ALIGN);
	KASSERT_EQ(map_region(BASE, FAKE_PHYS + 8, 1, 0), -E_ALIGN);
	KASSERT_EQ(map_region(BASE + PAGE_SIZE, FAKE_PHYS, 1, VMM_LARGE), -E_ALIGN);
	KASSERT_EQ(map_region(BASE, FAKE_PHYS + PAGE_SIZE, 1, VMM_LARGE), -E_ALIGN);
	KASSERT_EQ(map_region(USER_END, FAKE_PHYS, 1, 0), -E_CANON);
	KASSERT_EQ(map_region(KERNEL_HALF_START - PAGE_SIZE, FAKE_PHYS, 1, 0), -E_CANON);
	KASSERT_EQ(map_region(USER_END - PAGE_SIZE, FAKE_PHYS, 2, 0), -E_CANON); /* leaves its half */
	KASSERT_EQ(map_region(BASE, FAKE_PHYS, 1ULL << 40, 0), -E_CANON);
	KASSERT_EQ(map_region(SELFMAP_BASE, FAKE_PHYS, 1, 0), -E_SELFMAP);
	KASSERT_EQ(map_region(SELFMAP_PML4, FAKE_PHYS, 1, 0), -E_SELFMAP);
	KASSERT_EQ(map_region(SELFMAP_END - PAGE_SIZE, FAKE_PHYS, 1, 0), -E_SELFMAP);
	KASSERT_EQ(map_region(OTHER_PT_BASE, FAKE_PHYS, 1, 0), -E_SELFMAP);
	/* Running into a window from below counts too. */
	KASSERT_EQ(map_region(OTHER_PT_BASE - PAGE_SIZE, FAKE_PHYS, 2, 0), -E_SELFMAP);
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm, map_exist_and_huge)
{
	u64 free0 = free_frames(), pa;
	KASSERT_EQ(map_region(BASE + 2 * PAGE_SIZE, FAKE_PHYS, 1, 0), 0);
	KASSERT_EQ(map_region(BASE + 2 * PAGE_SIZE, FAKE_PHYS, 1, 0), -E_EXIST);
	/* All or nothing: page 1 is free, page 2 is not, so page 1 stays unmapped. */
	KASSERT_EQ(map_region(BASE + PAGE_SIZE, FAKE_PHYS, 3, 0), -E_EXIST);
	KASSERT_EQ(virt_to_phys(BASE + PAGE_SIZE, &pa), -E_NOTMAPPED);
	/* A large page where a PT already is. */
	KASSERT_EQ(map_region(BASE, 0, 1, VMM_LARGE), -E_EXIST);
	/* A 4 KiB page under a large page. */
	KASSERT_EQ(map_region(BASE + LARGE_PAGE_SIZE, 0, 1, VMM_LARGE), 0);
	KASSERT_EQ(map_region(BASE + LARGE_PAGE_SIZE + PAGE_SIZE, FAKE_PHYS, 1, 0), -E_HUGE);
	KASSERT_EQ(map_region(BASE + LARGE_PAGE_SIZE, 0, 1, VMM_LARGE), -E_EXIST);
	if (vmm_has_huge_pages()) {
		KASSERT_EQ(map_region(BASE2, 0, 1, VMM_HUGE), 0);
		KASSERT_EQ(map_region(BASE2 + LARGE_PAGE_SIZE, 0, 1, VMM_LARGE), -E_HUGE);
		KASSERT_EQ(unmap_region(BASE2, HUGE_PAGE_SIZE / PAGE_SIZE, 0), 0);
	}
	KASSERT_EQ(unmap_region(BASE, 2 * LARGE_PAGE_SIZE / PAGE_SIZE, 0), 0);
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm, unmap_errors_and_holes)
{
	u64 free0 = free_frames(), pa;
	KASSERT_EQ(unmap_region(BASE, 0, 0), -E_INVAL);
	KASSERT_EQ(unmap_region(BASE, 1, 1u << 5), -E_INVAL);
	KASSERT_EQ(unmap_region(BASE + 1, 1, 0), -E_ALIGN);
	KASSERT_EQ(unmap_region(USER_END, 1, 0), -E_CANON);
	KASSERT_EQ(unmap_region(SELFMAP_BASE, 1, 0), -E_SELFMAP);
	/* Nothing mapped: a no-op. */
	KASSERT_EQ(unmap_region(BASE, 3 * TABLE_ENTRIES, 0), 0);
	/* A large page must be unmapped whole. */
	KASSERT_EQ(map_region(BASE, 0, 1, VMM_LARGE), 0);
	KASSERT_EQ(unmap_region(BASE + PAGE_SIZE, 1, 0), -E_HUGE);
	KASSERT_EQ(unmap_region(BASE, TABLE_ENTRIES - 1, 0), -E_HUGE);
	KASSERT_EQ(virt_to_phys(BASE + PAGE_SIZE, &pa), 0); /* nothing changed */
	KASSERT_EQ(unmap_region(BASE, TABLE_ENTRIES, 0), 0);
	KASSERT_EQ(virt_to_phys(BASE, &pa), -E_NOTMAPPED);
	/* VMM_FREE_FRAMES on a frame the PMM does not manage: unmapped, and the refusal reported. */
	KASSERT_EQ(map_region(BASE, FAKE_PHYS, 1, 0), 0);
	KASSERT_EQ(unmap_region(BASE, 1, VMM_FREE_FRAMES), -E_INVAL);
	KASSERT_EQ(virt_to_phys(BASE, &pa), -E_NOTMAPPED);
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm, unmap_free_frames)
{
	u64 free0 = free_frames();
	for (u64 i = 0; i < 3; i++) {
		u64 frame;
		KASSERT_EQ(pmm_alloc(&frame), 0);
		KASSERT_EQ(map_region(BASE + i * PAGE_SIZE, frame, 1, VMM_WRITE), 0);
	}
	KASSERT(free_frames() < free0 - 3); /* the frames and their tables */
	KASSERT_EQ(unmap_region(BASE, 3, VMM_FREE_FRAMES), 0);
	KASSERT_EQ(free_frames(), free0);
}

/* True when the PT for va exists (a walk ends at the PT level). */
static bool pt_exists(u64 va)
{
	int level;
	(void)paging_walk(va, &level);
	return level == LEVEL_PT;
}

KTEST(vmm, make_kept_tables_out_of_frames_changes_nothing)
{
	/* Two PT spans of the heap's slot, far from anything the heap or another test uses. */
	const u64 va = HEAP_BASE + PML4_SLOT_SIZE / 4, bytes = 2 * LARGE_PAGE_SIZE;
	KASSERT_EQ(vmm_make_kept_tables(BASE, bytes), -E_INVAL); /* the user half */
	KASSERT_EQ(vmm_make_kept_tables(va + 8, bytes), -E_INVAL);
	KASSERT_EQ(vmm_make_kept_tables(va, 0), -E_INVAL);
	KASSERT_EQ(vmm_make_kept_tables(va, bytes + 8), -E_INVAL);
	KASSERT_EQ(vmm_make_kept_tables(SELFMAP_BASE, bytes), -E_SELFMAP); /* the tables' window */
	/*
	 * The first span's PT, then its PD (nested), then the second span's PT:
	 * each allocation failing in turn gives -E_NOMEM with the tables made
	 * before it released again (the third leaves a whole span to undo).
	 */
	for (u64 nth = 1; nth <= 3; nth++) {
		u64 free0 = free_frames();
		pmm_inject_fail_nth(nth);
		int err = vmm_make_kept_tables(va, bytes);
		pmm_inject_off();
		KASSERT_EQ(err, -E_NOMEM);
		KASSERT_EQ(free_frames(), free0);
		KASSERT(!pt_exists(va) && !pt_exists(va + LARGE_PAGE_SIZE));
	}
}

KTEST(vmm, set_page_flags_protects)
{
	u64 free0 = free_frames();
	u64 frame = frame_with_pattern(BASE, 7);
	KASSERT_EQ(map_region(BASE, frame, 1, VMM_WRITE), 0);
	volatile u64 *p = (volatile u64 *)BASE;
	p[0] = 99; /* the TLB now holds a writable, dirty translation */
	KASSERT_EQ(set_page_flags(BASE, 1, 0), 0);
	u64 pte = leaf_of(BASE, NULL);
	KASSERT_EQ(pte & PTE_W, 0);
	KASSERT_EQ(pte_frame(pte), frame);
	KASSERT(pte & PTE_D); /* accessed/dirty survive */
	/* Only an invalidated TLB entry makes this write fault. */
	struct trap_record r = write_faults(BASE);
	KASSERT(r.hit);
	KASSERT_EQ(r.cr2, BASE);
	KASSERT_EQ(r.error_code & (PF_ERR_P | PF_ERR_W), PF_ERR_P | PF_ERR_W);
	KASSERT_EQ(p[0], 99);
	KASSERT_EQ(set_page_flags(BASE, 1, VMM_WRITE | VMM_EXEC | VMM_USER), 0);
	pte = leaf_of(BASE, NULL);
	KASSERT_EQ(pte & (PTE_W | PTE_U | PTE_NX), PTE_W | PTE_U);
	/* Writable again; with SMAP on, a user page is not the kernel's to write. */
	if (!smap_on())
		p[0] = 100;
	KASSERT_EQ(unmap_region(BASE, 1, VMM_FREE_FRAMES), 0);
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm, set_page_flags_errors)
{
	u64 free0 = free_frames();
	KASSERT_EQ(map_region(BASE, FAKE_PHYS, 1, VMM_WRITE), 0);
	u64 before = leaf_of(BASE, NULL);
	KASSERT_EQ(set_page_flags(BASE, 1, VMM_LARGE), -E_INVAL);
	KASSERT_EQ(set_page_flags(BASE, 0, 0), -E_INVAL);
	KASSERT_EQ(set_page_flags(BASE, 1, VMM_GLOBAL), -E_INVAL);
	KASSERT_EQ(set_page_flags(KBASE, 1, VMM_USER), -E_INVAL);
	KASSERT_EQ(set_page_flags(BASE + 1, 1, 0), -E_ALIGN);
	KASSERT_EQ(set_page_flags(USER_END, 1, 0), -E_CANON);
	KASSERT_EQ(set_page_flags(SELFMAP_PML4, 1, 0), -E_SELFMAP);
	/* Page 1 is not mapped: nothing changes, not even page 0. */
	KASSERT_EQ(set_page_flags(BASE, 2, 0), -E_NOTMAPPED);
	KASSERT_EQ(leaf_of(BASE, NULL), before);
	/* A large page only partly in the range. */
	KASSERT_EQ(map_region(BASE + LARGE_PAGE_SIZE, 0, 1, VMM_LARGE | VMM_WRITE), 0);
	KASSERT_EQ(set_page_flags(BASE + LARGE_PAGE_SIZE + PAGE_SIZE, 1, 0), -E_HUGE);
	KASSERT_EQ(set_page_flags(BASE + LARGE_PAGE_SIZE, TABLE_ENTRIES - 1, 0), -E_HUGE);
	KASSERT_EQ(set_page_flags(BASE + LARGE_PAGE_SIZE, TABLE_ENTRIES, 0), 0);
	int level;
	u64 large = leaf_of(BASE + LARGE_PAGE_SIZE, &level);
	KASSERT_EQ(level, LEVEL_PD);
	KASSERT_EQ(large & (PTE_PS | PTE_W), PTE_PS);
	KASSERT_EQ(unmap_region(BASE, 2 * TABLE_ENTRIES, 0), 0);
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm, virt_to_phys_cases)
{
	u64 pa = 0;
	KASSERT_EQ(virt_to_phys(USER_END, &pa), -E_CANON);
	KASSERT_EQ(virt_to_phys(BASE, &pa), -E_NOTMAPPED);
	KASSERT_EQ(virt_to_phys((u64)__text_start + 5, &pa), 0);
	KASSERT_EQ(pa, (u64)__text_start + 5 - KERNEL_VIRT_OFFSET);
	/* The self-map: the PML4's page is the frame in CR3. */
	KASSERT_EQ(virt_to_phys(SELFMAP_PML4, &pa), 0);
	KASSERT_EQ(pa, read_cr3() & PTE_ADDR_MASK);
	/* A large page: the offset inside it is kept whole. */
	KASSERT_EQ(map_region(BASE, 4 * LARGE_PAGE_SIZE, 1, VMM_LARGE), 0);
	KASSERT_EQ(virt_to_phys(BASE + 0x1ff123, &pa), 0);
	KASSERT_EQ(pa, 4 * LARGE_PAGE_SIZE + 0x1ff123);
	KASSERT_EQ(unmap_region(BASE, TABLE_ENTRIES, 0), 0);
}

KTEST(vmm, large_page_reads_memory)
{
	u64 free0 = free_frames();
	/* The 2 MiB of RAM the kernel text lies in, read through one large page. */
	u64 text_phys = (u64)__text_start - KERNEL_VIRT_OFFSET;
	KASSERT_EQ(map_region(BASE, ALIGN_DOWN(text_phys, LARGE_PAGE_SIZE), 1, VMM_LARGE), 0);
	const u8 *view = (const u8 *)(BASE + text_phys % LARGE_PAGE_SIZE);
	KASSERT_EQ(memcmp(view, __text_start, 64), 0);
	u64 accessed, dirty;
	KASSERT_EQ(vmm_ad_stats(BASE, LARGE_PAGE_SIZE, &accessed, &dirty), 0);
	KASSERT_EQ(accessed, TABLE_ENTRIES); /* one large page, counted in 4 KiB pages */
	KASSERT_EQ(dirty, 0);
	KASSERT_EQ(unmap_region(BASE, TABLE_ENTRIES, 0), 0);
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm, huge_page_when_cpuid_says_so)
{
	u64 free0 = free_frames();
	bool cpuid_1g = cpuid(CPUID_EXT_FEATURES, 0).edx & CPUID_EDX_PAGE1GB;
	KASSERT_EQ(vmm_has_huge_pages(), cpuid_1g);
	if (!cpuid_1g) {
		/* TCG would walk a 1 GiB entry anyway: the refusal comes from CPUID alone. */
		KASSERT_EQ(map_region(BASE2, 0, 1, VMM_HUGE), -E_INVAL);
		KTEST_SKIP("the CPU has no 1 GiB pages (CPUID.80000001H:EDX[26] clear)");
	}
	KASSERT_EQ(map_region(BASE2 + LARGE_PAGE_SIZE, 0, 1, VMM_HUGE), -E_ALIGN);
	KASSERT_EQ(map_region(BASE2, 0, 1, VMM_HUGE), 0);
	int level;
	leaf_of(BASE2, &level);
	KASSERT_EQ(level, LEVEL_PDPT);
	u64 text_phys = (u64)__text_start - KERNEL_VIRT_OFFSET;
	KASSERT_EQ(memcmp((const u8 *)(BASE2 + text_phys), __text_start, 64), 0);
	KASSERT_EQ(unmap_region(BASE2, HUGE_PAGE_SIZE / PAGE_SIZE, 0), 0);
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm, nx_unless_exec)
{
	KASSERT_EQ(map_region(BASE, FAKE_PHYS, 1, 0), 0);
	KASSERT_EQ(map_region(BASE + PAGE_SIZE, FAKE_PHYS, 1, VMM_EXEC), 0);
	KASSERT_EQ(leaf_of(BASE, NULL) & PTE_NX, nx_bit());
	KASSERT_EQ(leaf_of(BASE + PAGE_SIZE, NULL) & PTE_NX, 0);
	KASSERT_EQ(unmap_region(BASE, 2, 0), 0);
}

KTEST(vmm, global_kernel_page)
{
	u64 free0 = free_frames();
	KASSERT_EQ(map_region(KBASE, FAKE_PHYS, 1, VMM_GLOBAL | VMM_WRITE), 0);
	KASSERT(leaf_of(KBASE, NULL) & PTE_G);
	/* The tables above it never are: each is also a self-map PTE. */
	KASSERT_EQ(*selfmap_entry(LEVEL_PD, KBASE) & PTE_G, 0);
	KASSERT_EQ(*selfmap_entry(LEVEL_PDPT, KBASE) & PTE_G, 0);
	KASSERT_EQ(unmap_region(KBASE, 1, 0), 0);
	/* Its PT and PD are released; the shared kernel-half PDPT is not. */
	KASSERT_EQ(*selfmap_entry(LEVEL_PDPT, KBASE) & PTE_P, 0);
	KASSERT(pml4_present(HEAP_SLOT));
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm, no_global_table_entries)
{
	volatile const u64 *pml4 = (volatile const u64 *)SELFMAP_PML4;
	KASSERT_EQ(pml4[RECURSIVE_SLOT] & PTE_G, 0);
	KASSERT(pml4[RECURSIVE_SLOT] & PTE_P);
	for (u64 i = 0; i < TABLE_ENTRIES; i++)
		KASSERT_EQ(pml4[i] & PTE_G, 0);
	/* The kernel image's path: PDPT and PD entries are tables, never global. */
	KASSERT_EQ(*selfmap_entry(LEVEL_PDPT, (u64)__text_start) & PTE_G, 0);
	KASSERT_EQ(*selfmap_entry(LEVEL_PD, (u64)__text_start) & PTE_G, 0);
}

KTEST(vmm, tlb_invalidated_on_remap)
{
	u64 free0 = free_frames();
	u64 a = frame_with_pattern(BASE, 0xaaaa), b = frame_with_pattern(BASE, 0xbbbb);
	volatile u64 *p = (volatile u64 *)BASE;
	KASSERT_EQ(map_region(BASE, a, 1, 0), 0);
	KASSERT_EQ(p[1], 0xaaaa ^ 1); /* cached: BASE -> a */
	KASSERT_EQ(unmap_region(BASE, 1, 0), 0);
	KASSERT_EQ(map_region(BASE, b, 1, 0), 0);
	KASSERT_EQ(p[1], 0xbbbb ^ 1); /* a stale entry would still give a's content */
	/* The control: the same remap without invlpg reads the old frame here. */
	*(volatile u64 *)selfmap_pte(BASE) = a | PTE_P | nx_bit(); /* outside pte.h on purpose */
	u64 stale = p[1];
	invlpg(BASE);
	u64 fresh = p[1];
	ktest_log("remap without invlpg read %s", stale == (0xbbbb ^ 1) ? "the old frame (stale TLB)"
									 : "the new frame");
	KASSERT_EQ(fresh, 0xaaaa ^ 1);
	KASSERT_EQ(unmap_region(BASE, 1, 0), 0);
	KASSERT_EQ(pmm_free(a), 0);
	KASSERT_EQ(pmm_free(b), 0);
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm, kernel_is_wx)
{
	struct vmm_stats s;
	vmm_get_stats(&s);
	KASSERT_EQ(s.image_pages_fixed, 0); /* the boot tables were W^X already */
	struct trap_record r = write_faults((u64)__text_start);
	KASSERT(r.hit);
	KASSERT_EQ(r.error_code & (PF_ERR_P | PF_ERR_W), PF_ERR_P | PF_ERR_W);
	r = write_faults((u64)__rodata_start);
	KASSERT(r.hit);
	KASSERT_EQ(r.cr2, (u64)__rodata_start);
	if (!cpu_nx_enabled())
		KTEST_SKIP("the CPU has no NX: data cannot be made non-executable");
	static u8 data_code[16] = {OPCODE_RET};
	r = call_faults((u64)data_code);
	KASSERT(r.hit);
	KASSERT_EQ(r.cr2, (u64)data_code);
	KASSERT_EQ(r.error_code & (PF_ERR_P | PF_ERR_I), PF_ERR_P | PF_ERR_I);
	u8 stack_code[16] = {OPCODE_RET};
	r = call_faults((u64)stack_code);
	KASSERT(r.hit);
	KASSERT_EQ(r.error_code & (PF_ERR_P | PF_ERR_I), PF_ERR_P | PF_ERR_I);
	r = call_faults((u64)__rodata_start);
	KASSERT(r.hit);
	KASSERT_EQ(r.error_code & PF_ERR_I, PF_ERR_I);
}

/* Base of the TSS from its GDT descriptor (SDM Vol. 3A §7.2.3). */
static u64 tss_base(void)
{
	const u64 *d = (const u64 *)(sgdt().base + GDT_TSS);
	return ((d[0] >> 16) & 0xffffff) | (((d[0] >> 56) & 0xff) << 24) | (d[1] << 32);
}

KTEST(vmm, boot_identity_map_removed)
{
	u64 pa;
	KASSERT_EQ(virt_to_phys((u64)__boot_start, &pa), -E_NOTMAPPED);
	KASSERT(!pml4_present(va_index((u64)__boot_start, LEVEL_PML4)));
	/* Nothing the CPU uses lies there. */
	KASSERT(sgdt().base >= KERNEL_HALF_START);
	KASSERT(sidt().base >= KERNEL_HALF_START);
	KASSERT(tss_base() >= KERNEL_HALF_START);
}

KTEST(vmm, kernel_half_slots_exist)
{
	KASSERT(pml4_present(PMM_STACK_SLOT));
	KASSERT(pml4_present(HEAP_SLOT));
	KASSERT(pml4_present(KERNEL_PML4_SLOT));
	KASSERT(!pml4_present(OTHER_SLOT)); /* only while another space is worked on */
	/* The guard page under the kernel stack stays unmapped. */
	KASSERT_EQ(leaf_of((u64)__stack_guard, NULL), 0);
}

/* Collects the dump's ranges that touch [lo, hi). */
struct range_probe {
	u64 lo, hi;
	struct vmm_range found[4];
	int n;
	bool text_range;      /* a -r- x range starts at __text_start and ends where W^X says */
	bool selfmap_data;    /* the PML4's self-map page is in a -rw nx range */
};

static void probe_range(const struct vmm_range *r, void *ctx)
{
	struct range_probe *p = ctx;
	if (r->start < p->hi && r->end > p->lo && p->n < 4)
		p->found[p->n++] = *r;
	/* Text is r-x; rodata, r- nx, follows: one range without NX, two with it. */
	u64 text_end = cpu_nx_enabled() ? (u64)__text_end : (u64)__rodata_end;
	if (r->start == (u64)__text_start && r->end == text_end && !r->write && !r->user)
		p->text_range = !r->nx;
	if (r->start <= SELFMAP_PML4 && r->end > SELFMAP_PML4)
		p->selfmap_data = r->write && !r->user && (r->nx || !cpu_nx_enabled());
}

KTEST(vmm, dump_merges_ranges)
{
	u64 free0 = free_frames();
	KASSERT_EQ(map_region(BASE, FAKE_PHYS, 2, VMM_USER | VMM_WRITE), 0);
	KASSERT_EQ(map_region(BASE + 2 * PAGE_SIZE, FAKE_PHYS, 1, VMM_USER | VMM_EXEC), 0);
	struct range_probe p = {.lo = BASE, .hi = BASE + 3 * PAGE_SIZE};
	vmm_walk_ranges(probe_range, &p);
	vmm_dump("    ");
	KASSERT_EQ(unmap_region(BASE, 3, 0), 0);
	KASSERT_EQ(p.n, 2);
	KASSERT_EQ(p.found[0].start, BASE);
	KASSERT_EQ(p.found[0].end, BASE + 2 * PAGE_SIZE);
	KASSERT(p.found[0].user && p.found[0].write && p.found[0].nx == cpu_nx_enabled());
	KASSERT_EQ(p.found[1].start, BASE + 2 * PAGE_SIZE);
	KASSERT_EQ(p.found[1].end, BASE + 3 * PAGE_SIZE);
	KASSERT(p.found[1].user && !p.found[1].write && !p.found[1].nx);
	KASSERT(p.text_range);
	KASSERT(p.selfmap_data);
	char line[96];
	vmm_format_range(&p.found[0], line, sizeof(line));
	KASSERT_STREQ(line, cpu_nx_enabled()
				    ? "# map 0000200000000000-0000200000002000 0000000000002000 urw nx"
				    : "# map 0000200000000000-0000200000002000 0000000000002000 urw x");
	struct vmm_range k = {0xffffffff80100000ULL, 0xffffffff80105000ULL, false, false, false};
	vmm_format_range(&k, line, sizeof(line));
	KASSERT_STREQ(line, "# map ffffffff80100000-ffffffff80105000 0000000000005000 -r- x");
	KASSERT_EQ(free_frames(), free0);
}

KTEST(vmm, accessed_dirty_stats)
{
	u64 free0 = free_frames(), accessed, dirty;
	u64 frame = frame_with_pattern(BASE, 0);
	KASSERT_EQ(map_region(BASE, frame, 1, VMM_WRITE), 0);
	KASSERT_EQ(map_region(BASE + PAGE_SIZE, frame, 1, VMM_WRITE), 0);
	KASSERT_EQ(vmm_ad_stats(BASE, 4 * PAGE_SIZE, &accessed, &dirty), 0);
	KASSERT_EQ(accessed, 0);
	KASSERT_EQ(dirty, 0);
	(void)*(volatile u64 *)BASE;
	*(volatile u64 *)(BASE + PAGE_SIZE) = 1;
	KASSERT_EQ(vmm_ad_stats(BASE, 4 * PAGE_SIZE, &accessed, &dirty), 0);
	KASSERT_EQ(accessed, 2);
	KASSERT_EQ(dirty, 1);
	KASSERT_EQ(vmm_ad_stats(BASE, 0, &accessed, &dirty), -E_INVAL);
	KASSERT_EQ(vmm_ad_stats(BASE + 1, PAGE_SIZE, &accessed, &dirty), -E_ALIGN);
	KASSERT_EQ(vmm_ad_stats(USER_END, PAGE_SIZE, &accessed, &dirty), -E_CANON);
	KASSERT_EQ(vmm_ad_stats(SELFMAP_BASE, PAGE_SIZE, &accessed, &dirty), -E_SELFMAP);
	KASSERT_EQ(vmm_ad_stats(OTHER_PT_BASE, PAGE_SIZE, &accessed, &dirty), -E_SELFMAP);
	KASSERT_EQ(unmap_region(BASE, 2, 0), 0);
	KASSERT_EQ(pmm_free(frame), 0);
	KASSERT_EQ(free_frames(), free0);
}
