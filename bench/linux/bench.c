/*
 * The Linux side of `deno task bench --vs-linux`: /init of an initramfs booted
 * by Debian's kernel in the same QEMU as our bench (microvm, 2 GiB, TCG,
 * -icount shift=0). Each figure is a difference of rdtsc readings, which under
 * -icount shift=0 advance one tick per guest instruction (the calibration
 * line checks that on a loop of known length). Lines, as our kernel prints:
 *   # LINUX op=OP page_size=4096 region_bytes=B pages=N ticks=T
 * then "# LINUX done", and the machine powers off (reboot(RB_POWER_OFF)).
 * The README's "Side by side with Linux" table says what each row does.
 * Built static with the system gcc by tools/bench/linux/run.ts.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define GETPID_OPS 20000
#define SPAWN_OPS 200
#define CALIB_LOOPS 1000000UL

#ifdef BENCH_SMALL /* the pipeline test: the smallest region only */
static const unsigned long regions[] = {4096UL};
#else
static const unsigned long regions[] = {4096UL, 65536UL, 1UL << 20, 16UL << 20, 64UL << 20};
#endif
#define NREGIONS (sizeof(regions) / sizeof(regions[0]))

static inline unsigned long tsc(void)
{
	unsigned lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return ((unsigned long)hi << 32) | lo;
}

static unsigned long mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long)ts.tv_sec * 1000000000UL + (unsigned long)ts.tv_nsec;
}

static void report(const char *op, unsigned long region, unsigned long n, unsigned long ticks)
{
	printf("# LINUX op=%s page_size=%lu region_bytes=%lu pages=%lu ticks=%lu\n", op, PAGE,
	       region, n, ticks);
	fflush(stdout);
}

static void fail(const char *what)
{
	printf("# LINUX failed: %s\n", what);
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	_exit(1);
}

/*
 * A loop of exactly 2 instructions per turn (dec; jnz): its rdtsc count and its
 * CLOCK_MONOTONIC count must both be about 2 * CALIB_LOOPS if both clocks follow
 * the instruction counter.
 */
static void calibrate(void)
{
	unsigned long n = CALIB_LOOPS;
	unsigned long c0 = mono_ns(), t0 = tsc();
	__asm__ volatile("1: dec %0\n\tjnz 1b" : "+r"(n));
	unsigned long t1 = tsc(), c1 = mono_ns();
	printf("# LINUX calibration loop_instructions=%lu tsc_ticks=%lu monotonic_ns=%lu\n",
	       2 * CALIB_LOOPS, t1 - t0, c1 - c0);
}

static void *map(unsigned long bytes, int flags)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags,
		       -1, 0);
	if (p == MAP_FAILED)
		fail("mmap");
	return p;
}

static void touch(void *p, unsigned long bytes)
{
	volatile unsigned char *c = p;
	for (unsigned long i = 0; i < bytes; i += PAGE)
		c[i] = 1;
}

/* First write to each page of a fresh mapping: demand-zero faults. */
static void bench_fault_zero(unsigned long bytes)
{
	void *p = map(bytes, 0);
	unsigned long t0 = tsc();
	touch(p, bytes);
	report("fault_zero", bytes, bytes / PAGE, tsc() - t0);
	munmap(p, bytes);
}

/* mmap with MAP_POPULATE (frames allocated, zeroed, mapped); mprotect; munmap. */
static void bench_region(unsigned long bytes)
{
	unsigned long n = bytes / PAGE;
	unsigned long t0 = tsc();
	void *p = map(bytes, MAP_POPULATE);
	report("populate", bytes, n, tsc() - t0);
	t0 = tsc();
	if (mprotect(p, bytes, PROT_READ))
		fail("mprotect");
	report("protect", bytes, n, tsc() - t0);
	t0 = tsc();
	if (munmap(p, bytes))
		fail("munmap");
	report("unmap", bytes, n, tsc() - t0);
}

static void bench_getpid(void)
{
	unsigned long t0 = tsc();
	for (int i = 0; i < GETPID_OPS; i++)
		syscall(SYS_getpid);
	report("getpid", PAGE, GETPID_OPS, tsc() - t0);
}

static void bench_spawn(void)
{
	char *argv[] = {"true", NULL};
	char *envp[] = {NULL};
	unsigned long t0 = tsc();
	for (int i = 0; i < SPAWN_OPS; i++) {
		int status;
		pid_t pid = vfork();
		if (pid == 0) {
			execve("/true", argv, envp);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid || status != 0)
			fail("spawn /true");
	}
	report("spawn_exit_wait", PAGE, SPAWN_OPS, tsc() - t0);
}

/*
 * fork of a parent with `bytes` of touched anonymous memory, per page of it
 * (the fork as the parent sees it; the child exits at once); then one COW fault per page: the parent
 * writes its pages while a child still shares them.
 */
static void bench_fork(unsigned long bytes)
{
	unsigned long n = bytes / PAGE;
	void *p = map(bytes, MAP_POPULATE);
	int status;
	unsigned long t0 = tsc();
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	unsigned long t = tsc() - t0; /* the fork alone, in the parent, as ours */
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		fail("fork");
	report("fork", bytes, n, t);
	int pipefd[2];
	if (pipe(pipefd))
		fail("pipe");
	pid = fork();
	if (pid == 0) {
		char c;
		read(pipefd[0], &c, 1); /* hold the pages shared until the parent is done */
		_exit(0);
	}
	if (pid < 0)
		fail("fork");
	t0 = tsc();
	touch(p, bytes);
	report("cow_fault", bytes, n, tsc() - t0);
	write(pipefd[1], "x", 1);
	waitpid(pid, &status, 0);
	close(pipefd[0]);
	close(pipefd[1]);
	munmap(p, bytes);
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("# LINUX start\n");
	calibrate();
	for (unsigned i = 0; i < NREGIONS; i++)
		bench_fault_zero(regions[i]);
	for (unsigned i = 0; i < NREGIONS; i++)
		bench_region(regions[i]);
	bench_getpid();
	bench_spawn();
	for (unsigned i = 0; i < NREGIONS; i++)
		bench_fork(regions[i]);
	printf("# LINUX done\n");
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}
