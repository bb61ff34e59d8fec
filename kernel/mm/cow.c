/*
 * Copy-on-write (cow.h): the count table, fork's copy of the user half and
 * the write fault that ends a sharing.
 *
 * The table: open addressing with linear probing, one u64 per slot holding
 * frame | count (the count in the low 12 bits, which a frame address leaves
 * zero), 0 for an empty slot; removal shifts the following entries back, so
 * there are no tombstones. It holds at most half its capacity; it doubles
 * when fork needs room, halves when it falls under an eighth (if frames are
 * there for the smaller copy), and gives its pages back when it empties. Its
 * pages are mapped in a window of the kernel heap's slot, alternating
 * between two halves of the window as it is rebuilt.
 *
 * Copies go through two scratch kernel pages whose page table exists from
 * the first fork on, so a write fault needs no frame but the one reserved
 * for it.
 *
 * SMP: the table, the scratch pages and the statistics are guarded by the
 * paging lock (vmm_internal.h): fork and the write fault take it, and
 * cow_release runs inside the unmap paths that hold it already.
 */
#include "vmm_internal.h"
#include <cow.h>
#include <layout.h>
#include <panic.h>
#include <percpu.h>
#include <pmm.h>
#include <pte.h>


/* The table's window: two halves of 1/16 of the heap's slot, from 1/8 of it (tests use 1/4 up). */
#define COW_WINDOW (HEAP_BASE + PML4_SLOT_SIZE / 8)
#define COW_HALF (PML4_SLOT_SIZE / 16)
/*
 * The kernel pages a copy is read and written through (just below the
 * window, in one PT): the kernel never touches the user page itself (SMAP).
 */
#define COW_SCRATCH (COW_WINDOW - PAGE_SIZE)
#define COW_SCRATCH_SRC (COW_WINDOW - 2 * PAGE_SIZE)
/* Slots of the smallest table: one page. */
#define MIN_CAP (PAGE_SIZE / sizeof(u64))
/* The count's bits in a slot (a frame address has them clear). */
#define COUNT_MASK (PAGE_SIZE - 1)
/* Fibonacci hashing's multiplier (2^64 / golden ratio). */
#define HASH_MUL 0x9E3779B97F4A7C15ULL

static volatile u64 *table; /* NULL while cap == 0 */
static u64 cap, used, cap_bits;
static int half; /* which half of the window the table is in */
static bool scratch_ready;
static struct cow_stats stats;

void cow_get_stats(struct cow_stats *out)
{
	*out = stats;
	out->shared = used;
	out->capacity = cap;
	out->table_pages = cap * sizeof(u64) / PAGE_SIZE;
	struct pmm_stats p;
	pmm_get_stats(&p);
	out->reserved = p.reserved;
}

/* The home slot of frame. */
static inline u64 home(u64 frame)
{
	return ((frame >> PAGE_SHIFT) * HASH_MUL) >> (64 - cap_bits);
}

/* The slot holding frame, or NULL (the table is not empty). */
static volatile u64 *lookup(u64 frame)
{
	for (u64 i = home(frame);; i = (i + 1) & (cap - 1)) {
		u64 e = table[i];
		if (!e)
			return NULL;
		if ((e & ~COUNT_MASK) == frame)
			return &table[i];
	}
}

/* Put an entry known to be absent into t (capacity c, bits b). */
static void insert_new(volatile u64 *t, u64 c, u64 b, u64 entry)
{
	u64 i = (((entry >> PAGE_SHIFT) * HASH_MUL) >> (64 - b));
	while (t[i])
		i = (i + 1) & (c - 1);
	t[i] = entry;
}

