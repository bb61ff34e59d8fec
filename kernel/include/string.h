/* Memory and string functions (the compiler may call the mem* ones itself). */
#ifndef OUROBOROS_STRING_H
#define OUROBOROS_STRING_H

#include <types.h>

void *memset(void *dst, int c, size_t n);
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
char *strstr(const char *haystack, const char *needle);
/* The last c in s (c may be NUL), or NULL. */
char *strrchr(const char *s, int c);
/* Copy src into dst[size], always terminated; returns strlen(src) (truncated if >= size). */
size_t strlcpy(char *dst, const char *src, size_t size);

#endif
