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

struct paging_caps paging_caps;

void paging_caps_init(void)
{
	struct paging_caps caps;
	u32 max = cpuid(CPUID_EXT_MAX, 0).eax;
	caps.huge = max >= CPUID_EXT_FEATURES &&
		    (cpuid(CPUID_EXT_FEATURES, 0).edx & CPUID_EDX_PAGE1GB);
	u32 bits = max >= CPUID_EXT_ADDR_SIZES ? (cpuid(CPUID_EXT_ADDR_SIZES, 0).eax & 0xff)
					       : MAXPHYADDR_DEFAULT;
	caps.phys_limit = 1ULL << bits;
	caps.nx = cpu_nx_enabled() ? PTE_NX : 0;
	caps.known = true;
	paging_caps = caps;
}
