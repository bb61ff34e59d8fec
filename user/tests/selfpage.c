/*
 * Physical memory held by a process: frames taken, mapped, protected,
 * unmapped and given back; every refusal with its own error and nothing
 * changed; frames shared with a child read-only and read-write.
 */
#include "pager.h"

#define PAGE PAGE_SIZE

static unsigned char *region; /* a self-paged region of 4 MiB, 2 MiB-aligned inside */
static unsigned char *r2m;    /* its 2 MiB-aligned part */

static void test_map_use(void)
{
	long f = sys_frame_alloc(0);
	tap_ok(f > 0 && (f & (PAGE - 1)) == 0, "frame_alloc gives a page-aligned frame (0x%lx)", f);
	TAP_EQ(sys_frame_map(region, (unsigned long)f, PROT_READ | PROT_WRITE, 0), 0);
	int zero = 1;
	for (unsigned long i = 0; i < PAGE; i++)
		zero &= region[i] == 0;
	tap_ok(zero, "a new frame reads as zero");
	region[5] = 42;
	TAP_EQ(sys_frame_query(region, 0), f);
	TAP_EQ(sys_frame_free((unsigned long)f), -E_MAPPED);
	TAP_EQ(sys_frame_protect(region, PAGE, PROT_READ), 0);
	TAP_EQ(region[5], 42);
	TAP_EQ(sys_frame_unmap(region, PAGE), 0);
	TAP_EQ(sys_frame_query(region, 0), -E_NOTMAPPED);
	/* The same frame again, elsewhere: it kept what was written. */
	TAP_EQ(sys_frame_map(region + PAGE, (unsigned long)f, PROT_READ, 0), 0);
	TAP_EQ(region[PAGE + 5], 42);
	TAP_EQ(sys_frame_unmap(region + PAGE, PAGE), 0);
	TAP_EQ(sys_frame_free((unsigned long)f), 0);
	TAP_EQ(sys_frame_free((unsigned long)f), -E_NOTHELD);
}

