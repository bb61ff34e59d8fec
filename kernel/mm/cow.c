/*
 * Copy-on-write (cow.h): the counts, fork's copy of the user half and the
 * write fault that ends a sharing.
 *
 * The counts: a sparse array indexed by frame number, in a window of the
 * kernel heap's slot. Leaf k, the page at COUNT_BASE + k pages, holds for
 * each of the LEAF_FRAMES frames from k * LEAF_FRAMES on how many mappings
 * it has beyond the first (0: not shared), and in its header their sum. A
 * leaf is mapped only while that sum is not zero (but for the one that
 * emptied last, kept until another empties or nothing is shared): the page
 * tables over the window are the radix tree over physical memory (the
 * first PT and its PD, made at boot, stay: keep_first_count_tables), a leaf
 * costs one page for each 8 MiB of physical memory that holds a shared
 * frame, free RAM and unshared frames nothing. Finding a frame's count is a
 * subtraction and a compare against the leaf found last (fork walks frames
 * that mostly lie close together), else a look at a small table of leaves
 * found, else one walk of the window's tables: O(1).
 *
 * fork (cow_fork_space) goes over the parent's page tables once: for each
 * present PTE it write-protects the parent's entry, writes the child's and
 * counts the frame, in one loop per PT; the batch drops the parent's stale
 * entries at the end (pte_batch: an invlpg each up to TLB_FLUSH_CEILING
 * pages, else one CR3 reload), and one pmm_reserve sets aside a
 * frame per page shared. If anything is missing, a second walk up to where
 * the first stopped undoes it.
 *
 * Copies go through two scratch kernel pages whose page table exists from
 * the first fork on, so a write fault needs no frame but the one reserved
 * for it. Every new page table is zeroed through one of them too
 * (scratch_zero_frame), before it is linked (vmm_fault.c), and so is a new
 * space's PML4 before it is attached, which spares a CR3 load.
 *
 * SMP: the counts, the scratch pages and the statistics are guarded by the
 * paging lock (vmm_internal.h): fork, the write fault and the count lookups
 * take it, and cow_release runs inside the unmap paths that hold it already.
 */
#include "vmm_internal.h"
#include <cow.h>
#include <layout.h>
#include <panic.h>
#include <percpu.h>
#include <pmm.h>
#include <pte.h>

/* The counts' window: from 1/8 of the heap's slot, 1/8 of it long (tests use 1/4 up). */
#define COUNT_BASE (HEAP_BASE + PML4_SLOT_SIZE / 8)
#define COUNT_WINDOW (PML4_SLOT_SIZE / 8)
/*
 * The kernel pages a copy is read and written through (just below the
 * window, in one PT): the kernel never touches the user page itself (SMAP).
 */
#define COW_SCRATCH (COUNT_BASE - PAGE_SIZE)
#define COW_SCRATCH_SRC (COUNT_BASE - 2 * PAGE_SIZE)
/* Frames a leaf counts: a page of u16 after its header. */
#define LEAF_FRAMES ((PAGE_SIZE - sizeof(u64)) / sizeof(u16))
/* The most mappings beyond the first a count holds. */
#define EXTRA_MAX 0xffffu

struct leaf {
	u64 sum;                 /* Sum of extra[]: the leaf is unmapped when it is 0 */
	u16 extra[LEAF_FRAMES];  /* mappings beyond the first, per frame */
};
_Static_assert(sizeof(struct leaf) == PAGE_SIZE, "a leaf is one page");

/* A leaf found (NULL: none) and its first frame number (NO_FIRST with none). */
struct leaf_cache {
	struct leaf *leaf;
	u64 first;
};

/* A first frame number no frame number is within LEAF_FRAMES above (frames are below 2^52). */
#define NO_FIRST (1ULL << 63)
#define NO_LEAF ((struct leaf_cache){NULL, NO_FIRST})
/*
 * Leaves found, by leaf number modulo FOUND_SLOTS: fork's frames come from
 * a few leaves in turn (the PMM's stack order), each found again without a
 * walk of the window's tables.
 */
