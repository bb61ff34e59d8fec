/*
 * The kernel command line: words separated by spaces (or tabs), each
 * `key=value` or a bare `key`. Values cannot contain spaces (there is no
 * quoting). Every word the kernel does not understand becomes a warning the
 * caller prints as a TAP comment: a misspelt option must not pass silently.
 */
#include <cmdline.h>
#include <printf.h>
#include <string.h>

struct kernel_options kernel_options;

/* An option that takes a value, stored as a pointer into kernel_options.buf. */
struct option {
	const char *key;
	size_t field; /* offsetof the `const char *` in struct kernel_options */
};

static const struct option options[] = {
	{"ktest.filter", offsetof(struct kernel_options, ktest_filter)},
	{"selftest", offsetof(struct kernel_options, selftest)},
	{"model.seed", offsetof(struct kernel_options, model_seed)},
	{"model.ops", offsetof(struct kernel_options, model_ops)},
	{"pmm.fail", offsetof(struct kernel_options, pmm_fail)},
};

/* An option without a value: its presence sets a bool in kernel_options. */
struct flag {
	const char *key;
	size_t field; /* offsetof the `bool` in struct kernel_options */
};

static const struct flag flags[] = {
	{"ktest.list", offsetof(struct kernel_options, ktest_list)},
	{"oracle", offsetof(struct kernel_options, oracle)},
	{"bench", offsetof(struct kernel_options, bench)},
	{"bench.smp", offsetof(struct kernel_options, bench_smp)},
	{"pmm.exhaust", offsetof(struct kernel_options, pmm_exhaust)},
	{"sched.cpu0", offsetof(struct kernel_options, sched_cpu0)},
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Record a warning; past the limit only count it. */
PRINTF_LIKE(2, 3) static void warn(struct kernel_options *out, const char *fmt, ...)
{
	if (out->nwarnings >= CMDLINE_MAX_WARNINGS) {
		out->dropped_warnings++;
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	kvsnprintf(out->warnings[out->nwarnings++], sizeof(out->warnings[0]), fmt, ap);
	va_end(ap);
}

/* Apply one word (NUL-terminated, inside out->buf). */
static void parse_word(char *word, struct kernel_options *out)
{
	char *eq = strchr(word, '=');
	char *value = NULL;
	if (eq) {
		*eq = '\0';
		value = eq + 1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
		if (strcmp(word, flags[i].key) != 0)
			continue;
		if (value)
			warn(out, "kernel option '%s' takes no value", word);
		else
			*(bool *)((u8 *)out + flags[i].field) = true;
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		if (strcmp(word, options[i].key) != 0)
			continue;
		if (!value || !*value) {
			warn(out, "kernel option '%s' needs a value", word);
			return;
		}
		*(const char **)((u8 *)out + options[i].field) = value; /* the last one wins */
		return;
	}
	warn(out, "unknown kernel option '%s'", word);
}

int cmdline_parse(const char *line, struct kernel_options *out)
{
	memset(out, 0, sizeof(*out));
	strlcpy(out->buf, line ? line : "", sizeof(out->buf));
	char *p = out->buf;
	while (*p) {
		while (is_space(*p))
			*p++ = '\0';
		if (!*p)
			break;
		char *word = p;
		while (*p && !is_space(*p))
			p++;
		if (*p)
			*p++ = '\0';
		parse_word(word, out);
	}
	return out->nwarnings + out->dropped_warnings;
}

void cmdline_print_warnings(const struct kernel_options *opts)
{
	for (int i = 0; i < opts->nwarnings; i++)
		kprintf("# warning: %s\n", opts->warnings[i]);
	if (opts->dropped_warnings)
		kprintf("# warning: %d more command-line problems not shown\n",
			opts->dropped_warnings);
}