/* A refusal: the error, and the target address still unmapped. */
#define REFUSED(call, err, at, what)                                                         \
	do {                                                                                 \
		long r_ = (call);                                                            \
		if (!tap_ok(r_ == (err) && sys_frame_query((at), 0) == -E_NOTMAPPED,         \
			    "refused: %s (%s)", what, #err))                                 \
			tap_diag("  got %ld", r_);                                           \
	} while (0)

static void test_refusals(void)
{
	long f = sys_frame_alloc(0), gone = sys_frame_alloc(0);
	TAP_EQ(sys_frame_free((unsigned long)gone), 0);
	unsigned char *at = region + 2 * PAGE;
	REFUSED(sys_frame_map(at, (unsigned long)gone, PROT_READ, 0), -E_NOTHELD, at,
		"a frame not held");
	REFUSED(sys_frame_map(at, KERNEL_PHYS_BASE, PROT_READ, 0), -E_FRAME_KERNEL, at,
		"a frame of the kernel image");
	/* A page table of our own: the PT that maps the stack we run on. */
	unsigned long local = 0;
	long pt = sys_frame_query(&local, 1), pml4 = sys_frame_query(&local, 4);
	tap_ok(pt > 0 && pml4 > 0, "frame_query finds our page tables");
	REFUSED(sys_frame_map(at, (unsigned long)pt, PROT_READ, 0), -E_FRAME_PT, at,
		"a page-table frame (PT)");
	REFUSED(sys_frame_map(at, (unsigned long)pml4, PROT_READ, 0), -E_FRAME_PT, at,
		"a page-table frame (PML4)");
	TAP_EQ(sys_frame_map((void *)(KERNEL_HALF_START + 0x200000000ULL), (unsigned long)f,
			     PROT_READ, 0),
	       -E_KERNADDR);
	TAP_EQ(sys_frame_map((void *)SELFMAP_BASE, (unsigned long)f, PROT_READ, 0), -E_SELFMAP);
	TAP_EQ(sys_frame_map((void *)(0UL - LARGE_PAGE_SIZE), (unsigned long)f, PROT_READ, FRAME_2M),
	       -E_WRAP);
	TAP_EQ(sys_frame_unmap((void *)(0UL - PAGE), 2 * PAGE), -E_WRAP);
	TAP_EQ(sys_frame_protect((void *)(0UL - PAGE), 2 * PAGE, PROT_READ), -E_WRAP);
	/* Outside self-paged regions: the stack is the kernel's to page. */
	TAP_EQ(sys_frame_map((void *)((unsigned long)&local & ~(PAGE - 1)), (unsigned long)f,
			     PROT_READ, 0),
	       -E_NOTSELFPAGED);
	/* A 2 MiB page over frames not all held: ours is one of 512. */
	unsigned long run = (unsigned long)f & ~(LARGE_PAGE_SIZE - 1);
	REFUSED(sys_frame_map(r2m, run, PROT_READ, FRAME_2M), -E_NOTHELD, r2m,
		"a 2 MiB page over frames not all held");
	TAP_EQ(sys_frame_map(region + 1, (unsigned long)f, PROT_READ, 0), -E_ALIGN);
	TAP_EQ(sys_frame_map(at, (unsigned long)f, PROT_WRITE, 0), -E_INVAL);
	TAP_EQ(sys_mprotect(region, PAGE, PROT_READ), -E_PERM);
	TAP_EQ(sys_frame_free((unsigned long)f), 0);
}

static void test_huge(void)
{
	long h = sys_frame_alloc(FRAME_2M);
	if (h == -E_NOCONTIG) {
		tap_skip("no contiguous 2 MiB run in the allocator's window", "2 MiB frame");
		tap_skip("no contiguous 2 MiB run", "2 MiB page mapped");
		tap_skip("no contiguous 2 MiB run", "2 MiB page unmapped");
		return;
	}
	tap_ok(h > 0 && (h & (LARGE_PAGE_SIZE - 1)) == 0, "a 2 MiB frame, aligned (0x%lx)", h);
	int ok = sys_frame_map(r2m, (unsigned long)h, PROT_READ | PROT_WRITE, FRAME_2M) == 0;
	if (ok) {
		r2m[0] = 1;
		r2m[LARGE_PAGE_SIZE - 1] = 2;
		ok = sys_frame_query(r2m + LARGE_PAGE_SIZE - 1, 0) ==
			     h + (long)LARGE_PAGE_SIZE - (long)PAGE &&
		     r2m[0] == 1;
	}
	tap_ok(ok, "a 2 MiB page mapped from it, both ends usable");
	/* Part of a 2 MiB page cannot be unmapped alone. */
	int part = sys_frame_unmap(r2m, PAGE) == -E_HUGE;
	tap_ok(part && sys_frame_unmap(r2m, LARGE_PAGE_SIZE) == 0 &&
		       sys_frame_free((unsigned long)h) == 0,
	       "unmapped whole (not in part) and given back");
}

static void test_share(void)
{
	long data = sys_frame_alloc(0), signal = sys_frame_alloc(0);
	unsigned char *d = region + 8 * PAGE, *s = region + 9 * PAGE;
	TAP_EQ(sys_frame_map(d, (unsigned long)data, PROT_READ | PROT_WRITE, 0) |
		       sys_frame_map(s, (unsigned long)signal, PROT_READ | PROT_WRITE, 0),
	       0);
	for (unsigned long i = 0; i < PAGE; i++)
		d[i] = (unsigned char)(i * 3 + 1);
	char a[24], b[24];
	snprintf(a, sizeof(a), "%lx", (unsigned long)data);
	snprintf(b, sizeof(b), "%lx", (unsigned long)signal);
	const char *argv[] = {"spchild", "share", a, b, NULL};
	const unsigned long grants[4] = {(unsigned long)data, PROT_READ, (unsigned long)signal,
					 PROT_READ | PROT_WRITE};
	long pid = sys_spawn_grant("bin/spchild", argv, grants, 2);
	tap_ok(pid > 0, "spawn_grant: a child holding one frame read-only, one read-write");
	/* We let go of DATA: now only the child holds it. */
	TAP_EQ(sys_frame_unmap(d, PAGE), 0);
	TAP_EQ(sys_frame_free((unsigned long)data), 0);
	REFUSED(sys_frame_map(d, (unsigned long)data, PROT_READ, 0), -E_FRAME_OTHER, d,
		"a frame another process holds");
	volatile unsigned long *flag = (volatile unsigned long *)s;
	*flag = 1;
	int status = -1;
	TAP_EQ(sys_wait((int)pid, &status), pid);
	TAP_EQ(status, 0);
	TAP_EQ(*flag, 2); /* the child's write, through the shared frame */
	/* The child ended: DATA went back to the allocator, nobody holds it. */
	TAP_EQ(sys_frame_map(d, (unsigned long)data, PROT_READ, 0), -E_NOTHELD);
	const unsigned long bad[2] = {(unsigned long)data, PROT_READ};
	const char *targv[] = {"true", NULL};
	TAP_EQ(sys_spawn_grant("bin/true", targv, bad, 1), -E_NOTHELD);
	TAP_EQ(sys_munmap(s, PAGE), 0);
	TAP_EQ(sys_frame_free((unsigned long)signal), 0); /* munmap left it held */
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	tap_plan(47);
	long r = sys_selfpage(NULL, 2 * LARGE_PAGE_SIZE, 0);
	if (!tap_ok(r > 0, "selfpage declares a region (0x%lx)", r))
		return tap_done();
	region = (unsigned char *)r;
	r2m = (unsigned char *)(((unsigned long)r + LARGE_PAGE_SIZE - 1) & ~(LARGE_PAGE_SIZE - 1));
	test_map_use();
	test_refusals();
	test_huge();
	test_share();
	return tap_done();
}
