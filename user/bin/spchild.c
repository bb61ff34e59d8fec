/*
 * The other side of the self-paging tests (user/tests/selfpage.c, upcall.c):
 *   spchild share DATA SIGNAL   DATA held read-only, SIGNAL read-write (hex
 *       frames granted at spawn): waits for SIGNAL's first word to be 1,
 *       checks DATA's pattern, that DATA cannot be mapped writable or passed
 *       on writable, writes 2 into SIGNAL. Exit 0, or the number of the
 *       check that failed.
 *   spchild hold   takes frames (a 2 MiB run too), maps some, exits holding them.
 *   spchild nohandler | inhandler | nofix | returns   a fault the kernel
 *       must kill for (the parent checks the kill).
 */
#include "pager.h"

#define PAGE PAGE_SIZE

static unsigned long hex(const char *s)
{
	unsigned long v = 0;
	for (; *s; s++)
		v = v * 16 + (unsigned long)(*s <= '9' ? *s - '0' : *s - 'a' + 10);
	return v;
}

static int share(unsigned long data, unsigned long signal)
{
	long r = sys_selfpage(NULL, 2 * PAGE, 0);
	if (r < 0)
		return 1;
	unsigned char *d = (unsigned char *)r, *s = d + PAGE;
	if (sys_frame_map(d, data, PROT_READ | PROT_WRITE, 0) != -E_READONLY)
		return 2;
	if (sys_frame_map(d, data, PROT_READ, 0) != 0 ||
	    sys_frame_map(s, signal, PROT_READ | PROT_WRITE, 0) != 0)
		return 3;
	if (sys_frame_protect(d, PAGE, PROT_READ | PROT_WRITE) != -E_READONLY)
		return 4;
	const unsigned long grant[2] = {data, PROT_READ | PROT_WRITE};
	const char *argv[] = {"true", NULL};
	if (sys_spawn_grant("bin/true", argv, grant, 1) != -E_READONLY)
		return 5;
	volatile unsigned long *flag = (volatile unsigned long *)s;
	while (*flag != 1)
		sys_yield();
	for (unsigned long i = 0; i < PAGE; i++)
		if (d[i] != (unsigned char)(i * 3 + 1))
			return 6;
	*flag = 2;
	return 0;
}

/* A handler that touches another unmapped self-paged page. */
static unsigned char *other_page;
static void faulting_handler(struct fault_info *info)
{
	(void)info;
	*(volatile unsigned char *)other_page = 1;
	sys_fault_resume();
}

/* A handler that fixes nothing. */
static void lazy_handler(struct fault_info *info)
{
	(void)info;
	sys_fault_resume();
}

/* A handler that returns (to the zero return address the kernel put on its stack). */
static void returning_handler(struct fault_info *info)
{
	(void)info;
}

static int fault(const char *mode)
{
	static unsigned char stack[4 * PAGE] __attribute__((aligned(16)));
	long r = sys_selfpage(NULL, 2 * PAGE, 0);
	if (r < 0)
		return 1;
	volatile unsigned char *p = (volatile unsigned char *)r;
	other_page = (unsigned char *)r + PAGE;
	void (*h)(struct fault_info *) = NULL;
	if (!strcmp(mode, "inhandler"))
		h = faulting_handler;
	else if (!strcmp(mode, "nofix"))
		h = lazy_handler;
	else if (!strcmp(mode, "returns"))
		h = returning_handler;
	else if (strcmp(mode, "nohandler"))
		return 2;
	if (h && sys_fault_handler((void *)h, stack + sizeof(stack)) != 0)
		return 3;
	*p = 1; /* killed here (or, with a bug, we go on and say so) */
	return 4;
}

/* Hold frames (one 2 MiB run if there is one), map some, end without giving them back. */
static int hold(void)
{
	long r = sys_selfpage(NULL, 2 * LARGE_PAGE_SIZE, 0);
	if (r < 0)
		return 1;
	unsigned char *p = (unsigned char *)r;
	for (int i = 0; i < 3; i++) {
		long f = sys_frame_alloc(0);
		if (f < 0 || sys_frame_map(p + i * PAGE, (unsigned long)f, PROT_READ | PROT_WRITE, 0))
			return 2;
		p[i * PAGE] = 1;
	}
	(void)sys_frame_alloc(0); /* held, never mapped */
	long h = sys_frame_alloc(FRAME_2M);
	unsigned char *big =
		(unsigned char *)(((unsigned long)r + 4 * PAGE + LARGE_PAGE_SIZE - 1) & ~(LARGE_PAGE_SIZE - 1));
	if (h > 0 && sys_frame_map(big, (unsigned long)h, PROT_READ | PROT_WRITE, FRAME_2M))
		return 3;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "hold"))
		return hold();
	if (argc == 4 && !strcmp(argv[1], "share"))
		return share(hex(argv[2]), hex(argv[3]));
	if (argc == 2)
		return fault(argv[1]);
	return 100;
}
