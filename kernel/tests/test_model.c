/*
 * The paging API against a reference model: random map, unmap, set-flags,
 * large and huge pages, bad arguments and copy/drop, each checked after the
 * step against an array of expected entries for a window of 4096 pages
 * spread over different PTs, PDs, PDPTs and PML4 entries. After every step
 * the PMM's free count must equal the start minus exactly the page tables
 * the model's mappings need, so a table not released (or released too
 * early) is caught at the step that caused it.
 *
 * The seed is printed (`# model seed=N`) and can be set with `model.seed=N`
 * on the kernel command line to replay a failure; `model.ops=N` sets the
 * number of operations (and a tenth of it for the injection run below).
 * The default, 100,000 operations, takes about 0.4 s of guest time under
 * TCG: far more than the ~100 ms a kernel test should take, because a
 * randomized model needs that many steps to reach the rare states (a table
 * emptying as a large page is refused, a copy of a window with large pages)
 * often enough.
 *
 * A second run replays the start of the same sequence with the PMM's fault
 * injection (pmm.h): each operation (and each copy) is first run with its
 * first allocation failing, then its second, and so on, until it runs
 * without reaching the failing one. Every failed attempt must return
 * -E_NOMEM with the model's entries unchanged and not one frame more or
 * less; the last attempt is the step as the plain run makes it.
 */
#include "test_vmm_util.h"
#include <cmdline.h>
#include <cpu.h>
#include <ktest.h>
#include <panic.h>
#include <pmm.h>
#include <printf.h>
#include <vmm.h>

#define DEFAULT_SEED 0x0b0e05ULL
#define DEFAULT_OPS 100000ULL
/* Window: 4 clusters of 2 large-page slots (2 x 512 pages each). */
#define CLUSTERS 4
#define SLOTS (2 * CLUSTERS)
#define SLOT_PAGES TABLE_ENTRIES
#define CLUSTER_PAGES (2 * SLOT_PAGES)
/* Fake physical memory the model maps (never accessed): 4..8 GiB. */
#define FAKE_BASE 0x100000000ULL
#define FAKE_SIZE 0x100000000ULL
/* The entry bits the model predicts (A and D stay clear: nothing is accessed). */
#define MODEL_MASK (PTE_ADDR_MASK | PTE_P | PTE_W | PTE_U | PTE_NX | PTE_PS | PTE_G | PTE_A | PTE_D)
/* One op in this many copies the space, checks the copy from inside it, drops it. */
#define COPY_ONE_IN 2000
/* A full check of the window every this many ops. */
#define SWEEP_EVERY 4096
#define PROGRESS_EVERY 10000
/* The injection run: operations (a fraction of model.ops), copies, progress lines. */
#define INJECT_OPS_DIVISOR 10
#define INJECT_COPY_ONE_IN 1000
#define INJECT_PROGRESS_EVERY 1000
/* More allocations than any one operation makes: a bound on each campaign. */
#define MAX_SITES 64

/* Cluster bases: two share a PD, one has its own PD, one its own PDPT (PML4 entry). */
static const u64 cluster_va[CLUSTERS] = {
	INDICES_VA(TSLOT_MODEL, 0, 0, 0),
	INDICES_VA(TSLOT_MODEL, 0, 7, 0),
	INDICES_VA(TSLOT_MODEL, 3, 510, 0),
	INDICES_VA(TSLOT_MODEL + 1, 0, 0, 0),
};
/* A 1 GiB slot for huge pages, in a PML4 entry of its own. */
static const u64 HUGE_VA = INDICES_VA(TSLOT_MODEL + 2, 0, 0, 0);

/* The expected state. */
static struct {
	u64 pte[SLOTS][SLOT_PAGES]; /* 4 KiB leaves (masked), 0 when unmapped */
	u64 large[SLOTS];           /* 2 MiB leaves, 0 when not */
	u64 mapped[SLOTS];          /* 4 KiB leaves present in each slot (its PT exists iff > 0) */
	u64 huge;                   /* the 1 GiB leaf, 0 when not */
} m;

/*
 * The model's changes during one step (the injection run), oldest first,
 * to undo when an injected failure undoes the step: each word written and
 * what it held. An unmap of a whole cluster writes the most: 3 per page.
 */
