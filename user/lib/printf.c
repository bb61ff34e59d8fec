/* printf and friends: formatting into a buffer, output through sys_write. */
#include "ulib.h"

/* Where formatted characters go: a bounded buffer, counting what did not fit. */
struct out {
	char *buf;
	size_t size; /* capacity, terminator included */
	size_t len;  /* characters produced so far */
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

/* One conversion's flags, width and length. */
struct spec {
	int left, zero, width, longs; /* longs: -2 hh, -1 h, 0, 1 l, 2 ll/z */
};

/* Emit digits (already in reverse in tmp) with the sign and padding the spec asks for. */
static void put_padded(struct out *o, const struct spec *sp, const char *sign, const char *body,
		       size_t len)
{
	size_t slen = strlen(sign);
	size_t pad = (size_t)sp->width > len + slen ? (size_t)sp->width - len - slen : 0;
	if (!sp->left && !sp->zero)
		for (; pad; pad--)
			put(o, ' ');
	for (size_t i = 0; i < slen; i++)
		put(o, sign[i]);
	if (!sp->left && sp->zero)
		for (; pad; pad--)
			put(o, '0');
	for (size_t i = 0; i < len; i++)
		put(o, body[i]);
	for (; pad; pad--)
		put(o, ' ');
}

static void put_unsigned(struct out *o, const struct spec *sp, const char *sign,
			 unsigned long long v, unsigned base, int upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24], body[24];
	size_t n = 0;
	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	for (size_t i = 0; i < n; i++)
		body[i] = tmp[n - 1 - i];
	put_padded(o, sp, sign, body, n);
}

/* The argument of an integer conversion, at the spec's length. */
static unsigned long long arg_unsigned(const struct spec *sp, va_list *ap)
{
	switch (sp->longs) {
	case -2: return (unsigned char)va_arg(*ap, unsigned);
	case -1: return (unsigned short)va_arg(*ap, unsigned);
	case 0: return va_arg(*ap, unsigned);
	case 1: return va_arg(*ap, unsigned long);
	default: return va_arg(*ap, unsigned long long);
	}
}

static long long arg_signed(const struct spec *sp, va_list *ap)
{
	switch (sp->longs) {
	case -2: return (signed char)va_arg(*ap, int);
	case -1: return (short)va_arg(*ap, int);
	case 0: return va_arg(*ap, int);
	case 1: return va_arg(*ap, long);
	default: return va_arg(*ap, long long);
	}
}

/* Parse flags, width and length after '%'; returns the conversion character's position. */
static const char *parse_spec(const char *f, struct spec *sp)
{
	*sp = (struct spec){0};
	for (;; f++) {
		if (*f == '-')
			sp->left = 1;
		else if (*f == '0')
			sp->zero = 1;
		else
			break;
	}
	for (; *f >= '0' && *f <= '9'; f++)
		sp->width = sp->width * 10 + (*f - '0');
	for (;; f++) {
		if (*f == 'l')
			sp->longs = sp->longs < 1 ? 1 : 2;
		else if (*f == 'h')
			sp->longs = sp->longs > -1 ? -1 : -2;
		else if (*f == 'z')
			sp->longs = 2;
		else
			return f;
	}
}

static void convert(struct out *o, const struct spec *sp, char c, va_list *ap)
{
	switch (c) {
	case 'd':
	case 'i': {
		long long v = arg_signed(sp, ap);
		unsigned long long mag = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
		put_unsigned(o, sp, v < 0 ? "-" : "", mag, 10, 0);
		return;
	}
	case 'u': put_unsigned(o, sp, "", arg_unsigned(sp, ap), 10, 0); return;
	case 'x': put_unsigned(o, sp, "", arg_unsigned(sp, ap), 16, 0); return;
	case 'X': put_unsigned(o, sp, "", arg_unsigned(sp, ap), 16, 1); return;
	case 'o': put_unsigned(o, sp, "", arg_unsigned(sp, ap), 8, 0); return;
	case 'p': {
		struct spec ps = {.zero = 1, .width = 18}; /* "0x" and 16 digits */
		put_unsigned(o, &ps, "0x", (uintptr_t)va_arg(*ap, void *), 16, 0);
		return;
	}
	case 'c': {
		char ch = (char)va_arg(*ap, int);
		put_padded(o, sp, "", &ch, 1);
		return;
	}
	case 's': {
		const char *s = va_arg(*ap, const char *);
		if (!s)
			s = "(null)";
		struct spec ss = *sp;
		ss.zero = 0;
		put_padded(o, &ss, "", s, strlen(s));
		return;
	}
	case '%': put(o, '%'); return;
	default: /* unknown: print it as written, so the mistake shows */
		put(o, '%');
		put(o, c);
	}
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = {buf, size, 0};
	va_list aq;
	va_copy(aq, ap);
	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			put(&o, *f);
			continue;
		}
		struct spec sp;
		f = parse_spec(f + 1, &sp);
		if (!*f)
			break;
		convert(&o, &sp, *f, &aq);
	}
	va_end(aq);
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

/* Write all of buf[0, len) to fd: len, or the first error. */
static int write_all(int fd, const char *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		long r = sys_write(fd, buf + done, len - done);
		if (r < 0)
			return (int)r;
		if (r == 0)
			return -E_NOSPC; /* nothing taken: do not spin */
		done += (size_t)r;
	}
	return (int)len;
}

/* Format into a stack buffer; a longer result is written in two steps through a second pass. */
static int vdprintf(int fd, const char *fmt, va_list ap)
{
	char buf[512];
	va_list aq;
	va_copy(aq, ap);
	int n = vsnprintf(buf, sizeof(buf), fmt, aq);
	va_end(aq);
	if ((size_t)n < sizeof(buf))
		return write_all(fd, buf, (size_t)n);
	/* Too long for one buffer: write the part that fits, then say it was cut. */
	int r = write_all(fd, buf, sizeof(buf) - 1);
	if (r < 0)
		return r;
	static const char cut[] = "...[truncated]\n";
	r = write_all(fd, cut, sizeof(cut) - 1);
	return r < 0 ? r : n;
}

int dprintf(int fd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vdprintf(fd, fmt, ap);
	va_end(ap);
	return n;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vdprintf(STDOUT_FD, fmt, ap);
	va_end(ap);
	return n;
}

int puts(const char *s)
{
	int r = write_all(STDOUT_FD, s, strlen(s));
	return r < 0 ? r : write_all(STDOUT_FD, "\n", 1);
}
