/*
 * ELF64 program validation: elf_parse reads an executable's headers and
 * either refuses it with a specific error or produces a plan (entry point and
 * loadable segments with their rights) that a loader can follow without
 * looking at the headers again. Only validation: nothing is mapped here.
 *
 * Formats: System V ABI, "ELF-64 Object File Format" 1.5 and the AMD64 psABI.
 */
#ifndef OUROBOROS_ELF_H
#define OUROBOROS_ELF_H

#include <syscalls.h> /* PROT_READ, PROT_WRITE, PROT_EXEC: a segment's rights */
#include <types.h>

/* e_ident */
#define EI_NIDENT 16
#define EI_CLASS 4
#define EI_DATA 5
#define EI_VERSION 6
#define ELFCLASS64 2
#define ELFDATA2LSB 1
#define EV_CURRENT 1
/* e_type, e_machine */
#define ET_EXEC 2
#define EM_X86_64 62
/* p_type */
#define PT_NULL 0
#define PT_LOAD 1
#define PT_DYNAMIC 2
#define PT_INTERP 3
/* p_flags */
#define PF_X 1
#define PF_W 2
#define PF_R 4

struct elf64_ehdr {
	u8 e_ident[EI_NIDENT];
	u16 e_type;
	u16 e_machine;
	u32 e_version;
	u64 e_entry;
	u64 e_phoff;
	u64 e_shoff;
	u32 e_flags;
	u16 e_ehsize;
	u16 e_phentsize;
	u16 e_phnum;
	u16 e_shentsize;
	u16 e_shnum;
	u16 e_shstrndx;
} PACKED;

struct elf64_phdr {
	u32 p_type;
	u32 p_flags;
	u64 p_offset;
	u64 p_vaddr;
	u64 p_paddr;
	u64 p_filesz;
	u64 p_memsz;
	u64 p_align;
} PACKED;

/* Most program headers read, and most loadable segments kept. */
#define ELF_MAX_PHDRS 64
#define ELF_MAX_SEGMENTS 16

/* One loadable segment: memsz bytes at vaddr, the first filesz from the file at offset. */
struct elf_segment {
	u64 vaddr;
	u64 memsz;
	u64 filesz;
	u64 offset;
	u32 prot; /* PROT_READ | PROT_WRITE | PROT_EXEC, as mmap and mprotect take them */
};

/* What the loader does: segments in address order, all inside the user program area. */
struct elf_plan {
	u64 entry;
	u32 nsegments;
	struct elf_segment segments[ELF_MAX_SEGMENTS];
};

/*
 * Validate the ELF64 executable img[0, len) and fill *plan. 0, or (plan then
 * undefined) -E_ELF_MAGIC (bad magic, or shorter than it), -E_ELF_CLASS (not
 * ELF64 little-endian version 1), -E_ELF_MACHINE (not x86-64), -E_ELF_TYPE
 * (not ET_EXEC, or asks for an interpreter or dynamic linking), -E_ELF_SIZE
 * (bad header sizes; a segment's offset+filesz or vaddr+memsz wraps),
 * -E_ELF_BOUNDS (ELF or program headers, or segment data, outside the file),
 * -E_ELF_PHNUM (no loadable segment; more than ELF_MAX_PHDRS headers or
 * ELF_MAX_SEGMENTS loadable ones), -E_ELF_FILESZ (p_filesz > p_memsz),
 * -E_ELF_ALIGN (p_align not a power of two, or p_offset % p_align !=
 * p_vaddr % p_align), -E_SELFMAP (a segment touches a page-table window),
 * -E_ELF_KERNEL (a segment in the kernel half), -E_CANON (a non-canonical
 * segment), -E_ELF_RANGE (outside [USER_PROGRAM_BASE, USER_PROGRAM_END)),
 * -E_ELF_OVERLAP (two segments share a page: their rights would clash),
 * -E_ELF_ENTRY (entry not in the file part of an executable segment).
 * Headers are checked first, then each segment in header order (the first
 * bad one decides), then overlaps, then the entry.
 */
int elf_parse(const void *img, u64 len, struct elf_plan *plan);

#endif
