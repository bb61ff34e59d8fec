/*
 * The paging API on the current address space, through the self-map only:
 * map_region, unmap_region, set_page_flags, virt_to_phys. Entries are
 * written at their self-map address; a missing table makes the write fault
 * and the #PF handler (vmm_fault.c) creates it. Every store goes through
 * the page-table write API (pte.h), which applies the TLB rule: a single
 * entry through pte_write_flush, a run of PTEs in a table that exists in a
 * row after one walk (pte_run_*). Tables that become empty are released
 * bottom-up (the thesis's release of unused tables).
 */
#include "vmm_internal.h"
#include <cow.h>
#include <cpu.h>
#include <image.h>
#include <panic.h>
#include <pmm.h>
#include <smp.h>
#include <spinlock.h>

struct vmm_stats vmm_stats;

static struct spinlock vmm_lock = SPINLOCK_INIT("vmm", LOCK_ORDER_VMM);
/* Times the holder took vmm_lock again on top of the first (vmm_internal.h: it nests). */
static u32 vmm_lock_nested;

bool vmm_lock_take_smp(void)
{
	if (spin_held(&vmm_lock))
		vmm_lock_nested++;
	else
		spin_lock(&vmm_lock);
	return true;
}

void vmm_lock_drop_smp(void)
{
	if (vmm_lock_nested)
		vmm_lock_nested--;
	else
		spin_unlock(&vmm_lock);
}

bool vmm_lock_held(void)
{
	return smp_cpu_count() < 2 || spin_held(&vmm_lock);
}

bool vmm_has_huge_pages(void)
{
	return paging_has_huge_pages();
}

void vmm_get_stats(struct vmm_stats *out)
{
	*out = vmm_stats;
}

bool frame_in_image(u64 frame)
{
	return frame >= KERNEL_PHYS_BASE && frame < (u64)__image_end - KERNEL_VIRT_OFFSET;
}

bool kernel_slot_may_grow(u64 slot)
{
	return slot == PMM_STACK_SLOT || slot == HEAP_SLOT || slot == INITRD_SLOT ||
	       slot == KSTACKS_SLOT || slot == MMIO_SLOT;
}

bool pte_write_flush(enum pt_window w, int level, u64 va, u64 value, struct tlb_batch *b)
{
	/* G only on leaves: a table entry is also the PTE of a self-map page, which must not be global. */
	ASSERT(!(value & PTE_G) || pte_is_leaf(value, level));
	if (!tlb_batch_is_open(b))
		tlb_batch_check(b);
	if (!vmm_entry_store(pte_slot(w, level, va), value))
		return false;
	pte_flush(w, level, va, b);
	return true;
}

void range_step_at(enum pt_window w, u64 va, struct range_step *s)
{
	s->entry = window_walk(w, va, &s->level);
	s->size = level_span(s->level);
	s->start = ALIGN_DOWN(va, s->size);
}

void range_step_skip_holes(enum pt_window w, struct range_step *s, u64 va, u64 bytes)
{
	volatile const u64 *e = window_entry(w, s->level, s->start);
	u64 span = s->size;
	u64 in_table = table_left(s->start, s->level) / span; /* entries from s's to the table end */
	/* Entries that start below va + bytes (no wrap: bytes stays inside a half). */
	u64 rel = va - s->start + bytes, below = rel / span + (rel % span != 0);
	s->size = table_next_present(e, 1, below < in_table ? below : in_table) * span;
}

/*
 * Kernel ranges whose PTs and PDs stay once made (vmm_keep_tables), set at
 * boot: the copy-on-write count window's first tables, the kernel stacks'
 * with one CPU, and room for one more keeper.
 */
#define KEPT_RANGES 3
static struct {
	u64 lo, hi;
} kept_ranges[KEPT_RANGES];
static u32 nkept;

