/* What the loader handed over, as the kernel parsed and kept it. */
#include <bootinfo.h>
#include <cmdline.h>
#include <early_map.h>
#include <image.h>
#include <ktest.h>
#include <layout.h>
#include <string.h>

/* E820 type of usable RAM (ACPI 6.5 §15.1, Table 15.1; multiboot2 uses the same value). */
#define E820_RAM 1

KTEST(bootinfo, protocol_known)
{
	/* QEMU's -kernel starts us through PVH, GRUB through multiboot2, iPXE through multiboot1. */
	static const char *const names[] = {
		[BOOT_PROTOCOL_PVH] = "pvh",
		[BOOT_PROTOCOL_MB2] = "multiboot2",
		[BOOT_PROTOCOL_MB1] = "multiboot1",
	};
	KASSERT(boot_info.protocol < ARRAY_SIZE(names) && names[boot_info.protocol] != NULL);
	KASSERT_STREQ(boot_protocol_name(boot_info.protocol), names[boot_info.protocol]);
	KASSERT_NE(boot_info.info_phys, 0);
}

KTEST(bootinfo, cmdline_matches_loader)
{
	if (boot_info.protocol != BOOT_PROTOCOL_PVH)
		KTEST_SKIP("not booted by PVH");
	const struct hvm_start_info *si = early_map(boot_info.info_phys, sizeof(*si));
	KASSERT(si != NULL);
	u64 cmdline_phys = si->cmdline_paddr;
	early_unmap(si, sizeof(*si));
	if (cmdline_phys == 0) {
		KASSERT_STREQ(boot_info.cmdline, "");
		return;
	}
	/* Read it again from the loader's copy: the kept one must be equal. */
	size_t len = strlen(boot_info.cmdline);
	const char *loader = early_map(cmdline_phys, len + 1);
	KASSERT(loader != NULL);
	int diff = memcmp(loader, boot_info.cmdline, len + 1);
	early_unmap(loader, len + 1);
	KASSERT_EQ(diff, 0);
}

KTEST(bootinfo, cmdline_has_filter)
{
	if (!kernel_options.ktest_filter)
		KTEST_SKIP("no ktest.filter on the command line");
	KASSERT(strlen(boot_info.cmdline) > 0);
	KASSERT(strstr(boot_info.cmdline, "ktest.filter=") != NULL);
	KASSERT(!boot_info.cmdline_truncated);
}

/*
 * The head of a memory-map entry: PVH entries and multiboot2 mmap entries
 * both begin with the E820 layout (address, length, type).
 */
struct e820_head {
	u64 addr;
	u64 size;
	u32 type;
} PACKED;

KTEST(bootinfo, memmap_holds_kernel)
{
	if (boot_info.memmap_format == MEMMAP_NONE)
		KTEST_SKIP("the loader gave no memory map");
	KASSERT(boot_info.memmap_entries > 0);
	KASSERT(boot_info.memmap_entry_size >= sizeof(struct e820_head));
	if (boot_info.memmap_format == MEMMAP_PVH)
		KASSERT_EQ(boot_info.memmap_entry_size, sizeof(struct hvm_memmap_entry));
	size_t bytes = (size_t)boot_info.memmap_entries * boot_info.memmap_entry_size;
	const u8 *map = early_map(boot_info.memmap_phys, bytes);
	KASSERT(map != NULL);
	/* The image was loaded into RAM, so some RAM entry must contain it. */
	u64 lo = (u64)__boot_start, hi = (u64)__image_end - KERNEL_VIRT_OFFSET;
	bool found = false;
	for (u32 i = 0; i < boot_info.memmap_entries; i++) {
		const struct e820_head *e = (const void *)(map + i * boot_info.memmap_entry_size);
		found |= e->type == E820_RAM && e->addr <= lo && hi <= e->addr + e->size;
	}
	early_unmap(map, bytes);
	KASSERT(found);
}

/* A multiboot2 information structure built by hand (tags 8-byte aligned). */
static u64 mb2_buf[32];
/* Offset of the mmap tag in mb2_buf, as built. */
static u32 mb2_mmap_off;

/* Append a tag of `type` with `len` payload bytes at *off; returns the payload. */
static u8 *mb2_add(u32 *off, u32 type, const void *payload, u32 len)
{
	u8 *base = (u8 *)mb2_buf + *off;
	struct mb2_tag tag = {type, sizeof(tag) + len};
	memcpy(base, &tag, sizeof(tag));
	if (len)
		memcpy(base + sizeof(tag), payload, len);
	*off += ALIGN_UP(tag.size, MB2_TAG_ALIGN);
	return base + sizeof(tag);
}

/* Build: cmdline "hello mb2", an mmap with 2 entries of 24 bytes, an ACPI 2.0 RSDP, end. */
static u32 mb2_build(void)
{
	u32 off = sizeof(struct mb2_info_header);
	memset(mb2_buf, 0, sizeof(mb2_buf));
	mb2_add(&off, MB2_TAG_CMDLINE, "hello mb2", sizeof("hello mb2"));
	u32 mmap[2 + 2 * 6] = {24, 0}; /* entry_size, entry_version, then 2 entries */
	mb2_mmap_off = off;
	mb2_add(&off, MB2_TAG_MMAP, mmap, sizeof(mmap));
	u8 rsdp[36] = {'R', 'S', 'D', ' ', 'P', 'T', 'R', ' '};
	mb2_add(&off, MB2_TAG_ACPI_NEW, rsdp, sizeof(rsdp));
	mb2_add(&off, MB2_TAG_END, NULL, 0);
	struct mb2_info_header h = {off, 0};
	memcpy(mb2_buf, &h, sizeof(h));
	return off;
}

