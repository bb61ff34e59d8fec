/*
 * The physical frame allocator, observed from outside: counters, LIFO
 * order, the stack's pages as the self-map shows them, exhaustion (on small
 * machines), and the frees it must refuse. Every test gives back what it took, in reverse
 * order, so the allocator ends as it started.
 */
#include <bootinfo.h>
#include <cmdline.h>
#include <cpu.h>
#include <image.h>
#include <ktest.h>
#include <layout.h>
#include <memmap.h>
#include <paging.h>
#include <pmm.h>
#include <printf.h>
#include <string.h>
#include <vmm.h>

#include "test_vmm_util.h"

static struct pmm_stats stats_before, stats_now;
static struct pmm_stack_info info_before, info_now;

/* Snapshot counters and stack shape into the `before` pair. */
static void snapshot(void)
{
	pmm_get_stats(&stats_before);
	pmm_get_stack_info(&info_before);
}

/* True when counters and stack shape are what snapshot() saw. */
static bool unchanged(void)
{
	pmm_get_stats(&stats_now);
	pmm_get_stack_info(&info_now);
	return memcmp(&stats_now, &stats_before, sizeof(stats_now)) == 0 &&
	       info_now.depth == info_before.depth && info_now.pages == info_before.pages;
}

/* The entry of the boot map holding addr, or NULL. */
static const struct memmap_entry *map_entry_at(u64 addr)
{
	const struct memmap *map = pmm_memmap();
	for (u32 i = 0; i < map->count; i++)
		if (map->entry[i].base <= addr && addr - map->entry[i].base < map->entry[i].size)
			return &map->entry[i];
	return NULL;
}

static bool in_free_ram(u64 frame)
{
	const struct memmap_entry *e = map_entry_at(frame);
	return e != NULL && e->type == E820_RAM;
}

/* Virtual address of stack page k. */
static u64 stack_page_va(const struct pmm_stack_info *info, u64 k)
{
	return info->page0 + k * PAGE_SIZE;
}

KTEST(pmm, counters_match_the_map)
{
	struct pmm_stats s;
	struct pmm_stack_info info;
	pmm_get_stats(&s);
	pmm_get_stack_info(&info);
	KASSERT(s.total > 0);
	KASSERT_EQ(s.free + s.used, s.total);
	KASSERT_EQ(s.free, info.depth + info.pages);
	/* Every frame of the map's free RAM is managed, except the region's own tables and bitmap. */
	u64 ram = 0;
	const struct memmap *map = pmm_memmap();
	for (u32 i = 0; i < map->count; i++)
		if (map->entry[i].type == E820_RAM)
			ram += map->entry[i].size / PAGE_SIZE;
	KASSERT_EQ(s.total + info.table_frames + info.bitmap_frames, ram);
	KASSERT(info.table_frames >= 3); /* at least a PDPT, a PD and a PT */
#ifdef PMM_DEBUG
	/* A bit for each frame of RAM, and not a page more. */
	const u64 bits_per_page = PAGE_SIZE * 8;
	KASSERT(info.bitmap_frames * bits_per_page >= s.total);
	KASSERT((info.bitmap_frames - 1) * bits_per_page < ram);
#else
	KASSERT_EQ(info.bitmap_frames, 0);
#endif
}

KTEST(pmm, alloc_free_round_trip)
{
	snapshot();
	u64 f = 0;
	KASSERT_EQ(pmm_alloc(&f), 0);
	KASSERT(IS_ALIGNED(f, PAGE_SIZE));
	KASSERT(in_free_ram(f));
	pmm_get_stats(&stats_now);
	KASSERT_EQ(stats_now.free, stats_before.free - 1);
	KASSERT_EQ(stats_now.used, stats_before.used + 1);
	KASSERT_EQ(stats_now.total, stats_before.total);
	KASSERT_EQ(pmm_free(f), 0);
	KASSERT(unchanged());
}

KTEST(pmm, lifo_order)
{
	snapshot();
	u64 a, b, c, x;
	KASSERT_EQ(pmm_alloc(&a), 0);
	KASSERT_EQ(pmm_alloc(&b), 0);
	KASSERT_EQ(pmm_alloc(&c), 0);
	KASSERT(a != b && b != c && a != c);
	/* Freed in the order a, b, c: they come back c, b, a. */
	KASSERT_EQ(pmm_free(a), 0);
	KASSERT_EQ(pmm_free(b), 0);
	KASSERT_EQ(pmm_free(c), 0);
	KASSERT_EQ(pmm_alloc(&x), 0);
	KASSERT_EQ(x, c);
	KASSERT_EQ(pmm_alloc(&x), 0);
	KASSERT_EQ(x, b);
	KASSERT_EQ(pmm_alloc(&x), 0);
	KASSERT_EQ(x, a);
	KASSERT_EQ(pmm_free(c), 0);
	KASSERT_EQ(pmm_free(b), 0);
	KASSERT_EQ(pmm_free(a), 0);
	KASSERT(unchanged());
}

