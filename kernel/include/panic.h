/* Fatal errors: report as TAP (comment lines + Bail out!) and leave QEMU. */
#ifndef OUROBOROS_PANIC_H
#define OUROBOROS_PANIC_H

#include <types.h>

/*
 * Print "# panic: <message>", a backtrace and "Bail out! panic: <message>",
 * then exit QEMU with DEBUG_EXIT_PANIC (or halt forever without the device).
 */
NORETURN void panic(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* Print a frame-pointer backtrace as "#   [i] 0x..." lines, starting with rip. */
void backtrace_print(u64 rip, u64 rbp);

/* Write `code` to QEMU's isa-debug-exit port, then halt forever. */
NORETURN void debug_exit(u8 code);

/* Check an invariant that must hold whatever the input: panic naming it if not. */
#define ASSERT(cond)                                                                  \
	do {                                                                          \
		if (!(cond))                                                          \
			panic("assertion failed: %s at %s:%d", #cond, __FILE__, \
			      __LINE__);                                   \
	} while (0)

#endif