#define UNDO_MAX (3 * CLUSTER_PAGES + 8)
static struct {
	u64 *word[UNDO_MAX];
	u64 old[UNDO_MAX];
	u64 n;
	bool on;
} undo;

/* Write v into a word of the model, remembering what it held while undo is on. */
static void model_set(u64 *word, u64 v)
{
	if (undo.on) {
		if (undo.n == UNDO_MAX)
			panic("model: a step changed more than %llu model words", (u64)UNDO_MAX);
		undo.word[undo.n] = word;
		undo.old[undo.n++] = *word;
	}
	*word = v;
}

/* Put back every word the step changed, newest first, and start an empty log. */
static void model_undo(void)
{
	while (undo.n > 0) {
		undo.n--;
		*undo.word[undo.n] = undo.old[undo.n];
	}
}

static u64 rng_state;

/* xorshift64*: small, and the same sequence for the same seed everywhere. */
static u64 rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

/* A random number in [0, n). */
static u64 rnd_below(u64 n)
{
	return rnd() % n;
}

/* Parse a decimal or 0x-hex number; def if s is NULL or malformed. */
static u64 parse_u64(const char *s, u64 def)
{
	if (!s || !*s)
		return def;
	u64 v = 0, base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (; *s; s++) {
		u64 d = *s >= '0' && *s <= '9' ? (u64)(*s - '0')
			: *s >= 'a' && *s <= 'f' ? (u64)(*s - 'a' + 10)
			: *s >= 'A' && *s <= 'F' ? (u64)(*s - 'A' + 10) : 99;
		if (d >= base)
			return def;
		v = v * base + d;
	}
	return v;
}

static u64 slot_va(int slot)
{
	return cluster_va[slot / 2] + (u64)(slot % 2) * LARGE_PAGE_SIZE;
}

/* Address of window page p (0 .. SLOTS * SLOT_PAGES - 1). */
static u64 page_va(u64 p)
{
	return slot_va((int)(p / SLOT_PAGES)) + (p % SLOT_PAGES) * PAGE_SIZE;
}

/* The leaf the model expects for page p. */
static u64 expected_leaf(u64 p)
{
	u64 slot = p / SLOT_PAGES;
	return m.large[slot] ? m.large[slot] : m.pte[slot][p % SLOT_PAGES];
}

/* The entry bits for flags, as the API documents them. */
static u64 model_bits(u32 flags, bool large)
{
	u64 b = PTE_P | ((flags & VMM_WRITE) ? PTE_W : 0) | ((flags & VMM_USER) ? PTE_U : 0);
	b |= (flags & VMM_EXEC) ? 0 : nx_bit();
	return b | (large ? PTE_PS : 0);
}

/* Random mapping flags for the user half. */
static u32 rnd_flags(void)
{
	return (u32)rnd_below(8) & (VMM_WRITE | VMM_USER | VMM_EXEC);
}

/* Page tables the model's mappings need: PTs, PDs, PDPTs. */
static u64 expected_tables(void)
{
	bool pt[SLOTS], pd_used[3] = {false}, pdpt_used[3] = {false};
	u64 n = 0;
	for (int s = 0; s < SLOTS; s++) {
		pt[s] = m.mapped[s] != 0;
		n += pt[s];
		/* Slots 0..3 share a PD (clusters 0 and 1), 4..5 have one, 6..7 another. */
		int pd = s < 4 ? 0 : s < 6 ? 1 : 2;
		pd_used[pd] |= pt[s] || m.large[s];
	}
	n += pd_used[0] + pd_used[1] + pd_used[2];
	pdpt_used[0] = pd_used[0] || pd_used[1];
	pdpt_used[1] = pd_used[2];
	pdpt_used[2] = m.huge != 0;
	return n + pdpt_used[0] + pdpt_used[1] + pdpt_used[2];
}

/* An operation's parameters, for the failure message. */
struct op {
	const char *kind;
	u64 page, count;
	u32 flags;
	int want, got;
};

/* The first page of [p, p+n) the model refuses to map 4 KiB pages at, as an error. */
static int model_map4k(u64 p, u64 n, u32 flags, u64 phys)
{
	for (u64 i = 0; i < n; i++) {
		if (m.large[(p + i) / SLOT_PAGES])
			return -E_HUGE;
		if (m.pte[(p + i) / SLOT_PAGES][(p + i) % SLOT_PAGES])
			return -E_EXIST;
	}
	for (u64 i = 0; i < n; i++) {
		model_set(&m.pte[(p + i) / SLOT_PAGES][(p + i) % SLOT_PAGES],
			  (phys + i * PAGE_SIZE) | model_bits(flags, false));
		model_set(&m.mapped[(p + i) / SLOT_PAGES], m.mapped[(p + i) / SLOT_PAGES] + 1);
	}
	return 0;
}

