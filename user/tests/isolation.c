/*
 * Isolation, in the spirit of xv6's usertests: a child doing each forbidden
 * thing is killed with the vector of its fault, and the parent goes on; bad
 * pointers given to system calls come back as -E_FAULT; processes at the
 * same virtual address keep their own data.
 */
#include "ulib.h"

/* Vectors (Intel SDM Vol. 3A Table 6-1). */
#define VEC_DE 0
#define VEC_UD 6
#define VEC_GP 13
#define VEC_PF 14

static const struct {
	const char *mode;
	int vector;
} crashes[] = {
	{"cli", VEC_GP},          {"hlt", VEC_GP},        {"in", VEC_GP},
	{"out", VEC_GP},          {"cr3", VEC_GP},        {"ud2", VEC_UD},
	{"div0", VEC_DE},         {"read-kernel", VEC_PF}, {"read-kernel-text", VEC_PF},
	{"null", VEC_PF},         {"write-text", VEC_PF}, {"exec-stack", VEC_PF},
	{"exec-heap", VEC_PF},    {"stack-overflow", VEC_PF}, {"unmapped", VEC_PF},
};

/* Run bin/crash MODE; its wait status, or a negative error. */
static long crash(const char *mode)
{
	const char *argv[] = {"crash", mode, NULL};
	long pid = sys_spawn("bin/crash", argv);
	if (pid < 0)
		return pid;
	int status = -1;
	long got = sys_wait((int)pid, &status);
	return got == pid ? status : (got < 0 ? got : -1);
}

/* Whether the CPU has NX (CPUID 80000001H EDX bit 20): the kernel turns EFER.NXE on iff so. */
static int cpu_has_nx(void)
{
	unsigned a = 0x80000000u, b, c = 0, d;
	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	if (a < 0x80000001u)
		return 0;
	a = 0x80000001u;
	c = 0;
	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	return (d >> 20) & 1;
}

/* Executing data is refused only where pages can be non-executable. */
static int needs_nx(const char *mode)
{
	return !strcmp(mode, "exec-stack") || !strcmp(mode, "exec-heap");
}

static void test_crashes(void)
{
	int nx = cpu_has_nx();
	for (unsigned i = 0; i < ARRAY_SIZE(crashes); i++) {
		if (needs_nx(crashes[i].mode) && !nx) {
			tap_skip("no NX on this CPU: data pages are executable", "%s: killed by vector %d",
				 crashes[i].mode, crashes[i].vector);
			continue;
		}
		long status = crash(crashes[i].mode);
		tap_ok(status == (WAIT_KILLED | crashes[i].vector),
		       "%s: killed by vector %d (status 0x%lx)", crashes[i].mode, crashes[i].vector,
		       status);
	}
}

static void test_bad_pointers(void)
{
	static const struct {
		const char *what;
		unsigned long addr;
	} bad[] = {
		{"NULL", 0},
		{"kernel half", KERNEL_HALF_START},
		{"kernel image", 0xffffffff80100000UL},
		{"non-canonical", 0x0000800000000000UL},
		{"non-canonical high", 0x8000000000000000UL},
		{"unmapped", USER_MMAP_BASE + 4096 * PAGE_SIZE},
		{"straddling the user half's end", USER_END - 8},
	};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++)
		tap_ok(sys_write(STDOUT_FD, (const void *)bad[i].addr, 16) == -E_FAULT,
		       "write from %s is -E_FAULT", bad[i].what);
	/* Straddling the end of a mapping inside the user half. */
	char *m = (char *)sys_mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, 0);
	m[0] = '#';
	tap_ok(sys_write(STDOUT_FD, m + PAGE_SIZE - 4, 8) == -E_FAULT,
	       "write straddling the end of a mapping is -E_FAULT");
	/* Write-only checks: the kernel must not store into read-only text. */
	TAP_EQ(sys_wait(-1, (int *)(void *)main), -E_FAULT);
	TAP_EQ(sys_wait(-1, (int *)KERNEL_HALF_START), -E_FAULT);
	TAP_EQ(sys_spawn((const char *)KERNEL_HALF_START, NULL), -E_FAULT);
	const char *argv_bad[] = {"x", (const char *)1, NULL};
	TAP_EQ(sys_spawn("bin/true", argv_bad), -E_FAULT);
	TAP_EQ(sys_spawn("bin/true", (const char *const *)KERNEL_HALF_START), -E_FAULT);
	TAP_EQ(sys_spawn("bin/no-such-program", (const char *const[]){"x", NULL}), -E_NOENT);
	/* A page made unreadable: the kernel refuses to read it too. */
	TAP_EQ(sys_mprotect(m, PAGE_SIZE, PROT_NONE), 0);
	TAP_EQ(sys_write(STDOUT_FD, m, 1), -E_FAULT);
	TAP_EQ(sys_munmap(m, PAGE_SIZE), 0);
}

static void test_same_address(void)
{
	enum { N = 4 };
	long pids[N];
	const char *argv[] = {"same-va", NULL};
	for (int i = 0; i < N; i++)
		pids[i] = sys_spawn("bin/same-va", argv);
	int all = 1;
	for (int i = 0; i < N; i++) {
		int status = -1;
		all &= pids[i] > 0 && sys_wait((int)pids[i], &status) == pids[i] && status == 0;
	}
	tap_ok(all, "%d processes writing at one virtual address each see their own data", N);
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	tap_plan(15 + 7 + 10 + 1);
	test_crashes();
	test_bad_pointers();
	test_same_address();
	return tap_done();
}
