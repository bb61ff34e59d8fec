/*
 * A small printf: one formatter writes through a sink, which is either the
 * serial console or a bounded buffer. Supported: %d %i %u %x %X %p %s %c %%,
 * length modifiers l, ll, z, a field width, '0' padding and '-'.
 */
#include <panic.h>
#include <printf.h>
#include <serial.h>
#include <spinlock.h>

/*
 * One CPU prints at a time: a kprintf (or a process's write) is never cut
 * by another CPU's, so a line printed by one call stays whole. Taken only
 * once a second CPU runs (before that GS, which spin_lock reads, may not
 * be set up yet), not again by a CPU that holds it (a panic while
 * printing still prints), and not at all during a panic (a CPU that
 * panicked second halts where it is, maybe holding the lock).
 */
static struct spinlock console_lock = SPINLOCK_INIT("console", LOCK_ORDER_CONSOLE);

bool console_enter(void)
{
	/* A panic prints without it: the CPU that holds it may be the one that stopped. */
	return !panic_in_progress() && spin_lock_outer(&console_lock);
}

void console_leave(bool took)
{
	spin_unlock_taken(&console_lock, took);
}

/* Where formatted characters go. */
struct sink {
	void (*put)(struct sink *s, char c);
	char *buf;    /* buffer sinks only */
	size_t size;  /* capacity of buf, terminator included */
	size_t count; /* characters produced so far (even those that did not fit) */
};

/* Longest number: 64 bits in octal would be 22 digits; decimal 20, hex 16. */
#define NUM_BUF 24
/* Hex digits of a pointer, so every address prints with the same width. */
#define POINTER_DIGITS 16

/* A parsed conversion specification. */
struct spec {
	bool left;     /* '-' */
	bool zero;     /* '0' */
	int width;
	int length;    /* number of 'l's ('z' counts as one) */
};

static void put_serial(struct sink *s, char c)
{
	serial_putc(c);
	s->count++;
}

/* Store c while there is room for it and the terminator; count it either way. */
static void put_buffer(struct sink *s, char c)
{
	if (s->count + 1 < s->size)
		s->buf[s->count] = c;
	s->count++;
}

/* Emit `len` chars of str padded to the spec's width (zero-padding after any sign). */
static void emit_padded(struct sink *s, const struct spec *sp, const char *sign, const char *str,
			size_t len)
{
	size_t slen = sign ? 1 : 0;
	size_t pad = (size_t)sp->width > len + slen ? (size_t)sp->width - len - slen : 0;
	if (!sp->left && !sp->zero)
		for (; pad > 0; pad--)
			s->put(s, ' ');
	if (sign)
		s->put(s, *sign);
	if (!sp->left && sp->zero)
		for (; pad > 0; pad--)
			s->put(s, '0');
	for (size_t i = 0; i < len; i++)
		s->put(s, str[i]);
	for (; pad > 0; pad--)
		s->put(s, ' ');
}

/* Emit an unsigned number in `base` (10 or 16), with an optional '-' sign. */
static void emit_number(struct sink *s, const struct spec *sp, u64 v, unsigned base, bool upper,
			bool negative)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[NUM_BUF];
	size_t n = 0;
	do {
		tmp[NUM_BUF - 1 - n++] = digits[v % base];
		v /= base;
	} while (v);
	emit_padded(s, sp, negative ? "-" : NULL, tmp + NUM_BUF - n, n);
}

/* Fetch the next integer argument as the spec's length says. */
static u64 arg_unsigned(const struct spec *sp, va_list *ap)
{
	if (sp->length >= 2)
		return va_arg(*ap, unsigned long long);
	if (sp->length == 1)
		return va_arg(*ap, unsigned long);
	return va_arg(*ap, unsigned int);
}

static i64 arg_signed(const struct spec *sp, va_list *ap)
{
	if (sp->length >= 2)
		return va_arg(*ap, long long);
	if (sp->length == 1)
		return va_arg(*ap, long);
	return va_arg(*ap, int);
}

/* Parse flags, width and length after '%'; returns the conversion character's position. */
static const char *parse_spec(const char *f, struct spec *sp)
{
	*sp = (struct spec){0};
	for (;; f++) {
		if (*f == '-')
			sp->left = true;
		else if (*f == '0')
			sp->zero = true;
		else
			break;
	}
	for (; *f >= '0' && *f <= '9'; f++)
		sp->width = sp->width * 10 + (*f - '0');
	/* size_t is unsigned long here, so 'z' reads the argument as 'l' does. */
	for (; *f == 'l' || *f == 'z'; f++)
		sp->length++;
	return f;
}

/* Emit one conversion `c`; unknown ones are printed as they were written. */
static void convert(struct sink *s, struct spec *sp, char c, va_list *ap)
{
	switch (c) {
	case 'd':
	case 'i': {
		i64 v = arg_signed(sp, ap);
		emit_number(s, sp, v < 0 ? -(u64)v : (u64)v, 10, false, v < 0);
		break;
	}
	case 'u':
		emit_number(s, sp, arg_unsigned(sp, ap), 10, false, false);
		break;
	case 'x':
	case 'X':
		emit_number(s, sp, arg_unsigned(sp, ap), 16, c == 'X', false);
		break;
	case 'p': {
		u64 v = (u64)(uintptr_t)va_arg(*ap, void *);
		struct spec ps = {.zero = true, .width = POINTER_DIGITS};
		s->put(s, '0');
		s->put(s, 'x');
		emit_number(s, &ps, v, 16, false, false);
		break;
	}
	case 's': {
		const char *str = va_arg(*ap, const char *);
		if (!str)
			str = "(null)";
		size_t len = 0;
		while (str[len])
			len++;
		sp->zero = false;
		emit_padded(s, sp, NULL, str, len);
		break;
	}
	case 'c': {
		char ch = (char)va_arg(*ap, int);
		sp->zero = false;
		emit_padded(s, sp, NULL, &ch, 1);
		break;
	}
	case '%':
		s->put(s, '%');
		break;
	default:
		s->put(s, '%');
		if (c)
			s->put(s, c);
		break;
	}
}

/* Format into the sink; returns the number of characters produced. */
static int format(struct sink *s, const char *fmt, va_list ap)
{
	va_list args;
	va_copy(args, ap);
	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			s->put(s, *f);
			continue;
		}
		struct spec sp;
		f = parse_spec(f + 1, &sp);
		convert(s, &sp, *f, &args);
		if (!*f)
			break; /* a lone '%' at the end */
	}
	va_end(args);
	return (int)s->count;
}

int kvprintf(const char *fmt, va_list ap)
{
	struct sink s = {.put = put_serial};
	bool took = console_enter();
	int n = format(&s, fmt, ap);
	console_leave(took);
	return n;
}

int kprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = kvprintf(fmt, ap);
	va_end(ap);
	return n;
}

int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct sink s = {.put = put_buffer, .buf = buf, .size = size};
	int n = format(&s, fmt, ap);
	if (size > 0)
		buf[s.count < size ? s.count : size - 1] = '\0';
	return n;
}

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = kvsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
