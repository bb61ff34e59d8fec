/*
 * Boot information from the loader. Everything is read through the early
 * window (the loader's structures lie outside the image, which is all that
 * is mapped) and what the kernel needs later is copied into boot_info.
 */
#include <bootinfo.h>
#include <early_map.h>
#include <layout.h>
#include <panic.h>
#include <string.h>

struct boot_info boot_info;

const char *boot_protocol_name(u32 protocol)
{
	switch (protocol) {
	case BOOT_PROTOCOL_PVH:
		return "pvh";
	case BOOT_PROTOCOL_MB2:
		return "multiboot2";
	case BOOT_PROTOCOL_MB1:
		return "multiboot1";
	default:
		return "unknown";
	}
}

/* Copy the NUL-terminated string at physical `phys` into out->cmdline. */
static void copy_cmdline_phys(u64 phys, struct boot_info *out)
{
	if (phys == 0)
		return; /* no command line: leave it empty */
	/* Map the buffer's worth: the string ends somewhere inside, or is truncated. */
	const char *src = early_map(phys, CMDLINE_MAX);
	if (!src)
		panic("bootinfo: early window full mapping the command line");
	/* Never look past the mapping: strnlen, not strlen. */
	size_t len = strnlen(src, CMDLINE_MAX);
	out->cmdline_truncated = len == CMDLINE_MAX;
	size_t n = out->cmdline_truncated ? CMDLINE_MAX - 1 : len;
	memcpy(out->cmdline, src, n);
	out->cmdline[n] = '\0';
	out->cmdline_phys = phys;
	out->cmdline_size = out->cmdline_truncated ? CMDLINE_MAX : len + 1;
	early_unmap(src, CMDLINE_MAX);
}

/* Record the PVH module list (where each module lies) into out->modules. */
static void read_pvh_modules(u64 list_phys, u32 count, struct boot_info *out)
{
	if (count == 0)
		return;
	if (count > BOOT_MODULES_MAX)
		panic("bootinfo: %u PVH modules, more than BOOT_MODULES_MAX (%d)", count,
		      BOOT_MODULES_MAX);
	size_t bytes = count * sizeof(struct hvm_modlist_entry);
	const struct hvm_modlist_entry *list = early_map(list_phys, bytes);
	if (!list)
		panic("bootinfo: early window full mapping the PVH module list");
	for (u32 i = 0; i < count; i++)
		out->modules[i] = (struct boot_module){list[i].paddr, list[i].size,
						       list[i].cmdline_paddr};
	early_unmap(list, bytes);
	out->modlist_phys = list_phys;
	out->nr_modules = count;
}

/* Read a PVH hvm_start_info: command line, memory map, RSDP, modules. */
static void parse_pvh(u64 phys, struct boot_info *out)
{
	const struct hvm_start_info *si = early_map(phys, sizeof(*si));
	if (!si)
		panic("bootinfo: early window full mapping the PVH start info");
	if (si->magic != PVH_START_MAGIC)
		panic("bootinfo: bad PVH start info magic 0x%08x at 0x%llx (expected 0x%08x)",
		      si->magic, phys, PVH_START_MAGIC);
	u64 cmdline = si->cmdline_paddr;
	u64 modlist = si->modlist_paddr;
	u32 nr_modules = si->nr_modules;
	out->rsdp_phys = si->rsdp_paddr;
	out->info_size = sizeof(*si);
	if (si->version >= PVH_MEMMAP_VERSION && si->memmap_entries > 0) {
		out->memmap_format = MEMMAP_PVH;
		out->memmap_phys = si->memmap_paddr;
		out->memmap_entries = si->memmap_entries;
		out->memmap_entry_size = sizeof(struct hvm_memmap_entry);
	}
	early_unmap(si, sizeof(*si));
	copy_cmdline_phys(cmdline, out);
	read_pvh_modules(modlist, nr_modules, out);
}