#define FOUND_SLOTS 16

static struct leaf_cache cache = NO_LEAF; /* the leaf found last */
/*
 * The leaf that emptied last, still mapped (NULL: none): it goes when
 * another empties or nothing is shared any more, so that a write fault or
 * an unmap that empties a leaf, often refilled soon by the next fork, does
 * not pay for its unmapping; one page at most.
 */
static struct leaf *idle;
static struct leaf_cache found[FOUND_SLOTS];
static u64 total;  /* Sum of all counts' extra: frames reserved for copies */
static u64 leaves; /* leaves mapped */
static bool scratch_ready;
static struct cow_stats stats;

/* Frames with a count now: the non-zero extras of every mapped leaf (for stats only). */
static u64 frames_shared(void)
{
	u64 n = 0, va = COUNT_BASE, end = COUNT_BASE + COUNT_WINDOW;
	while (va < end && leaves) {
		struct range_step s;
		range_step_at(WINDOW_SELF, va, &s);
		if (s.entry) {
			const struct leaf *l = (const struct leaf *)va;
			for (u64 i = 0; i < LEAF_FRAMES; i++)
				n += l->extra[i] != 0;
		} else {
			range_step_skip_holes(WINDOW_SELF, &s, va, end - va);
		}
		va += range_step_left(&s, va);
	}
	return n;
}

void cow_get_stats(struct cow_stats *out)
{
	/* The walk reads leaves another CPU's fork or COW fault may map or unmap. */
	bool locked = vmm_lock_take();
	*out = stats;
	out->shared = frames_shared();
	out->capacity = leaves * LEAF_FRAMES;
	out->table_pages = leaves;
	vmm_lock_drop(locked);
	struct pmm_stats p;
	pmm_get_stats(&p);
	out->reserved = p.reserved;
}

/* The mapped leaf counting frame number pfn, or NULL; the cache points at it. */
static struct leaf *leaf_find(u64 pfn)
{
	u64 k = pfn / LEAF_FRAMES, va = COUNT_BASE + k * PAGE_SIZE;
	struct leaf_cache *slot = &found[k % FOUND_SLOTS];
	if (slot->leaf && slot->first == k * LEAF_FRAMES) {
		cache = *slot;
		return cache.leaf;
	}
	int level;
	if (va >= COUNT_BASE + COUNT_WINDOW || !paging_walk(va, &level))
		return NULL;
	cache = *slot = (struct leaf_cache){(struct leaf *)va, k * LEAF_FRAMES};
	return cache.leaf;
}

/* The leaf counting pfn, mapped and zeroed if it was not: NULL when no frame is left. */
static struct leaf *leaf_get(u64 pfn)
{
	struct leaf *l = leaf_find(pfn);
	if (l)
		return l;
	u64 k = pfn / LEAF_FRAMES, va = COUNT_BASE + k * PAGE_SIZE, frame;
	ASSERT(va < COUNT_BASE + COUNT_WINDOW); /* cow_init checked the physical limit */
	if (pmm_alloc(&frame) != 0)
		return NULL;
	if (map_region(va, frame, 1, VMM_WRITE) != 0) {
		MUST(pmm_free(frame) == 0);
		return NULL;
	}
	vmm_zero_page((void *)va);
	leaves++;
	return leaf_find(pfn);
}

/* Unmap and free leaf l, whose sum went to 0. */
static void leaf_put(struct leaf *l)
{
	ASSERT(l->sum == 0);
	if (idle == l)
		idle = NULL;
	if (cache.leaf == l)
		cache = NO_LEAF;
	struct leaf_cache *slot = &found[((u64)l - COUNT_BASE) / PAGE_SIZE % FOUND_SLOTS];
	if (slot->leaf == l)
		*slot = NO_LEAF;
	leaves--;
	/* Its frame's own count, if any is looked up meanwhile, is 0 (never shared). */
	MUST(unmap_region((u64)l, 1, VMM_FREE_FRAMES) == 0);
}

