/*
 * The memory-map sanitizer against hand-made hostile maps (each result is
 * checked entry by entry), the carving of kernel ranges, and the map the
 * kernel actually booted with.
 */
#include <bootinfo.h>
#include <image.h>
#include <ktest.h>
#include <layout.h>
#include <memmap.h>
#include <pmm.h>
#include <string.h>

/* Addresses in pages keep the maps readable. */
#define P(n) ((u64)(n) * PAGE_SIZE)
#define RAM E820_RAM
#define RES E820_RESERVED
#define ACPI E820_ACPI
#define NVS E820_NVS
#define BAD E820_UNUSABLE
#define KRN MEMMAP_KERNEL
#define U64_MAX (~0ULL)

static struct memmap out;
static u32 reports;

/* Count the sanitizer's diagnostics and show them inside the test. */
static void count_report(const char *message)
{
	reports++;
	ktest_log("%s", message);
}

/* Sanitize in[0..n) into `out`, counting reports. */
static int sanitize(const struct memmap_entry *in, u32 n)
{
	reports = 0;
	return memmap_sanitize(in, n, &out, count_report);
}

/* True when `out` is exactly exp[0..n); otherwise logs both maps. */
static bool map_is(const struct memmap_entry *exp, u32 n)
{
	bool same = out.count == n;
	for (u32 i = 0; same && i < n; i++)
		same = out.entry[i].base == exp[i].base && out.entry[i].size == exp[i].size &&
		       out.entry[i].type == exp[i].type;
	if (same)
		return true;
	for (u32 i = 0; i < n; i++)
		ktest_log("expected [0x%llx, 0x%llx) type %u", exp[i].base, exp[i].base + exp[i].size,
			  exp[i].type);
	for (u32 i = 0; i < out.count; i++)
		ktest_log("got      [0x%llx, 0x%llx) type %u", out.entry[i].base,
			  out.entry[i].base + out.entry[i].size, out.entry[i].type);
	return false;
}

/* Sanitize `in` and expect exactly `exp` (arrays, not pointers). */
#define EXPECT_MAP(in, exp)                                                   \
	do {                                                                  \
		KASSERT_EQ(sanitize(in, ARRAY_SIZE(in)), ARRAY_SIZE(exp));    \
		KASSERT(map_is(exp, ARRAY_SIZE(exp)));                        \
	} while (0)

KTEST(memmap, empty_input)
{
	KASSERT_EQ(sanitize(NULL, 0), 0);
	KASSERT_EQ(out.count, 0);
	KASSERT_EQ(reports, 0);
}

KTEST(memmap, reserved_inside_ram)
{
	const struct memmap_entry in[] = {{P(0), P(16), RAM}, {P(4), P(4), RES}};
	const struct memmap_entry exp[] = {{P(0), P(4), RAM}, {P(4), P(4), RES}, {P(8), P(8), RAM}};
	EXPECT_MAP(in, exp);
	KASSERT_EQ(reports, 0);
}

KTEST(memmap, ram_inside_reserved)
{
	const struct memmap_entry in[] = {{P(0), P(16), RES}, {P(4), P(4), RAM}};
	const struct memmap_entry exp[] = {{P(0), P(16), RES}};
	EXPECT_MAP(in, exp);
}

KTEST(memmap, partial_overlap_left)
{
	/* Reserved covers the left part of the RAM. */
	const struct memmap_entry in[] = {{P(4), P(8), RAM}, {P(0), P(8), RES}};
	const struct memmap_entry exp[] = {{P(0), P(8), RES}, {P(8), P(4), RAM}};
	EXPECT_MAP(in, exp);
}

KTEST(memmap, partial_overlap_right)
{
	const struct memmap_entry in[] = {{P(0), P(8), RAM}, {P(4), P(8), RES}};
	const struct memmap_entry exp[] = {{P(0), P(4), RAM}, {P(4), P(8), RES}};
	EXPECT_MAP(in, exp);
}

