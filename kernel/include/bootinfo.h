/*
 * What the loader told the kernel: which protocol started it, the command
 * line (copied into the kernel), and where the memory map and ACPI RSDP are
 * (kept as physical addresses for the memory manager).
 */
#ifndef OUROBOROS_BOOTINFO_H
#define OUROBOROS_BOOTINFO_H

#include <types.h>

/* Longest command line kept, terminator included; longer ones are truncated. */
#define CMDLINE_MAX 1024

/* PVH start info (Xen public/arch-x86/hvm/start_info.h). */
#define PVH_START_MAGIC 0x336ec578u
#define PVH_MEMMAP_VERSION 1 /* memmap_* fields exist from this version on */

struct hvm_start_info {
	u32 magic;
	u32 version;
	u32 flags;
	u32 nr_modules;
	u64 modlist_paddr;
	u64 cmdline_paddr;
	u64 rsdp_paddr;
	u64 memmap_paddr; /* version >= 1 */
	u32 memmap_entries;
	u32 reserved;
} PACKED;

/* One PVH module-list entry. */
struct hvm_modlist_entry {
	u64 paddr;
	u64 size;
	u64 cmdline_paddr;
	u64 reserved;
} PACKED;

/* One PVH memory-map entry (E820 layout). */
struct hvm_memmap_entry {
	u64 addr;
	u64 size;
	u32 type;
	u32 reserved;
} PACKED;

/* Multiboot2 boot information (Multiboot2 specification §3.6). */
#define MB2_TAG_ALIGN 8
#define MB2_TAG_END 0
#define MB2_TAG_CMDLINE 1
#define MB2_TAG_MODULE 3
#define MB2_TAG_MMAP 6
#define MB2_TAG_ACPI_OLD 14 /* RSDP of ACPI 1.0, copied into the tag */
#define MB2_TAG_ACPI_NEW 15 /* RSDP of ACPI 2.0+, copied into the tag */

struct mb2_info_header {
	u32 total_size;
	u32 reserved;
} PACKED;

struct mb2_tag {
	u32 type;
	u32 size; /* of the tag, header included, without padding */
} PACKED;

struct mb2_tag_mmap {
	struct mb2_tag tag;
	u32 entry_size;
	u32 entry_version;
	/* entries follow */
} PACKED;

struct mb2_tag_module {
	struct mb2_tag tag;
	u32 mod_start;
	u32 mod_end; /* exclusive */
	/* the module's command line follows */
} PACKED;

/* Multiboot 1 boot information (Multiboot Specification 0.6.96 §3.3). */
#define MB1_INFO_MEMORY (1u << 0)  /* mem_lower, mem_upper */
#define MB1_INFO_CMDLINE (1u << 2) /* cmdline */
#define MB1_INFO_MODS (1u << 3)    /* mods_count, mods_addr */
#define MB1_INFO_MMAP (1u << 6)    /* mmap_length, mmap_addr */

/* The information up to the fields the kernel reads (the rest is not needed). */
struct mb1_info {
	u32 flags;
	u32 mem_lower;
	u32 mem_upper;
	u32 boot_device;
	u32 cmdline;
	u32 mods_count;
	u32 mods_addr;
	u32 syms[4];
	u32 mmap_length; /* bytes */
	u32 mmap_addr;
} PACKED;

/* One module (§3.3): [mod_start, mod_end) and its command line. */
struct mb1_module {
	u32 mod_start;
	u32 mod_end;
	u32 string;
	u32 reserved;
} PACKED;

/* One mmap entry: `size` counts the bytes after itself (20 for this layout). */
struct mb1_mmap_entry {
	u32 size;
	u64 addr;
	u64 len;
	u32 type;
} PACKED;

/* How the memory map is stored. */
enum memmap_format {
	MEMMAP_NONE,
	MEMMAP_PVH, /* struct hvm_memmap_entry[count] */
	MEMMAP_MB2, /* multiboot2 mmap entries of entry_size bytes, count of them */
	/*
	 * Multiboot1 entries of equal size: memmap_phys is the first entry's
	 * `addr` (past its size field) and the stride is size + 4, so every
	 * format is E820 heads at a fixed stride.
	 */
	MEMMAP_MB1,
};

/* Most boot modules kept; a loader passing more is refused (the memory manager must reserve them all). */
#define BOOT_MODULES_MAX 16

/* Where the loader put a module (initrd...), so the memory manager keeps its frames. */
struct boot_module {
	u64 phys;
	u64 size;
	u64 cmdline_phys; /* PVH, multiboot1: the module's command line; multiboot2: 0 (inside the info) */
};

struct boot_info {
	u32 protocol;   /* BOOT_PROTOCOL_PVH, BOOT_PROTOCOL_MB2 or BOOT_PROTOCOL_MB1 */
	u64 info_phys;  /* the loader's structure */
	char cmdline[CMDLINE_MAX];
	bool cmdline_truncated;
	enum memmap_format memmap_format;
	u64 memmap_phys;       /* first entry */
	u32 memmap_entries;
	u32 memmap_entry_size; /* bytes per entry */
	u64 rsdp_phys;         /* PVH: the loader's pointer; MB2: the copy inside the tag; 0 if none (MB1) */
	/* Where the loader's own data lies, so the memory manager keeps it. */
	u64 info_size;    /* bytes of the structure at info_phys */
	u64 cmdline_phys; /* the loader's command line (0: none) */
	u64 cmdline_size; /* its bytes as read (terminator included; CMDLINE_MAX if truncated) */
	u64 modlist_phys; /* PVH module list (0: none, multiboot2, or multiboot1: copied, not kept) */
	u32 nr_modules;
	struct boot_module modules[BOOT_MODULES_MAX];
};

extern struct boot_info boot_info;

/* Read the loader's information (through the early window) into boot_info. */
void bootinfo_init(u32 protocol, u64 info_phys);

/*
 * Parse a multiboot2 information structure already mapped at `info`, found
 * at physical address `phys`. Returns 0 or a negative error code.
 */
int bootinfo_parse_mb2(const void *info, u64 phys, struct boot_info *out);

/*
 * Record a multiboot1 memory map of `length` bytes, mapped at `map`, found at
 * physical `phys`. Returns 0, or -E_INVAL if an entry is too small, runs
 * past the end, or differs in size from the first (the stride must be fixed).
 */
int bootinfo_parse_mb1_mmap(const void *map, u32 length, u64 phys, struct boot_info *out);

/* Human-readable name of a BOOT_PROTOCOL_* value. */
const char *boot_protocol_name(u32 protocol);

#endif
