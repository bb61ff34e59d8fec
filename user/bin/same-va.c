/*
 * Maps one page at a fixed address every copy of this program shares, writes
 * its pid there, sleeps so its siblings do the same, and checks the page
 * still holds its own pid: exit 0 if so, 1 if another process's write showed.
 */
#include "ulib.h"

#define SHARED_VA (USER_MMAP_BASE + 7 * PAGE_SIZE)

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	long pid = sys_getpid();
	if (sys_mmap((void *)SHARED_VA, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_FIXED) != SHARED_VA)
		return 2;
	volatile long *p = (volatile long *)SHARED_VA;
	*p = pid;
	sys_sleep(20 * 1000 * 1000);
	sys_yield();
	return *p == pid ? 0 : 1;
}
