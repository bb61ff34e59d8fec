/*
 * Anonymous memory: mmap gives demand-zero pages with the rights asked for,
 * munmap takes them away, mprotect changes them; bad arguments are refused
 * with the error that names them.
 */
#include "ulib.h"

#define PAGE PAGE_SIZE

static void test_map_use_unmap(void)
{
	long r = sys_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, 0);
	tap_ok(r > 0 && (r & (PAGE - 1)) == 0, "mmap returns a page-aligned address (0x%lx)", r);
	if (r <= 0) {
		tap_skip("mmap failed", "pages read as zero");
		tap_skip("mmap failed", "pages keep what is written");
		tap_skip("mmap failed", "munmap");
		return;
	}
	unsigned char *p = (unsigned char *)r;
	int zero = 1;
	for (unsigned long i = 0; i < 4 * PAGE; i += 512)
		zero &= p[i] == 0;
	tap_ok(zero, "pages read as zero");
	for (unsigned long i = 0; i < 4 * PAGE; i++)
		p[i] = (unsigned char)(i * 7);
	int same = 1;
	for (unsigned long i = 0; i < 4 * PAGE; i++)
		same &= p[i] == (unsigned char)(i * 7);
	tap_ok(same, "pages keep what is written");
	TAP_EQ(sys_munmap(p, 4 * PAGE), 0);
}

static void test_fixed_and_protect(void)
{
	void *want = (void *)(USER_MMAP_BASE + 64 * PAGE);
	long r = sys_mmap(want, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_FIXED);
	TAP_EQ(r, (long)want);
	if (r == (long)want) {
		*(volatile int *)want = 5;
		TAP_EQ(sys_mprotect(want, 2 * PAGE, PROT_READ), 0);
		TAP_EQ(*(volatile int *)want, 5);
		TAP_EQ(sys_munmap(want, 2 * PAGE), 0);
	} else {
		for (int i = 0; i < 3; i++)
			tap_skip("MAP_FIXED failed", "fixed mapping step %d", i);
	}
}

static void test_refusals(void)
{
	TAP_EQ(sys_mmap(NULL, 0, PROT_READ, 0), -E_INVAL);
	TAP_EQ(sys_mmap((void *)0x1001, PAGE, PROT_READ, MAP_FIXED), -E_ALIGN);
	TAP_EQ(sys_mmap(NULL, PAGE, 0x80, 0), -E_INVAL);
	/* The kernel half is never the user's. */
	TAP_EQ(sys_mmap((void *)KERNEL_HALF_START, PAGE, PROT_READ, MAP_FIXED), -E_INVAL);
	TAP_EQ(sys_munmap((void *)0x1001, PAGE), -E_ALIGN);
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	tap_plan(13);
	test_map_use_unmap();
	test_fixed_and_protect();
	test_refusals();
	return tap_done();
}
