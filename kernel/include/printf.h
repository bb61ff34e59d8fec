/*
 * Formatted output: %d %i %u %x %X %p %s %c %% with the l/ll/z length
 * modifiers, a field width, '0' padding and '-' left-justification.
 */
#ifndef OUROBOROS_PRINTF_H
#define OUROBOROS_PRINTF_H

#include <types.h>

/*
 * The console's lock (LOCK_ORDER_CONSOLE): kprintf takes it for each call;
 * other writers of the console (a process's write) too. console_enter says
 * whether it took it (not on one CPU, nor when this CPU holds it already).
 */
bool console_enter(void);
void console_leave(bool took);

/* Print to the serial console; returns the number of characters written. */
int kprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);
int kvprintf(const char *fmt, va_list ap);

/*
 * Format into buf[size]: never writes past it and always terminates it (when
 * size > 0). Returns the length the full output would have had, so a result
 * >= size means it was truncated.
 */
int ksnprintf(char *buf, size_t size, const char *fmt, ...) PRINTF_LIKE(3, 4);
int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

#endif