/* Take what the kernel keeps from one multiboot2 tag at physical `phys`. */
static int mb2_take_tag(const struct mb2_tag *tag, u64 phys, struct boot_info *out)
{
	switch (tag->type) {
	case MB2_TAG_CMDLINE: {
		size_t max = tag->size - sizeof(*tag);
		size_t len = strnlen((const char *)(tag + 1), max);
		out->cmdline_truncated = len >= CMDLINE_MAX;
		size_t n = out->cmdline_truncated ? CMDLINE_MAX - 1 : len;
		memcpy(out->cmdline, tag + 1, n);
		out->cmdline[n] = '\0';
		out->cmdline_phys = phys + sizeof(*tag);
		out->cmdline_size = out->cmdline_truncated ? CMDLINE_MAX : len + 1;
		return 0;
	}
	case MB2_TAG_MODULE: {
		const struct mb2_tag_module *m = (const struct mb2_tag_module *)tag;
		if (tag->size < sizeof(*m) || m->mod_end < m->mod_start)
			return -E_INVAL;
		if (out->nr_modules == BOOT_MODULES_MAX)
			return -E_NOSPC; /* more than BOOT_MODULES_MAX modules */
		out->modules[out->nr_modules++] =
			(struct boot_module){m->mod_start, m->mod_end - m->mod_start, 0};
		return 0;
	}
	case MB2_TAG_MMAP: {
		const struct mb2_tag_mmap *m = (const struct mb2_tag_mmap *)tag;
		if (tag->size < sizeof(*m) || m->entry_size == 0)
			return -E_INVAL;
		out->memmap_format = MEMMAP_MB2;
		out->memmap_phys = phys + sizeof(*m);
		out->memmap_entry_size = m->entry_size;
		out->memmap_entries = (tag->size - sizeof(*m)) / m->entry_size;
		return 0;
	}
	case MB2_TAG_ACPI_NEW:
		out->rsdp_phys = phys + sizeof(*tag); /* the newer RSDP wins */
		return 0;
	case MB2_TAG_ACPI_OLD:
		if (!out->rsdp_phys)
			out->rsdp_phys = phys + sizeof(*tag);
		return 0;
	default:
		return 0; /* not needed (yet) */
	}
}

int bootinfo_parse_mb2(const void *info, u64 phys, struct boot_info *out)
{
	const struct mb2_info_header *h = info;
	u32 total = h->total_size;
	if (total < sizeof(*h) + sizeof(struct mb2_tag))
		return -E_INVAL;
	for (u32 off = sizeof(*h); off + sizeof(struct mb2_tag) <= total;) {
		const struct mb2_tag *tag = (const struct mb2_tag *)((const u8 *)info + off);
		if (tag->type == MB2_TAG_END)
			return 0;
		if (tag->size < sizeof(*tag) || tag->size > total - off)
			return -E_INVAL;
		int err = mb2_take_tag(tag, phys + off, out);
		if (err < 0)
			return err;
		off += ALIGN_UP(tag->size, MB2_TAG_ALIGN);
	}
	return -E_INVAL; /* ran off the end without an end tag */
}

/* Map the multiboot2 information (its size comes first) and parse it. */
static void parse_mb2(u64 phys, struct boot_info *out)
{
	const struct mb2_info_header *h = early_map(phys, sizeof(*h));
	if (!h)
		panic("bootinfo: early window full mapping the multiboot2 header");
	u32 total = h->total_size;
	early_unmap(h, sizeof(*h));
	/* It must fit the window even when it straddles a page boundary. */
	if (total < sizeof(*h) || total > EARLY_WINDOW_SIZE - PAGE_SIZE)
		panic("bootinfo: implausible multiboot2 total_size %u at 0x%llx", total, phys);
	const void *info = early_map(phys, total);
	if (!info)
		panic("bootinfo: early window full mapping %u bytes of multiboot2 info", total);
	out->info_size = total;
	int err = bootinfo_parse_mb2(info, phys, out);
	early_unmap(info, total);
	if (err < 0)
		panic("bootinfo: malformed multiboot2 information at 0x%llx (error %d%s)", phys, err,
		      err == -E_NOSPC ? ": more than BOOT_MODULES_MAX modules" : "");
}

int bootinfo_parse_mb1_mmap(const void *map, u32 length, u64 phys, struct boot_info *out)
{
	const u8 *p = map;
	u32 size = 0, count = 0;
	for (u32 off = 0; off < length; count++) {
		u32 s;
		if (length - off < sizeof(s))
			return -E_INVAL;
		memcpy(&s, p + off, sizeof(s));
		if (s < sizeof(struct mb1_mmap_entry) - sizeof(s) || s > length - off - sizeof(s))
			return -E_INVAL;
		if (count > 0 && s != size)
			return -E_INVAL; /* the spec allows it; no loader does it; a fixed stride is kept */
		size = s;
		off += sizeof(s) + s;
	}
	if (count == 0)
		return 0; /* an empty map is no map */
	out->memmap_format = MEMMAP_MB1;
	out->memmap_phys = phys + sizeof(u32); /* the first entry's E820 head */
	out->memmap_entry_size = size + sizeof(u32);
	out->memmap_entries = count;
	return 0;
}

