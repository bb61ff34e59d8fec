/*
 * The user-space rows of `deno task bench`, measured from ring 3 with the
 * TSC (one tick per instruction under -icount shift=0), loop included:
 *   getpid           one getpid round trip (syscall, dispatch, sysret)
 *   yield_switch     one switch between two processes yielding to each other
 *   spawn_exit_wait  spawn of bin/true, its exit, the parent's wait
 *   user_fault_zero  the first write to a page of an mmap'd region: the #PF from
 *                    user mode, the region lookup, a frame, its mapping, the zeroing
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
	return bench_getpid() | bench_yield() | bench_spawn() | bench_fault() | bench_appel_li();
}
