/*
 * Self-paging seen from the kernel: the kill reasons of bin/spchild's bad
 * handlers (the user tests only see the vector), and that a process ending
 * while it holds frames, mapped or not, 4 KiB or 2 MiB, gives every one
 * back: the PMM's free count and the holding records as before.
 */
#include <ktest.h>
#include <proc.h>
#include <sched.h>
#include <selfpage.h>
#include <string.h>
#include <trap.h>
#include "test_vmm_util.h"

/* Run bin/spchild MODE: 0 and *x, or -E_NOENT without the program. */
static int run_child(const char *mode, struct exit_info *x)
{
	const char *argv[] = {"spchild", mode};
	int pid = proc_spawn_path("bin/spchild", 2, argv);
	if (pid < 0)
		return pid;
	return proc_wait(pid, x) == pid ? 0 : -E_CHILD;
}

/* The child is killed by #PF with a reason naming `what`; nothing leaks. */
#define EXPECT_SP_KILL(mode, what)                                                   \
	do {                                                                         \
		u64 free0_ = free_frames(), held0_ = selfpage_holdings();            \
		struct exit_info x_;                                                 \
		int err_ = run_child(mode, &x_);                                     \
		if (err_ == -E_NOENT)                                                \
			KTEST_SKIP("no initrd with bin/spchild");                    \
		KASSERT_EQ(err_, 0);                                                 \
		KASSERT(x_.killed);                                                  \
		ktest_log("%s: %s", mode, x_.reason);                                \
		KASSERT_EQ(x_.vector, VEC_PF);                                       \
		KASSERT(strstr(x_.reason, what) != NULL);                           \
		KASSERT_EQ(free_frames(), free0_);                                   \
		KASSERT_EQ(selfpage_holdings(), held0_);                             \
	} while (0)

KTEST(selfpage, bad_handlers_kill_with_the_reason)
{
	EXPECT_SP_KILL("nohandler", "no fault handler");
	EXPECT_SP_KILL("inhandler", "fault inside the fault handler");
	EXPECT_SP_KILL("nofix", "resumed 4 times without fixing it");
	/* Returning jumps to the zero return address: a NULL fault, not a self-paged one. */
	u64 free0 = free_frames();
	struct exit_info x;
	KASSERT_EQ(run_child("returns", &x), 0);
	KASSERT(x.killed);
	ktest_log("returns: %s", x.reason);
	KASSERT(strstr(x.reason, "NULL") != NULL);
	KASSERT_EQ(free_frames(), free0);
}

/* A line every HOLD_CHILDREN_LOG children of the test below (each takes a while under TCG). */
#define HOLD_CHILDREN_LOG 5

KTEST(selfpage, exit_gives_held_frames_back)
{
	struct exit_info x;
	/* A first run makes the record pool's first page (it stays: the pool only grows). */
	int err = run_child("hold", &x);
	if (err == -E_NOENT)
		KTEST_SKIP("no initrd with bin/spchild");
	KASSERT_EQ(err, 0);
	KASSERT_EQ(x.status, 0);
	u64 free0 = free_frames(), held0 = selfpage_holdings();
	for (int i = 0; i < 20; i++) {
		KASSERT_EQ(run_child("hold", &x), 0);
		KASSERT(!x.killed);
		KASSERT_EQ(x.status, 0);
		if ((i + 1) % HOLD_CHILDREN_LOG == 0) /* a line for the runner now and then */
			ktest_log("%d children held frames and exited", i + 1);
	}
	KASSERT_EQ(selfpage_holdings(), held0);
	KASSERT_EQ(free_frames(), free0);
}
