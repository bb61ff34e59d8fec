/*
 * Sanitizing the firmware memory map (after Linux's sanitize_e820_map, but
 * with an explicit restrictiveness order and no allocation).
 *
 * Every valid input entry contributes two change points, where it starts
 * and where it ends. Sorted by address and swept once, the points give, for
 * each stretch of the address space, the set of entries covering it; the
 * stretch takes the most restrictive of their types. A new output entry
 * starts only where that type changes, so overlaps, duplicates and equal
 * neighbours all come out as one entry each, and the result is sorted.
 */
#include <bootinfo.h>
#include <early_map.h>
#include <image.h>
#include <layout.h>
#include <memmap.h>
#include <panic.h>
#include <printf.h>
#include <string.h>

/*
 * End of the real-mode address space: the IVT, BIOS data area, EBDA, VGA
 * memory and option ROMs lie below it, and an AP trampoline will need it.
 */
#define REAL_MODE_END 0x100000ULL

/* Highest page-aligned address: where a RAM entry ends at the latest. */
#define TOP_PAGE ALIGN_DOWN(~0ULL, PAGE_SIZE)

/*
 * Restrictiveness, least first: an overlap takes the type of the highest
 * rank present. Linux takes the numerically largest type, which lets ACPI
 * (3) beat reserved (2); here reserved beats everything, so a range any
 * entry calls reserved is never reclaimed later as ACPI or RAM.
 */
enum rank { RANK_RAM, RANK_ACPI, RANK_NVS, RANK_UNUSABLE, RANK_RESERVED, RANKS };
static const u32 rank_type[RANKS] = {E820_RAM, E820_ACPI, E820_NVS, E820_UNUSABLE,
				     E820_RESERVED};

/* Where an entry of rank `rank` starts (delta +1) or ends (delta -1). */
struct change {
	u64 addr;
	u32 rank;
	i32 delta;
};

/* Two change points per input entry. Static: the kernel stack is small, and there is one CPU. */
static struct change changes[2 * MEMMAP_MAX];
/* memmap_carve builds its result here before committing it. */
static struct memmap carve_tmp;
/* The loader's entries, copied out of the early window. */
static struct memmap_entry boot_entries[MEMMAP_MAX];

/* Rank of a firmware type; unknown types count as reserved. */
static u32 type_rank(u32 type)
{
	for (u32 r = 0; r < RANKS; r++)
		if (rank_type[r] == type)
			return r;
	return RANK_RESERVED;
}

const char *memmap_type_name(u32 type)
{
	switch (type) {
	case E820_RAM:
		return "RAM";
	case E820_RESERVED:
		return "reserved";
	case E820_ACPI:
		return "ACPI";
	case E820_NVS:
		return "ACPI NVS";
	case E820_UNUSABLE:
		return "unusable";
	case MEMMAP_KERNEL:
		return "kernel";
	default:
		return "unknown";
	}
}

/* Format a diagnostic and hand it to report (if any). */
static void PRINTF_LIKE(2, 3) reportf(memmap_report_fn report, const char *fmt, ...)
{
	if (!report)
		return;
	char msg[160];
	va_list ap;
	va_start(ap, fmt);
	kvsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	report(msg);
}

/*
 * Append [base, end) of `type` to map: RAM is first rounded inward to whole
 * pages, empty ranges vanish, and a range touching an equal last entry
 * extends it. 0 or -E_NOSPC.
 */
static int emit(struct memmap *map, u64 base, u64 end, u32 type)
{
	if (type == E820_RAM) {
		u64 top = ALIGN_DOWN(end, PAGE_SIZE);
		if (base > top)
			return 0; /* no whole page (and ALIGN_UP(base) could wrap) */
		base = ALIGN_UP(base, PAGE_SIZE);
		end = top;
	}
	if (base >= end)
		return 0;
	struct memmap_entry *last = map->count ? &map->entry[map->count - 1] : NULL;
	if (last && last->type == type && last->base + last->size == base) {
		last->size += end - base;
		return 0;
	}
	if (map->count == MEMMAP_MAX)
		return -E_NOSPC;
	map->entry[map->count++] = (struct memmap_entry){base, end - base, type};
	return 0;
}

