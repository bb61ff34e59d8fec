/*
 * The memory-manager benchmark (bench.h). Each figure is the TSC difference
 * around an operation, less the cost of reading the TSC twice. Under QEMU's
 * -icount shift=0 the TSC advances by exactly one per instruction, so the
 * same kernel gives exact, repeatable instruction counts there and guest
 * TSC cycles in a plain run; the host (tools/bench.ts) joins the two.
 *
 * What each op covers (the host divides ticks by pages):
 *   pmm_alloc, pmm_free  PMM_OPS frames taken one by one into an array, then
 *                        given back in reverse order (loop and error check included)
 *   map, protect, unmap  a region in a user-half PML4 slot that is empty before:
 *                        map creates its PDPT, PD and PTs by faults (table creation
 *                        and zeroing included), unmap releases them; physical
 *                        addresses are a fake range that is never touched
 *   fault_zero           the first write to each of FAULT_PAGES heap pages: the #PF,
 *                        a frame, the mapping, its tables, and the zeroing (included;
 *                        the zeroing alone is printed as a comment)
 *   copy, drop           copy_page_map, then drop_page_map (frames kept: the copy
 *                        shares them), with N MiB of 4 KiB pages mapped in the user half
 * At the end every frame must be back in the PMM (`# BENCH leak-check ok`).
 * Small regions are repeated so every figure covers at least TARGET_PAGES pages.
 */
#include <bench.h>
#include <cpu.h>
#include <initrd.h>
#include <layout.h>
#include <paging.h>
#include <panic.h>
#include <pmm.h>
#include <proc.h>
#include <printf.h>
#include <smp.h>
#include <tlb.h>
#include <vmm.h>
#include "../mm/vmm_internal.h"
#include "membench.h"

/* A user-half PML4 slot nothing else uses while the bench runs (the tests do not run). */
#define BENCH_VA INDICES_VA(1, 0, 0, 0)
/* The fake physical range the region benchmarks map (4 GiB up; never accessed). */
#define FAKE_PHYS 0x100000000ULL
/* Heap: the PMM bench's frame array at the bottom, the demand-zero pages 1 GiB up. */
#define STORE_VA HEAP_BASE
#define FAULT_VA (HEAP_BASE + HUGE_PAGE_SIZE)

#define PMM_OPS 100000ULL
#define FAULT_PAGES 8192ULL
#define TARGET_PAGES 4096ULL
#define ZERO_REPS 64ULL

#define KIB 1024ULL
#define MIB (1024ULL * KIB)
#define GIB (1024ULL * MIB)

/* Ticks two back-to-back TSC reads cost: subtracted from every measurement. */
static u64 tsc_overhead;