int vmm_keep_tables(u64 va, u64 bytes)
{
	if (va < KERNEL_HALF_START || !bytes || va + bytes < va)
		return -E_INVAL;
	bool locked = vmm_lock_take();
	int err = nkept == KEPT_RANGES ? -E_NOSPC : 0;
	if (!err) {
		kept_ranges[nkept].lo = va;
		kept_ranges[nkept].hi = va + bytes;
		nkept++;
	}
	vmm_lock_drop(locked);
	return err;
}

/*
 * Make the missing PTs (and the PDs above them) over [va, va + bytes), up to
 * *made, the end of the spans done: 0, -E_HUGE or -E_NOMEM.
 */
static int make_tables(u64 va, u64 bytes, u64 *made)
{
	u64 span = level_span(LEVEL_PD);
	for (*made = va; *made - va < bytes; *made = ALIGN_DOWN(*made, span) + span) {
		struct range_step s;
		range_step_at(WINDOW_SELF, *made, &s);
		if (s.entry && s.level > LEVEL_PT)
			return -E_HUGE;
		struct pte_run r = pte_run_at(WINDOW_SELF, LEVEL_PT, *made);
		/* The store of an empty entry over a missing one only faults its tables in. */
		if (s.level > LEVEL_PT && !pte_run_install_new(&r, 0, 0))
			return -E_NOMEM;
	}
	return 0;
}

/* -E_INVAL unless every kernel-half PML4 slot of [va, last] is one the kernel shares. */
static int check_kernel_slots(u64 va, u64 last)
{
	if (va < USER_END)
		return 0;
	for (u64 slot = va_index(va, LEVEL_PML4);; slot++) {
		bool present = *selfmap_entry(LEVEL_PML4, INDICES_VA(slot, 0, 0, 0)) & PTE_P;
		if (!present && !kernel_slot_may_grow(slot))
			return -E_INVAL;
		if (slot == va_index(last, LEVEL_PML4))
			return 0;
	}
}

int vmm_make_kept_tables(u64 va, u64 bytes)
{
	if (va < KERNEL_HALF_START || !IS_ALIGNED(va, PAGE_SIZE) || !bytes ||
	    !IS_ALIGNED(bytes, PAGE_SIZE) || va + bytes < va)
		return -E_INVAL;
	/* As map_region: never the page tables' windows, never a slot the kernel does not share. */
	int err = vmm_check_range(va, bytes / PAGE_SIZE, PAGE_SIZE);
	if (err || (err = check_kernel_slots(va, va + bytes - 1)))
		return err;
	bool locked = vmm_lock_take();
	u64 made, span = level_span(LEVEL_PD);
	err = make_tables(va, bytes, &made);
	if (!err)
		err = vmm_keep_tables(va, bytes);
	if (err) {
		/* Not kept: the empty tables go again, the failed span's too (this call maps nothing). */
		struct tlb_batch b;
		tlb_batch_begin(&b, TLB_KERNEL);
		for (u64 at = va; at - va < bytes && at <= made; at = ALIGN_DOWN(at, span) + span)
			release_empty_tables(WINDOW_SELF, at, &b);
		tlb_batch_finish(&b);
	}
	vmm_lock_drop(locked);
	return err;
}

/*
 * Tables that stay even when empty: the shared kernel-half PDPTs, the early
 * window's PT (early_map relies on it), the PMM stack region's tables (the
 * PMM built them at init from frames it does not manage), and the PTs and
 * PDs of the ranges given to vmm_keep_tables.
 */
static bool table_permanent(int level, u64 va)
{
	if (va < USER_END)
		return false; /* every one is the kernel half's */
	if (level == LEVEL_PDPT)
		return true;
	if (va_index(va, LEVEL_PML4) == PMM_STACK_SLOT)
		return true;
	for (u32 i = 0; i < nkept; i++)
		if (va >= kept_ranges[i].lo && va < kept_ranges[i].hi)
			return true;
	return level == LEVEL_PT && va >= EARLY_WINDOW_BASE &&
	       va - EARLY_WINDOW_BASE < EARLY_WINDOW_SIZE;
}

