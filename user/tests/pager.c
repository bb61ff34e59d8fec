/*
 * The paging library at work: a sort over each kind of memory object
 * (zero-fill, copy-on-write over a filled object, paged with few frames),
 * checked element by element; eviction with N = 1; every frame given back.
 */
#include "pager.h"

#define PAGE PAGE_SIZE
#define SORT_PAGES 8
#define N_ELEMS (SORT_PAGES * PAGE / sizeof(unsigned int))

static unsigned int seed = 12345;
static unsigned int next_rand(void)
{
	seed = seed * 1103515245u + 12345u;
	return seed >> 8;
}

/* Fill a with pseudo-random values (the same for the same seed); their sum. */
static unsigned long fill(unsigned int *a, unsigned int s)
{
	unsigned long sum = 0;
	seed = s;
	for (unsigned long i = 0; i < N_ELEMS; i++)
		sum += a[i] = next_rand() % 100000;
	return sum;
}

/* Shell sort: few passes, each touching the pages far apart (a hard case for paging). */
static void sort(unsigned int *a, unsigned long n)
{
	for (unsigned long gap = n / 2; gap; gap /= 2)
		for (unsigned long i = gap; i < n; i++) {
			unsigned int v = a[i];
			unsigned long j = i;
			for (; j >= gap && a[j - gap] > v; j -= gap)
				a[j] = a[j - gap];
			a[j] = v;
		}
}

/* Sorted, and the same elements (by sum). */
static int sorted(const unsigned int *a, unsigned long sum)
{
	unsigned long s = 0;
	for (unsigned long i = 0; i < N_ELEMS; i++) {
		if (i && a[i - 1] > a[i])
			return 0;
		s += a[i];
	}
	return s == sum;
}

static void test_zero(void)
{
	struct pager_obj o;
	TAP_EQ(pager_zero(&o, SORT_PAGES), 0);
	unsigned int *a = (unsigned int *)o.base;
	tap_ok(a[0] == 0 && a[N_ELEMS - 1] == 0, "zero-fill pages read as zero");
	unsigned long sum = fill(a, 1);
	sort(a, N_ELEMS);
	tap_ok(sorted(a, sum), "zero-fill: %lu elements sorted", (unsigned long)N_ELEMS);
	TAP_EQ(o.faults, SORT_PAGES);
	TAP_EQ(pager_destroy(&o), 0);
}

static void test_cow(void)
{
	struct pager_obj src, c;
	TAP_EQ(pager_zero(&src, SORT_PAGES) | pager_cow(&c, &src), 0);
	unsigned int *s = (unsigned int *)src.base, *a = (unsigned int *)c.base;
	unsigned long sum = fill(s, 2);
	/* Reads first: the source's frames, mapped read-only, no copy. */
	unsigned long rsum = 0;
	for (unsigned long i = 0; i < N_ELEMS; i++)
		rsum += a[i];
	tap_ok(rsum == sum && c.copies == 0, "cow reads show the source without copying");
	sort(a, N_ELEMS);
	tap_ok(sorted(a, sum), "cow: sorted its copy");
	TAP_EQ(c.copies, SORT_PAGES);
	seed = 2;
	int same = 1;
	for (unsigned long i = 0; i < N_ELEMS; i++)
		same &= s[i] == next_rand() % 100000;
	tap_ok(same, "cow: the source is unchanged");
	TAP_EQ(pager_destroy(&c) | pager_destroy(&src), 0);
}

static void test_paged(unsigned long n)
{
	struct pager_obj o;
	TAP_EQ(pager_paged(&o, SORT_PAGES, n), 0);
	unsigned int *a = (unsigned int *)o.base;
	unsigned long sum = fill(a, 3);
	sort(a, N_ELEMS);
	tap_ok(sorted(a, sum), "paged (N = %lu): sorted", n);
	tap_ok(o.nresident <= n && o.evictions > 0, "paged (N = %lu): %lu evictions, %lu faults",
	       n, o.evictions, o.faults);
	TAP_EQ(pager_destroy(&o), 0);
}

/* N = 1: every page written, then read back, each access evicting the one before. */
static void test_paged_one(void)
{
	struct pager_obj o;
	TAP_EQ(pager_paged(&o, SORT_PAGES, 1), 0);
	for (unsigned long p = 0; p < SORT_PAGES; p++)
		for (unsigned long i = 0; i < PAGE; i += 64)
			o.base[p * PAGE + i] = (unsigned char)(p * 31 + i / 64);
	int same = 1;
	for (unsigned long p = SORT_PAGES; p-- > 0;)
		for (unsigned long i = 0; i < PAGE; i += 64)
			same &= o.base[p * PAGE + i] == (unsigned char)(p * 31 + i / 64);
	tap_ok(same, "N = 1: every page comes back from the backing store");
	TAP_EQ(o.evictions, 2 * SORT_PAGES - 2);
	TAP_EQ(o.nresident, 1);
	TAP_EQ(pager_destroy(&o), 0);
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	tap_plan(21);
	TAP_EQ(pager_init(), 0);
	test_zero();
	test_cow();
	test_paged(4);
	test_paged_one();
	return tap_done();
}