/* The call's ticks, after checking it returned 0. */
#define TIMED(call)                                     \
	({                                              \
		u64 t0_ = rdtsc();                        \
		int r_ = (call);                        \
		u64 t_ = rdtsc() - t0_;                   \
		must(r_, #call);                        \
		t_ - tsc_overhead;                      \
	})

/* A memory-manager call the bench relies on failed: that is a broken kernel. */
static void must(int err, const char *what)
{
	if (err)
		panic("bench: %s returned %d", what, err);
}

/* The smallest TSC-read overhead of a few tries. */
static void measure_overhead(void)
{
	tsc_overhead = ~0ULL;
	for (int i = 0; i < 16; i++) {
		u64 t0 = rdtsc(), t = rdtsc() - t0;
		if (t < tsc_overhead)
			tsc_overhead = t;
	}
}

static void report(const char *op, u64 page_size, u64 region, u64 pages, u64 ticks)
{
	kprintf("# BENCH op=%s page_size=%llu region_bytes=%llu pages=%llu ticks=%llu\n", op,
		page_size, region, pages, ticks);
}

/* Repetitions that make n pages per run cover at least TARGET_PAGES. */
static u64 reps_for(u64 n)
{
	return n >= TARGET_PAGES ? 1 : (TARGET_PAGES + n - 1) / n;
}

static u64 free_frames(void)
{
	struct pmm_stats s;
	pmm_get_stats(&s);
	return s.free;
}

/* Touch every page of [va, va + bytes) so the demand-zero faults happen now. */
static void prefault(u64 va, u64 bytes)
{
	for (u64 off = 0; off < bytes; off += PAGE_SIZE)
		*(volatile u64 *)(va + off) = 0;
}

/* PMM_OPS allocations into a heap array, then the frees in reverse order. */
static void bench_pmm(void)
{
	u64 *frames = (u64 *)STORE_VA;
	prefault(STORE_VA, ALIGN_UP(PMM_OPS * sizeof(u64), PAGE_SIZE));
	int err = 0;
	u64 t0 = rdtsc();
	for (u64 i = 0; i < PMM_OPS; i++)
		err |= pmm_alloc(&frames[i]);
	u64 t_alloc = rdtsc() - t0 - tsc_overhead;
	must(err, "pmm_alloc");
	t0 = rdtsc();
	for (u64 i = PMM_OPS; i-- > 0;)
		err |= pmm_free(frames[i]);
	u64 t_free = rdtsc() - t0 - tsc_overhead;
	must(err, "pmm_free");
	report("pmm_alloc", PAGE_SIZE, PAGE_SIZE, PMM_OPS, t_alloc);
	report("pmm_free", PAGE_SIZE, PAGE_SIZE, PMM_OPS, t_free);
}

/* map, protect (to read-only) and unmap of `bytes` in pages of `size`, repeated. */
static void bench_region(u64 size, u64 bytes)
{
	u32 large = size == LARGE_PAGE_SIZE ? VMM_LARGE : 0;
	u64 n = bytes / size, small = bytes / PAGE_SIZE, reps = reps_for(n);
	u64 t_map = 0, t_protect = 0, t_unmap = 0;
	for (u64 r = 0; r < reps; r++) {
		t_map += TIMED(map_region(BENCH_VA, FAKE_PHYS, n, VMM_WRITE | large));
		t_protect += TIMED(set_page_flags(BENCH_VA, small, 0));
		t_unmap += TIMED(unmap_region(BENCH_VA, small, 0));
	}
	report("map", size, bytes, n * reps, t_map);
	report("protect", size, bytes, n * reps, t_protect);
	report("unmap", size, bytes, n * reps, t_unmap);
}

/* First touches of FAULT_PAGES heap pages; then the zeroing alone, as a comment. */
static void bench_fault_zero(void)
{
	struct vmm_stats before, after;
	vmm_get_stats(&before);
	u64 t0 = rdtsc();
	for (u64 i = 0; i < FAULT_PAGES; i++)
		*(volatile u8 *)(FAULT_VA + i * PAGE_SIZE) = 1;
	u64 t = rdtsc() - t0 - tsc_overhead;
	vmm_get_stats(&after);
	if (after.demand_zero_faults - before.demand_zero_faults != FAULT_PAGES)
		panic("bench: %llu demand-zero faults for %llu pages",
		      after.demand_zero_faults - before.demand_zero_faults, FAULT_PAGES);
	report("fault_zero", PAGE_SIZE, FAULT_PAGES * PAGE_SIZE, FAULT_PAGES, t);
	t0 = rdtsc();
	for (u64 i = 0; i < ZERO_REPS; i++)
		vmm_zero_page((void *)FAULT_VA);
	t = rdtsc() - t0 - tsc_overhead;
	kprintf("# bench: zeroing one 4 KiB page as the #PF handler does: %llu ticks (included in "
		"fault_zero)\n", t / ZERO_REPS);
	must(unmap_region(FAULT_VA, FAULT_PAGES, VMM_FREE_FRAMES), "unmap of the faulted pages");
}

/* copy_page_map and drop_page_map with `bytes` of 4 KiB pages mapped in the user half. */
static void bench_space(u64 bytes)
{
	u64 n = bytes / PAGE_SIZE, reps = reps_for(n), t_copy = 0, t_drop = 0;
	must(map_region(BENCH_VA, FAKE_PHYS, n, VMM_WRITE | VMM_USER), "map for copy");
	for (u64 r = 0; r < reps; r++) {
		pml4_t space;
		t_copy += TIMED(copy_page_map(&space));
		t_drop += TIMED(drop_page_map(space, 0));
	}
	must(unmap_region(BENCH_VA, n, 0), "unmap after copy");
	report("copy", PAGE_SIZE, bytes, n * reps, t_copy);
	report("drop", PAGE_SIZE, bytes, n * reps, t_drop);
}

/*
 * The user-space rows: bin/bench measures itself from ring 3 and prints its
 * own "# BENCH" lines (user/bin/bench.c says what each covers).
 */
static void bench_user(void)
{
	const char *argv[] = {"bench"};
	int pid = proc_spawn_path("bin/bench", 1, argv);
	if (pid < 0) {
		kprintf("# bench: no user rows: bin/bench cannot start (%d)\n", pid);
		return;
	}
	struct exit_info x;
	if (proc_wait(pid, &x) != pid || x.killed || x.status != 0)
		panic("bench: bin/bench failed (status %d%s%s)", x.status, x.killed ? ", killed: " : "",
		      x.killed ? x.reason : "");
}

/* Every frame taken during the bench must be back: print the verdict; true when it is. */
static bool leak_check(u64 free0)
{
	must(unmap_region(STORE_VA, ALIGN_UP(PMM_OPS * sizeof(u64), PAGE_SIZE) / PAGE_SIZE,
			  VMM_FREE_FRAMES), "unmap of the PMM bench's array");
	u64 free1 = free_frames();
	if (free1 != free0) {
		kprintf("# BENCH leak-check failed: %llu frames free before, %llu after\n", free0,
			free1);
		return false;
	}
	kprintf("# BENCH leak-check ok\n");
	kprintf("# bench: %llu frames free before and after\n", free1);
	return true;
}

/* ---- the SMP benchmark (bench.smp) ---- */

/* Unmaps timed per row (each after an untimed map). */
#define SMP_REPS 200ULL

/* An AP parks in `space` until told to leave (smp_run work: interrupts on, it takes the IPIs). */
struct park {
	pml4_t space, home;
	u32 arrived;
	bool leave;
};

static void park_in_space(void *arg)
{
	struct park *p = arg;
	switch_page_map(p->space);
	__atomic_add_fetch(&p->arrived, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&p->leave, __ATOMIC_ACQUIRE))
		__builtin_ia32_pause();
	switch_page_map(p->home);
}