/*
 * True when the table at `level` holding va's entry has no entry at all.
 * An empty table is read whole: eight entries a test keep that to about two
 * instructions an entry.
 */
static bool table_empty(enum pt_window w, int level, u64 va)
{
	volatile const u64 *t = window_entry(w, level, ALIGN_DOWN(va, level_span(level + 1)));
	for (u64 i = 0; i < TABLE_ENTRIES; i += 8)
		if (t[i] | t[i + 1] | t[i + 2] | t[i + 3] | t[i + 4] | t[i + 5] | t[i + 6] | t[i + 7])
			return false;
	return true;
}

/* The lowest level whose table on va's path exists (1: the PT exists). */
static int lowest_table(enum pt_window w, u64 va)
{
	for (int l = LEVEL_PML4; l > LEVEL_PT; l--) {
		u64 e = *window_entry(w, l, va);
		if (!(e & PTE_P) || pte_is_leaf(e, l))
			return l;
	}
	return LEVEL_PT;
}

/* Where the table at `level` holding va's entry lies against a range its caller clears. */
enum table_place {
	TABLE_READ,    /* not inside the range: read it to know whether it is empty */
	TABLE_CLEARED, /* inside, and va is its last address: empty (each entry cleared or released) */
	TABLE_LATER,   /* inside, not done yet: released (unread) when the walk reaches its end */
};

/*
 * A table of the user half whose span lies inside [from, to] (in the user
 * half), which the caller clears in address order, is empty once the walk
 * has passed its last address: each of its entries was cleared, or linked
 * a table released there (no user-half table is permanent).
 */
static enum table_place table_place(int level, u64 va, u64 from, u64 to)
{
	u64 span = level_span(level + 1), start = ALIGN_DOWN(va, span);
	if (start < from || start + span - 1 > to)
		return TABLE_READ;
	return va == start + span - 1 ? TABLE_CLEARED : TABLE_LATER;
}

/*
 * release_empty_tables for a walk clearing [from, to] (to < from: none)
 * that has reached va: the tables inside it are not read.
 */
static void release_tables(enum pt_window w, u64 va, u64 from, u64 to, struct tlb_batch *b)
{
	bool user = to < USER_END && from <= to; /* a user-half range: table_place has a say */
	for (int l = lowest_table(w, va); l < LEVEL_PML4; l++) {
		if (table_permanent(l, va))
			return;
		enum table_place p = user ? table_place(l, va, from, to) : TABLE_READ;
		if (p == TABLE_LATER || (p == TABLE_READ && !table_empty(w, l, va)))
			return;
		u64 frame = pte_frame(*window_entry(w, l + 1, va));
		/* Clearing an existing entry cannot fault: its table is there. */
		MUST(pte_write_flush(w, l + 1, va, 0, b)); /* a table entry: the batch flushes all */
		vmm_stats.tables_released++;
		/* Boot tables live in the image: unlinked, but not the PMM's to take. */
		if (frame_in_image(frame))
			continue;
		/* Other CPUs may cache the window's tables whatever space b names (tlb.h). */
		if (w == WINDOW_OTHER && !(b->state & TLB_BATCH_WINDOW))
			panic("vmm: a table freed through the other window outside a window batch");
		MUST(tlb_batch_free_table(b, frame) == 0); /* after the round: paging-structure caches */
	}
}

void release_empty_tables(enum pt_window w, u64 va, struct tlb_batch *b)
{
	release_tables(w, va, 1, 0, b); /* no range: every table is read */
}

/*
 * Give `count` frames from `frame` back once gather's round is done (NULL:
 * at once, nothing to wait for); keep the first error in *err.
 */
static inline __attribute__((always_inline)) void free_frames(u64 frame, u64 count, int *err,
							      struct tlb_batch *gather)
{
	for (u64 i = 0; i < count; i++) {
		/* A frame that fork shared stays while another space maps it. */
		if (cow_release(frame + i * PAGE_SIZE))
			continue;
		int r = gather ? tlb_batch_free_frame(gather, frame + i * PAGE_SIZE)
			       : pmm_free(frame + i * PAGE_SIZE);
		if (r && !*err)
			*err = r;
	}
}

