/*
 * The user-space rows of `deno task bench`, measured from ring 3 with the
 * TSC (one tick per instruction under -icount shift=0), loop included:
 *   getpid           one getpid round trip (syscall, dispatch, sysret)
 *   yield_switch     one switch between two processes yielding to each other
 *   spawn_exit_wait  spawn of bin/true, its exit, the parent's wait
 *   user_fault_zero  the first write to a page of an mmap'd region: the #PF from
 *                    user mode, the region lookup, a frame, its mapping, the zeroing
 *   fork             one fork of this process with an mmap'd region of 2 MiB or
 *                    64 MiB all touched, per 4 KiB page of the region (the program's
 *                    own few pages ride along); the child exits at once
 *   cow_fault        the first write to each page of a 2 MiB region shared with a
 *                    sleeping child: the #PF, the count lookup, the copy into the
 *                    frame reserved at fork, the remapping
 * Lines: "# BENCH op=OP page_size=4096 region_bytes=B pages=N ticks=T" (N: operations).
 * `bench yield-partner N` is the other side of yield_switch.
 */
#include "ulib.h"

#define GETPID_OPS 20000
#define YIELD_OPS 5000
#define SPAWN_OPS 200
#define FAULT_PAGES 8192

static inline unsigned long tsc(void)
{
	unsigned lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return ((unsigned long)hi << 32) | lo;
}

static void report(const char *op, unsigned long region, unsigned long n, unsigned long ticks)
{
	printf("# BENCH op=%s page_size=%lu region_bytes=%lu pages=%lu ticks=%lu\n", op,
	       (unsigned long)PAGE_SIZE, region, n, ticks);
}

static int bench_getpid(void)
{
	unsigned long t0 = tsc();
	for (int i = 0; i < GETPID_OPS; i++)
		sys_getpid();
	report("getpid", PAGE_SIZE, GETPID_OPS, tsc() - t0);
	return 0;
}

static int bench_yield(void)
{
	char n[16];
	snprintf(n, sizeof(n), "%d", YIELD_OPS + 16);
	const char *argv[] = {"bench", "yield-partner", n, NULL};
	long pid = sys_spawn("bin/bench", argv);
	if (pid < 0)
		return 1;
	sys_yield(); /* let the partner start */
	unsigned long t0 = tsc();
	for (int i = 0; i < YIELD_OPS; i++)
		sys_yield();
	unsigned long t = tsc() - t0;
	/* Each of our yields is two switches: to the partner and back. */
	report("yield_switch", PAGE_SIZE, 2 * YIELD_OPS, t);
	int status;
	return sys_wait((int)pid, &status) == pid && status == 0 ? 0 : 1;
}

static int bench_spawn(void)
{
	const char *argv[] = {"true", NULL};
	unsigned long t0 = tsc();
	for (int i = 0; i < SPAWN_OPS; i++) {
		int status;
		long pid = sys_spawn("bin/true", argv);
		if (pid < 0 || sys_wait((int)pid, &status) != pid || status != 0)
			return 1;
	}
	report("spawn_exit_wait", PAGE_SIZE, SPAWN_OPS, tsc() - t0);
	return 0;
}

static int bench_fault(void)
{
	unsigned long bytes = (unsigned long)FAULT_PAGES * PAGE_SIZE;
	long r = sys_mmap(NULL, bytes, PROT_READ | PROT_WRITE, 0);
	if (r < 0)
		return 1;
	volatile unsigned char *p = (volatile unsigned char *)r;
	unsigned long t0 = tsc();
	for (unsigned long i = 0; i < bytes; i += PAGE_SIZE)
		p[i] = 1;
	report("user_fault_zero", bytes, FAULT_PAGES, tsc() - t0);
	return sys_munmap((void *)r, bytes) == 0 ? 0 : 1;
}

/* fork with `bytes` of touched anonymous memory, timed in the parent. */
static int bench_fork(unsigned long bytes)
{
	long r = sys_mmap(NULL, bytes, PROT_READ | PROT_WRITE, 0);
	if (r < 0)
		return 1;
	volatile unsigned char *p = (volatile unsigned char *)r;
	for (unsigned long i = 0; i < bytes; i += PAGE_SIZE)
		p[i] = 1;
	unsigned long t0 = tsc();
	long pid = sys_fork();
	if (pid == 0)
		sys_exit(0);
	unsigned long t = tsc() - t0;
	int status;
	if (pid < 0 || sys_wait((int)pid, &status) != pid || status != 0)
		return 1;
	report("fork", bytes, bytes / PAGE_SIZE, t);
	return sys_munmap((void *)r, bytes) == 0 ? 0 : 1;
}

/* Write every page of a 2 MiB region while a sleeping child still shares it. */
static int bench_cow_fault(void)
{
	unsigned long bytes = 2UL << 20;
	long r = sys_mmap(NULL, bytes, PROT_READ | PROT_WRITE, 0);
	if (r < 0)
		return 1;
	volatile unsigned char *p = (volatile unsigned char *)r;
	for (unsigned long i = 0; i < bytes; i += PAGE_SIZE)
		p[i] = 1;
	long pid = sys_fork();
	if (pid == 0) {
		sys_sleep(100UL * 1000 * 1000); /* shares every page until the parent is done */
		sys_exit(p[0] == 1 && p[bytes - PAGE_SIZE] == 1 ? 0 : 1);
	}
	if (pid < 0)
		return 1;
	unsigned long t0 = tsc();
	for (unsigned long i = 0; i < bytes; i += PAGE_SIZE)
		p[i] = 2;
	report("cow_fault", bytes, bytes / PAGE_SIZE, tsc() - t0);
	int status;
	if (sys_wait((int)pid, &status) != pid || status != 0)
		return 1;
	return sys_munmap((void *)r, bytes) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "yield-partner")) {
		int n = 0;
		for (const char *s = argv[2]; *s >= '0' && *s <= '9'; s++)
			n = n * 10 + (*s - '0');
		for (int i = 0; i < n; i++)
			sys_yield();
		return 0;
	}
	return bench_getpid() | bench_yield() | bench_spawn() | bench_fault() |
	       bench_fork(2UL << 20) | bench_fork(64UL << 20) | bench_cow_fault();
}