/* The extra count of frame (its leaf in *out), or NULL when it has none. */
static u16 *extra_of(u64 frame, struct leaf **out)
{
	if (!total)
		return NULL;
	u64 pfn = frame / PAGE_SIZE, d = pfn - cache.first;
	struct leaf *l = cache.leaf;
	if (d >= LEAF_FRAMES) {
		if (!(l = leaf_find(pfn)))
			return NULL;
		d = pfn - cache.first;
	}
	*out = l;
	return l->extra[d] ? &l->extra[d] : NULL;
}

/* One mapping fewer of the frame whose extra count is *x in leaf l (its reservation stays). */
static void drop_one(struct leaf *l, u16 *x)
{
	(*x)--;
	total--;
	if (!--l->sum) {
		/* l waits as the idle leaf; the one before goes if it is still empty. */
		struct leaf *before = idle;
		idle = l;
		if (before && before != l && !before->sum)
			leaf_put(before);
	}
	if (!total && idle)
		leaf_put(idle);
}

u64 cow_count(u64 frame)
{
	bool locked = vmm_lock_take();
	struct leaf *l;
	u16 *x = extra_of(frame, &l);
	u64 n = x ? 1 + (u64)*x : 1;
	vmm_lock_drop(locked);
	return n;
}

bool cow_release(u64 frame)
{
	if (__builtin_expect(!total, 1))
		return false;
	/* Called by the unmap paths, which hold the paging lock: it guards the counts. */
	if (!vmm_lock_held())
		panic("cow: counts changed without the paging lock (CPU %u)", this_cpu()->cpu_id);
	struct leaf *l;
	u16 *x = extra_of(frame, &l);
	if (!x)
		return false;
	drop_one(l, x);
	pmm_unreserve(1);
	return true;
}

u32 cow_page_flags(u64 frame, u32 flags)
{
	return (flags & VMM_WRITE) && cow_count(frame) > 1 ? flags & ~VMM_WRITE : flags;
}

/*
 * Make the window's first PT (the leaves of the first TABLE_ENTRIES *
 * LEAF_FRAMES frames, about 4 GiB of RAM) and its PD, and keep them: the
 * last count's end then unmaps one leaf page (one PTE: a round that idle
 * CPUs may skip, tlb.c) instead of its PT and PD (a table round, which must
 * wake every CPU), and the next fork maps it without making tables. Once,
 * with nothing counted yet (boot): the tables are counted there.
 */
static void keep_first_count_tables(void)
{
	struct pte_run r = pte_run_at(WINDOW_SELF, LEVEL_PT, COUNT_BASE);
	/* Entry 0 is not present (no leaf): a store of 0 only faults its tables in. */
	if (pte_run_install_new(&r, 0, 0))
		MUST(vmm_keep_tables(COUNT_BASE, TABLE_ENTRIES * PAGE_SIZE) == 0);
}

/*
 * Create the scratch pages' tables (a store of an empty entry faults them in)
 * and, on boot's call, keep the count window's first tables: 0 or -E_NOMEM.
 */
int cow_init(void)
{
	/* Every frame's leaf lies inside the window. */
	ASSERT(paging_phys_limit() / PAGE_SIZE / LEAF_FRAMES <= COUNT_WINDOW / PAGE_SIZE);
	bool locked = vmm_lock_take();
	int err = 0;
	struct pte_run r = pte_run_at(WINDOW_SELF, LEVEL_PT, COW_SCRATCH);
	if (!scratch_ready && !(scratch_ready = pte_run_install_new(&r, 0, 0)))
		err = -E_NOMEM;
	static bool first = true; /* boot's call (main.c), under the lock */
	if (first && !err && !leaves)
		keep_first_count_tables();
	first = false;
	vmm_lock_drop(locked);
	return err;
}

/* fork's walk over the parent's user half. */
struct fork_pass {
	struct pte_batch *batch; /* the parent's write-protections */
	u64 pages;               /* present pages shared so far */
	u64 stop;                /* where a failed walk stopped: the pages below are shared */
};

