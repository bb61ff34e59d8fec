/*
 * elf_parse against crafted executables: a valid three-segment program
 * (text RX, rodata R, data+bss RW) is built in a buffer, then each test
 * breaks exactly one thing and expects the error that names it.
 */
#include <elf.h>
#include <ktest.h>
#include <layout.h>
#include <paging.h>
#include <string.h>

#define IMG_SIZE (4 * PAGE_SIZE)
#define TEXT_VA USER_PROGRAM_BASE
#define RODATA_VA (USER_PROGRAM_BASE + PAGE_SIZE)
#define DATA_VA (USER_PROGRAM_BASE + 2 * PAGE_SIZE)

static u8 img[IMG_SIZE] __attribute__((aligned(16)));
static struct elf_plan plan;

static struct elf64_ehdr *eh(void)
{
	return (struct elf64_ehdr *)img;
}

static struct elf64_phdr *ph(u32 i)
{
	return (struct elf64_phdr *)(img + sizeof(struct elf64_ehdr)) + i;
}

/* One program header: memsz bytes at va, filesz of them from the file at off. */
static void set_ph(u32 i, u32 flags, u64 off, u64 va, u64 filesz, u64 memsz)
{
	*ph(i) = (struct elf64_phdr){
		.p_type = PT_LOAD,
		.p_flags = flags,
		.p_offset = off,
		.p_vaddr = va,
		.p_paddr = va,
		.p_filesz = filesz,
		.p_memsz = memsz,
		.p_align = PAGE_SIZE,
	};
}

/* The valid program every test starts from: entry 0x10 bytes into text. */
static void build_valid(void)
{
	memset(img, 0, sizeof(img));
	struct elf64_ehdr *h = eh();
	memcpy(h->e_ident, "\177ELF", 4);
	h->e_ident[EI_CLASS] = ELFCLASS64;
	h->e_ident[EI_DATA] = ELFDATA2LSB;
	h->e_ident[EI_VERSION] = EV_CURRENT;
	h->e_type = ET_EXEC;
	h->e_machine = EM_X86_64;
	h->e_version = EV_CURRENT;
	h->e_entry = TEXT_VA + 0x10;
	h->e_phoff = sizeof(struct elf64_ehdr);
	h->e_ehsize = sizeof(struct elf64_ehdr);
	h->e_phentsize = sizeof(struct elf64_phdr);
	h->e_phnum = 3;
	set_ph(0, PF_R | PF_X, PAGE_SIZE, TEXT_VA, 0x40, 0x40);
	set_ph(1, PF_R, 2 * PAGE_SIZE, RODATA_VA, 0x20, 0x20);
	set_ph(2, PF_R | PF_W, 3 * PAGE_SIZE, DATA_VA, 0x10, 3 * PAGE_SIZE);
	memset(img + PAGE_SIZE, 0x90, 0x40); /* nops */
}

static int parse(void)
{
	return elf_parse(img, sizeof(img), &plan);
}

KTEST(elf, valid_program_gives_its_plan)
{
	build_valid();
	/* Headers in a different order: the plan comes out in address order. */
	struct elf64_phdr t = *ph(0);
	*ph(0) = *ph(2);
	*ph(2) = t;
	KASSERT_EQ(parse(), 0);
	KASSERT_EQ(plan.entry, TEXT_VA + 0x10);
	KASSERT_EQ(plan.nsegments, 3);
	KASSERT_EQ(plan.segments[0].vaddr, TEXT_VA);
	KASSERT_EQ(plan.segments[0].prot, PROT_READ | PROT_EXEC);
	KASSERT_EQ(plan.segments[0].offset, PAGE_SIZE);
	KASSERT_EQ(plan.segments[0].filesz, 0x40);
	KASSERT_EQ(plan.segments[1].vaddr, RODATA_VA);
	KASSERT_EQ(plan.segments[1].prot, PROT_READ);
	KASSERT_EQ(plan.segments[2].vaddr, DATA_VA);
	KASSERT_EQ(plan.segments[2].prot, PROT_READ | PROT_WRITE);
	KASSERT_EQ(plan.segments[2].filesz, 0x10);
	KASSERT_EQ(plan.segments[2].memsz, 3 * PAGE_SIZE);
}