/*
 * Clear the present PTEs among the n from va's (its PT exists); VMM_FREE_FRAMES frees frames
 * (through gather, or at once when NULL). Inlined for each window and each way of freeing, so
 * the loop knows which it is (and whether to invlpg, whether to free) beforehand.
 */
static inline __attribute__((always_inline)) void clear_ptes(enum pt_window w, u64 va, u64 n,
							     u32 options, int *err,
							     struct tlb_batch *b,
							     struct tlb_batch *gather)
{
	struct pte_change_run run = pte_run_change_at(w, LEVEL_PT, va, n, b);
	/* Each run of present entries entry by entry, the holes between runs by repe scasq. */
	for (u64 i = 0; i < n; i = table_next_present(run.run.entry, i, n)) {
		for (u64 e; i < n && ((e = pte_run_get(&run.run, i)) & PTE_P); i++) {
			pte_run_change(&run, i, 0);
			if (options & VMM_FREE_FRAMES)
				free_frames(pte_frame(e), 1, err, gather);
		}
	}
}

/*
 * clear_ptes with its window and way of freeing chosen here: one copy of
 * the loop for each, out of clear_range's loop (a call a PT, not a page).
 */
static __attribute__((noinline)) void clear_pt_run(enum pt_window w, u64 va, u64 n, u32 options,
						   int *err, struct tlb_batch *b)
{
	bool self = w == WINDOW_SELF, gather = tlb_batch_gathers(b);
	ASSERT(self || !gather); /* the window is cleared with a window batch only */
	if (!(options & VMM_FREE_FRAMES) && self)
		clear_ptes(WINDOW_SELF, va, n, 0, err, b, NULL); /* frees nothing: no gather */
	else if (!(options & VMM_FREE_FRAMES))
		clear_ptes(WINDOW_OTHER, va, n, 0, err, b, NULL);
	else if (self && gather)
		clear_ptes(WINDOW_SELF, va, n, VMM_FREE_FRAMES, err, b, b);
	else if (self)
		clear_ptes(WINDOW_SELF, va, n, VMM_FREE_FRAMES, err, b, NULL);
	else /* through the window: only a window batch frees there, and it never gathers */
		clear_ptes(WINDOW_OTHER, va, n, VMM_FREE_FRAMES, err, b, NULL);
}

/*
 * One walk per PT, large page or hole, not per page: the PTEs of a PT that
 * exists are cleared in a row. Empty tables are looked for when a step
 * leaves the table holding it (and at the end), so each table is checked
 * once, after the last entry this call clears in it.
 */
int clear_range(enum pt_window w, u64 va, u64 bytes, u32 options, struct tlb_batch *b)
{
	int err = 0;
	u64 from = va, to = va + bytes - 1;
	while (bytes) {
		struct range_step s;
		range_step_at(w, va, &s);
		u64 step = range_step_pt_bytes(&s, va, bytes);
		if (step) {
			/*
			 * The current space's unmaps that free nothing, or free with no
			 * gathering batch (the common cases), inline; the rest a call a PT.
			 */
			if (w == WINDOW_SELF && !(options & VMM_FREE_FRAMES))
				clear_ptes(WINDOW_SELF, va, step / PAGE_SIZE, 0, &err, b, NULL);
			else if (w == WINDOW_SELF && !tlb_batch_gathers(b))
				clear_ptes(WINDOW_SELF, va, step / PAGE_SIZE, VMM_FREE_FRAMES, &err, b, NULL);
			else
				clear_pt_run(w, va, step / PAGE_SIZE, options, &err, b);
		} else {
			if (!s.entry)
				range_step_skip_holes(w, &s, va, bytes);
			step = range_step_left(&s, va);
			if (s.entry) {
				ASSERT(s.start == va && step <= bytes); /* callers check large pages */
				MUST(pte_write_flush(w, s.level, va, 0, b));
				if (options & VMM_FREE_FRAMES)
					free_frames(pte_frame(s.entry) & ~(s.size - 1),
						    s.size / PAGE_SIZE, &err,
						    tlb_batch_gathers(b) ? b : NULL);
			}
		}
		u64 last = va + (step < bytes ? step : bytes) - 1;
		if (step >= bytes || IS_ALIGNED(last + 1, level_span(s.level + 1)))
			release_tables(w, last, from, to, b); /* leaving a table: it may have emptied */
		if (step >= bytes)
			break;
		va += step;
		bytes -= step;
	}
	return err;
}