typedef int pt_fn(struct fork_pass *f, u64 va, u64 n);

/*
 * Call fn, in address order, on each PT of the current space's user half
 * below end with its entries below end, for the table at `level` covering
 * va (aligned to it): 0, fn's first error, or -E_INVAL at a large page, with
 * f->stop set. Only the present entries of each table are visited.
 */
static int walk_tables(int level, u64 va, u64 end, pt_fn *fn, struct fork_pass *f)
{
	volatile const u64 *t = window_entry(WINDOW_SELF, level, va);
	u64 span = level_span(level), left = (end - va + span - 1) / span;
	u64 n = left < TABLE_ENTRIES ? left : TABLE_ENTRIES;
	for (u64 i = table_next_present(t, 0, n); i < n; i = table_next_present(t, i + 1, n)) {
		u64 at = va + i * span;
		int err;
		if (pte_is_leaf(t[i], level)) {
			f->stop = at;
			return -E_INVAL;
		}
		if (level == LEVEL_PD) {
			u64 pages = (end - at) / PAGE_SIZE;
			err = fn(f, at, pages < TABLE_ENTRIES ? pages : TABLE_ENTRIES);
		} else {
			err = walk_tables(level - 1, at, end, fn, f);
		}
		if (err)
			return err;
	}
	return 0;
}

/* walk_tables over the user half below end (a multiple of 4 KiB). */
static int walk_user(u64 end, pt_fn *fn, struct fork_pass *f)
{
	return end ? walk_tables(LEVEL_PML4, 0, end, fn, f) : 0;
}

/* The frame number of a present entry (shifts: no 64-bit mask constant to keep in a register). */
static inline u64 pte_pfn(u64 e)
{
	_Static_assert(PTE_ADDR_MASK == ((1ULL << 52) - PAGE_SIZE), "frame bits 12..51");
	return (e << 12) >> 24;
}


/* A present PTE as both sides keep it: read-only, PTE_COW (bit 9) where it was writable (bit 1). */
static inline u64 shared_pte(u64 e)
{
	_Static_assert(PTE_COW == PTE_W << 8, "PTE_COW is PTE_W shifted by 8");
	return (e | (e & PTE_W) << 8) & ~PTE_W;
}

/* share_pt's key for entry e counted in the leaf whose first frame number is first. */
static inline u64 leaf_key(u64 e, u64 first)
{
	return (e >> PAGE_SHIFT) - (pte_pfn(e) - first);
}

/* The leaf counting e's frame, for share_pt's loop (kept out of it): NULL when no frame is left. */
static __attribute__((noinline)) struct leaf *leaf_switch(u64 e, u64 *key)
{
	struct leaf *l = leaf_get(pte_pfn(e));
	if (l)
		*key = leaf_key(e, cache.first);
	return l;
}

static __attribute__((noinline, noreturn)) void count_overflow(u64 e)
{
	panic("cow: frame 0x%llx mapped more than %u times", pte_frame(e), EXTRA_MAX + 1);
}

/* One more mapping of the frame at index d of leaf l (e: its entry, for the panic). */
static inline void count_one(struct leaf *l, u64 d, u64 e)
{
	/* An add to memory and a jump on its carry: 2 instructions (GCC's own form takes 4). */
	__asm__ goto("addw $1, %0\n\tjc %l[overflow]"
		     : "+m"(l->extra[d])
		     :
		     : "cc"
		     : overflow);
	return;
overflow:
	count_overflow(e);
}

/*
 * Share the n PTEs from va's (its PT exists here) with the other space, in
 * one pass: write-protect each present one in the parent (batched), copy it
 * into the child's PT and count its frame. 0, or -E_NOMEM (no frame for the
 * child's table or a leaf) with f->stop at the first page not shared.
 */