/* Remove the entry at slot i, moving later entries of its cluster back. */
static void remove_at(u64 i)
{
	for (u64 j = i;;) {
		j = (j + 1) & (cap - 1);
		u64 e = table[j];
		if (!e)
			break;
		u64 k = home(e & ~COUNT_MASK);
		/* e may stay when its home lies cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		table[i] = e;
		i = j;
	}
	table[i] = 0;
	used--;
}

/* Unmap (and free) the n table pages from va. */
static void unmap_table(u64 va, u64 pages)
{
	MUST((unmap_region(va, pages, VMM_FREE_FRAMES)) == 0);
}

/* Move the table to capacity c (0: no table): 0, or -E_NOMEM with the table unchanged. */
static int resize(u64 c)
{
	u64 old_pages = cap * sizeof(u64) / PAGE_SIZE, old_va = COW_WINDOW + (u64)half * COW_HALF;
	u64 had = cap;
	/* The new state is in place before the old pages go (their unmap calls cow_release). */
	if (!c) {
		table = NULL;
		cap = cap_bits = 0;
		if (had)
			unmap_table(old_va, old_pages);
		return 0;
	}
	u64 pages = c * sizeof(u64) / PAGE_SIZE, va = COW_WINDOW + (u64)!half * COW_HALF;
	for (u64 k = 0; k < pages; k++) {
		u64 frame;
		bool ok = pmm_alloc(&frame) == 0;
		if (ok && map_region(va + k * PAGE_SIZE, frame, 1, VMM_WRITE) != 0) {
			MUST(pmm_free(frame) == 0);
			ok = false;
		}
		if (!ok) {
			if (k)
				unmap_table(va, k);
			return -E_NOMEM;
		}
		vmm_zero_page((void *)(va + k * PAGE_SIZE));
	}
	u64 bits = 0;
	while ((1ULL << bits) < c)
		bits++;
	volatile u64 *t = (volatile u64 *)va;
	for (u64 i = 0; i < cap; i++)
		if (table[i])
			insert_new(t, c, bits, table[i]);
	table = t;
	cap = c;
	cap_bits = bits;
	half = !half;
	if (had)
		unmap_table(old_va, old_pages);
	return 0;
}

/* Room for n more entries at most half full: 0 or -E_NOMEM. */
static int make_room(u64 n)
{
	u64 c = cap ? cap : MIN_CAP;
	while (c < 2 * (used + n))
		c *= 2;
	return c == cap ? 0 : resize(c);
}

u64 cow_count(u64 frame)
{
	bool locked = vmm_lock_take();
	volatile u64 *s = used ? lookup(frame) : NULL;
	u64 n = s ? (*s & COUNT_MASK) : 1;
	vmm_lock_drop(locked);
	return n;
}

/* One more mapping of frame (room was made). */
static inline void share(u64 frame)
{
	volatile u64 *s = used ? lookup(frame) : NULL;
	if (s) {
		if ((*s & COUNT_MASK) == COUNT_MASK)
			panic("cow: frame 0x%llx mapped %llu times", frame, COUNT_MASK);
		(*s)++;
		return;
	}
	insert_new(table, cap, cap_bits, frame | 2);
	used++;
}

/* One mapping of the frame at slot s fewer (its reserved frame stays reserved). */
static void drop_one(volatile u64 *s)
{
	if ((*s & COUNT_MASK) > 2)
		(*s)--;
	else
		remove_at((u64)(s - table));
}

/* Shrink the table when it emptied or is under an eighth full (best effort). */
static void maybe_shrink(void)
{
	if (!used)
		MUST(resize(0) == 0);
	else if (cap > MIN_CAP && used * 8 < cap)
		(void)resize(cap / 2); /* stays large when no frame is there for the copy */
}

bool cow_release(u64 frame)
{
	if (__builtin_expect(!used, 1))
		return false;
	/* Called by the unmap paths, which hold the paging lock: it guards the table. */
	if (!vmm_lock_held())
		panic("cow: count table changed without the paging lock (CPU %u)", this_cpu()->cpu_id);
	volatile u64 *s = lookup(frame);
	if (!s)
		return false;
	drop_one(s);
	pmm_unreserve(1);
	maybe_shrink();
	return true;
}

u32 cow_page_flags(u64 frame, u32 flags)
{
	return (flags & VMM_WRITE) && cow_count(frame) > 1 ? flags & ~VMM_WRITE : flags;
}

/* Call fn on every PT run of the current space's user half: 0, or -E_INVAL at a large page. */
static int walk_user(void (*fn)(const struct pte_run *r, u64 n, u64 *acc, struct tlb_batch *b),
		     u64 *acc, struct tlb_batch *b)
{
	u64 va = 0;
	while (va < USER_END) {
		struct range_step s;
		range_step_at(WINDOW_SELF, va, &s);
		u64 step = range_step_pt_bytes(&s, va, USER_END - va);
		if (step) {
			struct pte_run r = pte_run_at(WINDOW_SELF, LEVEL_PT, va);
			fn(&r, step / PAGE_SIZE, acc, b);
		} else {
			if (s.entry)
				return -E_INVAL;
			range_step_skip_holes(WINDOW_SELF, &s, va, USER_END - va);
			step = range_step_left(&s, va);
		}
		va += step;
	}
	return 0;
}

static void count_run(const struct pte_run *r, u64 n, u64 *acc, struct tlb_batch *b)
{
	(void)b;
	for (u64 i = 0; i < n; i++)
		*acc += pte_run_get(r, i) & PTE_P;
}

/* Share every present page of the run: read-only (PTE_COW if it was writable), counted. */
static void share_run(const struct pte_run *r, u64 n, u64 *acc, struct tlb_batch *b)
{
	(void)acc;
	struct pte_change_run c = pte_run_change_at(WINDOW_SELF, LEVEL_PT, r->va, n, b);
	for (u64 i = 0; i < n; i++) {
		u64 e = pte_run_get(r, i);
		if (!(e & PTE_P))
			continue;
		if (e & PTE_W)
			pte_run_change(&c, i, (e & ~PTE_W) | PTE_COW);
		share(pte_frame(e));
	}
}

/* Undo share_run (a fork that failed): uncount, and give W back to what is no longer shared. */
static void unshare_run(const struct pte_run *r, u64 n, u64 *acc, struct tlb_batch *b)
{
	(void)acc;
	struct pte_change_run c = pte_run_change_at(WINDOW_SELF, LEVEL_PT, r->va, n, b);
	for (u64 i = 0; i < n; i++) {
		u64 e = pte_run_get(r, i);
		if (!(e & PTE_P))
			continue;
		volatile u64 *s = lookup(pte_frame(e));
		ASSERT(s);
		drop_one(s);
		pmm_unreserve(1);
		if ((e & PTE_COW) && cow_count(pte_frame(e)) == 1)
			pte_run_change(&c, i, (e | PTE_W) & ~PTE_COW);
	}
}

/* Create the scratch pages' tables (a store of an empty entry faults them in): 0 or -E_NOMEM. */
int cow_init(void)
{
	bool locked = vmm_lock_take();
	int err = 0;
	struct pte_run r = pte_run_at(WINDOW_SELF, LEVEL_PT, COW_SCRATCH);
	if (!scratch_ready && !(scratch_ready = pte_run_install_new(&r, 0, 0)))
		err = -E_NOMEM;
	vmm_lock_drop(locked);
	return err;
}

/* cow_fork_space under the paging lock. */
static int fork_locked(pml4_t *out)
{
	u64 n = 0;
	int err = walk_user(count_run, &n, NULL);
	if (err)
		return err;
	if ((err = cow_init()) || (err = pmm_reserve(n)))
		return err;
	u64 old_cap = cap;
	if ((err = make_room(n))) {
		pmm_unreserve(n);
		return err;
	}
	/* The parent's pages turn read-only: the CPUs that run its space must see it before the copy. */
	struct tlb_batch b;
	tlb_batch_begin(&b, TLB_CURRENT);
	MUST((walk_user(share_run, NULL, &b)) == 0);
	tlb_batch_finish(&b);
	if ((err = copy_page_map(out))) {
		tlb_batch_begin(&b, TLB_CURRENT);
		MUST((walk_user(unshare_run, NULL, &b)) == 0);
		tlb_batch_finish(&b);
		if (cap != old_cap)
			(void)resize(used ? old_cap : 0); /* back to its size when frames allow */
		return err;
	}
	return 0;
}

int cow_fork_space(pml4_t *out)
{
	bool locked = vmm_lock_take();
	int err = fork_locked(out);
	vmm_lock_drop(locked);
	return err;
}

/* Copy the 4 KiB page at src to dst (8 bytes a store: TCG runs each rep iteration alone). */
static void copy_page(void *dst, const void *src)
{
	u64 n = PAGE_SIZE / sizeof(u64);
	__asm__ volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

/* cow_write_fault under the paging lock. */
static const char *write_fault_locked(u64 va)
{
	int level;
	u64 e = paging_walk(va, &level), page = ALIGN_DOWN(va, PAGE_SIZE);
	if (!e || level != LEVEL_PT || (e & PTE_W))
		return "protection violation: the page does not allow this access";
	u64 frame = pte_frame(e), flags = (e & ~PTE_ADDR_MASK & ~PTE_COW) | PTE_W;
	volatile u64 *s = used ? lookup(frame) : NULL;
	/* The page's new rights (and frame) must reach every CPU that runs this space. */
	struct tlb_batch b;
	tlb_batch_begin(&b, TLB_CURRENT);
	if (!s) {
		/* The other mappings are gone: the frame is this one's alone. */
		MUST(pte_write_flush(WINDOW_SELF, LEVEL_PT, page, frame | flags, &b));
		tlb_batch_finish(&b);
		stats.takeovers++;
		return NULL;
	}
	/* The reservation made at fork pays for the copy. */
	u64 copy = pmm_alloc_reserved();
	drop_one(s);
	/* The scratch pages are used under the paging lock and dropped here before it is released. */
	pte_scratch_set(COW_SCRATCH_SRC, frame | PTE_P | paging_nx_bit());
	pte_scratch_set(COW_SCRATCH, copy | PTE_P | PTE_W | paging_nx_bit());
	copy_page((void *)COW_SCRATCH, (const void *)COW_SCRATCH_SRC);
	pte_scratch_set(COW_SCRATCH_SRC, 0);
	pte_scratch_set(COW_SCRATCH, 0);
	MUST(pte_write_flush(WINDOW_SELF, LEVEL_PT, page, copy | flags, &b));
	tlb_batch_finish(&b);
	stats.copies++;
	maybe_shrink();
	return NULL;
}

const char *cow_write_fault(u64 va)
{
	bool locked = vmm_lock_take();
	const char *why = write_fault_locked(va);
	vmm_lock_drop(locked);
	return why;
}
