/* Fatal errors: report as TAP (comment lines + Bail out!) and leave QEMU. */
#ifndef OUROBOROS_PANIC_H
#define OUROBOROS_PANIC_H

#include <types.h>

/*
 * Print "# panic: <message>", a backtrace and "Bail out! panic: <message>",
 * then exit QEMU with DEBUG_EXIT_PANIC (or halt forever without the device).
 */
NORETURN void panic(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* True once a CPU has begun reporting a panic (the others that panic then stop silently). */
bool panic_in_progress(void);

/* Print a frame-pointer backtrace as "#   [i] 0x..." lines, starting with rip. */
void backtrace_print(u64 rip, u64 rbp);

/* Write `code` to QEMU's isa-debug-exit port, then halt forever. */
NORETURN void debug_exit(u8 code);

/*
 * Check an invariant that must hold whatever the input: panic naming it if
 * not. The condition must only read: with -DOUROBOROS_NO_ASSERT the check is
 * compiled out and the condition is never evaluated (only type-checked), so
 * an operation inside it would vanish. An operation whose result must hold
 * goes in MUST instead.
 */
#ifdef OUROBOROS_NO_ASSERT
#define ASSERT(cond) ((void)sizeof(!(cond)))
#else
#define ASSERT(cond)                                                                  \
	do {                                                                          \
		if (!(cond))                                                          \
			panic("assertion failed: %s at %s:%d", #cond, __FILE__, \
			      __LINE__);                                   \
	} while (0)
#endif

/*
 * Do `expr`, an operation that cannot fail unless an invariant is broken,
 * and panic naming it if it yields false (for a call returning 0 on
 * success: MUST(f() == 0)). Always evaluated, in every build.
 */
#define MUST(expr)                                                                    \
	do {                                                                          \
		if (!(expr))                                                          \
			panic("operation failed: %s at %s:%d", #expr, __FILE__, \
			      __LINE__);                                   \
	} while (0)

#endif