/* The PTE bits for `flags` on a leaf at `level`. */
static inline u64 leaf_bits(u32 flags, int level)
{
	u64 bits = PTE_P;
	if (flags & VMM_WRITE)
		bits |= PTE_W;
	if (flags & VMM_USER)
		bits |= PTE_U;
	if (flags & VMM_GLOBAL)
		bits |= PTE_G;
	if (!(flags & VMM_EXEC))
		bits |= paging_nx_bit();
	if (level > LEVEL_PT)
		bits |= PTE_PS;
	return bits;
}

/* -E_INVAL when user/global flags do not fit the half va lies in. */
static int check_half(u64 va, u32 flags)
{
	bool user = va < USER_END;
	if ((flags & VMM_USER) && !user)
		return -E_INVAL;
	if ((flags & VMM_GLOBAL) && user)
		return -E_INVAL;
	return 0;
}

/* The leaf level map_region uses for flags, or 0 if the size is not available. */
static int map_level(u32 flags)
{
	if ((flags & VMM_LARGE) && (flags & VMM_HUGE))
		return 0;
	if (flags & VMM_HUGE)
		return vmm_has_huge_pages() ? LEVEL_PDPT : 0;
	return (flags & VMM_LARGE) ? LEVEL_PD : LEVEL_PT;
}

/* Everything map_region checks before looking at the tables. */
static int check_map_args(u64 vaddr, u64 paddr, u64 npages, u32 flags, int level)
{
	if ((flags & ~(VMM_PROT_FLAGS | VMM_LARGE | VMM_HUGE)) || !level || !npages)
		return -E_INVAL;
	u64 size = level_span(level);
	if (!IS_ALIGNED(paddr, size))
		return -E_ALIGN;
	int err = vmm_check_range(vaddr, npages, size);
	if (err)
		return err;
	if ((err = check_half(vaddr, flags)) || (err = check_kernel_slots(vaddr, vaddr + npages * size - 1)))
		return err;
	if (npages > paging_phys_limit() / size || paddr > paging_phys_limit() - npages * size)
		return -E_INVAL;
	return 0;
}

/*
 * Whether a page of `level` can go at va (bytes, a multiple of its size,
 * from va are to be mapped): 0, -E_HUGE (under a larger page) or -E_EXIST;
 * *free is how many bytes from va are known free (a whole missing table's
 * span, or the run of free entries from va's in its table).
 */
static int probe_free(u64 va, int level, u64 bytes, u64 *free)
{
	for (int l = LEVEL_PML4; l > level; l--) {
		u64 e = *selfmap_entry(l, va);
		if (!(e & PTE_P)) {
			*free = ALIGN_DOWN(va, level_span(l)) + level_span(l) - va;
			return 0;
		}
		if (pte_is_leaf(e, l))
			return -E_HUGE;
	}
	/* A present entry here is a page, or a table where a large page should go. */
	volatile const u64 *e = selfmap_entry(level, va);
	if (e[0] & PTE_P)
		return -E_EXIST;
	/* The free entries from va's, in its table and the range (one page: that one). */
	u64 shift = va_shift(level), want = bytes >> shift;
	if (want > 1 && want > table_left(va, level) >> shift)
		want = table_left(va, level) >> shift;
	*free = table_next_present(e, 1, want) << shift;
	return 0;
}

