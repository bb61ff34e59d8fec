/*
 * The physical frame allocator: a stack of free frames in its own PML4 slot
 * (PMM_STACK_BASE). There is no direct map, so the stack's pages are free
 * frames themselves, mapped one after the other:
 *
 *   PMM_STACK_BASE + k * 4K     stack page k, entries k*PER_PAGE .. +PER_PAGE-1
 *   the slot's last pages       the double-free bitmap (PMM_DEBUG only)
 *
 * Pushing onto a full top page maps the frame being freed as the next page
 * (it is free, so it may hold the list of free frames); popping from an
 * empty top page unmaps that page and hands out its frame. Each is one PTE
 * write and one invlpg, so alloc and free are O(1), and the stack costs no
 * memory that is not free anyway. Invariant: (pages-1)*PER_PAGE <= depth <=
 * pages*PER_PAGE, and free frames = depth + pages.
 *
 * The tables of the region are created at init for the most pages the RAM
 * can need, from a bump allocator over the map, so nothing here relies on
 * the page-fault handler (which allocates frames through this allocator).
 *
 * Double frees (PMM_DEBUG): one bit per managed frame, indexed by its rank
 * (how many managed frames lie below it), set while the frame is free, on
 * the stack or serving as a stack page. A free finding the bit set is
 * refused with -E_DOUBLE and changes nothing; a frame leaving the stack must
 * have its bit set (else the stack is corrupt: panic). The check is exact and
 * touches no frame's memory, so a use-after-free that writes into a free
 * frame cannot hide a later double free. Cost: frames/8 bytes (4 KiB per
 * 128 MiB of RAM) plus their page tables, mapped at the top end of the slot
 * at init from the same bump allocator, in debug builds only.
 */
#include <layout.h>
#include <memmap.h>
#include <paging.h>
#include <panic.h>
#include <pmm.h>
#include <smp.h>
#include <spinlock.h>
#include <pte.h>
#include <printf.h>
#include <string.h>

#define STACK_PAGE0 PMM_STACK_BASE
/* The region (one PML4 slot): its pages, and the address just past it. */
#define REGION_PAGES (PML4_SLOT_SIZE / PAGE_SIZE)
#define REGION_END (PMM_STACK_BASE + PML4_SLOT_SIZE)
/* Entries a stack page holds. */
#define PER_PAGE (PAGE_SIZE / sizeof(u64))

/* A managed range of frames; rank is how many managed frames lie below base. */
struct range {
	u64 base, end, rank;
};

static struct memmap boot_map;
static struct range ranges[MEMMAP_MAX];
static u32 nranges;
static u64 total;        /* managed frames */
static u64 depth;        /* entries on the stack */
static u64 pages;        /* stack pages mapped */
static u64 top_floor;    /* depth at which the top page holds no entry: (pages - 1) * PER_PAGE */
static volatile u64 *top; /* where entry `depth` goes (in the top page, when it has room) */
static const struct range *last_range; /* range_of's last answer, tried first (set at init) */
static u64 max_pages;    /* stack pages the region's tables cover */
static u64 table_frames; /* bump-allocated tables of the region */
static u64 bitmap_frames; /* bump-allocated pages of the debug bitmap (0 without PMM_DEBUG) */
static u64 leaf_flags;   /* P, W, and NX when the CPU honours it */
#ifdef PMM_DEBUG
#define WORD_BITS (8 * sizeof(u64))
static u64 *free_bits; /* bit `rank` set: that managed frame is free (an entry or a stack page) */
#endif

/*
 * Every CPU may allocate and free: one lock over the stack (spinlock.h's
 * order). A stack page unmapped here is shot down on the other CPUs before
 * its frame is handed out (stack_page_unmap).
 */
static struct spinlock pmm_lock = SPINLOCK_INIT("pmm", LOCK_ORDER_PMM);