KTEST(pmm, stack_pages_are_mapped_nx_and_nothing_beyond)
{
	struct pmm_stack_info info;
	pmm_get_stack_info(&info);
	KASSERT(info.pages > 0);
	u64 want = PTE_P | PTE_W | (cpu_nx_enabled() ? PTE_NX : 0);
	int level;
	for (u64 k = 0; k < info.pages; k++) {
		u64 pte = paging_walk(stack_page_va(&info, k), &level);
		KASSERT_EQ(level, LEVEL_PT);
		KASSERT_EQ(pte & (PTE_P | PTE_W | PTE_U | PTE_NX), want);
		KASSERT(in_free_ram(pte_frame(pte)));
	}
	KASSERT_EQ(paging_walk(stack_page_va(&info, info.pages), &level), 0);
}

KTEST(pmm, bitmap_is_mapped_nx_at_the_top_of_the_region)
{
#ifndef PMM_DEBUG
	KTEST_SKIP("built without PMM_DEBUG");
#else
	struct pmm_stack_info info;
	pmm_get_stack_info(&info);
	KASSERT(info.bitmap_frames > 0);
	KASSERT_EQ(info.bitmap + info.bitmap_frames * PAGE_SIZE, PMM_STACK_BASE + PML4_SLOT_SIZE);
	KASSERT(info.bitmap > stack_page_va(&info, info.pages)); /* above every stack page */
	u64 want = PTE_P | PTE_W | (cpu_nx_enabled() ? PTE_NX : 0);
	int level;
	for (u64 k = 0; k < info.bitmap_frames; k++) {
		u64 pte = paging_walk(info.bitmap + k * PAGE_SIZE, &level);
		KASSERT_EQ(level, LEVEL_PT);
		KASSERT_EQ(pte & (PTE_P | PTE_W | PTE_U | PTE_NX), want);
		KASSERT(in_free_ram(pte_frame(pte)));
		KASSERT(!pmm_manages(pte_frame(pte))); /* the allocator's own, never handed out */
		KASSERT_EQ(pmm_free(pte_frame(pte)), -E_INVAL);
	}
	KASSERT_EQ(paging_walk(info.bitmap - PAGE_SIZE, &level), 0);
#endif
}

/* Frames taken off the top page so that it empties (at most one page's worth). */
static u64 held[PAGE_SIZE / sizeof(u64)];
static u64 nheld;

/* Allocate until the top stack page holds no entry; returns 0 or an error. */
static int empty_top_page(void)
{
	struct pmm_stack_info info;
	pmm_get_stack_info(&info);
	nheld = 0;
	u64 on_top = info.depth - (info.pages - 1) * info.per_page;
	while (nheld < on_top) {
		int err = pmm_alloc(&held[nheld]);
		if (err < 0)
			return err;
		nheld++;
	}
	return 0;
}

/* Give the held frames back, last taken first. Returns how many frees failed. */
static u32 give_back_held(void)
{
	u32 failed = 0;
	while (nheld > 0)
		failed += pmm_free(held[--nheld]) != 0;
	return failed;
}

KTEST(pmm, emptied_stack_page_is_the_frame_returned)
{
	snapshot();
	KASSERT_EQ(empty_top_page(), 0);
	struct pmm_stack_info info;
	pmm_get_stack_info(&info);
	KASSERT_EQ(info.depth, (info.pages - 1) * info.per_page);
	u64 top_va = stack_page_va(&info, info.pages - 1);
	int level;
	u64 pte = paging_walk(top_va, &level);
	KASSERT(pte & PTE_P);
	u64 page = 0;
	KASSERT_EQ(pmm_alloc(&page), 0);
	KASSERT_EQ(page, pte_frame(pte)); /* the page itself, not an entry */
	KASSERT_EQ(paging_walk(top_va, &level), 0);
	KASSERT_EQ(level, LEVEL_PT); /* its PT stays: only the PTE is cleared */
	pmm_get_stack_info(&info_now);
	KASSERT_EQ(info_now.pages, info.pages - 1);
	KASSERT_EQ(info_now.depth, info.depth);
	/* Freed while every page is full, it becomes the top page again. */
	KASSERT_EQ(pmm_free(page), 0);
	KASSERT_EQ(pte_frame(paging_walk(top_va, &level)), page);
	KASSERT_EQ(give_back_held(), 0);
	KASSERT(unchanged());
}

