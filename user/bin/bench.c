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
 *   user_populate    mmap of a region and the first write to each of its pages, timed
 *                    together: frames allocated, zeroed and mapped (our mmap has no
 *                    populate flag, so the touching loop is the populate path; the
 *                    pair of Linux's mmap(MAP_POPULATE))
 *   user_protect     mprotect(PROT_READ) of that region, every page present
 *   user_unmap       munmap of that region: every frame freed
 * user_fault_zero, user_populate, user_protect and user_unmap also run over the
 * regions of `deno task bench --vs-linux` (4 KiB to 64 MiB), fork and cow_fault too.
 * Appel and Li's primitives (self-paging, issue 14), per page:
 *   trap_kernel      first write to a page of an mmap'd region: the kernel's
 *                    demand-zero path (a zeroed frame mapped by the kernel)
 *   trap_upcall      first write to a page of a self-paged region: the fault
 *                    delivered to our handler, which takes a zeroed frame
 *                    (frame_alloc), maps it (frame_map) and resumes
 *   prot1_trap_unprot    frame_protect one page read-only, write it: the
 *                    handler makes it writable again and resumes
 *   prot100_trap_unprot  frame_protect 100 pages read-only at once, write each:
 *                    the handler unprotects each page it is called for
 * Lines: "# BENCH op=OP page_size=4096 region_bytes=B pages=N ticks=T" (N: operations).
 * `bench yield-partner N` is the other side of yield_switch.
 */
#include "ulib.h"

#define GETPID_OPS 20000
#define CALIB_LOOPS 1000000UL
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

/* fork with `bytes` of touched anonymous memory, timed in the parent. */
/* A fresh anonymous region of `bytes` with every page written once; NULL if mmap failed. */
static volatile unsigned char *touched_region(unsigned long bytes)
{
	long r = sys_mmap(NULL, bytes, PROT_READ | PROT_WRITE, 0);
	if (r < 0)
		return NULL;
	volatile unsigned char *p = (volatile unsigned char *)r;
	for (unsigned long i = 0; i < bytes; i += PAGE_SIZE)
		p[i] = 1;
	return p;
}

static int bench_fork(unsigned long bytes)
{
	volatile unsigned char *p = touched_region(bytes);
	if (p == NULL)
		return 1;
	unsigned long t0 = tsc();
	long pid = sys_fork();
	if (pid == 0)
		sys_exit(0);
	unsigned long t = tsc() - t0;
	int status;
	if (pid < 0 || sys_wait((int)pid, &status) != pid || status != 0)
		return 1;
	report("fork", bytes, bytes / PAGE_SIZE, t);
	return sys_munmap((void *)p, bytes) == 0 ? 0 : 1;
}

/* Write every page of a region while a sleeping child still shares it. */
static int bench_cow_fault(unsigned long bytes)
{
	volatile unsigned char *p = touched_region(bytes);
	if (p == NULL)
		return 1;
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
	return sys_munmap((void *)p, bytes) == 0 ? 0 : 1;
}

#define SP_PAGES 2048
#define PROT1_OPS 2000
#define PROTN_PAGES 100
#define PROTN_OPS 20

static unsigned char sp_stack[4 * PAGE_SIZE] __attribute__((aligned(16)));

/* The benchmark's fault handler: unprotect a present page, else map a new zeroed frame. */
static void sp_handler(unsigned long *info)
{
	unsigned long page = info[0] & ~(PAGE_SIZE - 1), err = info[1];
	if (err & 1) {
		if (sys_frame_protect((void *)page, PAGE_SIZE, PROT_READ | PROT_WRITE) < 0)
			sys_exit(80);
	} else {
		long f = sys_frame_alloc(0);
		if (f < 0 || sys_frame_map((void *)page, (unsigned long)f, PROT_READ | PROT_WRITE, 0))
			sys_exit(81);
	}
	sys_fault_resume();
	sys_exit(82);
}

/* Unmap [p, p+n pages) of a self-paged region and give its frames back. */
static int sp_release(unsigned char *p, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		long f = sys_frame_query(p + i * PAGE_SIZE, 0);
		if (f < 0 || sys_frame_unmap(p + i * PAGE_SIZE, PAGE_SIZE) ||
		    sys_frame_free((unsigned long)f))
			return 1;
	}
	return 0;
}