/* Serve shootdowns while waiting (the bench runs with interrupts off). */
static void bench_relax(void)
{
	tlb_poll();
	__builtin_ia32_pause();
}

/*
 * SMP_REPS unmaps of `pages` user pages of a new space that CPU 0 and
 * `others` APs have loaded: the shootdown reaches exactly `others` CPUs.
 * Prints the row `op` and its `# BENCH-IPIS` line.
 */
static void bench_unmap_notify(const char *op, u32 others, u64 pages)
{
	static struct park park;
	pml4_t home = current_page_map(), space;
	must(new_page_map(&space), "new_page_map for the SMP bench");
	park = (struct park){.space = space, .home = home};
	for (u32 c = 1; c <= others; c++)
		must(smp_run(c, park_in_space, &park), "smp_run of an AP into the bench space");
	while (__atomic_load_n(&park.arrived, __ATOMIC_ACQUIRE) < others)
		bench_relax();
	switch_page_map(space);
	/* The tables stay between reps: a page beside the range keeps them. */
	must(map_region(BENCH_VA + pages * PAGE_SIZE, FAKE_PHYS, 1, VMM_WRITE | VMM_USER),
	     "map of the page that keeps the tables");
	struct tlb_stats s0, s1;
	u64 t = 0;
	tlb_get_stats(&s0);
	for (u64 r = 0; r < SMP_REPS; r++) {
		must(map_region(BENCH_VA, FAKE_PHYS, pages, VMM_WRITE | VMM_USER), "map for unmap");
		t += TIMED(unmap_region(BENCH_VA, pages, 0));
	}
	tlb_get_stats(&s1);
	must(unmap_region(BENCH_VA + pages * PAGE_SIZE, 1, 0), "unmap of the table keeper");
	switch_page_map(home);
	__atomic_store_n(&park.leave, true, __ATOMIC_RELEASE);
	for (u32 c = 1; c <= others; c++)
		must(smp_run_wait(c, 60000), "an AP leaving the bench space");
	must(drop_page_map(space, 0), "drop of the bench space");
	report(op, PAGE_SIZE, pages * PAGE_SIZE, SMP_REPS * pages, t);
	kprintf("# BENCH-IPIS op=%s ops=%llu rounds=%llu ipis=%llu full=%llu\n", op, SMP_REPS,
		s1.shootdowns - s0.shootdowns, s1.ipis - s0.ipis, s1.full - s0.full);
}