KTEST(memmap, identical_ranges)
{
	/* The same range twice with different types: the more restrictive wins, in either order. */
	const struct memmap_entry in[] = {{P(2), P(6), RAM}, {P(2), P(6), ACPI}};
	const struct memmap_entry exp[] = {{P(2), P(6), ACPI}};
	EXPECT_MAP(in, exp);
	const struct memmap_entry in2[] = {{P(2), P(6), RES}, {P(2), P(6), RAM}};
	const struct memmap_entry exp2[] = {{P(2), P(6), RES}};
	EXPECT_MAP(in2, exp2);
}

KTEST(memmap, three_way_overlap)
{
	const struct memmap_entry in[] = {
		{P(0), P(32), RAM}, {P(8), P(16), ACPI}, {P(12), P(4), RES}, {P(20), P(8), NVS}};
	const struct memmap_entry exp[] = {{P(0), P(8), RAM},   {P(8), P(4), ACPI},
					   {P(12), P(4), RES},  {P(16), P(4), ACPI},
					   {P(20), P(8), NVS},  {P(28), P(4), RAM}};
	EXPECT_MAP(in, exp);
}

KTEST(memmap, restrictiveness_order)
{
	/* Five types stacked on one page: reserved > unusable > NVS > ACPI > RAM. */
	const struct memmap_entry in[] = {{P(0), P(10), RAM}, {P(1), P(8), ACPI}, {P(2), P(6), NVS},
					  {P(3), P(4), BAD},  {P(4), P(2), RES}};
	const struct memmap_entry exp[] = {{P(0), P(1), RAM}, {P(1), P(1), ACPI}, {P(2), P(1), NVS},
					   {P(3), P(1), BAD}, {P(4), P(2), RES},  {P(6), P(1), BAD},
					   {P(7), P(1), NVS}, {P(8), P(1), ACPI}, {P(9), P(1), RAM}};
	EXPECT_MAP(in, exp);
}

KTEST(memmap, unaligned_ram_rounds_inward)
{
	const struct memmap_entry in[] = {
		{0x1234, 0x5678 - 0x1234, RAM}, /* -> [0x2000, 0x5000) */
		{0x5678, 0x800, RES},           /* non-RAM keeps its exact bounds */
		{P(8) + 0x100, 0x800, RAM},     /* no whole page inside: vanishes */
		{P(16), P(2) + 0x10, RAM},      /* ragged end only */
	};
	const struct memmap_entry exp[] = {
		{0x2000, 0x3000, RAM}, {0x5678, 0x800, RES}, {P(16), P(2), RAM}};
	EXPECT_MAP(in, exp);
}

KTEST(memmap, unaligned_overlap_leaves_ram_aligned)
{
	/* The RAM left over beside an unaligned reserved range is rounded inward too. */
	const struct memmap_entry in[] = {{P(0), P(8), RAM}, {P(2) + 0x10, 0x100, RES}};
	const struct memmap_entry exp[] = {
		{P(0), P(2), RAM}, {P(2) + 0x10, 0x100, RES}, {P(3), P(5), RAM}};
	EXPECT_MAP(in, exp);
}

KTEST(memmap, zero_length_dropped_and_reported)
{
	const struct memmap_entry in[] = {{P(1), 0, RAM}, {P(4), P(1), RAM}, {0, 0, 0}};
	const struct memmap_entry exp[] = {{P(4), P(1), RAM}};
	EXPECT_MAP(in, exp);
	KASSERT_EQ(out.dropped, 2);
	KASSERT_EQ(reports, 2);
}

KTEST(memmap, wrapping_dropped_and_reported)
{
	const struct memmap_entry in[] = {
		{U64_MAX - P(1) + 1, P(2), RAM},   /* wraps past 2^64 */
		{P(4), U64_MAX, RES},              /* huge size */
		{U64_MAX - P(1) + 1, P(1), RAM},   /* ends exactly at 2^64: not representable */
		{U64_MAX - P(2) + 1, P(1), RAM},   /* the last representable page: kept */
	};
	const struct memmap_entry exp[] = {{U64_MAX - P(2) + 1, P(1), RAM}};
	EXPECT_MAP(in, exp);
	KASSERT_EQ(out.dropped, 3);
	KASSERT_EQ(reports, 3);
}