/* Map large pages at slots [s, s+n). */
static int model_map2m(int s, int n, u32 flags, u64 phys)
{
	for (int i = s; i < s + n; i++)
		if (m.large[i] || m.mapped[i])
			return -E_EXIST; /* a large page, or a PT, is there */
	for (int i = s; i < s + n; i++)
		model_set(&m.large[i],
			  (phys + (u64)(i - s) * LARGE_PAGE_SIZE) | model_bits(flags, true));
	return 0;
}

/*
 * Walk [p, p+n) in order as unmap and set_page_flags check it: -E_HUGE at a
 * large page only partly inside, -E_NOTMAPPED (if need_mapped) at a hole.
 */
static int model_check_range(u64 p, u64 n, bool need_mapped)
{
	for (u64 i = 0; i < n;) {
		u64 slot = (p + i) / SLOT_PAGES, idx = (p + i) % SLOT_PAGES;
		if (m.large[slot]) {
			if (idx != 0 || n - i < SLOT_PAGES)
				return -E_HUGE;
			i += SLOT_PAGES;
			continue;
		}
		if (need_mapped && !m.pte[slot][idx])
			return -E_NOTMAPPED;
		i++;
	}
	return 0;
}

static int model_unmap(u64 p, u64 n)
{
	int err = model_check_range(p, n, false);
	if (err)
		return err;
	for (u64 i = 0; i < n; i++) {
		u64 slot = (p + i) / SLOT_PAGES, *e = &m.pte[slot][(p + i) % SLOT_PAGES];
		model_set(&m.large[slot], 0);
		model_set(&m.mapped[slot], m.mapped[slot] - (*e != 0));
		model_set(e, 0);
	}
	return 0;
}

static int model_set_flags(u64 p, u64 n, u32 flags)
{
	int err = model_check_range(p, n, true);
	if (err)
		return err;
	for (u64 i = 0; i < n; i++) {
		u64 slot = (p + i) / SLOT_PAGES;
		u64 *e = m.large[slot] ? &m.large[slot] : &m.pte[slot][(p + i) % SLOT_PAGES];
		model_set(e, pte_frame(*e) | model_bits(flags, m.large[slot] != 0));
	}
	return 0;
}

/*
 * The last slot a check walked, so the pages after it in the same slot cost
 * one read each: the levels above a slot's PT are the same for all its
 * pages. Valid for one check only (the tables do not change during it).
 */
struct walk_cursor {
	u64 slot;  /* SLOTS: none yet */
	int level; /* where the slot's walk ended */
	u64 entry; /* what it returned */
};

#define WALK_CURSOR_NONE ((struct walk_cursor){.slot = SLOTS})

/*
 * The leaf entry of window page p in the current space, exactly as
 * leaf_of (a full walk) gives it: the slot's walk, then, where the walk
 * reached the PT, the page's own PTE, which is what the walk reads last.
 */
static u64 window_leaf(u64 p, struct walk_cursor *c)
{
	u64 slot = p / SLOT_PAGES, va = page_va(p);
	if (c->slot != slot) {
		c->slot = slot;
		c->entry = leaf_of(va, &c->level);
		return c->entry;
	}
	return c->level == LEVEL_PT ? *selfmap_pte(va) : c->entry;
}

/* True when page p is what the model says, in the current space. */
static bool page_ok(u64 p, struct walk_cursor *c)
{
	return (window_leaf(p, c) & MODEL_MASK) == expected_leaf(p);
}

/* The first window page that differs from the model, or -1. */
static i64 sweep(void)
{
	struct walk_cursor c = WALK_CURSOR_NONE;
	for (u64 p = 0; p < SLOTS * SLOT_PAGES; p++)
		if (!page_ok(p, &c))
			return (i64)p;
	if (((leaf_of(HUGE_VA, NULL)) & MODEL_MASK) != m.huge)
		return SLOTS * SLOT_PAGES;
	return -1;
}