static int bench_appel_li(void)
{
	unsigned long bytes = (unsigned long)SP_PAGES * PAGE_SIZE;
	/* The kernel's path for the same access: demand-zero in an mmap'd region. */
	long k = sys_mmap(NULL, bytes, PROT_READ | PROT_WRITE, 0);
	if (k < 0)
		return 1;
	volatile unsigned char *kp = (volatile unsigned char *)k;
	unsigned long t0 = tsc();
	for (unsigned long i = 0; i < bytes; i += PAGE_SIZE)
		kp[i] = 1;
	report("trap_kernel", bytes, SP_PAGES, tsc() - t0);
	if (sys_munmap((void *)k, bytes))
		return 1;
	long r = sys_selfpage(NULL, bytes, 0);
	if (r < 0 || sys_fault_handler((void *)sp_handler, sp_stack + sizeof(sp_stack)))
		return 1;
	volatile unsigned char *p = (volatile unsigned char *)r;
	t0 = tsc();
	for (unsigned long i = 0; i < bytes; i += PAGE_SIZE)
		p[i] = 1;
	report("trap_upcall", bytes, SP_PAGES, tsc() - t0);
	t0 = tsc();
	for (int i = 0; i < PROT1_OPS; i++) {
		sys_frame_protect((void *)p, PAGE_SIZE, PROT_READ);
		p[0] = 2;
	}
	report("prot1_trap_unprot", PAGE_SIZE, PROT1_OPS, tsc() - t0);
	t0 = tsc();
	for (int i = 0; i < PROTN_OPS; i++) {
		sys_frame_protect((void *)p, PROTN_PAGES * PAGE_SIZE, PROT_READ);
		for (unsigned long j = 0; j < PROTN_PAGES; j++)
			p[j * PAGE_SIZE] = 3;
	}
	report("prot100_trap_unprot", PROTN_PAGES * PAGE_SIZE, PROTN_OPS * PROTN_PAGES,
	       tsc() - t0);
	if (sp_release((unsigned char *)r, SP_PAGES) || sys_munmap((void *)r, bytes))
		return 1;
	return sys_fault_handler(NULL, NULL) == 0 ? 0 : 1;
}

/* The regions bench/linux/bench.c measures too. */
static const unsigned long regions[] = {4096UL, 65536UL, 1UL << 20, 16UL << 20, 64UL << 20};
#define NREGIONS (sizeof(regions) / sizeof(regions[0]))

/* First touch of each page of a fresh region (demand-zero faults), per region size. */
static int bench_fault_region(unsigned long bytes)
{
	long r = sys_mmap(NULL, bytes, PROT_READ | PROT_WRITE, 0);
	if (r < 0)
		return 1;
	volatile unsigned char *p = (volatile unsigned char *)r;
	unsigned long t0 = tsc();
	for (unsigned long i = 0; i < bytes; i += PAGE_SIZE)
		p[i] = 1;
	report("user_fault_zero", bytes, bytes / PAGE_SIZE, tsc() - t0);
	return sys_munmap((void *)r, bytes) == 0 ? 0 : 1;
}

/* mmap + touching (populate), mprotect, munmap with frames freed. */
static int bench_region(unsigned long bytes)
{
	unsigned long n = bytes / PAGE_SIZE;
	unsigned long t0 = tsc();
	long r = sys_mmap(NULL, bytes, PROT_READ | PROT_WRITE, 0);
	if (r < 0)
		return 1;
	volatile unsigned char *p = (volatile unsigned char *)r;
	for (unsigned long i = 0; i < bytes; i += PAGE_SIZE)
		p[i] = 1;
	report("user_populate", bytes, n, tsc() - t0);
	t0 = tsc();
	if (sys_mprotect((void *)r, bytes, PROT_READ) != 0)
		return 1;
	report("user_protect", bytes, n, tsc() - t0);
	t0 = tsc();
	if (sys_munmap((void *)r, bytes) != 0)
		return 1;
	report("user_unmap", bytes, n, tsc() - t0);
	return 0;
}

static int bench_regions(void)
{
	int err = 0;
	for (unsigned i = 0; i < NREGIONS; i++)
		err |= bench_fault_region(regions[i]) | bench_region(regions[i]);
	for (unsigned i = 0; i < NREGIONS; i++)
		err |= bench_fork(regions[i]) | bench_cow_fault(regions[i]);
	return err;
}

/*
 * A loop of exactly 2 instructions per turn (dec; jnz), counted by the TSC: under
 * -icount shift=0 it must read about 2 * CALIB_LOOPS (bench/linux/bench.c does the same
 * under Linux; tools/bench/vs_linux.ts checks both).
 */
static void calibrate(void)
{
	unsigned long n = CALIB_LOOPS;
	unsigned long t0 = tsc();
	__asm__ volatile("1: dec %0\n\tjnz 1b" : "+r"(n));
	unsigned long t = tsc() - t0;
	printf("# bench: calibration loop_instructions=%lu tsc_ticks=%lu\n", 2 * CALIB_LOOPS, t);
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
	calibrate();
	return bench_getpid() | bench_yield() | bench_spawn() |
	       bench_fault_region((unsigned long)FAULT_PAGES * PAGE_SIZE) |
	       bench_fork(2UL << 20) | bench_cow_fault(2UL << 20) | bench_regions() |
	       bench_appel_li();
}
