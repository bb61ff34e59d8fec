/*
 * The user programs' small C library: entry code (crt0.asm calls main with
 * argc/argv as the System V ABI puts them on the stack), the system calls
 * (sys_* stubs from the generated syscall.h), string functions, printf to
 * fd 1 and a TAP helper. Programs are static, freestanding, general
 * registers only (the kernel does not save SSE state).
 */
#ifndef OUROBOROS_ULIB_H
#define OUROBOROS_ULIB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "layout.h"  /* generated from linker/layout.ts: the user half's regions */
#include "syscall.h" /* generated from linker/syscalls.ts and linker/errors.ts */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* What a program defines. */
int main(int argc, char **argv);

/* End the process with status (never returns). */
__attribute__((noreturn)) void exit(int status);

/* Strings and memory (what the compiler may also call on its own). */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);

/*
 * Formatting: %d %i %u %x %X %o %c %s %p %%, flags '-' and '0', a width, and
 * length modifiers hh h l ll z. Return the length the full output has.
 */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Format and write to fd (in chunks); the length, or the write's -E_x. */
int dprintf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* dprintf to STDOUT_FD. */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Write the string and a newline to STDOUT_FD. */
int puts(const char *s);

/*
 * TAP 14 on stdout: tap_plan(n) first ("TAP version 14", "1..n"), then one
 * tap_ok per test, numbered in order; tap_done() checks the count against
 * the plan and returns the exit status for main (0: all passed).
 */
void tap_plan(int n);
/* "ok N - name" when cond, else "not ok N - name"; returns cond. */
int tap_ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "ok N - name # SKIP reason". */
void tap_skip(const char *reason, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "# message" */
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Failures (plus a plan mismatch) so far: 0 when everything passed. */
int tap_done(void);

/* tap_ok with the expression as the name, and both values on failure. */
#define TAP_EQ(actual, expected)                                                            \
	({                                                                                  \
		long long tap_a_ = (long long)(actual), tap_e_ = (long long)(expected);    \
		if (!tap_ok(tap_a_ == tap_e_, "%s == %s", #actual, #expected))             \
			tap_diag("  got %lld (0x%llx), expected %lld", tap_a_,              \
				 (unsigned long long)tap_a_, tap_e_);                       \
		tap_a_ == tap_e_;                                                           \
	})

#endif