/*
 * Take the PMM's lock once a second CPU is up; returns whether it was taken,
 * for pmm_lock_drop. With one CPU nothing can race (the kernel runs with
 * interrupts off), so the allocator's hot path keeps its single-CPU cost.
 */
static inline bool pmm_lock_take(void)
{
	if (smp_cpu_count() < 2)
		return false;
	spin_lock(&pmm_lock);
	return true;
}

static inline void pmm_lock_drop(bool taken)
{
	if (taken)
		spin_unlock(&pmm_lock);
}

/* Virtual address of stack page k. */
static u64 page_va(u64 k)
{
	return STACK_PAGE0 + k * PAGE_SIZE;
}

/* Map frame at va of the region, not mapped (its PT exists since init). */
static void region_map(u64 va, u64 frame)
{
	pte_install(WINDOW_SELF, LEVEL_PT, va, frame | leaf_flags);
}

/* Unmap va of the region (into batch b); returns the frame it mapped. */
static u64 region_unmap(u64 va, struct tlb_batch *b)
{
	u64 frame = pte_frame(*selfmap_pte(va));
	pte_set(WINDOW_SELF, LEVEL_PT, va, 0, b);
	return frame;
}

/*
 * Unmap a stack page, and shoot it down on every other CPU: each one that
 * took the PMM lock may have it cached, and the frame leaves the PMM now.
 */
static __attribute__((noinline)) u64 stack_page_unmap(u64 va)
{
	struct tlb_batch b;
	tlb_batch_begin(&b, TLB_KERNEL);
	u64 frame = region_unmap(va, &b);
	tlb_batch_finish(&b);
	return frame;
}

/*
 * Push a free frame: into the top page, or, when that is full, as the next
 * page. top and top_floor follow depth and pages, so the common case is one
 * store and two increments, with no division by PER_PAGE.
 */
static inline __attribute__((always_inline)) void push(u64 frame)
{
	if (depth == top_floor + PER_PAGE) {
		ASSERT(pages < max_pages); /* more frees than frames: the checks missed a double free */
		region_map(page_va(pages), frame);
		top = (volatile u64 *)page_va(pages);
		pages++;
		top_floor += PER_PAGE;
		return;
	}
	*top++ = frame;
	depth++;
}

/* The managed range holding frame, or NULL: the last answer first, then a binary search. */
static const struct range *range_of(u64 frame)
{
	if (frame >= last_range->base && frame < last_range->end)
		return last_range;
	u32 lo = 0, hi = nranges;
	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;
		if (frame < ranges[mid].base)
			hi = mid;
		else if (frame >= ranges[mid].end)
			lo = mid + 1;
		else
			return last_range = &ranges[mid];
	}
	return NULL;
}

#ifdef PMM_DEBUG
/* The rank of frame in r (how many managed frames lie below it): its bit in the bitmap. */
static u64 rank_in(const struct range *r, u64 frame)
{
	return r->rank + (frame - r->base) / PAGE_SIZE;
}

/* The bitmap word and bit of a rank. */
static u64 *bit_word(u64 rank)
{
	return &free_bits[rank / WORD_BITS];
}

static u64 bit_mask(u64 rank)
{
	return 1ULL << (rank % WORD_BITS);
}

/* A managed frame of r is being freed: 0 and its bit set, or -E_DOUBLE (it is free already). */
static int debug_on_free(const struct range *r, u64 frame)
{
	u64 rank = rank_in(r, frame);
	if (*bit_word(rank) & bit_mask(rank))
		return -E_DOUBLE;
	*bit_word(rank) |= bit_mask(rank);
	return 0;
}

/* frame came off the stack (an entry or a page): it must have been free; clear its bit. */
static void debug_on_take(u64 frame)
{
	const struct range *r = range_of(frame);
	if (!r)
		panic("pmm: the stack held 0x%llx, which is not managed RAM: the stack is corrupt", frame);
	u64 rank = rank_in(r, frame);
	if (!(*bit_word(rank) & bit_mask(rank)))
		panic("pmm: the stack held 0x%llx, which is not free: the stack is corrupt", frame);
	*bit_word(rank) &= ~bit_mask(rank);
}
#endif