/*
 * Write the n leaves of `level` from va to pa | bits, all known not present
 * (probe_range): the first entry of each table through the store that
 * faults the table into existence, the rest of that table directly. A
 * not-present entry made present needs no invalidation. Returns the leaves
 * written: n, or fewer when no frame was left for a table.
 */
static u64 fill_leaves(u64 va, u64 pa, u64 n, int level, u64 bits)
{
	u64 size = level_span(level), done = 0;
	while (done < n) {
		u64 run = table_left(va, level) / size;
		if (run > n - done)
			run = n - done;
		struct pte_run leaves = pte_run_at(WINDOW_SELF, level, va);
		if (!pte_run_install_new(&leaves, 0, pa | bits))
			return done;
		for (u64 i = 1; i < run; i++)
			pte_run_install(&leaves, i, (pa + i * size) | bits);
		done += run;
		va += run * size;
		pa += run * size;
	}
	return n;
}

/* The error of the first page of the range that cannot be mapped, or 0. */
static int probe_range(u64 vaddr, u64 npages, int level)
{
	u64 size = level_span(level), bytes = npages * size, va = vaddr;
	while (bytes) {
		u64 free;
		int err = probe_free(va, level, bytes, &free);
		if (err || free >= bytes)
			return err;
		va += free;
		bytes -= free;
	}
	return 0;
}

/* map_region under the paging lock. */
static inline __attribute__((always_inline)) int map_locked(u64 vaddr, u64 paddr, u64 npages,
							      u32 flags)
{
	int level = map_level(flags);
	int err = check_map_args(vaddr, paddr, npages, flags, level);
	if (err || (err = probe_range(vaddr, npages, level)))
		return err;
	u64 size = level_span(level), bits = leaf_bits(flags, level);
	/* G only on leaves (pte_write_flush's rule): leaf_bits sets it on nothing else. */
	u64 done = fill_leaves(vaddr, paddr, npages, level, bits);
	if (done == npages)
		return 0; /* only not-present entries made present: nothing to shoot down */
	/* Out of frames for a table: undo this call, and the tables it left half-built. */
	struct tlb_batch b;
	tlb_batch_begin(&b, vmm_batch_space(vaddr));
	if (done)
		MUST(clear_range(WINDOW_SELF, vaddr, done * size, 0, &b) == 0); /* frees no frame: no error */
	release_empty_tables(WINDOW_SELF, vaddr + done * size, &b);
	tlb_batch_finish(&b);
	return -E_NOMEM;
}

int map_region(u64 vaddr, u64 paddr, u64 npages, u32 flags)
{
	bool locked = vmm_lock_take();
	int err = map_locked(vaddr, paddr, npages, flags);
	vmm_lock_drop(locked);
	return err;
}

/* True when the n PTEs from va's (its PT exists) are all present. */
static bool ptes_present(u64 va, u64 n)
{
	volatile const u64 *pte = selfmap_pte(va);
	for (u64 i = 0; i < n; i++)
		if (!(pte[i] & PTE_P))
			return false;
	return true;
}

/* Give the n present PTEs from va's the flag bits, keeping the bits in `keep` (into batch b). */
static void protect_ptes(u64 va, u64 n, u64 keep, u64 bits, struct tlb_batch *b)
{
	struct pte_change_run run = pte_run_change_at(WINDOW_SELF, LEVEL_PT, va, n, b);
	for (u64 i = 0; i < n; i++)
		pte_run_change(&run, i, (pte_run_get(&run.run, i) & keep) | bits);
}

/*
 * Check [va, va + bytes) in address order: -E_NOTMAPPED at a hole when
 * need_mapped, -E_HUGE at a large page the range only partly covers.
 */
