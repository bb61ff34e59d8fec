/*
 * fork and exec from user space: the child's fork returns 0; after a fork,
 * writes by either side to .data, .bss, the stack and mmap memory are
 * invisible to the other; chains three generations deep with the exits in
 * every order (the six chains at once); a parent exiting before its
 * children; pages at the ends of the user half (the stack's top page, below
 * the kernel half and its self-map, and the mmap area's last page) and a
 * region of 1 GiB; exec replacing the program, and a failing exec leaving it
 * as it was.
 */
#include "ulib.h"

#define MS (1000L * 1000L)

static volatile long data_var = 1; /* .data */
static volatile long bss_var;      /* .bss */
static volatile char bss_pages[3 * 4096];

/* Fork; the child runs fn and exits with its result; the parent gets the child's status. */
static int in_child(int (*fn)(void))
{
	long pid = sys_fork();
	if (pid < 0)
		return (int)pid;
	if (pid == 0)
		exit(fn());
	int status = -1;
	return sys_wait((int)pid, &status) == pid ? status : -1000;
}

static volatile char *heap;
static volatile long *stack_word;

static int child_writes(void)
{
	data_var = 100;
	bss_var = 100;
	bss_pages[4096] = 100;
	heap[0] = 100;
	*stack_word = 100;
	return data_var == 100 && bss_var == 100 && bss_pages[4096] == 100 && heap[0] == 100 &&
			       *stack_word == 100
		       ? 0
		       : 1;
}

static void test_child_writes_invisible(void)
{
	volatile long on_stack = 5;
	stack_word = &on_stack;
	heap = (volatile char *)sys_mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, 0);
	heap[0] = 7;
	TAP_EQ(in_child(child_writes), 0);
	tap_ok(data_var == 1 && bss_var == 0 && bss_pages[4096] == 0 && heap[0] == 7 &&
		       on_stack == 5,
	       "the child's writes (.data, .bss, stack, mmap) are invisible to the parent");
}

/* The child sleeps while the parent writes, then checks it still sees the old values. */
static int child_sees_old(void)
{
	sys_sleep(20 * MS);
	return data_var == 1 && bss_var == 0 && heap[0] == 7 && *stack_word == 5 ? 0 : 1;
}

/* The parent's writes after fork: the child, and a word of the parent's stack. */
struct parent_writes {
	long pid;
	volatile long on_stack;
};

/* Fork the child that sleeps, then write while it sleeps. */
static void start_parent_writes(struct parent_writes *t)
{
	t->on_stack = 5;
	stack_word = &t->on_stack;
	t->pid = sys_fork();
	if (t->pid == 0)
		exit(child_sees_old());
	data_var = 2;
	bss_var = 2;
	heap[0] = 2;
	t->on_stack = 2;
}

/* Wait for the child's verdict; put the values back. */
static void end_parent_writes(struct parent_writes *t)
{
	long pid = t->pid;
	int status = -1;
	TAP_EQ(sys_wait((int)pid, &status), pid);
	tap_ok(status == 0, "the parent's writes after fork are invisible to the child (%d)", status);
	data_var = 1;
	bss_var = 0;
	heap[0] = 7;
}

/* One timer period: sleeps end on a tick, so delays that order exits differ by whole ticks. */
#define TICK (10 * MS)
/* Time the six chains have to fork all their processes before the first exit is due. */
#define CHAIN_SETUP (2 * TICK)
/* Margin for the last orphans to end once their sleeps are over. */
#define CHAIN_MARGIN (2 * TICK)

static int chain_delay[3];
static long chain_start; /* sys_clock() when the chains were started */

/*
 * A page of its own, which the parent writes before a fork and never between
 * that fork and its check: a child's write that wrongly lands in a frame the
 * parent still maps then shows in the parent (a parent write in between
 * would copy the page first and hide it).
 */
struct own_page {
	volatile long v;
	char rest[4096 - sizeof(long)];
} __attribute__((aligned(4096)));

static struct own_page marker;      /* the chains' */
static struct own_page orphan_mark; /* the orphan's */

/* Sleep until the clock reads at least t. */
static void sleep_until(long t)
{
	long now = sys_clock();
	if (now < t)
		sys_sleep((unsigned long)(t - now));
}

/*
 * Generation gen of a chain (0..2): set the marker, fork the next one, sleep
 * until chain_delay[gen] ticks after the setup time, check the marker is
 * still its own. The deadlines count from one start, not from each sleep's
 * own beginning, so the exits follow the delays however the forks were
 * scheduled. A process whose child ends first waits for it and reports its
 * failure too; one ending first leaves its child an orphan. Exit status: 0
 * when everything it saw was right.
 */
static __attribute__((noreturn)) void chain(int gen)
{
	marker.v = 1000 + gen;
	long child = gen < 2 ? sys_fork() : -1;
	if (child == 0)
		chain(gen + 1);
	sleep_until(chain_start + CHAIN_SETUP + chain_delay[gen] * TICK);
	int bad = marker.v != 1000 + gen;
	marker.v = -gen; /* a write after the others may have exited: copy or takeover */
	if (child > 0 && chain_delay[gen + 1] < chain_delay[gen]) {
		int status = -1;
		bad |= sys_wait((int)child, &status) != child || status != 0;
	}
	exit(bad);
}

