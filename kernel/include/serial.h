/* The COM1 serial console: the kernel's only output (and the TAP channel). */
#ifndef OUROBOROS_SERIAL_H
#define OUROBOROS_SERIAL_H

#include <types.h>

void serial_init(void);
void serial_putc(char c);
void serial_write(const char *s, size_t len);
/* True when the last byte sent ended a line: reports start one only if it did not. */
bool serial_at_line_start(void);

#endif