static int check_leaves(u64 va, u64 bytes, bool need_mapped)
{
	while (bytes) {
		struct range_step s;
		range_step_at(WINDOW_SELF, va, &s);
		u64 step = range_step_pt_bytes(&s, va, bytes);
		if (step) {
			/* A PT holds no large page: only a hole can stop the run. */
			if (need_mapped && !ptes_present(va, step / PAGE_SIZE))
				return -E_NOTMAPPED;
			if (step >= bytes)
				return 0;
			va += step;
			bytes -= step;
			continue;
		}
		if (!s.entry && need_mapped)
			return -E_NOTMAPPED;
		if (!s.entry)
			range_step_skip_holes(WINDOW_SELF, &s, va, bytes);
		step = range_step_left(&s, va);
		if (s.entry && s.level > LEVEL_PT && (s.start != va || step > bytes))
			return -E_HUGE;
		if (step >= bytes)
			return 0;
		va += step;
		bytes -= step;
	}
	return 0;
}

int unmap_region(u64 vaddr, u64 npages, u32 options)
{
	if ((options & ~VMM_FREE_FRAMES) || !npages)
		return -E_INVAL;
	int err = vmm_check_range(vaddr, npages, PAGE_SIZE);
	if (err)
		return err;
	bool locked = vmm_lock_take();
	if (!(err = check_leaves(vaddr, npages * PAGE_SIZE, false))) {
		struct tlb_batch b;
		tlb_batch_begin(&b, vmm_batch_space(vaddr));
		err = clear_range(WINDOW_SELF, vaddr, npages * PAGE_SIZE, options, &b);
		int held = tlb_batch_finish(&b); /* the frames it held: freed now */
		err = err ? err : held;
	}
	vmm_lock_drop(locked);
	return err;
}

static inline __attribute__((always_inline)) int protect_locked(u64 vaddr, u64 npages,
								  u32 flags);

int set_page_flags(u64 vaddr, u64 npages, u32 flags)
{
	if ((flags & ~VMM_PROT_FLAGS) || !npages)
		return -E_INVAL;
	int err = vmm_check_range(vaddr, npages, PAGE_SIZE);
	if (err || (err = check_half(vaddr, flags)))
		return err;
	bool locked = vmm_lock_take();
	err = protect_locked(vaddr, npages, flags);
	vmm_lock_drop(locked);
	return err;
}

/* set_page_flags after its argument checks, under the paging lock. */
static inline __attribute__((always_inline)) int protect_locked(u64 vaddr, u64 npages,
								  u32 flags)
{
	u64 bytes = npages * PAGE_SIZE, va = vaddr;
	int err = check_leaves(va, bytes, true);
	if (err)
		return err;
	struct tlb_batch b;
	tlb_batch_begin(&b, vmm_batch_space(vaddr));
	/* Keep the frame, the size (PS; PAT on a PTE), caching and accessed/dirty. */
	const u64 keep = PTE_ADDR_MASK | PTE_PS | PTE_PWT | PTE_PCD | PTE_A | PTE_D;
	while (bytes) {
		struct range_step s;
		range_step_at(WINDOW_SELF, va, &s);
		u64 step = range_step_pt_bytes(&s, va, bytes);
		if (step) {
			protect_ptes(va, step / PAGE_SIZE, keep, leaf_bits(flags, LEVEL_PT), &b);
		} else {
			step = range_step_left(&s, va);
			u64 value = (s.entry & keep) | (leaf_bits(flags, s.level) & ~PTE_PS);
			MUST(pte_write_flush(WINDOW_SELF, s.level, va, value, &b));
		}
		if (step >= bytes)
			break;
		va += step;
		bytes -= step;
	}
	tlb_batch_finish(&b);
	return 0;
}

int virt_to_phys(u64 vaddr, u64 *paddr)
{
	if (!va_is_canonical(vaddr))
		return -E_CANON;
	int level;
	/* Under the lock: a table another CPU releases must not vanish under the walk. */
	bool locked = vmm_lock_take();
	u64 e = window_walk(WINDOW_SELF, vaddr, &level);
	vmm_lock_drop(locked);
	if (!e)
		return -E_NOTMAPPED;
	u64 span = level_span(level);
	/* Bit 12 of a large-page entry is PAT, not address: mask below the page size. */
	*paddr = (pte_frame(e) & ~(span - 1)) | (vaddr & (span - 1));
	return 0;
}
