/*
 * Reading the page tables through the self-map, and what the CPU's paging
 * offers (NX, MAXPHYADDR, 1 GiB pages): one place for each.
 */
#include <cpu.h>
#include <paging.h>

/* MAXPHYADDR when CPUID leaf 80000008H is missing (SDM Vol. 3A §4.1.4). */
#define MAXPHYADDR_DEFAULT 36

u64 window_walk(enum pt_window w, u64 va, int *level)
{
	for (int l = LEVEL_PML4; l >= LEVEL_PT; l--) {
		u64 e = *window_entry(w, l, va);
		*level = l;
		if (!(e & PTE_P))
			return 0;
		if (pte_is_leaf(e, l))
			return e;
	}
	return 0; /* not reached: level 1 always returns */
}

/* What the CPU offers, read on first use (it never changes after boot). */
static struct {
	bool known;
	bool huge;      /* 1 GiB pages */
	u64 nx;         /* PTE_NX or 0 */
	u64 phys_limit; /* 1 << MAXPHYADDR */
} caps;

/* Fill caps from CPUID and EFER once. */
static void caps_init(void)
{
	if (caps.known)
		return;
	u32 max = cpuid(CPUID_EXT_MAX, 0).eax;
	caps.huge = max >= CPUID_EXT_FEATURES &&
		    (cpuid(CPUID_EXT_FEATURES, 0).edx & CPUID_EDX_PAGE1GB);
	u32 bits = max >= CPUID_EXT_ADDR_SIZES ? (cpuid(CPUID_EXT_ADDR_SIZES, 0).eax & 0xff)
					       : MAXPHYADDR_DEFAULT;
	caps.phys_limit = 1ULL << bits;
	caps.nx = cpu_nx_enabled() ? PTE_NX : 0;
	caps.known = true;
}

bool paging_has_huge_pages(void)
{
	caps_init();
	return caps.huge;
}

u64 paging_nx_bit(void)
{
	caps_init();
	return caps.nx;
}

u64 paging_phys_limit(void)
{
	caps_init();
	return caps.phys_limit;
}
