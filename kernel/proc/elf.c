/*
 * ELF64 executable validation (elf.h). The image is untrusted: every field is
 * range-checked before it is used, every sum is checked for wrap-around, and
 * headers are copied out with memcpy (the image need not be aligned).
 */
#include <elf.h>
#include <layout.h>
#include <paging.h>
#include <string.h>

static const u8 elf_magic[4] = {0x7f, 'E', 'L', 'F'};

/* True when [a, a+alen) and [b, b+blen) intersect (no length is 0, no sum wraps). */
static bool ranges_meet(u64 a, u64 alen, u64 b, u64 blen)
{
	return a < b + blen && b < a + alen;
}

/* Check the ELF header: identity, machine, type and header sizes. */
static int check_ehdr(const struct elf64_ehdr *eh, u64 len)
{
	if (len < sizeof(elf_magic) || memcmp(eh->e_ident, elf_magic, sizeof(elf_magic)) != 0)
		return -E_ELF_MAGIC;
	if (len < sizeof(*eh))
		return -E_ELF_BOUNDS;
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_ident[EI_VERSION] != EV_CURRENT || eh->e_version != EV_CURRENT)
		return -E_ELF_CLASS;
	if (eh->e_machine != EM_X86_64)
		return -E_ELF_MACHINE;
	if (eh->e_type != ET_EXEC)
		return -E_ELF_TYPE;
	if (eh->e_ehsize < sizeof(*eh) || eh->e_phentsize != sizeof(struct elf64_phdr))
		return -E_ELF_SIZE;
	if (eh->e_phnum == 0 || eh->e_phnum > ELF_MAX_PHDRS)
		return -E_ELF_PHNUM;
	/* e_phnum <= 64 and e_phentsize == 56: the product cannot wrap, the sum can. */
	u64 bytes = (u64)eh->e_phnum * sizeof(struct elf64_phdr);
	if (eh->e_phoff > len || bytes > len - eh->e_phoff)
		return -E_ELF_BOUNDS;
	return 0;
}

/* Where [va, va+size) lies: 0 inside the user program area, else the error naming it. */
static int check_place(u64 va, u64 size)
{
	if (ranges_meet(va, size, SELFMAP_BASE, PML4_SLOT_SIZE) ||
	    ranges_meet(va, size, OTHER_PT_BASE, PML4_SLOT_SIZE))
		return -E_SELFMAP;
	if (va >= KERNEL_HALF_START || va + size > KERNEL_HALF_START)
		return -E_ELF_KERNEL;
	if (va >= USER_END || va + size > USER_END)
		return -E_CANON;
	if (va < USER_PROGRAM_BASE || va + size > USER_PROGRAM_END)
		return -E_ELF_RANGE;
	return 0;
}

/* Check one PT_LOAD header and turn it into a segment. */
static int check_load(const struct elf64_phdr *ph, u64 len, struct elf_segment *seg)
{
	if (ph->p_filesz > ph->p_memsz)
		return -E_ELF_FILESZ;
	if (ph->p_offset + ph->p_filesz < ph->p_offset || ph->p_vaddr + ph->p_memsz < ph->p_vaddr)
		return -E_ELF_SIZE;
	if (ph->p_offset + ph->p_filesz > len)
		return -E_ELF_BOUNDS;
	u64 align = ph->p_align;
	if (align > 1 && ((align & (align - 1)) != 0 || ph->p_offset % align != ph->p_vaddr % align))
		return -E_ELF_ALIGN;
	int err = check_place(ph->p_vaddr, ph->p_memsz);
	if (err < 0)
		return err;
	*seg = (struct elf_segment){
		.vaddr = ph->p_vaddr,
		.memsz = ph->p_memsz,
		.filesz = ph->p_filesz,
		.offset = ph->p_offset,
		.prot = (ph->p_flags & PF_R ? PROT_READ : 0) | (ph->p_flags & PF_W ? PROT_WRITE : 0) |
			(ph->p_flags & PF_X ? PROT_EXEC : 0),
	};
	return 0;
}

/* -E_ELF_OVERLAP if two segments share a page (each page gets one segment's rights). */
static int check_overlaps(const struct elf_plan *plan)
{
	for (u32 i = 0; i < plan->nsegments; i++) {
		const struct elf_segment *a = &plan->segments[i];
		u64 a0 = ALIGN_DOWN(a->vaddr, PAGE_SIZE), a1 = ALIGN_UP(a->vaddr + a->memsz, PAGE_SIZE);
		for (u32 j = i + 1; j < plan->nsegments; j++) {
			const struct elf_segment *b = &plan->segments[j];
			u64 b0 = ALIGN_DOWN(b->vaddr, PAGE_SIZE);
			u64 b1 = ALIGN_UP(b->vaddr + b->memsz, PAGE_SIZE);
			if (a0 < b1 && b0 < a1)
				return -E_ELF_OVERLAP;
		}
	}
	return 0;
}

/* Sort the plan's segments by address (insertion sort: at most ELF_MAX_SEGMENTS). */
static void sort_segments(struct elf_plan *plan)
{
	for (u32 i = 1; i < plan->nsegments; i++) {
		struct elf_segment s = plan->segments[i];
		u32 j = i;
		for (; j > 0 && plan->segments[j - 1].vaddr > s.vaddr; j--)
			plan->segments[j] = plan->segments[j - 1];
		plan->segments[j] = s;
	}
}

/* True when entry lies in the file-backed part of an executable segment. */
static bool entry_ok(const struct elf_plan *plan, u64 entry)
{
	for (u32 i = 0; i < plan->nsegments; i++) {
		const struct elf_segment *s = &plan->segments[i];
		if ((s->prot & PROT_EXEC) && entry >= s->vaddr && entry - s->vaddr < s->filesz)
			return true;
	}
	return false;
}

int elf_parse(const void *img, u64 len, struct elf_plan *plan)
{
	struct elf64_ehdr eh;
	memset(&eh, 0, sizeof(eh));
	memcpy(&eh, img, len < sizeof(eh) ? len : sizeof(eh));
	int err = check_ehdr(&eh, len);
	if (err < 0)
		return err;
	plan->nsegments = 0;
	for (u32 i = 0; i < eh.e_phnum; i++) {
		struct elf64_phdr ph;
		memcpy(&ph, (const u8 *)img + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC)
			return -E_ELF_TYPE; /* a static loader cannot honour these */
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (plan->nsegments == ELF_MAX_SEGMENTS)
			return -E_ELF_PHNUM;
		err = check_load(&ph, len, &plan->segments[plan->nsegments]);
		if (err < 0)
			return err;
		plan->nsegments++;
	}
	if (plan->nsegments == 0)
		return -E_ELF_PHNUM;
	sort_segments(plan);
	if ((err = check_overlaps(plan)) < 0)
		return err;
	if (!entry_ok(plan, eh.e_entry))
		return -E_ELF_ENTRY;
	plan->entry = eh.e_entry;
	return 0;
}
