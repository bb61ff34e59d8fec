/* Reading the current page tables through the self-map. */
#include <paging.h>

u64 paging_walk(u64 va, int *level)
{
	for (int l = LEVEL_PML4; l >= LEVEL_PT; l--) {
		u64 e = *selfmap_entry(l, va);
		*level = l;
		if (!(e & PTE_P))
			return 0;
		/* A PS entry of a PDPT or PD maps a 1 GiB or 2 MiB page: it is the leaf. */
		if (l == LEVEL_PT || ((l == LEVEL_PD || l == LEVEL_PDPT) && (e & PTE_PS)))
			return e;
	}
	return 0; /* not reached: level 1 always returns */
}