KTEST(pmm, freed_frame_becomes_stack_page)
{
	snapshot();
	u64 h = 0, page = 0, again = 0;
	KASSERT_EQ(pmm_alloc(&h), 0); /* a frame of ours to free later */
	KASSERT_EQ(empty_top_page(), 0);
	KASSERT_EQ(pmm_alloc(&page), 0); /* the emptied page: now every page is full */
	struct pmm_stack_info info;
	pmm_get_stack_info(&info);
	KASSERT_EQ(info.depth, info.pages * info.per_page);
	u64 next_va = stack_page_va(&info, info.pages);
	int level;
	KASSERT_EQ(paging_walk(next_va, &level), 0);
	KASSERT_EQ(pmm_free(h), 0);
	u64 pte = paging_walk(next_va, &level);
	KASSERT_EQ(pte_frame(pte), h);
	KASSERT_EQ(pte & (PTE_P | PTE_W | PTE_U | PTE_NX),
		   PTE_P | PTE_W | (cpu_nx_enabled() ? PTE_NX : 0));
	pmm_get_stack_info(&info_now);
	KASSERT_EQ(info_now.pages, info.pages + 1);
	KASSERT_EQ(info_now.depth, info.depth);
#ifdef PMM_DEBUG
	KASSERT_EQ(pmm_free(h), -E_DOUBLE); /* a stack page is a free frame */
#endif
	KASSERT_EQ(pmm_alloc(&again), 0);
	KASSERT_EQ(again, h);
	KASSERT_EQ(pmm_free(page), 0);
	KASSERT_EQ(give_back_held(), 0);
	KASSERT_EQ(pmm_free(h), 0);
	KASSERT(unchanged());
}

/*
 * The exhaustion test's record of what it took, without allocating: frames
 * come off the stack mostly in descending runs (init pushed them in
 * ascending order), so runs of consecutive frames are stored, entries and
 * stack pages apart (each list is then mostly one run per RAM range).
 */
#define RUNS_MAX 1024

struct run {
	u64 first; /* frames first, first - 4K, ..., count of them */
	u64 count;
};

struct runs {
	u32 n;
	struct run run[RUNS_MAX];
};

static struct runs entry_runs, page_runs;

/* Room to record one more frame whatever it is. */
static bool runs_room(const struct runs *rs)
{
	return rs->n < RUNS_MAX;
}

static void runs_add(struct runs *rs, u64 frame)
{
	struct run *last = rs->n ? &rs->run[rs->n - 1] : NULL;
	if (last && last->first - last->count * PAGE_SIZE == frame) {
		last->count++;
		return;
	}
	rs->run[rs->n++] = (struct run){frame, 1};
}

/* Remove and return the frame recorded last. */
static u64 runs_pop(struct runs *rs)
{
	struct run *last = &rs->run[rs->n - 1];
	u64 frame = last->first - (last->count - 1) * PAGE_SIZE;
	if (--last->count == 0)
		rs->n--;
	return frame;
}

/* A line every EXHAUST_LOG_FRAMES (1 GiB) taken or given back: seconds each under TCG. */
#define EXHAUST_LOG_FRAMES (1ULL << 18)

/* Take every frame, recording it; returns how many, or stops early when a list is full. */
static u64 take_everything(bool *recorded_all)
{
	u64 taken = 0;
	struct pmm_stack_info info;
	for (;;) {
		pmm_get_stack_info(&info);
		bool is_page = info.pages > 0 && info.depth == (info.pages - 1) * info.per_page;
		struct runs *rs = is_page ? &page_runs : &entry_runs;
		*recorded_all = runs_room(rs);
		u64 f;
		if (!*recorded_all || pmm_alloc(&f) != 0)
			return taken;
		runs_add(rs, f);
		if (++taken % EXHAUST_LOG_FRAMES == 0)
			ktest_log("%llu frames taken so far", taken);
	}
}