KTEST(elf, non_load_headers_are_skipped)
{
	build_valid();
	eh()->e_phnum = 5;
	ph(3)->p_type = 4; /* PT_NOTE */
	ph(4)->p_type = 0x6474e551; /* PT_GNU_STACK */
	KASSERT_EQ(parse(), 0);
	KASSERT_EQ(plan.nsegments, 3);
}

KTEST(elf, bad_magic)
{
	build_valid();
	img[1] = 'X';
	KASSERT_EQ(parse(), -E_ELF_MAGIC);
	build_valid();
	KASSERT_EQ(elf_parse(img, 3, &plan), -E_ELF_MAGIC); /* shorter than the magic */
}

KTEST(elf, elf32_refused)
{
	build_valid();
	eh()->e_ident[EI_CLASS] = 1; /* ELFCLASS32 */
	KASSERT_EQ(parse(), -E_ELF_CLASS);
}

KTEST(elf, big_endian_refused)
{
	build_valid();
	eh()->e_ident[EI_DATA] = 2; /* ELFDATA2MSB */
	KASSERT_EQ(parse(), -E_ELF_CLASS);
}

KTEST(elf, wrong_machine)
{
	build_valid();
	eh()->e_machine = 3; /* EM_386 */
	KASSERT_EQ(parse(), -E_ELF_MACHINE);
}

KTEST(elf, wrong_type)
{
	build_valid();
	eh()->e_type = 3; /* ET_DYN: position-independent, needs relocation */
	KASSERT_EQ(parse(), -E_ELF_TYPE);
}

KTEST(elf, interpreter_refused)
{
	build_valid();
	ph(1)->p_type = PT_INTERP;
	KASSERT_EQ(parse(), -E_ELF_TYPE);
}

KTEST(elf, header_truncated)
{
	build_valid();
	KASSERT_EQ(elf_parse(img, sizeof(struct elf64_ehdr) - 1, &plan), -E_ELF_BOUNDS);
}

KTEST(elf, program_headers_outside_file)
{
	build_valid();
	eh()->e_phoff = IMG_SIZE - sizeof(struct elf64_phdr); /* three headers do not fit */
	KASSERT_EQ(parse(), -E_ELF_BOUNDS);
	eh()->e_phoff = ~0ULL - 8; /* offset + size wraps */
	KASSERT_EQ(parse(), -E_ELF_BOUNDS);
}

KTEST(elf, segment_data_outside_file)
{
	build_valid();
	ph(2)->p_filesz = PAGE_SIZE + 1; /* one byte past the end of the file */
	KASSERT_EQ(parse(), -E_ELF_BOUNDS);
}

KTEST(elf, overlapping_segments)
{
	build_valid();
	set_ph(1, PF_R, 2 * PAGE_SIZE + 0x20, TEXT_VA + 0x20, 0x10, 0x10); /* inside text */
	KASSERT_EQ(parse(), -E_ELF_OVERLAP);
}

KTEST(elf, segments_sharing_a_page)
{
	build_valid();
	/* Disjoint bytes, same page: text RX and rodata R cannot both hold there. */
	set_ph(1, PF_R, 2 * PAGE_SIZE + 0x800, TEXT_VA + 0x800, 0x10, 0x10);
	KASSERT_EQ(parse(), -E_ELF_OVERLAP);
}

KTEST(elf, segment_in_kernel_half)
{
	build_valid();
	set_ph(0, PF_R | PF_X, PAGE_SIZE, KERNEL_VIRT_OFFSET, 0x40, 0x40);
	eh()->e_entry = KERNEL_VIRT_OFFSET;
	KASSERT_EQ(parse(), -E_ELF_KERNEL);
	set_ph(0, PF_R | PF_X, PAGE_SIZE, KERNEL_HALF_START, 0x40, 0x40);
	KASSERT_EQ(parse(), -E_ELF_KERNEL);
}

KTEST(elf, segment_in_selfmap_window)
{
	build_valid();
	set_ph(2, PF_R | PF_W, 3 * PAGE_SIZE, SELFMAP_PML4, 0x10, 0x10);
	KASSERT_EQ(parse(), -E_SELFMAP);
	set_ph(2, PF_R | PF_W, 3 * PAGE_SIZE, OTHER_PT_BASE, 0x10, 0x10);
	KASSERT_EQ(parse(), -E_SELFMAP);
}

