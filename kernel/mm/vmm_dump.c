/*
 * The page dump and accessed/dirty statistics.
 *
 * The dump walks the live tree as the CPU does, from the PML4 down, reading
 * every table through its self-map page: the child of an entry is the page
 * that entry maps when used as a PTE (selfmap_leaf_va). That holds at every
 * depth, the self-map slot included, so the page-table windows appear in the
 * dump exactly as the CPU (and QEMU's `info mem`) sees them.
 */
#include "vmm_internal.h"
#include <printf.h>

/* Merges leaves into ranges and hands each finished range on. */
struct merger {
	void (*fn)(const struct vmm_range *r, void *ctx);
	void *ctx;
	bool open;
	struct vmm_range cur;
};

/* Hand on the range being built, if any. */
static void merger_flush(struct merger *m)
{
	if (m->open)
		m->fn(&m->cur, m->ctx);
	m->open = false;
}

/* Add the leaf [start, start + size) with its combined rights. */
static void merger_add(struct merger *m, u64 start, u64 size, bool user, bool write, bool nx)
{
	struct vmm_range *c = &m->cur;
	if (m->open && c->end == start && c->user == user && c->write == write && c->nx == nx) {
		c->end = start + size;
		return;
	}
	merger_flush(m);
	*c = (struct vmm_range){start, start + size, user, write, nx};
	m->open = true;
}

/* Walk `table` (a self-map page) of `level` covering from `base`, rights so far given. */
static void walk_table(volatile const u64 *table, int level, u64 base, bool user, bool write,
		       bool nx, struct merger *m)
{
	for (u64 i = 0; i < TABLE_ENTRIES; i++) {
		u64 e = table[i];
		if (!(e & PTE_P))
			continue;
		u64 va = CANONICAL_VA(base + (i << va_shift(level)));
		bool u = user && (e & PTE_U), w = write && (e & PTE_W);
		bool x_off = nx || (paging_nx_bit() && (e & PTE_NX));
		if (pte_is_leaf(e, level))
			merger_add(m, va, level_span(level), u, w, x_off);
		else
			walk_table((volatile const u64 *)selfmap_leaf_va(&table[i]), level - 1, va, u,
				   w, x_off, m);
	}
}

void vmm_walk_ranges(void (*fn)(const struct vmm_range *r, void *ctx), void *ctx)
{
	struct merger m = {.fn = fn, .ctx = ctx};
	/* Under the paging lock: no table is released under the walk (fn runs under it too). */
	bool locked = vmm_lock_take();
	walk_table((volatile const u64 *)SELFMAP_PML4, LEVEL_PML4, 0, true, true, false, &m);
	merger_flush(&m);
	vmm_lock_drop(locked);
}

void vmm_format_range(const struct vmm_range *r, char *buf, size_t size)
{
	ksnprintf(buf, size, "# map %016llx-%016llx %016llx %cr%c %s", r->start, r->end,
		  r->end - r->start, r->user ? 'u' : '-', r->write ? 'w' : '-',
		  r->nx ? "nx" : "x");
}

/* Print one range with the indent passed as ctx. */
static void print_range(const struct vmm_range *r, void *ctx)
{
	char line[96];
	vmm_format_range(r, line, sizeof(line));
	kprintf("%s%s\n", (const char *)ctx, line);
}

void vmm_dump(const char *indent)
{
	vmm_walk_ranges(print_range, (void *)(indent ? indent : ""));
}

int vmm_ad_stats(u64 base, u64 size, u64 *accessed, u64 *dirty)
{
	if (!size)
		return -E_INVAL;
	if (!IS_ALIGNED(size, PAGE_SIZE))
		return -E_ALIGN;
	int err = vmm_check_range(base, size / PAGE_SIZE, PAGE_SIZE);
	if (err)
		return err;
	*accessed = *dirty = 0;
	bool locked = vmm_lock_take();
	for (u64 va = base, left = size; left;) {
		struct range_step s;
		range_step_at(WINDOW_SELF, va, &s);
		u64 step = range_step_left(&s, va);
		step = step < left ? step : left;
		/* Only the part of a large page inside the range counts. */
		if (s.entry & PTE_A)
			*accessed += step / PAGE_SIZE;
		if (s.entry & PTE_D)
			*dirty += step / PAGE_SIZE;
		va += step;
		left -= step;
	}
	vmm_lock_drop(locked);
	return 0;
}
