/*
 * The memory-hierarchy benchmark (membench.h). The buffer is heap memory
 * (demand-zero, 4 KiB pages, so the TLB reach it shows is that of 4 KiB
 * pages), touched once before any timing so no fault is measured. Each
 * point reads every stride-th u64 of the range, passes times, after one
 * untimed pass that brings the range into whatever caches and TLBs hold it.
 * Ticks include the loop's own few instructions per access.
 *
 * Built into the bench kernel with -DOUROBOROS_MEMBENCH (tools/bench.ts
 * --membench): bench_run() then runs this instead of the memory-manager
 * benchmark.
 */
#include <cpu.h>
#include <layout.h>
#include <panic.h>
#include <pmm.h>
#include <printf.h>
#include <vmm.h>
#include "membench.h"

/* The walked buffer: the bottom of the heap (nothing else uses the heap in a bench kernel). */
#define MEMBENCH_VA HEAP_BASE
#define MIN_RANGE (4ULL * 1024)
#define MAX_RANGE (256ULL * 1024 * 1024)
#define MIN_STRIDE 8ULL
#define MAX_STRIDE 4096ULL
/* Every point makes at least this many timed accesses (small ranges repeat). */
#define MIN_ACCESSES (1ULL << 17)

/* CPUID_1_ECX_HYPERVISOR and CPUID_HYPERVISOR_LEAF come from layout.h (linker/arch.ts). */

static inline u64 tsc(void)
{
	u32 lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return ((u64)hi << 32) | lo;
}

/* Print the hypervisor vendor (12 characters) or `none`, for the host's verdict on the figures. */
static void print_hypervisor(void)
{
	if (!(cpuid(CPUID_FEATURES, 0).ecx & CPUID_1_ECX_HYPERVISOR)) {
		kprintf("# MEMBENCH cpu hypervisor=none\n");
		return;
	}
	struct cpuid_regs r = cpuid(CPUID_HYPERVISOR_LEAF, 0);
	char vendor[13];
	u32 words[3] = {r.ebx, r.ecx, r.edx};
	for (int i = 0; i < 12; i++) {
		char c = (char)(words[i / 4] >> (8 * (i % 4)));
		/* Keep the line one word: KVM pads with NULs, anything odd becomes '_'. */
		vendor[i] = c > ' ' && c <= '~' ? c : '_';
	}
	vendor[12] = '\0';
	kprintf("# MEMBENCH cpu hypervisor=%s\n", vendor);
}

/* Read every stride-th u64 of [base, base + range), passes times; the sum keeps the reads. */
static u64 walk(u64 base, u64 range, u64 stride, u64 passes)
{
	u64 sum = 0;
	for (u64 p = 0; p < passes; p++)
		for (u64 off = 0; off < range; off += stride)
			sum += *(volatile u64 *)(base + off);
	return sum;
}

/* One point of the curve: an untimed pass, then the timed passes. */
static u64 point(u64 range, u64 stride)
{
	u64 per_pass = range / stride;
	u64 passes = per_pass >= MIN_ACCESSES ? 1 : MIN_ACCESSES / per_pass;
	u64 sink = walk(MEMBENCH_VA, range, stride, 1);
	u64 t0 = tsc();
	sink += walk(MEMBENCH_VA, range, stride, passes);
	u64 ticks = tsc() - t0;
	kprintf("# MEMBENCH range_bytes=%llu stride_bytes=%llu accesses=%llu ticks=%llu\n", range,
		stride, per_pass * passes, ticks);
	return sink;
}

void membench_run(void)
{
	kprintf("1..1\n");
	print_hypervisor();
	struct pmm_stats before, after;
	pmm_get_stats(&before);
	/* Fault every page in now: the walks must measure loads, not demand-zero faults. */
	for (u64 off = 0; off < MAX_RANGE; off += PAGE_SIZE)
		*(volatile u64 *)(MEMBENCH_VA + off) = off;
	u64 sink = 0;
	for (u64 range = MIN_RANGE; range <= MAX_RANGE; range *= 2)
		for (u64 stride = MIN_STRIDE; stride <= MAX_STRIDE; stride *= 2)
			sink += point(range, stride);
	int err = unmap_region(MEMBENCH_VA, MAX_RANGE / PAGE_SIZE, VMM_FREE_FRAMES);
	if (err)
		panic("membench: unmap of the buffer returned %d", err);
	pmm_get_stats(&after);
	/* Frames and the tables the faults made are all back (unmap releases empty tables). */
	bool ok = after.free == before.free;
	kprintf("# membench: checksum %llu, %llu frames free before, %llu after\n", sink, before.free,
		after.free);
	kprintf("# MEMBENCH done\n");
	kprintf("%s 1 - membench\n", ok ? "ok" : "not ok");
	debug_exit(ok ? DEBUG_EXIT_PASS : DEBUG_EXIT_FAIL);
}