KTEST(memmap, unsorted_input_sorted)
{
	const struct memmap_entry in[] = {
		{P(40), P(8), RAM}, {P(0), P(4), RES}, {P(20), P(4), ACPI}, {P(8), P(4), RAM}};
	const struct memmap_entry exp[] = {
		{P(0), P(4), RES}, {P(8), P(4), RAM}, {P(20), P(4), ACPI}, {P(40), P(8), RAM}};
	EXPECT_MAP(in, exp);
}

KTEST(memmap, duplicates_collapse)
{
	const struct memmap_entry in[] = {
		{P(2), P(2), RAM}, {P(2), P(2), RAM}, {P(2), P(2), RAM}, {P(8), P(1), RES}, {P(8), P(1), RES}};
	const struct memmap_entry exp[] = {{P(2), P(2), RAM}, {P(8), P(1), RES}};
	EXPECT_MAP(in, exp);
}

KTEST(memmap, adjacent_and_overlapping_equal_types_merge)
{
	const struct memmap_entry in[] = {{P(0), P(4), RAM},  {P(4), P(4), RAM},  {P(6), P(6), RAM},
					  {P(12), P(2), RES}, {P(14), P(2), RES}, {P(16), P(2), RAM}};
	const struct memmap_entry exp[] = {{P(0), P(12), RAM}, {P(12), P(4), RES}, {P(16), P(2), RAM}};
	EXPECT_MAP(in, exp);
}

KTEST(memmap, all_reserved_has_no_ram)
{
	const struct memmap_entry in[] = {
		{P(0), P(4), RES}, {P(4), P(4), ACPI}, {P(16), P(4), NVS}, {P(2), P(4), BAD}};
	const struct memmap_entry exp[] = {
		{P(0), P(4), RES}, {P(4), P(2), BAD}, {P(6), P(2), ACPI}, {P(16), P(4), NVS}};
	EXPECT_MAP(in, exp);
}

KTEST(memmap, unknown_types_are_reserved)
{
	const struct memmap_entry in[] = {{P(0), P(8), RAM}, {P(2), P(1), 7}, {P(5), P(1), 0xffffffffu}};
	const struct memmap_entry exp[] = {{P(0), P(2), RAM}, {P(2), P(1), RES}, {P(3), P(2), RAM},
					   {P(5), P(1), RES}, {P(6), P(2), RAM}};
	EXPECT_MAP(in, exp);
	KASSERT_EQ(reports, 2);
	KASSERT_EQ(out.dropped, 0);
}

/* Input big enough for the overflow tests. */
static struct memmap_entry many[MEMMAP_MAX + 1];

KTEST(memmap, too_many_entries)
{
	for (u32 i = 0; i < ARRAY_SIZE(many); i++)
		many[i] = (struct memmap_entry){P(2 * i), P(1), RAM};
	KASSERT_EQ(sanitize(many, MEMMAP_MAX + 1), -E_NOSPC);
	KASSERT_EQ(out.count, 0);
	KASSERT_EQ(reports, 1);
	/* Exactly MEMMAP_MAX disjoint entries fit. */
	KASSERT_EQ(sanitize(many, MEMMAP_MAX), MEMMAP_MAX);
	KASSERT_EQ(out.entry[MEMMAP_MAX - 1].base, P(2 * (MEMMAP_MAX - 1)));
	/* Few enough inputs, but the result would need more room: half RAM, half holes punched in it. */
	for (u32 i = 0; i < MEMMAP_MAX / 2; i++) {
		many[2 * i] = (struct memmap_entry){P(4 * i), P(3), RAM};
		many[2 * i + 1] = (struct memmap_entry){P(4 * i + 1), P(1), RES};
	}
	KASSERT_EQ(sanitize(many, MEMMAP_MAX), -E_NOSPC);
	KASSERT_EQ(out.count, 0);
}