static int share_pt(struct fork_pass *f, u64 va, u64 n)
{
	struct pte_run from = pte_run_at(WINDOW_SELF, LEVEL_PT, va);
	struct pte_run to = pte_run_at(WINDOW_OTHER, LEVEL_PT, va);
	volatile const u64 *start = from.entry, *end = from.entry + n;
	u64 i = table_next_present(start, 0, n);
	if (i == n)
		return 0;
	u64 e = shared_pte(pte_run_get(&from, i));
	/*
	 * The child's PT. One whose first and last entries are present is
	 * taken as full: made without zeroing, every entry stored below (holes
	 * too). Else it is zeroed and holes are skipped.
	 */
	bool full = n == TABLE_ENTRIES && i == 0 && (pte_run_get(&from, n - 1) & PTE_P);
	struct leaf *l = leaf_get(pte_pfn(e));
	if (!l || !other_pt_new(va, !full)) {
		if (l && !l->sum)
			leaf_put(l); /* made for this page, it counts nothing */
		f->stop = va + i * PAGE_SIZE;
		return -E_NOMEM;
	}
	pte_run_advance(&from, i);
	pte_run_advance(&to, i);
	/*
	 * Pages shared: entries passed, less the holes skipped; `counted` of
	 * them are in l's sum. key: l's first frame number plus the entry's
	 * bits above the frame (NX, 52..62) shifted alike, so that an entry's
	 * index in l is (e >> PAGE_SHIFT) - key without masking them off; an
	 * entry whose high bits differ falls to leaf_switch, which re-keys.
	 */
	u64 key = leaf_key(e, cache.first), holes = 0, counted = 0;
	int err = 0;
	for (;;) {
		u64 d = (e >> PAGE_SHIFT) - key;
		if (__builtin_expect(d >= LEAF_FRAMES, 0)) {
			u64 pages = (u64)(from.entry - start) - i - holes;
			l->sum += pages - counted;
			counted = pages;
			u64 k;
			if (!(l = leaf_switch(e, &k))) {
				err = -E_NOMEM;
				break;
			}
			key = k;
			continue; /* e's index in the new leaf */
		}
		count_one(l, d, e);
		pte_batch_change(f->batch, &from, 0, e);
		pte_run_install(&to, 0, e);
		/* Unrolled once: the next entry too in the common case (one round for two). */
		if (from.entry + 1 != end) {
			u64 e1 = pte_run_get(&from, 1), d1 = (e1 >> PAGE_SHIFT) - key;
			if ((e1 & (PTE_P | PTE_W)) == (PTE_P | PTE_W) && d1 < LEAF_FRAMES) {
				e1 = (e1 ^ PTE_W) | PTE_COW;
				count_one(l, d1, e1);
				pte_batch_change(f->batch, &from, 1, e1);
				pte_run_install(&to, 1, e1);
				pte_run_advance(&from, 1);
				pte_run_advance(&to, 1);
			}
		}
		pte_run_advance(&from, 1);
		pte_run_advance(&to, 1);
		if (from.entry == end)
			break;
		e = pte_run_get(&from, 0);
		/* Present and writable, the common case: one test for both. */
		if (__builtin_expect((e & (PTE_P | PTE_W)) == (PTE_P | PTE_W), 1)) {
			e = (e ^ PTE_W) | PTE_COW;
			continue;
		}
		if (!(e & PTE_P)) {
			u64 at = (u64)(from.entry - start);
			u64 next = table_next_present(start, at + 1, n);
			holes += next - at;
			if (full)
				for (u64 k = 0; k < next - at; k++)
					pte_run_install(&to, k, 0);
			pte_run_advance(&from, next - at);
			pte_run_advance(&to, next - at);
			if (next == n)
				break;
			e = pte_run_get(&from, 0);
		}
		e = shared_pte(e);
	}
	u64 at = (u64)(from.entry - start), pages = at - i - holes;
	/* Stopped by a failure: the rest of a full child's PT still holds what its frame held. */
	if (full)
		for (u64 k = 0; k < n - at; k++)
			pte_run_install(&to, k, 0);
	if (l)
		l->sum += pages - counted;
	if (err)
		f->stop = va + at * PAGE_SIZE;
	f->pages += pages;
	return err;
}

