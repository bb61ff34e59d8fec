/*
 * The firmware's CPU list: the ACPI MADT (ACPI 6.5 §5.2.12) found through
 * the RSDP the boot loader handed over (PVH start info, multiboot2 ACPI
 * tags) or, failing that, by the BIOS search (ACPI §5.2.5.1: the first KiB
 * of the EBDA, then 0xE0000..0xFFFFF). No direct map: every table is read
 * through the early window and unmapped again.
 */
#ifndef OUROBOROS_ACPI_H
#define OUROBOROS_ACPI_H

#include <percpu.h>
#include <types.h>

/* What the firmware says about the CPUs. */
struct acpi_cpus {
	u32 count;              /* enabled (or online-capable) local APICs, at most MAX_CPUS */
	u32 apic_ids[MAX_CPUS]; /* their APIC IDs, in MADT order */
	u32 ignored;            /* more CPUs than MAX_CPUS: left out and reported */
	u64 rsdp_phys;          /* where the RSDP was found (0: none) */
	const char *source;     /* "loader" or "BIOS search": where the RSDP came from */
};

/*
 * Find the MADT and list the CPUs: 0, or -E_NOENT (no RSDP, no MADT: the
 * caller runs on the boot CPU alone), -E_INVAL (a table with a bad
 * signature, checksum or length: nothing of it is used).
 */
int acpi_find_cpus(struct acpi_cpus *out);

/* Parse a MADT image [madt, madt+len) into *out (exposed for tests): 0 or -E_INVAL. */
int acpi_parse_madt(const u8 *madt, u32 len, struct acpi_cpus *out);

#endif