static struct boot_info parsed;

KTEST(bootinfo, multiboot2_parse)
{
	const u64 phys = 0x10000; /* where a loader might have put it */
	mb2_build();
	memset(&parsed, 0, sizeof(parsed));
	KASSERT_EQ(bootinfo_parse_mb2(mb2_buf, phys, &parsed), 0);
	KASSERT_STREQ(parsed.cmdline, "hello mb2");
	KASSERT_EQ(parsed.memmap_format, MEMMAP_MB2);
	KASSERT_EQ(parsed.memmap_entry_size, 24);
	KASSERT_EQ(parsed.memmap_entries, 2);
	/* The entries follow the mmap tag's head. */
	KASSERT_EQ(mb2_mmap_off, 32); /* header 8 + cmdline tag (8 + 10, padded to 24) */
	KASSERT_EQ(parsed.memmap_phys, phys + mb2_mmap_off + sizeof(struct mb2_tag_mmap));
	KASSERT_NE(parsed.rsdp_phys, 0);
	KASSERT_EQ(memcmp((const u8 *)mb2_buf + (parsed.rsdp_phys - phys), "RSD PTR ", 8), 0);
}

KTEST(bootinfo, multiboot2_malformed)
{
	u32 total = mb2_build();
	/* No end tag within total_size. */
	struct mb2_info_header h = {total - sizeof(struct mb2_tag), 0};
	memcpy(mb2_buf, &h, sizeof(h));
	KASSERT_EQ(bootinfo_parse_mb2(mb2_buf, 0, &parsed), -E_INVAL);
	/* A tag claiming to run past the end. */
	mb2_build();
	struct mb2_tag *first = (struct mb2_tag *)((u8 *)mb2_buf + sizeof(struct mb2_info_header));
	first->size = total;
	KASSERT_EQ(bootinfo_parse_mb2(mb2_buf, 0, &parsed), -E_INVAL);
	/* Too small to hold even an end tag. */
	h = (struct mb2_info_header){sizeof(h), 0};
	memcpy(mb2_buf, &h, sizeof(h));
	KASSERT_EQ(bootinfo_parse_mb2(mb2_buf, 0, &parsed), -E_INVAL);
}

/* A multiboot1 memory map built by hand: size-prefixed entries (Multiboot 0.6.96 §3.3). */
static struct mb1_mmap_entry mb1_map[3];

KTEST(bootinfo, multiboot1_mmap_parse)
{
	const u64 phys = 0x9000; /* where a loader might have put it */
	for (u32 i = 0; i < 3; i++)
		mb1_map[i] = (struct mb1_mmap_entry){20, 0x100000ULL * i, 0x1000, E820_RAM};
	memset(&parsed, 0, sizeof(parsed));
	KASSERT_EQ(bootinfo_parse_mb1_mmap(mb1_map, sizeof(mb1_map), phys, &parsed), 0);
	KASSERT_EQ(parsed.memmap_format, MEMMAP_MB1);
	KASSERT_EQ(parsed.memmap_entries, 3);
	/* E820 heads at a fixed stride: the first one past the size field. */
	KASSERT_EQ(parsed.memmap_entry_size, 24);
	KASSERT_EQ(parsed.memmap_phys, phys + 4);
	const struct e820_head *second = (const void *)((const u8 *)mb1_map + 4 + 24);
	KASSERT_EQ(second->addr, 0x100000);
}

KTEST(bootinfo, multiboot1_mmap_malformed)
{
	struct boot_info *out = &parsed;
	for (u32 i = 0; i < 3; i++)
		mb1_map[i] = (struct mb1_mmap_entry){20, 0, 0x1000, E820_RAM};
	/* A length that ends inside an entry. */
	memset(out, 0, sizeof(*out));
	KASSERT_EQ(bootinfo_parse_mb1_mmap(mb1_map, sizeof(mb1_map) - 1, 0, out), -E_INVAL);
	KASSERT_EQ(out->memmap_format, MEMMAP_NONE);
	/* An entry too small for the E820 layout. */
	mb1_map[1].size = 16;
	KASSERT_EQ(bootinfo_parse_mb1_mmap(mb1_map, sizeof(mb1_map), 0, out), -E_INVAL);
	/* Entries of different sizes: the fixed stride is refused. */
	mb1_map[1].size = 20;
	mb1_map[0].size = 24;
	KASSERT_EQ(bootinfo_parse_mb1_mmap(mb1_map, sizeof(mb1_map), 0, out), -E_INVAL);
	/* No entries at all: no map, not an error. */
	KASSERT_EQ(bootinfo_parse_mb1_mmap(mb1_map, 0, 0, out), 0);
	KASSERT_EQ(out->memmap_format, MEMMAP_NONE);
}
