/*
 * Ring-3 probes for kernel tests: run a few instructions in user mode from a
 * kernel test, in the current address space, with interrupts off, until the
 * first exception (a #PF, or the ud2 the code ends with). The exception is
 * taken on a stack of its own and resumes the test (kernel/ktest/user_probe.c).
 */
#ifndef OUROBOROS_USER_PROBE_H
#define OUROBOROS_USER_PROBE_H

#include <types.h>

/* The exception that ended a probe. */
struct probe_result {
	u64 vector, error_code, cr2, rip;
};

/* Enter ring 3 at rip (a user page) with rax = arg; *out: the exception that came. */
void user_probe_run(u64 rip, u64 arg, struct probe_result *out);

#endif
