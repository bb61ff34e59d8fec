/*
 * User programs as tests: every `tests/X` of the initrd is run in turn and its
 * TAP (written to fd 1/2) nested as the subtest `user_X` of the kernel's
 * TAP stream, indented as a subtest. A program's own plan and results decide
 * together with its end: it must exit with 0 after printing as many results
 * as its plan and no failure; one killed (a fault, or its deadline) fails
 * with a result naming the kill reason. Output of the programs it spawns is
 * kept as TAP comments.
 */
#ifndef OUROBOROS_USER_TESTS_H
#define OUROBOROS_USER_TESTS_H

#include <types.h>

/* Seconds of the monotonic clock a test program may run before it is killed. */
#define USER_TEST_DEADLINE_S 60

/* Programs `filter` selects (NULL: all): a glob's part before its first '.' matches user_X. */
int user_tests_count(const char *filter);

/* Run them as subtests numbered from first; false if any failed. list: only list them. */
bool user_tests_run(const char *filter, int first, bool list);

struct proc;
/* Where a write of p goes when it belongs to a test program (or one it spawned): true if taken. */
bool user_tests_write(struct proc *p, const char *buf, u64 len);

#endif
