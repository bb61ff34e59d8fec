/*
 * The physical memory map: the loader's E820-style list made trustworthy.
 *
 * memmap_sanitize() turns an arbitrary list of {base, size, type} into a
 * sorted, disjoint list in which overlaps went to the most restrictive type,
 * equal neighbours are merged, and RAM is rounded inward to whole pages.
 * memmap_carve() then re-types the RAM the kernel itself occupies (image,
 * boot data, first MiB) as MEMMAP_KERNEL, so only RAM that is really free
 * keeps the type E820_RAM. Nothing here allocates: maps have a fixed
 * capacity and overflowing it is an error the caller sees.
 */
#ifndef OUROBOROS_MEMMAP_H
#define OUROBOROS_MEMMAP_H

#include <types.h>

/*
 * Address-range types (ACPI 6.5 §15.1, Table 15-1; multiboot2 §3.6.8 uses
 * the same values). Any other firmware value is treated as E820_RESERVED.
 */
#define E820_RAM 1
#define E820_RESERVED 2
#define E820_ACPI 3     /* ACPI tables: reclaimable once parsed */
#define E820_NVS 4      /* ACPI NVS: must be preserved across sleep */
#define E820_UNUSABLE 5 /* RAM with detected errors */
/* Not a firmware type: RAM the kernel keeps for itself (set only by memmap_carve). */
#define MEMMAP_KERNEL 0x100

/* Entries a map holds; also the most firmware entries accepted (Linux's E820_MAX_ENTRIES). */
#define MEMMAP_MAX 128

struct memmap_entry {
	u64 base;
	u64 size;
	u32 type;
};

/* A sanitized map: sorted by base, disjoint, size > 0, RAM page-aligned. */
struct memmap {
	u32 count;
	u32 dropped; /* input entries rejected (empty or wrapping) */
	struct memmap_entry entry[MEMMAP_MAX];
};

/* Receives one diagnostic ("memmap: ..."), already formatted; may be NULL. */
typedef void (*memmap_report_fn)(const char *message);

/*
 * Sanitize in[0..n) into *out. Returns the number of entries, or -E_NOSPC
 * when n or the result exceeds MEMMAP_MAX (then *out is empty). Empty and
 * wrapping entries are dropped and reported, unknown types reported.
 */
int memmap_sanitize(const struct memmap_entry *in, u32 n, struct memmap *out,
		    memmap_report_fn report);

/*
 * Re-type the RAM inside [base, base+size), widened to whole pages, as
 * MEMMAP_KERNEL; other types are left alone. 0, -E_INVAL if the range wraps,
 * or -E_NOSPC if the result does not fit (then *map is unchanged).
 */
int memmap_carve(struct memmap *map, u64 base, u64 size);

/* Read the loader's map from boot_info, sanitize it and carve out the kernel and boot data into *out. */
void memmap_from_boot(struct memmap *out);

/* Print *map as `# memmap: ` comment lines. */
void memmap_print(const struct memmap *map);

/* "RAM", "reserved", ... for a type of a sanitized map. */
const char *memmap_type_name(u32 type);

#endif
