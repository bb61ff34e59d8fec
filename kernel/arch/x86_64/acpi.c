/*
 * ACPI table walk for the CPU list (acpi.h). Each table is mapped twice:
 * its header first, to learn the length, then the whole of it; both through
 * the early window, unmapped before returning.
 */
#include <acpi.h>
#include <bootinfo.h>
#include <early_map.h>
#include <panic.h>
#include <string.h>

/* ACPI 6.5 §5.2.5.3: the RSDP, version 1 part and the version 2 extension. */
struct rsdp {
	char signature[8]; /* "RSD PTR " */
	u8 checksum;       /* over the first 20 bytes */
	char oem[6];
	u8 revision; /* 0: ACPI 1.0 (RSDT only); 2: XSDT too */
	u32 rsdt;
	u32 length;
	u64 xsdt;
	u8 ext_checksum; /* over `length` bytes */
	u8 reserved[3];
} PACKED;

/* §5.2.6: the header every system description table starts with. */
struct sdt_header {
	char signature[4];
	u32 length;
	u8 revision;
	u8 checksum;
	char oem[6];
	char oem_table[8];
	u32 oem_revision;
	u32 creator;
	u32 creator_revision;
} PACKED;

#define RSDP_V1_LEN 20
#define MADT_ENTRIES_OFFSET (sizeof(struct sdt_header) + 8) /* LAPIC address, flags */
/* MADT entry types (§5.2.12.2, §5.2.12.12) and the LAPIC flags (Table 5.23). */
#define MADT_LAPIC 0
#define MADT_X2APIC 9
#define LAPIC_ENABLED (1u << 0)
#define LAPIC_ONLINE_CAPABLE (1u << 1)
/* Tables larger than this are refused: a MADT for MAX_CPUS is a few hundred bytes. */
#define SDT_MAX_LEN (64 * 1024)
/* BIOS search areas (§5.2.5.1). */
#define BDA_EBDA_SEGMENT 0x40E
#define EBDA_SEARCH_LEN 1024
#define BIOS_AREA_START 0xE0000
#define BIOS_AREA_END 0x100000
#define RSDP_ALIGN 16

static u8 sum_bytes(const u8 *p, size_t n)
{
	u8 s = 0;
	for (size_t i = 0; i < n; i++)
		s = (u8)(s + p[i]);
	return s;
}

/* True when p holds a valid RSDP (signature, both checksums where present). */
static bool rsdp_valid(const struct rsdp *r, size_t room)
{
	if (room < RSDP_V1_LEN || memcmp(r->signature, "RSD PTR ", 8) != 0 ||
	    sum_bytes((const u8 *)r, RSDP_V1_LEN) != 0)
		return false;
	if (r->revision < 2)
		return true;
	return room >= sizeof(*r) && r->length >= sizeof(*r) && r->length <= room &&
	       sum_bytes((const u8 *)r, r->length) == 0;
}

/* Scan [phys, phys+len) on 16-byte boundaries for an RSDP: its address, or 0. */
static u64 rsdp_scan(u64 phys, size_t len)
{
	const u8 *base = early_map(phys, len);
	if (!base)
		return 0;
	u64 found = 0;
	for (size_t off = 0; off + RSDP_V1_LEN <= len && !found; off += RSDP_ALIGN)
		if (rsdp_valid((const struct rsdp *)(base + off), len - off))
			found = phys + off;
	early_unmap(base, len);
	return found;
}

/* The RSDP: the loader's, else the BIOS search's; 0 when there is none. */
static u64 rsdp_find(const char **source)
{
	*source = "loader";
	if (boot_info.rsdp_phys)
		return boot_info.rsdp_phys;
	*source = "BIOS search";
	const u16 *bda = early_map(BDA_EBDA_SEGMENT, sizeof(u16));
	u64 ebda = bda ? (u64)*bda << 4 : 0;
	if (bda)
		early_unmap(bda, sizeof(u16));
	u64 r = 0;
	if (ebda >= 0x400 && ebda < BIOS_AREA_START) /* a plausible EBDA segment */
		r = rsdp_scan(ebda, EBDA_SEARCH_LEN);
	return r ? r : rsdp_scan(BIOS_AREA_START, BIOS_AREA_END - BIOS_AREA_START);
}

/*
 * Map the table at phys whole after checking its header: the mapping (to
 * early_unmap with *len), or NULL when it is unreadable, too long or its
 * checksum is wrong.
 */