/* Pop a frame (pages > 0): the top entry, or the top page itself once it holds none. */
static inline __attribute__((always_inline)) u64 pop(void)
{
	u64 frame;
	if (depth == top_floor) {
		pages--;
		top_floor -= PER_PAGE;
		/* The page below is full: entry `depth` would go just past its last one. */
		top = (volatile u64 *)page_va(pages - 1) + PER_PAGE;
		frame = stack_page_unmap(page_va(pages));
	} else {
		depth--;
		frame = *--top;
	}
#ifdef PMM_DEBUG
	debug_on_take(frame);
#endif
	return frame;
}

/* Frames set aside by pmm_reserve: pmm_alloc leaves them, pmm_alloc_reserved takes them. */
static u64 reserved;

/*
 * Fault injection. The mode is checked before the stack, so an injected
 * failure touches nothing but these counters, exactly like running out.
 */
enum inject_mode { INJECT_OFF, INJECT_NTH, INJECT_BUDGET, INJECT_RANDOM };

static struct {
	enum inject_mode mode;
	u64 count;    /* NTH: calls until the failing one (1: the next); BUDGET: successes left */
	u64 rng;      /* RANDOM: xorshift64 state, never 0 */
	u32 permille; /* RANDOM: failures per 1000 calls */
	u64 failures; /* injected since boot */
} inject;

/* Whether this pmm_alloc call is to fail (mode != OFF); advances the mode's state. */
static bool inject_this_call(void)
{
	switch (inject.mode) {
	case INJECT_NTH:
		if (--inject.count > 0)
			return false;
		inject.mode = INJECT_OFF; /* fired once: off again */
		return true;
	case INJECT_BUDGET:
		if (inject.count == 0)
			return true;
		inject.count--;
		return false;
	case INJECT_RANDOM:
		inject.rng ^= inject.rng << 13;
		inject.rng ^= inject.rng >> 7;
		inject.rng ^= inject.rng << 17;
		return inject.rng % 1000 < inject.permille;
	case INJECT_OFF:
		break;
	}
	return false;
}

void pmm_inject_fail_nth(u64 n)
{
	inject.mode = n ? INJECT_NTH : INJECT_OFF;
	inject.count = n;
}

void pmm_inject_budget(u64 n)
{
	inject.mode = INJECT_BUDGET;
	inject.count = n;
}

void pmm_inject_random(u64 seed, u32 permille)
{
	inject.mode = INJECT_RANDOM;
	/* Spread the seed (0 and small seeds too) into a nonzero xorshift state. */
	inject.rng = (seed + 1) * 0x9e3779b97f4a7c15ULL;
	if (inject.rng == 0)
		inject.rng = 1;
	inject.permille = permille > 1000 ? 1000 : permille;
}

void pmm_inject_off(void)
{
	inject.mode = INJECT_OFF;
}

bool pmm_inject_active(void)
{
	return inject.mode != INJECT_OFF;
}

u64 pmm_inject_failures(void)
{
	return inject.failures;
}

/* The decimal number at s into *out; where it ends, or NULL without a digit or on overflow. */
static const char *parse_number(const char *s, u64 *out)
{
	const char *p = s;
	u64 v = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (~0ULL - 9) / 10)
			return NULL;
		v = v * 10 + (u64)(*p - '0');
	}
	*out = v;
	return p == s ? NULL : p;
}