/* A small sanitized map to carve: RAM, reserved, RAM. */
static int carve_setup(void)
{
	const struct memmap_entry in[] = {{P(0), P(16), RAM}, {P(16), P(4), RES}, {P(20), P(12), RAM}};
	return sanitize(in, ARRAY_SIZE(in));
}

KTEST(memmap, carve_splits_ram)
{
	KASSERT_EQ(carve_setup(), 3);
	KASSERT_EQ(memmap_carve(&out, P(4) + 0x10, P(2)), 0); /* widened to [P(4), P(7)) */
	const struct memmap_entry exp[] = {{P(0), P(4), RAM},  {P(4), P(3), KRN}, {P(7), P(9), RAM},
					   {P(16), P(4), RES}, {P(20), P(12), RAM}};
	KASSERT(map_is(exp, ARRAY_SIZE(exp)));
}

KTEST(memmap, carve_spans_types_and_merges)
{
	KASSERT_EQ(carve_setup(), 3);
	/* Across RAM, reserved and RAM: only the RAM parts change; the reserved stays. */
	KASSERT_EQ(memmap_carve(&out, P(14), P(8)), 0);
	/* A second carve adjacent to the first merges with it. */
	KASSERT_EQ(memmap_carve(&out, P(12), P(2)), 0);
	const struct memmap_entry exp[] = {{P(0), P(12), RAM}, {P(12), P(4), KRN}, {P(16), P(4), RES},
					   {P(20), P(2), KRN}, {P(22), P(10), RAM}};
	KASSERT(map_is(exp, ARRAY_SIZE(exp)));
	/* Carving where there is no RAM, or nothing, changes nothing. */
	KASSERT_EQ(memmap_carve(&out, P(16), P(4)), 0);
	KASSERT_EQ(memmap_carve(&out, P(100), P(4)), 0);
	KASSERT_EQ(memmap_carve(&out, P(0), 0), 0);
	KASSERT(map_is(exp, ARRAY_SIZE(exp)));
	KASSERT_EQ(memmap_carve(&out, U64_MAX - 1, 4), -E_INVAL);
}

KTEST(memmap, carve_overflow_leaves_map_unchanged)
{
	for (u32 i = 0; i < MEMMAP_MAX; i++)
		many[i] = (struct memmap_entry){P(4 * i), P(3), RAM};
	KASSERT_EQ(sanitize(many, MEMMAP_MAX), MEMMAP_MAX);
	KASSERT_EQ(memmap_carve(&out, P(1), P(1)), -E_NOSPC);
	KASSERT_EQ(out.count, MEMMAP_MAX);
	KASSERT_EQ(out.entry[0].base, P(0));
	KASSERT_EQ(out.entry[0].size, P(3));
	KASSERT_EQ(out.entry[0].type, RAM);
}

/* The entry of `map` containing addr, or NULL. */
static const struct memmap_entry *entry_at(const struct memmap *map, u64 addr)
{
	for (u32 i = 0; i < map->count; i++)
		if (map->entry[i].base <= addr && addr - map->entry[i].base < map->entry[i].size)
			return &map->entry[i];
	return NULL;
}

KTEST(memmap, boot_map_is_sane)
{
	const struct memmap *map = pmm_memmap();
	KASSERT(map->count > 0);
	for (u32 i = 0; i < map->count; i++) {
		const struct memmap_entry *e = &map->entry[i];
		KASSERT(e->size > 0);
		KASSERT(e->base + e->size > e->base);
		if (i > 0) /* sorted, disjoint, and neighbours of one type are merged */
			KASSERT(map->entry[i - 1].base + map->entry[i - 1].size <= e->base &&
				!(map->entry[i - 1].type == e->type &&
				  map->entry[i - 1].base + map->entry[i - 1].size == e->base));
		if (e->type == RAM)
			KASSERT(IS_ALIGNED(e->base, PAGE_SIZE) && IS_ALIGNED(e->size, PAGE_SIZE));
	}
}