/* Turn the valid entries of in[] into change points (reporting the others); returns how many. */
static u32 collect_changes(const struct memmap_entry *in, u32 n, struct memmap *out,
			   memmap_report_fn report)
{
	u32 m = 0;
	for (u32 i = 0; i < n; i++) {
		const struct memmap_entry *e = &in[i];
		if (e->size == 0 || e->size > ~0ULL - e->base) {
			reportf(report, "memmap: entry %u [0x%llx +0x%llx] type %u %s: dropped", i,
				e->base, e->size, e->type,
				e->size == 0 ? "is empty" : "wraps past 2^64");
			out->dropped++;
			continue;
		}
		u32 rank = type_rank(e->type);
		if (rank_type[rank] != e->type)
			reportf(report, "memmap: entry %u [0x%llx +0x%llx] has unknown type %u: "
				"treated as reserved", i, e->base, e->size, e->type);
		changes[m++] = (struct change){e->base, rank, +1};
		changes[m++] = (struct change){e->base + e->size, rank, -1};
	}
	return m;
}

/* Sort changes[0..m) by address (insertion sort: m <= 2 * MEMMAP_MAX). */
static void sort_changes(u32 m)
{
	for (u32 i = 1; i < m; i++) {
		struct change c = changes[i];
		u32 j = i;
		for (; j > 0 && changes[j - 1].addr > c.addr; j--)
			changes[j] = changes[j - 1];
		changes[j] = c;
	}
}

/* Highest rank with an entry covering the current stretch, or -1 for none. */
static int top_rank(const i32 active[RANKS])
{
	for (int r = RANKS - 1; r >= 0; r--)
		if (active[r] > 0)
			return r;
	return -1;
}

/* Sweep the sorted changes[0..m) into out. 0 or -E_NOSPC. */
static int sweep(u32 m, struct memmap *out)
{
	i32 active[RANKS] = {0};
	int cur = -1;
	u64 start = 0;
	for (u32 i = 0; i < m;) {
		u64 addr = changes[i].addr;
		/* Apply every change at this address before looking at the type. */
		for (; i < m && changes[i].addr == addr; i++)
			active[changes[i].rank] += changes[i].delta;
		int top = top_rank(active);
		if (top == cur)
			continue;
		if (cur >= 0 && emit(out, start, addr, rank_type[cur]) < 0)
			return -E_NOSPC;
		cur = top;
		start = addr;
	}
	ASSERT(cur == -1); /* every start had its end */
	return 0;
}

int memmap_sanitize(const struct memmap_entry *in, u32 n, struct memmap *out,
		    memmap_report_fn report)
{
	memset(out, 0, sizeof(*out));
	if (n > MEMMAP_MAX) {
		reportf(report, "memmap: %u entries, more than MEMMAP_MAX (%u)", n, MEMMAP_MAX);
		return -E_NOSPC;
	}
	u32 m = collect_changes(in, n, out, report);
	sort_changes(m);
	if (sweep(m, out) < 0) {
		reportf(report, "memmap: the sanitized map needs more than MEMMAP_MAX (%u) entries",
			MEMMAP_MAX);
		out->count = 0;
		return -E_NOSPC;
	}
	return (int)out->count;
}

/* Emit entry e into out with its RAM inside the page range [lo, hi) re-typed as kernel. */
static int carve_entry(struct memmap *out, const struct memmap_entry *e, u64 lo, u64 hi)
{
	u64 s = e->base, t = e->base + e->size;
	if (e->type != E820_RAM || t <= lo || s >= hi)
		return emit(out, s, t, e->type);
	u64 cut_lo = s > lo ? s : lo, cut_hi = t < hi ? t : hi;
	int err = emit(out, s, cut_lo, E820_RAM);
	if (!err)
		err = emit(out, cut_lo, cut_hi, MEMMAP_KERNEL);
	if (!err)
		err = emit(out, cut_hi, t, E820_RAM);
	return err;
}

int memmap_carve(struct memmap *map, u64 base, u64 size)
{
	if (size > ~0ULL - base)
		return -E_INVAL;
	if (size == 0)
		return 0;
	u64 lo = ALIGN_DOWN(base, PAGE_SIZE);
	/* RAM ends at TOP_PAGE at the latest, so clipping there loses nothing. */
	u64 hi = base + size > TOP_PAGE ? TOP_PAGE : ALIGN_UP(base + size, PAGE_SIZE);
	carve_tmp.count = 0;
	carve_tmp.dropped = map->dropped;
	for (u32 i = 0; i < map->count; i++)
		if (carve_entry(&carve_tmp, &map->entry[i], lo, hi) < 0)
			return -E_NOSPC;
	*map = carve_tmp;
	return 0;
}