int pmm_inject_parse(const char *spec)
{
	u64 a = 0, b = 0;
	const char *p;
	if (!spec)
		return -E_INVAL;
	if (strncmp(spec, "nth:", 4) == 0) {
		if (!(p = parse_number(spec + 4, &a)) || *p || a == 0)
			return -E_INVAL;
		pmm_inject_fail_nth(a);
	} else if (strncmp(spec, "budget:", 7) == 0) {
		if (!(p = parse_number(spec + 7, &a)) || *p)
			return -E_INVAL;
		pmm_inject_budget(a);
	} else if (strncmp(spec, "random:", 7) == 0) {
		if (!(p = parse_number(spec + 7, &a)) || *p != ':')
			return -E_INVAL;
		if (!(p = parse_number(p + 1, &b)) || *p || b > 1000)
			return -E_INVAL;
		pmm_inject_random(a, (u32)b);
	} else {
		return -E_INVAL;
	}
	return 0;
}

int pmm_alloc(u64 *frame)
{
	bool locked = pmm_lock_take();
	int err = -E_NOMEM;
	if (inject.mode != INJECT_OFF && inject_this_call())
		inject.failures++;
	else if (depth + pages > reserved) { /* reserved frames are only for pmm_alloc_reserved */
		*frame = pop();
		err = 0;
	}
	pmm_lock_drop(locked);
	return err;
}

int pmm_reserve(u64 n)
{
	bool locked = pmm_lock_take();
	int err = n > depth + pages - reserved ? -E_NOMEM : 0;
	if (err == 0)
		reserved += n;
	pmm_lock_drop(locked);
	return err;
}

void pmm_unreserve(u64 n)
{
	bool locked = pmm_lock_take();
	if (n > reserved)
		panic("pmm: unreserve %llu frames, %llu reserved", n, reserved);
	reserved -= n;
	pmm_lock_drop(locked);
}

u64 pmm_alloc_reserved(void)
{
	bool locked = pmm_lock_take();
	if (!reserved || depth + pages < reserved)
		panic("pmm: a reserved frame is missing (%llu reserved)", reserved);
	reserved--;
	u64 frame = pop();
	pmm_lock_drop(locked);
	return frame;
}

/* pmm_free with the lock held. */
static int free_locked(u64 frame)
{
	const struct range *r = IS_ALIGNED(frame, PAGE_SIZE) ? range_of(frame) : NULL;
	if (!r)
		return -E_INVAL; /* the kernel's and the loader's frames are not in any range */
	if (depth + pages == total)
		return -E_DOUBLE; /* everything is free already: a double free, even without PMM_DEBUG */
#ifdef PMM_DEBUG
	int err = debug_on_free(r, frame);
	if (err < 0)
		return err;
#endif
	push(frame);
	return 0;
}

int pmm_free(u64 frame)
{
	bool locked = pmm_lock_take();
	int err = free_locked(frame);
	pmm_lock_drop(locked);
	return err;
}

bool pmm_manages(u64 frame)
{
	return IS_ALIGNED(frame, PAGE_SIZE) && range_of(frame);
}

void pmm_get_stats(struct pmm_stats *out)
{
	bool locked = pmm_lock_take();
	out->total = total;
	out->free = depth + pages;
	out->used = total - out->free;
	out->reserved = reserved;
	pmm_lock_drop(locked);
}

u64 pmm_nr_free(void)
{
	return __atomic_load_n(&depth, __ATOMIC_RELAXED) + __atomic_load_n(&pages, __ATOMIC_RELAXED);
}

void pmm_get_stack_info(struct pmm_stack_info *out)
{
	*out = (struct pmm_stack_info){depth, pages, PER_PAGE, STACK_PAGE0, table_frames,
				       bitmap_frames ? REGION_END - bitmap_frames * PAGE_SIZE : 0,
				       bitmap_frames};
}

const struct memmap *pmm_memmap(void)
{
	return &boot_map;
}

/*
 * The RAM entries of the map, below the physical-address limit (no entry
 * can map a frame above it), become the ranges; returns their frames.
 */
static u64 collect_ranges(void)
{
	u64 frames = 0, limit = paging_phys_limit();
	for (u32 i = 0; i < boot_map.count; i++) {
		const struct memmap_entry *e = &boot_map.entry[i];
		u64 end = e->base + e->size < limit ? e->base + e->size : limit;
		if (e->type != E820_RAM || e->base >= end)
			continue;
		ranges[nranges++] = (struct range){e->base, end, 0};
		frames += (end - e->base) / PAGE_SIZE;
	}
	return frames;
}