KTEST(memmap, boot_map_keeps_kernel_and_boot_data)
{
	const struct memmap *map = pmm_memmap();
	/* No RAM is left in the first MiB. */
	for (u32 i = 0; i < map->count; i++)
		if (map->entry[i].type == RAM)
			KASSERT(map->entry[i].base >= 0x100000);
	u64 image_lo = (u64)__boot_start, image_last = (u64)__image_end - KERNEL_VIRT_OFFSET - 1;
	const u64 kept[] = {image_lo, image_last, boot_info.info_phys, boot_info.memmap_phys,
			    (u64)__stack_top - KERNEL_VIRT_OFFSET - 1};
	for (u32 i = 0; i < ARRAY_SIZE(kept); i++) {
		const struct memmap_entry *e = entry_at(map, kept[i]);
		/* The loader may have put its data in RAM (carved), a reserved range or a hole. */
		KASSERT(e == NULL || e->type != RAM);
	}
	const struct memmap_entry *image = entry_at(map, image_lo);
	KASSERT(image != NULL);
	KASSERT_EQ(image->type, KRN);
	if (boot_info.cmdline_phys) {
		const struct memmap_entry *c = entry_at(map, boot_info.cmdline_phys);
		KASSERT(c == NULL || c->type != RAM);
	}
}

/* A multiboot2 information structure with two module tags, built by hand (tags 8-byte aligned). */
static u64 mb2_info[16];
static struct boot_info mb2_parsed;

/* Append a module tag for [start, end) with command line `name` at *off. */
static void mb2_add_module(u32 *off, u32 start, u32 end, const char *name)
{
	u8 *base = (u8 *)mb2_info + *off;
	u32 len = (u32)strlen(name) + 1;
	struct mb2_tag_module m = {{MB2_TAG_MODULE, sizeof(m) + len}, start, end};
	memcpy(base, &m, sizeof(m));
	memcpy(base + sizeof(m), name, len);
	*off += ALIGN_UP(m.tag.size, MB2_TAG_ALIGN);
}

KTEST(memmap, multiboot2_modules_are_recorded)
{
	/* The carve reserves what bootinfo records: check the recording of module tags. */
	memset(mb2_info, 0, sizeof(mb2_info));
	u32 off = sizeof(struct mb2_info_header);
	mb2_add_module(&off, 0x200000, 0x280000, "initrd");
	mb2_add_module(&off, 0x300000, 0x300800, "m2");
	struct mb2_tag end = {MB2_TAG_END, sizeof(end)};
	memcpy((u8 *)mb2_info + off, &end, sizeof(end));
	off += sizeof(end);
	struct mb2_info_header h = {off, 0};
	memcpy(mb2_info, &h, sizeof(h));
	memset(&mb2_parsed, 0, sizeof(mb2_parsed));
	KASSERT_EQ(bootinfo_parse_mb2(mb2_info, 0x10000, &mb2_parsed), 0);
	KASSERT_EQ(mb2_parsed.nr_modules, 2);
	KASSERT_EQ(mb2_parsed.modules[0].phys, 0x200000);
	KASSERT_EQ(mb2_parsed.modules[0].size, 0x80000);
	KASSERT_EQ(mb2_parsed.modules[1].phys, 0x300000);
	KASSERT_EQ(mb2_parsed.modules[1].size, 0x800);
	KASSERT_EQ(mb2_parsed.modlist_phys, 0); /* the tags lie inside the info, carved as a whole */
	/* An end before the start is malformed. */
	struct mb2_tag_module *first = (void *)((u8 *)mb2_info + sizeof(struct mb2_info_header));
	first->mod_end = first->mod_start - 1;
	KASSERT_EQ(bootinfo_parse_mb2(mb2_info, 0x10000, &mb2_parsed), -E_INVAL);
}
