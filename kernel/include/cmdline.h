/*
 * The kernel command line: space-separated `key=value` and `key` words.
 *
 * Options:
 *   ktest.filter=<glob>[,<glob>...]  run only tests whose "suite.test" matches
 *   ktest.list                       list the selected tests (as skipped TAP results), run none
 *   selftest=<name>                  run one failure-class selftest instead
 *   model.seed=<n>, model.ops=<n>    seed and length of the VMM's randomized model test
 *   pmm.fail=nth:N|budget:N|random:SEED:PERMILLE
 *                                    inject frame-allocation failures (pmm.h) once the
 *                                    memory manager is up: the N-th allocation, every one
 *                                    after N, or PERMILLE in 1000 from a seeded sequence
 *   pmm.exhaust                      exhaust RAM for real at any size (pmm's exhaustion test;
 *                                    without it, only with at most 64 MiB: slow under TCG)
 *   oracle                           stop at page-table checkpoints for the runner's QEMU oracle
 *   bench                            run the memory-manager benchmark (bench.h) instead of the tests
 *   sched.cpu0                       new processes of process 0 stay on CPU 0 (sched.h); by
 *                                    default they may run on every CPU
 *   bench.smp                        run the SMP benchmark (shootdowns, boot time; bench.h) instead
 * Unknown keys are kept and reported as TAP warnings, never silently ignored.
 */
#ifndef OUROBOROS_CMDLINE_H
#define OUROBOROS_CMDLINE_H

#include <bootinfo.h>
#include <types.h>

/* Most problems (unknown keys, malformed words) kept for reporting. */
#define CMDLINE_MAX_WARNINGS 8

struct kernel_options {
	const char *ktest_filter; /* NULL: run every test */
	const char *selftest;     /* NULL: run the tests */
	const char *model_seed;   /* NULL: the model test's fixed default seed */
	const char *model_ops;    /* NULL: the model test's default length */
	const char *pmm_fail;     /* NULL: no injected allocation failures */
	bool ktest_list;          /* list the selected tests instead of running them */
	bool oracle;              /* a runner with QMP answers checkpoints (see oracle.h) */
	bool bench;               /* run the benchmark instead of the tests */
	bool bench_smp;           /* run the SMP benchmark instead of the tests */
	bool pmm_exhaust;         /* the exhaustion test runs whatever the RAM size */
	bool sched_cpu0;          /* new processes stay on CPU 0 (sched.h) */
	/* Problems found, as messages for "# warning: ..." lines. */
	char warnings[CMDLINE_MAX_WARNINGS][96];
	int nwarnings;
	int dropped_warnings; /* beyond CMDLINE_MAX_WARNINGS */
	char buf[CMDLINE_MAX]; /* the words, NUL-separated; options point into it */
};

/* Parse `line` into *out (which owns copies of the values). Returns the number of warnings. */
int cmdline_parse(const char *line, struct kernel_options *out);

/* Print each warning as "# warning: ..." on the console. */
void cmdline_print_warnings(const struct kernel_options *opts);

/* The options the kernel booted with. */
extern struct kernel_options kernel_options;

/* Match `str` against a glob with `*` (any run) and `?` (any one character). */
bool glob_match(const char *pattern, const char *str);

/* Match `str` against a comma-separated list of globs. */
bool glob_match_list(const char *patterns, const char *str);

#endif