/* Head of a map entry: the E820 layout (multiboot1's follows its size field). */
struct e820_head {
	u64 addr;
	u64 size;
	u32 type;
} PACKED;

/*
 * Copy the loader's map into boot_entries; returns the count. Every format
 * is E820 heads at a fixed stride (bootinfo points multiboot1's memmap_phys
 * past the first size field and refuses entries of unequal size).
 */
static u32 read_boot_entries(void)
{
	if (boot_info.memmap_format == MEMMAP_NONE)
		panic("memmap: the loader (%s) gave no memory map",
		      boot_protocol_name(boot_info.protocol));
	u32 n = boot_info.memmap_entries, stride = boot_info.memmap_entry_size;
	if (n > MEMMAP_MAX)
		panic("memmap: the loader's map has %u entries, more than MEMMAP_MAX (%u)", n,
		      MEMMAP_MAX);
	if (stride < sizeof(struct e820_head))
		panic("memmap: map entries of %u bytes are too small", stride);
	size_t bytes = (size_t)n * stride;
	const u8 *raw = early_map(boot_info.memmap_phys, bytes);
	if (!raw)
		panic("memmap: early window full mapping %zu bytes of memory map", bytes);
	for (u32 i = 0; i < n; i++) {
		const struct e820_head *h = (const void *)(raw + (size_t)i * stride);
		boot_entries[i] = (struct memmap_entry){h->addr, h->size, h->type};
	}
	early_unmap(raw, bytes);
	return n;
}

/* Set aside [base, base+size) for the kernel, or panic saying what did not fit. */
static void carve_or_panic(struct memmap *map, const char *what, u64 base, u64 size)
{
	int err = memmap_carve(map, base, size);
	if (err < 0)
		panic("memmap: cannot set aside %s [0x%llx +0x%llx] (error %d)", what, base, size,
		      err);
}

/* Carve out everything the kernel still uses or must not touch. */
static void carve_boot_data(struct memmap *map)
{
	const struct boot_info *bi = &boot_info;
	u64 image_lo = (u64)__boot_start, image_hi = (u64)__image_end - KERNEL_VIRT_OFFSET;
	carve_or_panic(map, "the first MiB", 0, REAL_MODE_END);
	carve_or_panic(map, "the kernel image", image_lo, image_hi - image_lo);
	carve_or_panic(map, "the boot information", bi->info_phys, bi->info_size);
	carve_or_panic(map, "the command line", bi->cmdline_phys, bi->cmdline_size);
	carve_or_panic(map, "the memory map", bi->memmap_phys,
		       (u64)bi->memmap_entries * bi->memmap_entry_size);
	if (bi->modlist_phys) /* PVH only: multiboot2's module tags lie inside the info */
		carve_or_panic(map, "the module list", bi->modlist_phys,
			       (u64)bi->nr_modules * sizeof(struct hvm_modlist_entry));
	for (u32 i = 0; i < bi->nr_modules; i++) {
		carve_or_panic(map, "a module", bi->modules[i].phys, bi->modules[i].size);
		/* Its length is unknown without reading it: keep the most a command line may be. */
		if (bi->modules[i].cmdline_phys)
			carve_or_panic(map, "a module command line", bi->modules[i].cmdline_phys,
				       CMDLINE_MAX);
	}
}

/* Print a boot-time diagnostic as a TAP comment. */
static void report_console(const char *message)
{
	kprintf("# %s\n", message);
}

void memmap_from_boot(struct memmap *out)
{
	u32 n = read_boot_entries();
	if (memmap_sanitize(boot_entries, n, out, report_console) < 0)
		panic("memmap: the loader's map does not fit MEMMAP_MAX (%u) entries", MEMMAP_MAX);
	carve_boot_data(out);
}

void memmap_print(const struct memmap *map)
{
	for (u32 i = 0; i < map->count; i++) {
		const struct memmap_entry *e = &map->entry[i];
		kprintf("# memmap: [0x%012llx, 0x%012llx) %8llu KiB %s\n", e->base,
			e->base + e->size, e->size >> 10, memmap_type_name(e->type));
	}
}