KTEST(elf, segment_non_canonical)
{
	build_valid();
	set_ph(2, PF_R | PF_W, 3 * PAGE_SIZE, USER_END, 0x10, 0x10);
	KASSERT_EQ(parse(), -E_CANON);
}

KTEST(elf, segment_outside_program_area)
{
	build_valid();
	set_ph(2, PF_R | PF_W, 3 * PAGE_SIZE, 0, 0x10, 0x10); /* page 0: the NULL guard */
	KASSERT_EQ(parse(), -E_ELF_RANGE);
	set_ph(2, PF_R | PF_W, 3 * PAGE_SIZE, USER_PROGRAM_END - PAGE_SIZE, 0x10, 2 * PAGE_SIZE);
	KASSERT_EQ(parse(), -E_ELF_RANGE);
	set_ph(2, PF_R | PF_W, 3 * PAGE_SIZE, USER_STACK_BOTTOM, 0x10, 0x10);
	KASSERT_EQ(parse(), -E_ELF_RANGE);
}

KTEST(elf, filesz_above_memsz)
{
	build_valid();
	ph(2)->p_filesz = ph(2)->p_memsz + 1;
	KASSERT_EQ(parse(), -E_ELF_FILESZ);
}

KTEST(elf, misaligned_offset)
{
	build_valid();
	ph(2)->p_offset += 0x10; /* offset % align != vaddr % align */
	KASSERT_EQ(parse(), -E_ELF_ALIGN);
	build_valid();
	ph(2)->p_align = 3 * PAGE_SIZE; /* not a power of two */
	KASSERT_EQ(parse(), -E_ELF_ALIGN);
}

KTEST(elf, entry_outside_executable_segments)
{
	build_valid();
	eh()->e_entry = RODATA_VA; /* readable, not executable */
	KASSERT_EQ(parse(), -E_ELF_ENTRY);
	eh()->e_entry = TEXT_VA + 0x40; /* one past text's file bytes */
	KASSERT_EQ(parse(), -E_ELF_ENTRY);
	eh()->e_entry = 0;
	KASSERT_EQ(parse(), -E_ELF_ENTRY);
}

KTEST(elf, absurd_sizes)
{
	build_valid();
	ph(2)->p_memsz = ~0ULL - PAGE_SIZE; /* vaddr + memsz wraps */
	KASSERT_EQ(parse(), -E_ELF_SIZE);
	build_valid();
	ph(2)->p_offset = ~0ULL - 8; /* offset + filesz wraps */
	KASSERT_EQ(parse(), -E_ELF_SIZE);
	build_valid();
	ph(2)->p_memsz = USER_PROGRAM_END; /* no wrap, but far past the program area */
	KASSERT_EQ(parse(), -E_ELF_RANGE);
	build_valid();
	eh()->e_phentsize = 32;
	KASSERT_EQ(parse(), -E_ELF_SIZE);
}

KTEST(elf, too_many_segments)
{
	build_valid();
	eh()->e_phnum = ELF_MAX_PHDRS + 1;
	KASSERT_EQ(parse(), -E_ELF_PHNUM);
	build_valid();
	/* ELF_MAX_SEGMENTS + 1 valid loadable segments, one page each. */
	eh()->e_phnum = ELF_MAX_SEGMENTS + 1;
	for (u32 i = 0; i < ELF_MAX_SEGMENTS + 1; i++)
		set_ph(i, PF_R | PF_X, 0, USER_PROGRAM_BASE + i * PAGE_SIZE, 0x40, 0x40);
	KASSERT_EQ(parse(), -E_ELF_PHNUM);
}

KTEST(elf, no_loadable_segment)
{
	build_valid();
	for (u32 i = 0; i < 3; i++)
		ph(i)->p_type = PT_NULL;
	KASSERT_EQ(parse(), -E_ELF_PHNUM);
	eh()->e_phnum = 0;
	KASSERT_EQ(parse(), -E_ELF_PHNUM);
}