/* Map the multiboot1 memory map at `phys` and record it. */
static void read_mb1_mmap(u64 phys, u32 length, struct boot_info *out)
{
	if (length == 0)
		return;
	if (length > EARLY_WINDOW_SIZE - PAGE_SIZE)
		panic("bootinfo: implausible multiboot1 mmap_length %u at 0x%llx", length, phys);
	const void *map = early_map(phys, length);
	if (!map)
		panic("bootinfo: early window full mapping the multiboot1 memory map");
	int err = bootinfo_parse_mb1_mmap(map, length, phys, out);
	early_unmap(map, length);
	if (err < 0)
		panic("bootinfo: malformed multiboot1 memory map at 0x%llx (%u bytes)", phys, length);
}

/* Copy the multiboot1 module list into out->modules (the list is not read again). */
static void read_mb1_modules(u64 list_phys, u32 count, struct boot_info *out)
{
	if (count == 0)
		return;
	if (count > BOOT_MODULES_MAX)
		panic("bootinfo: %u multiboot1 modules, more than BOOT_MODULES_MAX (%d)", count,
		      BOOT_MODULES_MAX);
	size_t bytes = count * sizeof(struct mb1_module);
	const struct mb1_module *list = early_map(list_phys, bytes);
	if (!list)
		panic("bootinfo: early window full mapping the multiboot1 module list");
	for (u32 i = 0; i < count; i++) {
		if (list[i].mod_end < list[i].mod_start)
			panic("bootinfo: multiboot1 module %u ends before it starts", i);
		out->modules[i] = (struct boot_module){
			list[i].mod_start, list[i].mod_end - list[i].mod_start, list[i].string};
	}
	early_unmap(list, bytes);
	out->nr_modules = count;
}

/*
 * Drop the first word of the kept command line: multiboot1 loaders (GRUB,
 * iPXE, QEMU) put the image's name or URI there, as argv[0].
 */
static void drop_image_name(char *cmdline)
{
	size_t i = 0;
	while (cmdline[i] == ' ' || cmdline[i] == '\t')
		i++;
	while (cmdline[i] && cmdline[i] != ' ' && cmdline[i] != '\t')
		i++;
	while (cmdline[i] == ' ' || cmdline[i] == '\t')
		i++;
	memmove(cmdline, cmdline + i, strlen(cmdline + i) + 1);
}

/* Read a multiboot1 information structure: command line, memory map, modules. */
static void parse_mb1(u64 phys, struct boot_info *out)
{
	const struct mb1_info *mi = early_map(phys, sizeof(*mi));
	if (!mi)
		panic("bootinfo: early window full mapping the multiboot1 information");
	u32 flags = mi->flags;
	u64 cmdline = flags & MB1_INFO_CMDLINE ? mi->cmdline : 0;
	u32 mmap_length = flags & MB1_INFO_MMAP ? mi->mmap_length : 0;
	u64 mmap = mi->mmap_addr;
	u32 nr_mods = flags & MB1_INFO_MODS ? mi->mods_count : 0;
	u64 mods = mi->mods_addr;
	early_unmap(mi, sizeof(*mi));
	out->info_size = sizeof(*mi);
	copy_cmdline_phys(cmdline, out);
	drop_image_name(out->cmdline);
	read_mb1_mmap(mmap, mmap_length, out);
	read_mb1_modules(mods, nr_mods, out);
}

void bootinfo_init(u32 protocol, u64 info_phys)
{
	memset(&boot_info, 0, sizeof(boot_info));
	boot_info.protocol = protocol;
	boot_info.info_phys = info_phys;
	if (protocol == BOOT_PROTOCOL_PVH)
		parse_pvh(info_phys, &boot_info);
	else if (protocol == BOOT_PROTOCOL_MB2)
		parse_mb2(info_phys, &boot_info);
	else if (protocol == BOOT_PROTOCOL_MB1)
		parse_mb1(info_phys, &boot_info);
	else
		panic("bootinfo: unsupported boot protocol %u (%s)", protocol,
		      boot_protocol_name(protocol));
	ASSERT(early_map_pages_in_use() == 0);
}