static const int orders[6][3] = {{1, 2, 3}, {1, 3, 2}, {2, 1, 3}, {2, 3, 1}, {3, 1, 2}, {3, 2, 1}};
static long chain_pids[6];

/*
 * The six exit orders run at once (each chain's own processes and pages;
 * their sleeps overlap instead of following one another); end_chains reads
 * the results in order.
 */
static void start_chains(void)
{
	marker.v = 0; /* present, and shared by every fork below */
	chain_start = sys_clock();
	for (int i = 0; i < 6; i++) {
		for (int g = 0; g < 3; g++)
			chain_delay[g] = orders[i][g];
		chain_pids[i] = sys_fork();
		if (chain_pids[i] == 0)
			chain(0);
	}
}

static void end_chains(void)
{
	for (int i = 0; i < 6; i++) {
		long pid = chain_pids[i];
		int status = -1;
		TAP_EQ(sys_wait((int)pid, &status), pid);
		tap_ok(status == 0 && marker.v == 0,
		       "three generations, exit delays %d,%d,%d (x10 ms): each saw its own memory",
		       orders[i][0], orders[i][1], orders[i][2]);
	}
	/* The orphans end by themselves: give them time before the next test. */
	sleep_until(chain_start + CHAIN_SETUP + 3 * TICK + CHAIN_MARGIN);
}

static volatile long *top_page, *mmap_last;
static volatile char *huge;

static int child_edges(void)
{
	*top_page = 2;
	*mmap_last = 2;
	huge[0] = 2;
	huge[(1L << 30) - 1] = 2;
	huge[1L << 29] = 2;
	return 0;
}

static void test_edges(void)
{
	/* The top page of the stack (argv strings lie there: main no longer needs them). */
	top_page = (volatile long *)(USER_STACK_TOP - 16);
	*top_page = 1;
	mmap_last = (volatile long *)sys_mmap((void *)(USER_MMAP_END - 4096), 4096,
					     PROT_READ | PROT_WRITE, MAP_FIXED);
	huge = (volatile char *)sys_mmap(NULL, 1L << 30, PROT_READ | PROT_WRITE, 0);
	tap_ok((long)mmap_last > 0 && (long)huge > 0, "a page at the mmap area's end, a 1 GiB region");
	*mmap_last = 1;
	huge[0] = 1;
	huge[(1L << 30) - 1] = 1;
	TAP_EQ(in_child(child_edges), 0);
	tap_ok(*top_page == 1 && *mmap_last == 1 && huge[0] == 1 && huge[(1L << 30) - 1] == 1 &&
		       huge[1L << 29] == 0,
	       "the user half's last stack page, the mmap area's last page and a 1 GiB region "
	       "stay the parent's");
	TAP_EQ(sys_munmap((void *)huge, 1L << 30), 0);
	TAP_EQ(sys_munmap((void *)mmap_last, 4096), 0);
}

static int orphan_writes(void)
{
	long pid = sys_fork();
	if (pid == 0) {
		sys_sleep(20 * MS); /* its parent is gone by now */
		orphan_mark.v = 9;
		exit(orphan_mark.v == 9 ? 0 : 1);
	}
	return pid > 0 ? 0 : 1;
}

/*
 * The orphan's write (20 ms after its parent's exit) is invisible here:
 * `started` is what in_child(orphan_writes) returned at least 40 ms before
 * (as long as the test slept after it before), so the write has been made.
 */
static void end_parent_exits_first(int started)
{
	if (!tap_ok(started == 0, "in_child(orphan_writes) == 0"))
		tap_diag("  got %d, expected 0", started);
	TAP_EQ(orphan_mark.v, 1);
}

static int exec_crash(void)
{
	const char *argv[] = {"crash", "no-such-mode", NULL};
	long err = sys_exec("bin/no-such-program", argv);
	if (err != -E_NOENT || data_var != 1)
		return 50;
	data_var = 4; /* a failed exec left the program as it was */
	sys_exec("bin/crash", argv);
	return 51; /* not reached: crash exits 3 for an unknown mode */
}

static void test_exec(void)
{
	TAP_EQ(in_child(exec_crash), 3);
	TAP_EQ(sys_exec("bin/no-such-program", NULL), -E_FAULT);
	TAP_EQ(sys_exec(NULL, NULL), -E_FAULT);
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	tap_plan(28);
	long pid = sys_fork();
	if (pid == 0)
		exit(42);
	int status = -1;
	TAP_EQ(sys_wait((int)pid, &status), pid);
	TAP_EQ(status, 42);
	test_child_writes_invisible();
	/*
	 * The tests that wait for sleeping processes start here, their sleeps
	 * overlapping, and end (their results in the same order) below.
	 */
	struct parent_writes writes;
	start_parent_writes(&writes);
	orphan_mark.v = 1; /* present, and shared by the fork below */
	int orphan_started = in_child(orphan_writes);
	long exits_first_at = sys_clock();
	start_chains();
	end_parent_writes(&writes);
	end_chains();
	test_edges();
	sleep_until(exits_first_at + 4 * TICK); /* passed already: the chains take longer */
	end_parent_exits_first(orphan_started);
	test_exec();
	return tap_done();
}