/* Free all recorded frames in reverse order of taking; returns how many frees failed. */
static u64 give_everything_back(void)
{
	u64 failed = 0, given = 0;
	struct pmm_stack_info info;
	while (entry_runs.n + page_runs.n > 0) {
		pmm_get_stack_info(&info);
		/* The state says what the matching alloc took: a page exactly when all pages are full. */
		struct runs *rs = info.depth == info.pages * info.per_page ? &page_runs : &entry_runs;
		if (rs->n == 0) { /* the stack disagrees with the record: count it, go on */
			failed++;
			rs = rs == &page_runs ? &entry_runs : &page_runs;
		}
		failed += pmm_free(runs_pop(rs)) != 0;
		if (++given % EXHAUST_LOG_FRAMES == 0)
			ktest_log("%llu frames given back so far", given);
	}
	return failed;
}

/*
 * Exhausting RAM costs time in proportion to it (seconds of silence at
 * 4 GiB under TCG), so it runs for real only on small machines (--config
 * mem-32m, or pmm.exhaust on the command line); elsewhere the
 * out-of-memory paths are reached by fault injection (test_inject.c and the
 * VMM's tests).
 */
#define EXHAUST_MAX_BYTES (64ULL << 20)

KTEST(pmm, exhaustion_and_full_restore)
{
	snapshot();
	if (stats_before.total > EXHAUST_MAX_BYTES / PAGE_SIZE && !kernel_options.pmm_exhaust) {
		static char reason[96];
		ksnprintf(reason, sizeof(reason),
			  "exhausts RAM only at <= %llu MiB (mem-32m) or with pmm.exhaust, "
			  "not %llu MiB",
			  EXHAUST_MAX_BYTES >> 20, stats_before.total * PAGE_SIZE >> 20);
		KTEST_SKIP(reason);
	}
	entry_runs.n = page_runs.n = 0;
	bool recorded_all = false;
	u64 taken = take_everything(&recorded_all);
	pmm_get_stats(&stats_now);
	u64 f = 0;
	/* Only when everything is recorded may more allocs be tried: a success would be lost. */
	int err = recorded_all ? pmm_alloc(&f) : 0;
	int err_again = recorded_all ? pmm_alloc(&f) : 0;
	ktest_log("took %llu frames, recorded as %u entry runs and %u page runs", taken,
		  entry_runs.n, page_runs.n);
	u64 failed = give_everything_back();
	KASSERT(recorded_all); /* else the stack was too scattered for RUNS_MAX */
	KASSERT_EQ(taken, stats_before.free);
	KASSERT_EQ(stats_now.free, 0);
	KASSERT_EQ(stats_now.used, stats_before.total);
	KASSERT_EQ(err, -E_NOMEM);
	KASSERT_EQ(err_again, -E_NOMEM); /* exhaustion changed nothing */
	KASSERT_EQ(failed, 0);
	KASSERT(unchanged());
}

KTEST(pmm, rejects_bad_frames)
{
	snapshot();
	u64 f = 0;
	KASSERT_EQ(pmm_alloc(&f), 0);
	pmm_get_stats(&stats_before);
	pmm_get_stack_info(&info_before);
	KASSERT_EQ(pmm_free(f + 8), -E_INVAL);             /* misaligned */
	KASSERT_EQ(pmm_free(f + PAGE_SIZE / 2), -E_INVAL); /* misaligned */
	KASSERT_EQ(pmm_free(0), -E_INVAL);                 /* first MiB */
	KASSERT_EQ(pmm_free(0x9f000), -E_INVAL);
	KASSERT_EQ(pmm_free(0xff000), -E_INVAL);
	KASSERT_EQ(pmm_free((u64)__boot_start), -E_INVAL); /* kernel image */
	KASSERT_EQ(pmm_free((u64)__text_start - KERNEL_VIRT_OFFSET), -E_INVAL);
	KASSERT_EQ(pmm_free((u64)__stack_bottom - KERNEL_VIRT_OFFSET), -E_INVAL);
	KASSERT_EQ(pmm_free(ALIGN_DOWN((u64)__image_end - KERNEL_VIRT_OFFSET - 1, PAGE_SIZE)),
		   -E_INVAL);
	KASSERT_EQ(pmm_free(ALIGN_DOWN(boot_info.memmap_phys, PAGE_SIZE)), -E_INVAL); /* boot data */
	KASSERT_EQ(pmm_free(0xfee00000), -E_INVAL);     /* the local APIC, not RAM */
	KASSERT_EQ(pmm_free(1ULL << 50), -E_INVAL);     /* beyond all RAM */
	KASSERT_EQ(pmm_free(PTE_ADDR_MASK), -E_INVAL);  /* the last addressable frame */
	/* The stack's own page tables are not the allocator's to hand out. */
	KASSERT_EQ(pmm_free(pte_frame(*selfmap_entry(LEVEL_PML4, PMM_STACK_BASE))), -E_INVAL);
	KASSERT_EQ(pmm_free(pte_frame(*selfmap_entry(LEVEL_PD, PMM_STACK_BASE))), -E_INVAL);
	KASSERT(unchanged());
	KASSERT_EQ(pmm_free(f), 0);
}

