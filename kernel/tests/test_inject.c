/*
 * The PMM's fault injection (pmm.h): each mode fails exactly the calls it
 * says, an injected failure changes nothing but the failure counter, and
 * pmm.fail= values parse as documented. The out-of-memory tests of the VMM
 * (test_vmm_fault.c, test_vmm_space.c, test_model.c) rely on all of this.
 */
#include <ktest.h>
#include <panic.h>
#include <pmm.h>
#include <string.h>

/* Calls made in one round of a mode's test. */
#define ROUND 8
/* Calls the random mode is measured over. */
#define RANDOM_CALLS 2000

/*
 * Call pmm_alloc n times, recording in fail[i] whether call i failed, and
 * give every frame back (newest first). Returns the number of failures.
 */
static u64 alloc_round(u64 n, bool *fail)
{
	u64 frames[ROUND], got = 0, failures = 0;
	for (u64 i = 0; i < n; i++) {
		u64 f = 0;
		fail[i] = pmm_alloc(&f) != 0;
		failures += fail[i];
		if (!fail[i])
			frames[got++] = f;
	}
	while (got > 0)
		MUST(pmm_free(frames[--got]) == 0);
	return failures;
}

KTEST(pmm_inject, fail_nth_fails_that_call_once)
{
	bool fail[ROUND];
	u64 injected0 = pmm_inject_failures(), free0 = pmm_nr_free();
	pmm_inject_fail_nth(3);
	KASSERT(pmm_inject_active());
	u64 failures = alloc_round(ROUND, fail);
	bool active_after = pmm_inject_active();
	pmm_inject_off();
	KASSERT_EQ(failures, 1);
	KASSERT(!fail[0] && !fail[1] && fail[2] && !fail[3] && !fail[7]);
	KASSERT(!active_after); /* it fired, so it is off */
	KASSERT_EQ(pmm_inject_failures() - injected0, 1);
	KASSERT_EQ(pmm_nr_free(), free0);
}

KTEST(pmm_inject, fail_nth_zero_is_off)
{
	pmm_inject_fail_nth(0);
	KASSERT(!pmm_inject_active());
	bool fail[ROUND];
	KASSERT_EQ(alloc_round(ROUND, fail), 0);
}

KTEST(pmm_inject, budget_then_every_call_fails)
{
	bool fail[ROUND];
	u64 injected0 = pmm_inject_failures();
	pmm_inject_budget(5);
	u64 failures = alloc_round(ROUND, fail);
	bool still = pmm_inject_active();
	pmm_inject_off();
	KASSERT_EQ(failures, ROUND - 5);
	KASSERT(!fail[4] && fail[5] && fail[6] && fail[7]);
	KASSERT(still); /* a budget stays spent until turned off */
	KASSERT_EQ(pmm_inject_failures() - injected0, ROUND - 5);
	/* Budget 0: not even one frame. */
	pmm_inject_budget(0);
	failures = alloc_round(1, fail);
	pmm_inject_off();
	KASSERT_EQ(failures, 1);
	KASSERT_EQ(alloc_round(ROUND, fail), 0); /* off means off */
}

KTEST(pmm_inject, injected_failure_changes_nothing)
{
	struct pmm_stats before, after;
	struct pmm_stack_info ibefore, iafter;
	pmm_get_stats(&before);
	pmm_get_stack_info(&ibefore);
	u64 f = 0xdead000;
	pmm_inject_budget(0);
	int r = pmm_alloc(&f);
	pmm_inject_off();
	pmm_get_stats(&after);
	pmm_get_stack_info(&iafter);
	KASSERT_EQ(r, -E_NOMEM);
	KASSERT_EQ(f, 0xdead000); /* *frame untouched */
	KASSERT(memcmp(&before, &after, sizeof(before)) == 0);
	KASSERT_EQ(iafter.depth, ibefore.depth);
	KASSERT_EQ(iafter.pages, ibefore.pages);
	KASSERT_EQ(pmm_nr_free(), before.free);
}

/* Failures of RANDOM_CALLS single allocations (each given back) under random:seed:permille. */
static u64 random_failures(u64 seed, u32 permille, u64 *pattern)
{
	u64 failures = 0;
	*pattern = 0;
	pmm_inject_random(seed, permille);
	for (u64 i = 0; i < RANDOM_CALLS; i++) {
		u64 f;
		bool failed = pmm_alloc(&f) != 0;
		if (!failed)
			MUST(pmm_free(f) == 0);
		failures += failed;
		*pattern = *pattern * 31 + failed; /* which calls failed, folded */
	}
	pmm_inject_off();
	return failures;
}

KTEST(pmm_inject, random_is_seeded_and_near_its_rate)
{
	u64 p1, p2, p3, p4;
	u64 a = random_failures(42, 100, &p1);
	u64 b = random_failures(42, 100, &p2);
	u64 c = random_failures(43, 100, &p3);
	ktest_log("random:42:100 failed %llu of %u calls; random:43:100 %llu", a, RANDOM_CALLS, c);
	KASSERT_EQ(a, b);   /* same seed, same failures */
	KASSERT_EQ(p1, p2); /* at the same calls */
	KASSERT_NE(p1, p3); /* another seed, another sequence */
	/* 10% of 2000 is 200; xorshift is far better than +-50. */
	KASSERT(a >= 150 && a <= 250);
	KASSERT(c >= 150 && c <= 250);
	KASSERT_EQ(random_failures(7, 0, &p4), 0);
	KASSERT_EQ(random_failures(7, 1000, &p4), RANDOM_CALLS);
}

KTEST(pmm_inject, parse_command_line_values)
{
	bool fail[ROUND];
	KASSERT_EQ(pmm_inject_parse("nth:2"), 0);
	u64 failures = alloc_round(ROUND, fail);
	KASSERT_EQ(failures, 1);
	KASSERT(fail[1]);
	KASSERT_EQ(pmm_inject_parse("budget:3"), 0);
	failures = alloc_round(ROUND, fail);
	pmm_inject_off();
	KASSERT_EQ(failures, ROUND - 3);
	KASSERT_EQ(pmm_inject_parse("random:9:1000"), 0);
	failures = alloc_round(ROUND, fail);
	pmm_inject_off();
	KASSERT_EQ(failures, ROUND);
	/* Malformed values set nothing. */
	static const char *const bad[] = {
		"", "nth", "nth:", "nth:0", "nth:x", "nth:5:", "budget:-1", "budget:1x",
		"random:1", "random:1:", "random::5", "random:1:1001", "random:1:5:", "often",
		"nth:99999999999999999999",
	};
	for (u64 i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (pmm_inject_parse(bad[i]) != -E_INVAL || pmm_inject_active()) {
			pmm_inject_off();
			KASSERT_STREQ(bad[i], "(a value the parser should refuse)");
		}
	}
	KASSERT_EQ(pmm_inject_parse(NULL), -E_INVAL);
}