/* Check the pages an op touched: all of a short range, the ends and a sample of a long one. */
static i64 check_range(u64 p, u64 n)
{
	struct walk_cursor c = WALK_CURSOR_NONE;
	if (n <= 64) {
		for (u64 i = 0; i < n; i++)
			if (!page_ok(p + i, &c))
				return (i64)(p + i);
		return -1;
	}
	u64 probe[10] = {p, p + n - 1};
	for (int i = 2; i < 10; i++)
		probe[i] = p + rnd_below(n);
	for (int i = 0; i < 10; i++)
		if (!page_ok(probe[i], &c))
			return (i64)probe[i];
	return -1;
}

/* A random range inside one cluster: first page and count. */
static void rnd_range(u64 *p, u64 *n)
{
	u64 c = rnd_below(CLUSTERS), start = rnd_below(CLUSTER_PAGES);
	u64 max = rnd_below(10) == 0 ? CLUSTER_PAGES : 16;
	u64 room = CLUSTER_PAGES - start;
	*p = c * CLUSTER_PAGES + start;
	*n = 1 + rnd_below(max < room ? max : room);
}

/* Map a random run of 4 KiB pages. */
static void op_map(struct op *o)
{
	u64 phys = FAKE_BASE + ALIGN_DOWN(rnd_below(FAKE_SIZE / 2), PAGE_SIZE);
	o->kind = "map";
	o->want = model_map4k(o->page, o->count, o->flags, phys);
	o->got = map_region(page_va(o->page), phys, o->count, o->flags);
}

/* Map one or both large-page slots of the range's cluster. */
static void op_map_large(struct op *o)
{
	int s = (int)(o->page / SLOT_PAGES) & ~1, cnt = 1 + (int)rnd_below(2);
	s += cnt == 1 ? (int)rnd_below(2) : 0;
	u64 phys = FAKE_BASE + ALIGN_DOWN(rnd_below(FAKE_SIZE / 2), LARGE_PAGE_SIZE);
	o->kind = "map-large";
	o->page = (u64)s * SLOT_PAGES;
	o->count = (u64)cnt * SLOT_PAGES;
	o->want = model_map2m(s, cnt, o->flags, phys);
	o->got = map_region(slot_va(s), phys, (u64)cnt, o->flags | VMM_LARGE);
}

/* Translate one page; a wrong address is reported as got = 1. */
static void op_virt_to_phys(struct op *o)
{
	u64 p = o->page, pa = 0, e = expected_leaf(p);
	o->kind = "virt-to-phys";
	o->count = 1;
	o->want = e ? 0 : -E_NOTMAPPED;
	o->got = virt_to_phys(page_va(p) + 8, &pa);
	u64 want_pa = (e & PTE_PS) ? pte_frame(e) + (p % SLOT_PAGES) * PAGE_SIZE : pte_frame(e);
	if (o->got == 0 && pa != want_pa + 8)
		o->got = 1;
}

/* Huge pages: mapped or unmapped whole; a 4 KiB page inside one is refused. */
static void op_huge(struct op *o)
{
	o->kind = "huge";
	o->page = o->count = 0;
	if (!vmm_has_huge_pages()) {
		o->want = -E_INVAL;
		o->got = map_region(HUGE_VA, 0, 1, VMM_HUGE);
	} else if (rnd_below(3) == 0) {
		o->want = m.huge ? -E_HUGE : 0;
		o->got = map_region(HUGE_VA + PAGE_SIZE, FAKE_BASE, 1, 0);
		if (o->got == 0)
			MUST(unmap_region(HUGE_VA + PAGE_SIZE, 1, 0) == 0);
	} else if (m.huge) {
		o->want = 0;
		o->got = unmap_region(HUGE_VA, HUGE_PAGE_SIZE / PAGE_SIZE, 0);
		model_set(&m.huge, 0);
	} else {
		o->want = 0;
		model_set(&m.huge, FAKE_BASE | model_bits(o->flags, true));
		o->got = map_region(HUGE_VA, FAKE_BASE, 1, o->flags | VMM_HUGE);
	}
}