/* A frame for the region, before the stack exists: the bottom of the lowest range, counted in *count. */
static u64 bump_take(u64 *count)
{
	for (u32 i = 0; i < nranges; i++) {
		if (ranges[i].base == ranges[i].end)
			continue; /* used up: dropped by rank_ranges */
		u64 frame = ranges[i].base;
		ranges[i].base += PAGE_SIZE;
		(*count)++;
		return frame;
	}
	panic("pmm: no RAM left for the free-frame stack's page tables");
}

/*
 * Make sure the table at `level` translating va exists: a bump frame,
 * installed, then zeroed (no other mapping of it exists yet: there is no
 * PMM, hence no scratch page); build_tables flushes what a walk cached of
 * its old contents meanwhile.
 */
static void ensure_table(int level, u64 va)
{
	u64 parent = *selfmap_entry(level + 1, va);
	if (parent & PTE_P) {
		ASSERT(!pte_is_leaf(parent, level + 1));
		return;
	}
	/* Not NX: an upper-level NX would cover anything later placed under it. */
	pte_install(WINDOW_SELF, level + 1, va, bump_take(&table_frames) | PTE_P | PTE_W);
	/* The new table appears at its self-map address: zero it there. */
	u64 table = ALIGN_DOWN((u64)selfmap_entry(level, va), PAGE_SIZE);
	/*
	 * That page's translation goes through the tables of the levels above,
	 * each linked before it was zeroed: a walk may have cached its leaf
	 * entry, or an entry on its path, from their old contents. Dropped
	 * first (SDM 4.10.4.1: the page's entry and every paging-structure
	 * cache entry; AMD APM Vol. 2 §3.1.7: with EFER.TCE set too, those on
	 * its path), so the zeros go to this frame; the tables above were
	 * zeroed so already.
	 */
	invlpg(table);
	memset((void *)table, 0, PAGE_SIZE);
}

/*
 * Create the PDPT, PDs and PTs that [start, end) needs, top-down so each
 * parent exists. Each was linked before it was zeroed, so a walk may have
 * cached entries of its old contents, for any address under it (SDM
 * 4.10.4): ensure_table drops those on its self-map page's path before it
 * zeroes through it, and one CR3 reload at the end drops the rest before
 * [start, end) is used (boot, one CPU up, CR4.PGE off).
 */
static void build_tables(u64 start, u64 end)
{
	for (int level = LEVEL_PDPT; level >= LEVEL_PT; level--) {
		u64 span = 1ULL << va_shift(level + 1); /* what one table at `level` covers */
		for (u64 va = ALIGN_DOWN(start, span); va < end; va += span)
			ensure_table(level, va);
	}
	load_cr3(read_cr3());
}

/* Drop ranges the bump allocator used up and number the frames in order; returns the total. */
static u64 rank_ranges(void)
{
	u32 kept = 0;
	u64 rank = 0;
	for (u32 i = 0; i < nranges; i++) {
		if (ranges[i].base == ranges[i].end)
			continue;
		ranges[kept] = ranges[i];
		ranges[kept++].rank = rank;
		rank += (ranges[i].end - ranges[i].base) / PAGE_SIZE;
	}
	nranges = kept;
	return rank;
}

/* A walk over the managed frames in rank order. */
struct cursor {
	u32 range;
	u64 frame;
};

/* The cursor at `rank` (<= total: total is the end of the last range). */
static struct cursor cursor_at(u64 rank)
{
	u32 i = 0;
	while (i + 1 < nranges && rank >= ranges[i + 1].rank)
		i++;
	return (struct cursor){i, ranges[i].base + (rank - ranges[i].rank) * PAGE_SIZE};
}

