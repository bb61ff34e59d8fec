/*
 * Memory and string functions. The compiler may emit calls to memset,
 * memcpy, memmove and memcmp by itself, so they must exist; and it may also
 * turn a byte loop back into such a call, so the loops here are compiled
 * without that pattern recognition (or use string instructions directly).
 */
#include <string.h>

#define NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))

/*
 * memset and memcpy move 8 bytes an iteration, then the tail by bytes:
 * under TCG each iteration of a rep instruction is one instruction (and
 * one helper call), so a byte loop costs 8 times as much (a process's
 * region table copied at fork: 1 KiB).
 */

/* Fill n bytes at dst with (u8)c. */
void *memset(void *dst, int c, size_t n)
{
	void *d = dst;
	size_t q = n / sizeof(u64), tail = n % sizeof(u64);
	u64 v = (u8)c * 0x0101010101010101ULL;
	__asm__ volatile("rep stosq" : "+D"(d), "+c"(q) : "a"(v) : "memory");
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(tail) : "a"(v) : "memory");
	return dst;
}

/* Copy n bytes; the ranges must not overlap. */
void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
	void *d = dst;
	size_t q = n / sizeof(u64), tail = n % sizeof(u64);
	__asm__ volatile("rep movsq" : "+D"(d), "+S"(src), "+c"(q) : : "memory");
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(tail) : : "memory");
	return dst;
}

/* Copy n bytes; the ranges may overlap. */
NO_LIBCALLS void *memmove(void *dst, const void *src, size_t n)
{
	u8 *d = dst;
	const u8 *s = src;
	if (d == s || n == 0)
		return dst;
	if (d < s || d >= s + n)
		return memcpy(dst, src, n);
	/* dst overlaps the tail of src: copy backwards. */
	while (n--)
		d[n] = s[n];
	return dst;
}

/* Compare n bytes as unsigned chars. */
NO_LIBCALLS int memcmp(const void *a, const void *b, size_t n)
{
	const u8 *x = a, *y = b;
	for (size_t i = 0; i < n; i++) {
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	}
	return 0;
}

NO_LIBCALLS size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

NO_LIBCALLS size_t strnlen(const char *s, size_t max)
{
	size_t n = 0;
	while (n < max && s[n])
		n++;
	return n;
}

NO_LIBCALLS int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return (u8)*a - (u8)*b;
}

NO_LIBCALLS int strncmp(const char *a, const char *b, size_t n)
{
	for (; n > 0; n--, a++, b++) {
		if (*a != *b || !*a)
			return (u8)*a - (u8)*b;
	}
	return 0;
}

/* First c in s (the terminator counts when c is 0), or NULL. */
char *strchr(const char *s, int c)
{
	for (;; s++) {
		if (*s == (char)c)
			return (char *)s;
		if (!*s)
			return NULL;
	}
}

/* First occurrence of needle in haystack, or NULL. */
char *strstr(const char *haystack, const char *needle)
{
	size_t n = strlen(needle);
	for (; *haystack; haystack++) {
		if (strncmp(haystack, needle, n) == 0)
			return (char *)haystack;
	}
	return n == 0 ? (char *)haystack : NULL;
}

size_t strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);
	if (size > 0) {
		size_t n = len < size - 1 ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

char *strrchr(const char *s, int c)
{
	const char *last = NULL;
	for (;; s++) {
		if (*s == (char)c)
			last = s;
		if (!*s)
			return (char *)last;
	}
}
