/*
 * A process's anonymous memory: regions of the mmap area whose pages are
 * demand-zero (proc_page_fault maps them), unmapped with their frames, and
 * given new rights both in the region list and in the pages already there.
 */
#include <layout.h>
#include <paging.h>
#include <panic.h>
#include <proc.h>
#include <sched.h>
#include <vmm.h>

/* A free region slot of p, or NULL. */
static struct region *free_slot(struct proc *p)
{
	for (int i = 0; i < PROC_REGIONS; i++)
		if (!p->regions[i].end)
			return &p->regions[i];
	return NULL;
}

/* Slots free in p. */
static int free_slots(struct proc *p)
{
	int n = 0;
	for (int i = 0; i < PROC_REGIONS; i++)
		n += !p->regions[i].end;
	return n;
}

/* The first region overlapping [start, end), or NULL. */
static struct region *overlapping(struct proc *p, u64 start, u64 end)
{
	for (int i = 0; i < PROC_REGIONS; i++) {
		struct region *r = &p->regions[i];
		if (r->end && start < r->end && end > r->start)
			return r;
	}
	return NULL;
}

/* Split the region holding `at` (strictly inside it) in two; the caller checked for a slot. */
static void split_at(struct proc *p, u64 at)
{
	const struct region *c = proc_region_of(p, at);
	if (!c || c->start == at)
		return;
	struct region *r = (struct region *)c, *upper = free_slot(p);
	ASSERT(upper);
	*upper = *r;
	upper->start = at;
	r->end = at;
}

/* Regions that [addr, addr + len) cuts strictly inside: what splitting it costs. */
static int splits_needed(struct proc *p, u64 addr, u64 end)
{
	int n = 0;
	const struct region *a = proc_region_of(p, addr), *b = proc_region_of(p, end);
	n += a && a->start != addr;
	n += b && b->start != end && end < USER_END;
	return n;
}

/* Check a page range of the user half: 0 and *end set, or -E_INVAL, -E_ALIGN. */
static int user_range(u64 addr, u64 len, u64 *end)
{
	if (!IS_ALIGNED(addr, PAGE_SIZE))
		return -E_ALIGN;
	if (!len || addr >= USER_END ||
	    ALIGN_UP(len, PAGE_SIZE) > USER_END - addr || len > USER_END)
		return -E_INVAL;
	*end = addr + ALIGN_UP(len, PAGE_SIZE);
	return 0;
}

i64 proc_mmap(u64 addr, u64 len, u32 rights, bool fixed)
{
	struct proc *p = sched_current();
	if (!len || len > USER_MMAP_END - USER_MMAP_BASE)
		return -E_INVAL;
	u64 size = ALIGN_UP(len, PAGE_SIZE);
	if (fixed) {
		if (!IS_ALIGNED(addr, PAGE_SIZE))
			return -E_ALIGN;
		if (addr < USER_MMAP_BASE ||
		    addr >= USER_MMAP_END || size > USER_MMAP_END - addr)
			return -E_INVAL;
		if (overlapping(p, addr, addr + size))
			return -E_EXIST;
	} else {
		/* First fit: move past every region in the way until none is. */
		addr = USER_MMAP_BASE;
		for (const struct region *r; (r = overlapping(p, addr, addr + size));) {
			addr = r->end;
			if (size > USER_MMAP_END - addr)
				return -E_NOSPC;
		}
	}
	int err = proc_region_add(p, addr, addr + size, rights, "mmap");
	return err ? err : (i64)addr;
}

int proc_munmap(u64 addr, u64 len)
{
	struct proc *p = sched_current();
	u64 end;
	int err = user_range(addr, len, &end);
	if (err)
		return err;
	/* Each cut inside a region takes a slot while the pieces exist. */
	if (splits_needed(p, addr, end) > free_slots(p))
		return -E_NOSPC;
	split_at(p, addr);
	split_at(p, end);
	for (struct region *r; (r = overlapping(p, addr, end));)
		*r = (struct region){0};
	MUST(unmap_region(addr, (end - addr) / PAGE_SIZE, VMM_FREE_FRAMES) == 0);
	return 0;
}

/* Give the mapped pages of [start, end) the flags of `rights`. */
static void reprotect_pages(u64 start, u64 end, u32 rights)
{
	u32 flags = region_vmm_flags(rights);
	for (u64 va = start; va < end; va += PAGE_SIZE) {
		u64 pa;
		if (virt_to_phys(va, &pa) == 0)
			MUST(set_page_flags(va, 1, flags) == 0);
	}
}

int proc_mprotect(u64 addr, u64 len, u32 rights)
{
	struct proc *p = sched_current();
	u64 end;
	int err = user_range(addr, len, &end);
	if (err)
		return err;
	for (u64 va = addr; va < end;) {
		const struct region *r = proc_region_of(p, va);
		if (!r)
			return -E_NOTMAPPED;
		va = r->end;
	}
	if (splits_needed(p, addr, end) > free_slots(p))
		return -E_NOSPC;
	split_at(p, addr);
	split_at(p, end);
	for (u64 va = addr; va < end;) {
		struct region *r = (struct region *)proc_region_of(p, va);
		r->rights = rights;
		reprotect_pages(r->start, r->end, rights);
		va = r->end;
	}
	return 0;
}