/* One random operation on the real tables and the model; fills *o. */
static void step(struct op *o)
{
	u64 p, n, k = rnd_below(100);
	rnd_range(&p, &n);
	*o = (struct op){.page = p, .count = n, .flags = rnd_flags()};
	if (k < 35) {
		op_map(o);
	} else if (k < 43) {
		op_map_large(o);
	} else if (k < 73) {
		o->kind = "unmap";
		o->want = model_unmap(p, n);
		o->got = unmap_region(page_va(p), n, 0);
	} else if (k < 88) {
		o->kind = "set-flags";
		o->want = model_set_flags(p, n, o->flags);
		o->got = set_page_flags(page_va(p), n, o->flags);
	} else if (k < 96) {
		op_virt_to_phys(o);
	} else if (k < 98) {
		op_huge(o);
	} else {
		/* Bad arguments change nothing. */
		o->kind = "bad-arguments";
		o->want = -E_ALIGN;
		o->got = map_region(page_va(p) + 8, FAKE_BASE, n, o->flags);
	}
}

/* Copy the space, check the copy from inside it, drop it: NULL or what went wrong. */
static const char *copy_check_drop(u64 free_before)
{
	pml4_t here = current_page_map(), space;
	if (copy_page_map(&space) != 0)
		return "copy_page_map failed";
	if (free_before - free_frames() != expected_tables() + 1)
		return "the copy took other than one PML4 plus the model's tables";
	switch_page_map(space);
	i64 bad = sweep();
	switch_page_map(here);
	if (drop_page_map(space, 0) != 0)
		return "drop_page_map failed";
	if (bad >= 0)
		return "the copy differs from the model";
	return free_frames() == free_before ? NULL : "the drop left frames behind";
}

/* Unmap the whole window. */
static void clear_window(void)
{
	for (int c = 0; c < CLUSTERS; c++)
		MUST(unmap_region(cluster_va[c], CLUSTER_PAGES, 0) == 0);
	MUST(unmap_region(HUGE_VA, HUGE_PAGE_SIZE / PAGE_SIZE, 0) == 0);
	for (int s = 0; s < SLOTS; s++) {
		m.large[s] = 0;
		m.mapped[s] = 0;
		for (int i = 0; i < (int)SLOT_PAGES; i++)
			m.pte[s][i] = 0;
	}
	m.huge = 0;
}

/* How a run goes: plain, or with each step's allocations failed in turn. */
struct run {
	u64 ops;
	bool inject;
	u64 copy_one_in, progress_every;
	u64 sites; /* injection: allocations failed (each one attempt undone) */
	u64 copies;
};

/*
 * One step with its allocations failed in turn, then once without a
 * failure (the step as a plain run makes it: same random choices). NULL,
 * or what went wrong with an attempt that failed.
 */
static const char *step_failing_each_alloc(struct run *run, struct op *o, u64 free0)
{
	u64 rng0 = rng_state;
	for (u64 nth = 1; nth <= MAX_SITES; nth++) {
		u64 injected0 = pmm_inject_failures();
		rng_state = rng0;
		undo.n = 0;
		undo.on = true;
		pmm_inject_fail_nth(nth);
		step(o);
		pmm_inject_off();
		undo.on = false;
		if (pmm_inject_failures() == injected0)
			return NULL; /* fewer than nth allocations: it completed */
		run->sites++;
		model_undo(); /* the step must have changed nothing */
		if (o->got != -E_NOMEM)
			return "an allocation failed and the operation did not return -E_NOMEM";
		if (check_range(o->page, o->count) >= 0)
			return "an operation whose allocation failed changed an entry";
		if (free0 - free_frames() != expected_tables())
			return "an operation whose allocation failed lost or freed frames";
	}
	return "an operation made more allocations than MAX_SITES";
}

/* Copies with each allocation failed in turn: NULL, or what went wrong with one that failed. */
static const char *copy_failing_each_alloc(struct run *run)
{
	for (u64 nth = 1; nth <= MAX_SITES; nth++) {
		u64 injected0 = pmm_inject_failures(), free_before = free_frames();
		pml4_t space = 0;
		pmm_inject_fail_nth(nth);
		int r = copy_page_map(&space);
		pmm_inject_off();
		if (pmm_inject_failures() == injected0) {
			if (r != 0)
				return "copy_page_map failed with no allocation failing";
			return drop_page_map(space, 0) == 0 ? NULL : "drop_page_map failed";
		}
		run->sites++;
		if (r != -E_NOMEM)
			return "an allocation failed and copy_page_map did not return -E_NOMEM";
		if (free_frames() != free_before)
			return "a copy whose allocation failed lost frames";
		if (pml4_present(OTHER_SLOT))
			return "a copy whose allocation failed left the other space attached";
	}
	return "a copy made more allocations than MAX_SITES";
}

