/*
 * Does one forbidden thing, named by argv[1], and should never get to exit:
 * the kernel kills it and its parent's wait sees WAIT_KILLED | the vector.
 * It exits 0 only if the forbidden thing did nothing (a kernel bug).
 */
#include "ulib.h"

static char heap_code[16] __attribute__((aligned(16))); /* .bss: data, never executable */

/* Recurse with a big frame until the stack runs into its guard page (limit: never reached). */
static int deep(long n)
{
	volatile char frame[2048];
	frame[0] = (char)n;
	if (n > (long)USER_STACK_PAGES * 4)
		return 0;
	return deep(n + 1) + frame[0];
}

/*
 * Run as a test program called crash-midtap (tests/user_kill_test.ts packs
 * it so): start a TAP stream, then die of #UD in the middle of it.
 */
static void midtap(void)
{
	printf("TAP version 14\n1..3\nok 1 - before the crash\n");
	__asm__ volatile("ud2");
}

int main(int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "crash-midtap"))
		midtap();
	if (argc < 2)
		return 2;
	const char *m = argv[1];
	if (!strcmp(m, "cli"))
		__asm__ volatile("cli");
	else if (!strcmp(m, "hlt"))
		__asm__ volatile("hlt");
	else if (!strcmp(m, "in"))
		__asm__ volatile("inb $0x60, %%al" : : : "rax");
	else if (!strcmp(m, "out"))
		__asm__ volatile("outb %%al, $0x80" : : "a"(0));
	else if (!strcmp(m, "cr3"))
		__asm__ volatile("mov %%rax, %%cr3" : : "a"(0));
	else if (!strcmp(m, "ud2"))
		__asm__ volatile("ud2");
	else if (!strcmp(m, "div0")) {
		volatile int zero = 0;
		return 10 / zero;
	} else if (!strcmp(m, "read-kernel"))
		return *(volatile int *)KERNEL_HALF_START;
	else if (!strcmp(m, "read-kernel-text"))
		return *(volatile int *)0xffffffff80100000UL;
	else if (!strcmp(m, "null"))
		return *(volatile int *)0;
	else if (!strcmp(m, "write-text"))
		*(volatile unsigned char *)(void *)main = 0xc3;
	else if (!strcmp(m, "exec-stack")) {
		volatile unsigned char code[16] = {0xc3};
		((void (*)(void))(void *)code)();
	} else if (!strcmp(m, "exec-heap")) {
		heap_code[0] = 0xc3;
		((void (*)(void))(void *)heap_code)();
	} else if (!strcmp(m, "stack-overflow"))
		return deep(0);
	else if (!strcmp(m, "sleep")) /* not a crash: a child for wait-child */
		return (int)sys_sleep(10UL * 1000 * 1000 * 1000);
	else if (!strcmp(m, "wait-child")) { /* blocks in wait until killed (kernel test) */
		const char *child[] = {"crash", "sleep", NULL};
		long pid = sys_spawn("bin/crash", child);
		int status;
		return pid < 0 ? 4 : (int)sys_wait((int)pid, &status);
	} else if (!strcmp(m, "unmapped"))
		return *(volatile int *)(USER_MMAP_BASE + 12345 * PAGE_SIZE);
	else
		return 3;
	return 0;
}