static const u8 *sdt_map(u64 phys, u32 *len)
{
	const struct sdt_header *h = early_map(phys, sizeof(*h));
	if (!h)
		return NULL;
	u32 n = h->length;
	early_unmap(h, sizeof(*h));
	if (n < sizeof(*h) || n > SDT_MAX_LEN)
		return NULL;
	const u8 *t = early_map(phys, n);
	if (t && sum_bytes(t, n) != 0) {
		early_unmap(t, n);
		return NULL;
	}
	*len = n;
	return t;
}

/* Record one APIC ID (enabled or online-capable entries only). */
static void add_cpu(struct acpi_cpus *out, u32 apic_id, u32 flags)
{
	if (!(flags & (LAPIC_ENABLED | LAPIC_ONLINE_CAPABLE)))
		return;
	for (u32 i = 0; i < out->count; i++)
		if (out->apic_ids[i] == apic_id)
			return; /* listed as LAPIC and x2APIC: one CPU */
	if (out->count == MAX_CPUS) {
		out->ignored++;
		return;
	}
	out->apic_ids[out->count++] = apic_id;
}

int acpi_parse_madt(const u8 *madt, u32 len, struct acpi_cpus *out)
{
	if (len < MADT_ENTRIES_OFFSET || memcmp(madt, "APIC", 4) != 0)
		return -E_INVAL;
	out->count = 0;
	out->ignored = 0;
	for (u32 off = MADT_ENTRIES_OFFSET; off < len;) {
		if (len - off < 2 || madt[off + 1] < 2 || madt[off + 1] > len - off)
			return -E_INVAL; /* an entry running past the table */
		u8 type = madt[off], elen = madt[off + 1];
		const u8 *e = madt + off;
		u32 flags;
		if (type == MADT_LAPIC && elen >= 8) {
			memcpy(&flags, e + 4, sizeof(flags));
			add_cpu(out, e[3], flags);
		} else if (type == MADT_X2APIC && elen >= 16) {
			u32 id;
			memcpy(&id, e + 4, sizeof(id));
			memcpy(&flags, e + 8, sizeof(flags));
			add_cpu(out, id, flags);
		}
		off += elen;
	}
	return 0;
}

/* Search the RSDT (4-byte entries) or XSDT (8-byte entries) for the MADT. */
static int madt_from(u64 sdt_phys, u32 entry_size, struct acpi_cpus *out)
{
	u32 len;
	const u8 *sdt = sdt_map(sdt_phys, &len);
	if (!sdt)
		return -E_INVAL;
	int err = -E_NOENT;
	for (u32 off = sizeof(struct sdt_header); off + entry_size <= len && err == -E_NOENT;
	     off += entry_size) {
		u64 phys = 0;
		memcpy(&phys, sdt + off, entry_size);
		const struct sdt_header *h = early_map(phys, sizeof(*h));
		if (!h)
			continue;
		bool is_madt = memcmp(h->signature, "APIC", 4) == 0;
		early_unmap(h, sizeof(*h));
		if (!is_madt)
			continue;
		u32 mlen;
		const u8 *madt = sdt_map(phys, &mlen);
		if (!madt)
			err = -E_INVAL;
		else {
			err = acpi_parse_madt(madt, mlen, out);
			early_unmap(madt, mlen);
		}
	}
	early_unmap(sdt, len);
	return err;
}

int acpi_find_cpus(struct acpi_cpus *out)
{
	memset(out, 0, sizeof(*out));
	u64 rp = rsdp_find(&out->source);
	if (!rp)
		return -E_NOENT;
	const struct rsdp *r = early_map(rp, sizeof(*r));
	if (!r)
		return -E_NOENT;
	/* A v1 RSDP may sit in the last 20 bytes of a page: check only what it has. */
	bool ok = rsdp_valid(r, r->revision >= 2 ? sizeof(*r) : RSDP_V1_LEN);
	u64 xsdt = ok && r->revision >= 2 ? r->xsdt : 0;
	u64 rsdt = ok ? r->rsdt : 0;
	early_unmap(r, sizeof(*r));
	if (!ok)
		return -E_INVAL;
	out->rsdp_phys = rp;
	return xsdt ? madt_from(xsdt, 8, out) : madt_from(rsdt, 4, out);
}