void bench_smp_run(void)
{
	kprintf("1..1\n");
	u64 free0 = free_frames();
	measure_overhead();
	u32 n = smp_cpu_count();
	kprintf("# bench: %u CPUs up; a TSC read pair costs %llu ticks (subtracted)\n", n,
		tsc_overhead);
	/* Boot to all CPUs up: one sample, the whole of smp_init. */
	report("smp_boot", PAGE_SIZE, PAGE_SIZE, 1, smp_boot_ticks());
	if (n < 4) {
		kprintf("# BENCH leak-check ok\n# BENCH done\nnot ok 1 - bench.smp # needs 4 CPUs, %u up\n", n);
		debug_exit(DEBUG_EXIT_FAIL);
	}
	bench_unmap_notify("unmap_notify0", 0, 1);
	bench_unmap_notify("unmap_notify1", 1, 1);
	bench_unmap_notify("unmap_notify3", 3, 1);
	bench_unmap_notify("unmap64_notify3", 3, 64);
	u64 free1 = free_frames();
	bool clean = free1 == free0;
	if (clean)
		kprintf("# BENCH leak-check ok\n");
	else
		kprintf("# BENCH leak-check failed: %llu frames free before, %llu after\n", free0,
			free1);
	kprintf("# BENCH done\n");
	kprintf("%s 1 - bench.smp\n", clean ? "ok" : "not ok");
	debug_exit(clean ? DEBUG_EXIT_PASS : DEBUG_EXIT_FAIL);
}

void bench_run(void)
{
#ifdef OUROBOROS_MEMBENCH
	membench_run(); /* the membench kernel (tools/bench.ts --membench) runs only that */
#endif
	static const u64 regions[] = {4 * KIB, 64 * KIB, 2 * MIB, 64 * MIB, GIB};
	static const u64 large_regions[] = {64 * MIB, GIB};
	static const u64 spaces[] = {2 * MIB, 64 * MIB};
	kprintf("1..1\n");
#ifdef PMM_DEBUG
	kprintf("# bench: PMM double-free detection (PMM_DEBUG) is on\n");
#else
	kprintf("# bench: PMM double-free detection (PMM_DEBUG) is off\n");
#endif
	/* The initrd window's tables stay once made: make them before counting. */
	const void *initrd;
	u64 initrd_len;
	(void)initrd_get(&initrd, &initrd_len);
	u64 free0 = free_frames();
	measure_overhead();
	kprintf("# bench: a TSC read pair costs %llu ticks (subtracted)\n", tsc_overhead);
	bench_pmm();
	for (size_t i = 0; i < ARRAY_SIZE(regions); i++)
		bench_region(PAGE_SIZE, regions[i]);
	for (size_t i = 0; i < ARRAY_SIZE(large_regions); i++)
		bench_region(LARGE_PAGE_SIZE, large_regions[i]);
	bench_fault_zero();
	for (size_t i = 0; i < ARRAY_SIZE(spaces); i++)
		bench_space(spaces[i]);
	bench_user();
	bool clean = leak_check(free0);
	kprintf("# BENCH done\n");
	kprintf("%s 1 - bench\n", clean ? "ok" : "not ok");
	debug_exit(clean ? DEBUG_EXIT_PASS : DEBUG_EXIT_FAIL);
}