/* Run the steps; NULL, or what went wrong (with *at the op). */
static const char *run_model(struct run *run, u64 free0, u64 *at, struct op *o)
{
	for (u64 i = 0; i < run->ops; i++) {
		*at = i;
		if (!run->inject) {
			step(o);
		} else {
			const char *why = step_failing_each_alloc(run, o, free0);
			if (why)
				return why;
		}
		if (o->got != o->want)
			return "the return value differs from the model";
		if (check_range(o->page, o->count) >= 0)
			return "an entry differs from the model";
		if (free0 - free_frames() != expected_tables())
			return "the PMM's free count is not the start minus the model's tables";
		if (i % SWEEP_EVERY == SWEEP_EVERY - 1 && sweep() >= 0)
			return "the window differs from the model (sweep)";
		if (rnd_below(run->copy_one_in) == 0) {
			o->kind = "copy";
			run->copies++;
			const char *why = run->inject ? copy_failing_each_alloc(run) : NULL;
			if (!why)
				why = copy_check_drop(free_frames());
			if (why)
				return why;
		}
		if (i % run->progress_every == run->progress_every - 1)
			ktest_log("model: %llu ops done", i + 1);
	}
	return sweep() >= 0 ? "the window differs from the model at the end" : NULL;
}

/* Run the model as *run says from the seed; NULL or what went wrong (logged with the op). */
static const char *model_run(struct run *run, u64 seed)
{
	rng_state = seed ? seed : DEFAULT_SEED; /* xorshift never leaves 0 */
	clear_window();
	u64 free0 = free_frames(), at = 0, t0 = rdtsc();
	struct op o = {0};
	const char *why = run_model(run, free0, &at, &o);
	u64 cycles = rdtsc() - t0;
	if (why)
		ktest_log("model: op %llu (%s page %llu count %llu flags %u): %s (want %d, got %d)",
			  at, o.kind, o.page, o.count, o.flags, why, o.want, o.got);
	else
		ktest_log("model: %llu ops, %llu copies in %llu Mcycles (TSC)", run->ops,
			  run->copies, cycles / 1000000);
	clear_window();
	return why;
}

KTEST(model, random_ops_against_reference)
{
	u64 seed = parse_u64(kernel_options.model_seed, DEFAULT_SEED);
	u64 ops = parse_u64(kernel_options.model_ops, DEFAULT_OPS);
	ktest_log("model seed=%llu ops=%llu (replay: model.seed=%llu model.ops=%llu)", seed, ops,
		  seed, ops);
	u64 free0 = free_frames();
	struct run run = {.ops = ops, .copy_one_in = COPY_ONE_IN, .progress_every = PROGRESS_EVERY};
	const char *why = model_run(&run, seed);
	KASSERT_STREQ(why, NULL);
	for (u64 slot = TSLOT_MODEL; slot <= TSLOT_MODEL + 2; slot++)
		KASSERT(!pml4_present(slot));
	KASSERT_EQ(free_frames(), free0);
}

KTEST(model, random_ops_with_each_allocation_failing)
{
	u64 seed = parse_u64(kernel_options.model_seed, DEFAULT_SEED);
	u64 ops = parse_u64(kernel_options.model_ops, DEFAULT_OPS) / INJECT_OPS_DIVISOR;
	ktest_log("model seed=%llu ops=%llu, each allocation failing in turn", seed, ops);
	u64 free0 = free_frames();
	struct run run = {.ops = ops, .inject = true, .copy_one_in = INJECT_COPY_ONE_IN,
			  .progress_every = INJECT_PROGRESS_EVERY};
	const char *why = model_run(&run, seed);
	ktest_log("model: %llu allocations failed, each undone", run.sites);
	KASSERT_STREQ(why, NULL);
	KASSERT(ops == 0 || run.sites > 0); /* the campaign reached allocations at all */
	for (u64 slot = TSLOT_MODEL; slot <= TSLOT_MODEL + 2; slot++)
		KASSERT(!pml4_present(slot));
	KASSERT_EQ(free_frames(), free0);
}