/* The cursor's frame, then step to the next rank. */
static u64 cursor_next(struct cursor *c)
{
	if (c->frame == ranges[c->range].end) {
		c->range++;
		c->frame = ranges[c->range].base;
	}
	u64 frame = c->frame;
	c->frame += PAGE_SIZE;
	return frame;
}

/*
 * Free every managed frame. The push rule alone decides when a frame
 * becomes a page; init hands it the lowest frames then, so the stack pages
 * lie together instead of one in every PER_PAGE + 1 frames (each would sit
 * in its own 2 MiB of RAM, and a hypervisor backing guest RAM with huge
 * pages would make all of it resident).
 */
static void push_all(void)
{
	u64 init_pages = (total + PER_PAGE) / (PER_PAGE + 1); /* ceil: one page per PER_PAGE + 1 frames */
	struct cursor page = cursor_at(0), entry = cursor_at(init_pages);
	for (u64 i = 0; i < total; i++)
		push(cursor_next(depth == pages * PER_PAGE ? &page : &entry));
	ASSERT(pages == init_pages && depth == total - init_pages);
}

#ifdef PMM_DEBUG
/* Bits one bitmap page holds. */
#define BITS_PER_PAGE (PAGE_SIZE * 8)

/* Pages of a bitmap with a bit for each of `frames` frames. */
static u64 bitmap_pages(u64 frames)
{
	return ALIGN_UP(frames, BITS_PER_PAGE) / BITS_PER_PAGE;
}

/* Map n zeroed bump frames at the top end of the region (tables too) as the bitmap. */
static void bitmap_build(u64 n)
{
	u64 va = REGION_END - n * PAGE_SIZE;
	build_tables(va, REGION_END);
	for (u64 i = 0; i < n; i++)
		region_map(va + i * PAGE_SIZE, bump_take(&bitmap_frames));
	free_bits = (u64 *)va;
	memset(free_bits, 0, n * PAGE_SIZE);
}

/* Init freed every managed frame: set the bits of ranks [0, total). */
static void bitmap_fill(void)
{
	memset(free_bits, 0xff, total / WORD_BITS * sizeof(u64));
	if (total % WORD_BITS)
		*bit_word(total) = bit_mask(total) - 1;
}
#endif

void pmm_init(void)
{
	memmap_from_boot(&boot_map);
	memmap_print(&boot_map);
	u64 frames = collect_ranges();
	if (frames == 0)
		panic("pmm: the memory map has no usable RAM");
	leaf_flags = PTE_P | PTE_W | paging_nx_bit();
	/* Free frames F = entries + pages and pages <= entries / PER_PAGE + 1: this covers any F <= frames. */
	max_pages = frames / PER_PAGE + 2;
	u64 region_pages = max_pages;
#ifdef PMM_DEBUG
	/* A bit for every frame there is now: the ranks (below total <= frames) all have one. */
	u64 bits_pages = bitmap_pages(frames);
	region_pages += bits_pages;
#endif
	if (region_pages > REGION_PAGES)
		panic("pmm: %llu frames need more pages than one PML4 slot holds", frames);
	build_tables(STACK_PAGE0, STACK_PAGE0 + max_pages * PAGE_SIZE);
#ifdef PMM_DEBUG
	bitmap_build(bits_pages);
#endif
	total = rank_ranges();
	last_range = &ranges[0]; /* total > 0: there is at least one range */
	top_floor = 0 - PER_PAGE; /* no page yet: the first push makes page 0 */
	push_all();
#ifdef PMM_DEBUG
	bitmap_fill();
#endif
	kprintf("# pmm: %llu frames (%llu MiB) free in %u ranges, stack uses %llu pages\n", total,
		total * PAGE_SIZE >> 20, nranges, pages);
	kprintf("# pmm: the stack's page tables took %llu frames, the double-free bitmap %llu; "
		"%llu entries per stack page\n",
		table_frames, bitmap_frames, (u64)PER_PAGE);
}