KTEST(pmm, rejects_double_free)
{
#ifndef PMM_DEBUG
	KTEST_SKIP("built without PMM_DEBUG");
#else
	snapshot();
	u64 a = 0, b = 0;
	KASSERT_EQ(pmm_alloc(&a), 0);
	KASSERT_EQ(pmm_alloc(&b), 0);
	/* Taken and given back, out of order: each a second time. */
	KASSERT_EQ(pmm_free(a), 0);
	KASSERT_EQ(pmm_free(a), -E_DOUBLE);
	KASSERT_EQ(pmm_free(b), 0);
	KASSERT_EQ(pmm_free(b), -E_DOUBLE);
	KASSERT(unchanged());
	/* Frames that have been free since init: deep in the stack, on top, and stack pages. */
	struct pmm_stack_info info;
	pmm_get_stack_info(&info);
	volatile u64 *entries = (volatile u64 *)info.page0;
	int level;
	KASSERT_EQ(pmm_free(entries[0]), -E_DOUBLE);
	KASSERT_EQ(pmm_free(entries[1]), -E_DOUBLE);
	KASSERT_EQ(pmm_free(pte_frame(paging_walk(info.page0, &level))), -E_DOUBLE);
	u64 top_page = stack_page_va(&info, info.pages - 1);
	KASSERT_EQ(pmm_free(pte_frame(paging_walk(top_page, &level))), -E_DOUBLE);
	KASSERT(unchanged());
	/* Free, taken and freed again: the same frame twice more. */
	KASSERT_EQ(pmm_alloc(&a), 0);
	KASSERT_EQ(pmm_free(a), 0);
	KASSERT_EQ(pmm_free(a), -E_DOUBLE);
	KASSERT(unchanged());
#endif
}

KTEST(pmm, use_after_free_does_not_hide_a_double_free)
{
#ifndef PMM_DEBUG
	KTEST_SKIP("built without PMM_DEBUG");
#else
	const u64 UAF_VA = INDICES_VA(TSLOT_PMM, 0, 0, 0); /* a user-half slot of this file's own */
	snapshot();
	u64 a = 0, spare = 0, again = 0;
	KASSERT_EQ(pmm_alloc(&a), 0);
	/* A mapping that outlives the free: the use-after-free writes through it. */
	KASSERT_EQ(map_region(UAF_VA, a, 1, VMM_WRITE), 0);
	struct pmm_stack_info info;
	pmm_get_stack_info(&info);
	/* a must go back as an entry (a stack page would hold the list): take one if it would not. */
	bool took_spare = info.depth == info.pages * info.per_page;
	if (took_spare)
		KASSERT_EQ(pmm_alloc(&spare), 0);
	pmm_get_stats(&stats_now);
	u64 free_before = stats_now.free;
	KASSERT_EQ(pmm_free(a), 0);
	/* Every byte of the free frame overwritten, its tail too: no record lives in it. */
	volatile u64 *p = (volatile u64 *)UAF_VA;
	for (u64 i = 0; i < PAGE_SIZE / sizeof(u64); i++)
		p[i] = 0x5a5a5a5a5a5a5a5aULL ^ i;
	int err = pmm_free(a);
	pmm_get_stats(&stats_now);
	int err_alloc = pmm_alloc(&again);
	bool intact = true; /* the refused free wrote nothing into the frame either */
	for (u64 i = 0; i < PAGE_SIZE / sizeof(u64); i++)
		intact &= p[i] == (0x5a5a5a5a5a5a5a5aULL ^ i);
	KASSERT_EQ(unmap_region(UAF_VA, 1, 0), 0);
	if (err_alloc == 0)
		KASSERT_EQ(pmm_free(again), 0);
	if (took_spare)
		KASSERT_EQ(pmm_free(spare), 0);
	KASSERT_EQ(err, -E_DOUBLE);
	KASSERT_EQ(stats_now.free, free_before + 1); /* the refused free changed nothing */
	KASSERT_EQ(err_alloc, 0);
	KASSERT_EQ(again, a); /* still on top of the stack */
	KASSERT(intact);
	KASSERT(unchanged());
#endif
}