/* Undo share_pt for the present PTEs of the n from va's: uncount, W back where no longer shared. */
static int unshare_pt(struct fork_pass *f, u64 va, u64 n)
{
	struct pte_run r = pte_run_at(WINDOW_SELF, LEVEL_PT, va);
	for (u64 i = table_next_present(r.entry, 0, n); i < n;
	     i = table_next_present(r.entry, i + 1, n)) {
		u64 e = pte_run_get(&r, i);
		struct leaf *l;
		u16 *x = extra_of(pte_frame(e), &l);
		ASSERT(x);
		bool last = *x == 1;
		drop_one(l, x);
		if (last && (e & PTE_COW))
			pte_batch_change(f->batch, &r, i, (e | PTE_W) & ~PTE_COW);
	}
	return 0;
}

/* cow_fork_space under the paging lock. */
static int fork_locked(pml4_t *out)
{
	pml4_t space;
	int err = cow_init();
	if (err || (err = other_space_open(&space)))
		return err;
	/*
	 * The parent's entries are write-protected with no flush at each write;
	 * the batch drops them all from the TLB when this function returns
	 * (here an invlpg each up to TLB_FLUSH_CEILING pages, else one CR3
	 * reload; one shootdown round to the other CPUs that have this space
	 * loaded: none while a process runs on one CPU), and nothing here writes
	 * a user page meanwhile.
	 */
	PTE_BATCH(batch);
	struct fork_pass f = {&batch, 0, USER_END};
	err = walk_user(USER_END, share_pt, &f);
	total += f.pages;
	if (!err && (err = pmm_reserve(f.pages)) != 0)
		f.stop = USER_END;
	if (err)
		MUST(walk_user(f.stop, unshare_pt, &f) == 0);
	if (!other_space_close(space, err))
		*out = space;
	return err;
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
	struct leaf *l;
	u16 *x = extra_of(frame, &l);
	/* The page's new rights (and frame) must reach every CPU that runs this space. */
	struct tlb_batch b;
	tlb_batch_begin(&b, TLB_CURRENT);
	if (!x) {
		/* The other mappings are gone: the frame is this one's alone. */
		MUST(pte_write_flush(WINDOW_SELF, LEVEL_PT, page, frame | flags, &b));
		tlb_batch_finish(&b);
		stats.takeovers++;
		return NULL;
	}
	/* The reservation made at fork pays for the copy. */
	u64 copy = pmm_alloc_reserved();
	drop_one(l, x);
	/* The scratch pages are used under the paging lock and dropped here before it is released. */
	pte_scratch_set(COW_SCRATCH_SRC, frame | PTE_P | paging_nx_bit());
	pte_scratch_set(COW_SCRATCH, copy | PTE_P | PTE_W | paging_nx_bit());
	copy_page((void *)COW_SCRATCH, (const void *)COW_SCRATCH_SRC);
	pte_scratch_set(COW_SCRATCH_SRC, 0);
	pte_scratch_set(COW_SCRATCH, 0);
	MUST(pte_write_flush(WINDOW_SELF, LEVEL_PT, page, copy | flags, &b));
	tlb_batch_finish(&b);
	stats.copies++;
	return NULL;
}

bool cow_test_scratch_off;

bool scratch_zero_frame(u64 frame)
{
	ASSERT(vmm_lock_held());
	if (!scratch_ready || cow_test_scratch_off)
		return false;
	/* Not in use: a table fault never comes while a copy has it mapped. */
	ASSERT(!*window_entry(WINDOW_SELF, LEVEL_PT, COW_SCRATCH));
	/* Used and dropped under the paging lock, as a copy's are. */
	pte_scratch_set(COW_SCRATCH, frame | PTE_P | PTE_W | paging_nx_bit());
	vmm_zero_page((void *)COW_SCRATCH);
	pte_scratch_set(COW_SCRATCH, 0);
	return true;
}

const char *cow_write_fault(u64 va)
{
	bool locked = vmm_lock_take();
	const char *why = write_fault_locked(va);
	vmm_lock_drop(locked);
	return why;
}
