/*
 * What the per-suite leak check counts: free frames in the PMM, and the
 * page-table frames of the current space. The tables are counted by
 * walking the space through the self-map, not from the VMM's counters, so
 * a table the VMM lost track of is still seen. The walk reads only entries
 * of tables that exist (top-down), so it never makes the #PF handler
 * create one.
 */
#include <ktest.h>
#include <layout.h>
#include <paging.h>
#include <pmm.h>

/* Tables below the present, non-leaf entry of `level` translating va, that table included. */
static u64 tables_under(int level, u64 va)
{
	u64 n = 1;
	if (level == LEVEL_PT)
		return n;
	for (u64 i = 0; i < TABLE_ENTRIES; i++) {
		u64 child = va + i * (1ULL << va_shift(level));
		u64 e = *selfmap_entry(level, child);
		if ((e & PTE_P) && !(e & PTE_PS))
			n += tables_under(level - 1, child);
	}
	return n;
}

/* The current space's page tables: the PML4 and every table under its slots. */
static u64 count_tables(void)
{
	u64 n = 1;
	for (u64 slot = 0; slot < TABLE_ENTRIES; slot++) {
		u64 va = INDICES_VA(slot, 0, 0, 0);
		u64 e = *selfmap_entry(LEVEL_PML4, va);
		if (!(e & PTE_P))
			continue;
		if (slot == RECURSIVE_SLOT)
			continue; /* the PML4 itself, counted once */
		if (slot == OTHER_SLOT) {
			n++; /* another space's PML4, attached: its tables are not ours to walk */
			continue;
		}
		n += tables_under(LEVEL_PDPT, va);
	}
	return n;
}

void ktest_memory_now(struct ktest_memory *out)
{
	out->free = pmm_nr_free();
	out->tables = count_tables();
}
