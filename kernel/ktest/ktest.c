/*
 * The in-kernel test runner. Tests are entries of the `.ktest` section (see
 * ktest.h); a suite is a distinct suite name, in order of first appearance,
 * and its tests may come from several files. Output is TAP version 14 with
 * one subtest per suite. The plan is always counted before anything runs,
 * so the runner never prints a plan it does not keep.
 *
 * With `ktest.list` on the command line the same TAP is printed without
 * running anything: every selected test is "ok N - name # SKIP listed", so a
 * runner reads the list with its TAP parser and the plans prove it complete.
 *
 * Each suite is checked for leaks (xv6's usertests count free pages the
 * same way): free frames and page-table frames are counted before and after
 * it (leak.c), and a difference fails the suite's own test point, with the
 * counts and the first test that changed the free count. A suite declared
 * KTEST_KEEPS_MEMORY only has the difference printed as a comment.
 */
#include <cmdline.h>
#include <early_map.h>
#include <ktest.h>
#include <layout.h>
#include <panic.h>
#include <pmm.h>
#include <printf.h>
#include <string.h>
#include <trap.h>
#include <user_tests.h>

/* Longest "suite.test" name. */
#define FULL_NAME_MAX 128
/* Longest raw diagnostic field (message, expected, actual) kept. */
#define DIAG_MAX 192
/* Escaping can grow a byte to four ("\xNN"). */
#define DIAG_ESCAPED_MAX (4 * DIAG_MAX)
/* Longest skip reason kept. */
#define REASON_MAX 128
/* Indentation of subtest lines and of their YAML blocks (TAP 14 §Subtests). */
#define SUBTEST_INDENT "    "
#define YAML_INDENT "      "
/* Indentation of a suite's own YAML block (its test point is at the top level). */
#define SUITE_YAML_INDENT "  "

enum outcome { OUTCOME_PASS, OUTCOME_FAIL, OUTCOME_SKIP };

/* The result of the running test, filled by the assertion helpers. */
struct result {
	enum outcome outcome;
	char reason[REASON_MAX];
	char message[DIAG_MAX];
	char expected[DIAG_MAX];
	char actual[DIAG_MAX];
	bool has_values; /* expected/actual are meaningful */
	const char *file;
	int line;
};

static const struct ktest *running;
static struct result result;
static bool version_printed;

void ktest_print_version(void)
{
	if (version_printed)
		return;
	version_printed = true;
	/* A leading newline: firmware (SeaBIOS) may have left a line unfinished. */
	kprintf("\nTAP version 14\n");
}

bool ktest_str_equal_(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

void ktest_fail_(const char *file, int line, const char *message, const char *expected,
		 const char *actual)
{
	if (!running)
		panic("ktest: assertion failed outside a test: %s", message);
	if (result.outcome == OUTCOME_FAIL)
		return; /* keep the first failure */
	result.outcome = OUTCOME_FAIL;
	result.file = file; /* repository-relative: the build maps the prefix */
	result.line = line;
	strlcpy(result.message, message, sizeof(result.message));
	result.has_values = expected || actual;
	strlcpy(result.expected, expected ? expected : "", sizeof(result.expected));
	strlcpy(result.actual, actual ? actual : "", sizeof(result.actual));
}

void ktest_fail_u64_(const char *file, int line, const char *message, const char *relation,
		     u64 expected, u64 actual)
{
	char e[DIAG_MAX], a[DIAG_MAX];
	ksnprintf(e, sizeof(e), "%s0x%016llx", relation, expected);
	ksnprintf(a, sizeof(a), "0x%016llx", actual);
	ktest_fail_(file, line, message, e, a);
}

void ktest_fail_str_(const char *file, int line, const char *message, const char *expected,
		     const char *actual)
{
	ktest_fail_(file, line, message, expected ? expected : "(null)",
		    actual ? actual : "(null)");
}

void ktest_skip_(const char *reason)
{
	if (!running)
		panic("ktest: KTEST_SKIP outside a test");
	result.outcome = OUTCOME_SKIP;
	strlcpy(result.reason, reason ? reason : "", sizeof(result.reason));
}

void ktest_log(const char *fmt, ...)
{
	char line[DIAG_ESCAPED_MAX];
	va_list ap;
	va_start(ap, fmt);
	kvsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	kprintf(SUBTEST_INDENT "# %s\n", line);
}

/* Append s to dst[size] at *len while there is room (keeping the terminator); count all of it. */
static void put_escaped(char *dst, size_t size, size_t *len, const char *s)
{
	for (; *s; s++, (*len)++)
		if (*len + 1 < size)
			dst[*len] = *s;
}

size_t ktest_yaml_escape(char *dst, size_t size, const char *src)
{
	size_t len = 0;
	for (const u8 *p = (const u8 *)src; *p; p++) {
		char tmp[8];
		switch (*p) {
		case '"': put_escaped(dst, size, &len, "\\\""); continue;
		case '\\': put_escaped(dst, size, &len, "\\\\"); continue;
		case '\n': put_escaped(dst, size, &len, "\\n"); continue;
		case '\r': put_escaped(dst, size, &len, "\\r"); continue;
		case '\t': put_escaped(dst, size, &len, "\\t"); continue;
		}
		/* Control characters and non-ASCII bytes (maybe not UTF-8) as \xNN. */
		if (*p < 0x20 || *p >= 0x7f)
			ksnprintf(tmp, sizeof(tmp), "\\x%02x", *p);
		else
			ksnprintf(tmp, sizeof(tmp), "%c", *p);
		put_escaped(dst, size, &len, tmp);
	}
	if (size > 0)
		dst[len < size ? len : size - 1] = '\0';
	return len;
}

/* Print `key: "value"` as a YAML line of a diagnostic block indented by `indent`. */
static void yaml_field_at(const char *indent, const char *key, const char *value)
{
	static char escaped[DIAG_ESCAPED_MAX];
	ktest_yaml_escape(escaped, sizeof(escaped), value);
	kprintf("%s%s: \"%s\"\n", indent, key, escaped);
}

/* Print `key: "value"` as a YAML line of a test's diagnostic block. */
static void yaml_field(const char *key, const char *value)
{
	yaml_field_at(YAML_INDENT, key, value);
}

/* Print the diagnostic block of a failed test. */
static void print_diagnostic(const struct result *r)
{
	char at[DIAG_MAX];
	ksnprintf(at, sizeof(at), "%s:%d", r->file, r->line);
	kprintf(YAML_INDENT "---\n");
	yaml_field("message", r->message);
	if (r->has_values) {
		yaml_field("expected", r->expected);
		yaml_field("actual", r->actual);
	}
	yaml_field("at", at);
	kprintf(YAML_INDENT "...\n");
}

/* "suite.name" of t into buf. */
static void full_name(const struct ktest *t, char *buf, size_t size)
{
	if ((size_t)ksnprintf(buf, size, "%s.%s", t->suite, t->name) >= size)
		panic("ktest: test name %s.%s is too long", t->suite, t->name);
}

/* True for a test (not a suite declaration) that filter (NULL: all) selects. */
static bool selected(const struct ktest *t, const char *filter)
{
	if (!t->name)
		return false;
	char name[FULL_NAME_MAX];
	full_name(t, name, sizeof(name));
	return !filter || glob_match_list(filter, name);
}

/* The SKIP reason of a listed test: the runner recognises a list by it. */
#define LISTED_REASON "listed"

/* Report t as test number n without running it (ktest.list). */
static void list_one(const struct ktest *t, int n)
{
	kprintf(SUBTEST_INDENT "ok %d - %s # SKIP " LISTED_REASON "\n", n, t->name);
}

/*
 * Run t as test number n of its subtest; returns false if it failed (TODO
 * excepted). *free_delta: how much it changed the free count.
 */
static bool run_one(const struct ktest *t, int n, i64 *free_delta)
{
	char name[FULL_NAME_MAX];
	full_name(t, name, sizeof(name));
	kprintf(SUBTEST_INDENT "# RUN %s\n", name);
	memset(&result, 0, sizeof(result));
	size_t early_pages = early_map_pages_in_use();
	u64 free_before = pmm_nr_free();
	running = t;
	t->fn();
	running = NULL;
	*free_delta = (i64)(pmm_nr_free() - free_before);
	trap_expect_end(); /* an armed expectation must not outlive its test */
	size_t leaked = early_map_pages_in_use() - early_pages;
	if (leaked && result.outcome != OUTCOME_FAIL) {
		char msg[DIAG_MAX];
		ksnprintf(msg, sizeof(msg), "test left %zu early-window pages mapped", leaked);
		ktest_fail_(t->file, (int)t->line, msg, NULL, NULL);
	}
	bool failed = result.outcome == OUTCOME_FAIL;
	/* One kprintf for the whole line: another CPU's output cannot cut it. */
	const char *directive = t->todo ? " # TODO " : result.outcome == OUTCOME_SKIP ? " # SKIP " : "";
	const char *why = t->todo ? t->todo : result.outcome == OUTCOME_SKIP ? result.reason : "";
	kprintf(SUBTEST_INDENT "%s %d - %s%s%s\n", failed ? "not ok" : "ok", n, t->name, directive,
		why);
	if (failed)
		print_diagnostic(&result);
	return !failed || t->todo;
}

/* True if t is the first selected test of its suite in [begin, t). */
static bool first_of_suite(const struct ktest *begin, const struct ktest *t, const char *filter)
{
	for (const struct ktest *u = begin; u < t; u++)
		if (strcmp(u->suite, t->suite) == 0 && selected(u, filter))
			return false;
	return true;
}

/* Selected tests of suite `suite` in [begin, end). */
static int count_suite(const struct ktest *begin, const struct ktest *end, const char *suite,
		       const char *filter)
{
	int n = 0;
	for (const struct ktest *t = begin; t < end; t++)
		n += strcmp(t->suite, suite) == 0 && selected(t, filter);
	return n;
}

/* The declaration of suite in [begin, end), or NULL. */
static const struct ktest *suite_declaration(const struct ktest *begin, const struct ktest *end,
					     const char *suite)
{
	for (const struct ktest *t = begin; t < end; t++)
		if (!t->name && strcmp(t->suite, suite) == 0)
			return t;
	return NULL;
}

/* What a suite did to memory: the counts around it, the first test that changed the free count. */
struct suite_memory {
	struct ktest_memory before, after;
	const struct ktest *first; /* NULL: no single test changed the free count */
	i64 first_delta;
};

/* "lost 3 frames (2 of them page tables)", "gained 1 frame": the change from before to after. */
static void describe_change(const struct suite_memory *m, char *buf, size_t size)
{
	i64 frames = (i64)(m->before.free - m->after.free);
	i64 tables = (i64)(m->after.tables - m->before.tables);
	u64 abs_frames = (u64)(frames < 0 ? -frames : frames);
	int len = ksnprintf(buf, size, "%s %llu frame%s", frames < 0 ? "gained" : "lost",
			    abs_frames, abs_frames == 1 ? "" : "s");
	if (tables != 0 && len >= 0 && (size_t)len < size)
		ksnprintf(buf + len, size - (size_t)len, " (page-table frames %s%lld)",
			  tables > 0 ? "+" : "", (long long)tables);
}

/*
 * Report the leak check of a suite whose counts differ: a YAML block (it
 * fails), or a comment (kept on purpose, or a test already failed).
 */
static void report_leak(const char *suite, const struct ktest *decl, const struct suite_memory *m,
			bool failed)
{
	char change[DIAG_MAX], msg[DIAG_MAX], expected[DIAG_MAX], actual[DIAG_MAX], at[DIAG_MAX];
	describe_change(m, change, sizeof(change));
	if (decl && (decl->flags & KTEST_KEEPS_MEMORY)) {
		kprintf(SUBTEST_INDENT "# leak check: suite %s %s, kept on purpose: %s\n", suite,
			change, decl->reason ? decl->reason : "");
		return;
	}
	if (failed) {
		kprintf(SUBTEST_INDENT "# leak check: suite %s %s "
				       "(a test failed, its cleanup may not have run)\n",
			suite, change);
		return;
	}
	ksnprintf(msg, sizeof(msg), "leak check: suite %s %s", suite, change);
	ksnprintf(expected, sizeof(expected), "%llu free frames, %llu page-table frames",
		  m->before.free, m->before.tables);
	ksnprintf(actual, sizeof(actual), "%llu free frames, %llu page-table frames", m->after.free,
		  m->after.tables);
	kprintf(SUITE_YAML_INDENT "---\n");
	yaml_field_at(SUITE_YAML_INDENT, "message", msg);
	yaml_field_at(SUITE_YAML_INDENT, "expected", expected);
	yaml_field_at(SUITE_YAML_INDENT, "actual", actual);
	if (m->first) {
		char name[FULL_NAME_MAX];
		full_name(m->first, name, sizeof(name));
		ksnprintf(msg, sizeof(msg), "%s changed the free count by %lld", name,
			  (long long)m->first_delta);
		yaml_field_at(SUITE_YAML_INDENT, "first_test", msg);
		ksnprintf(at, sizeof(at), "%s:%llu", m->first->file, m->first->line);
		yaml_field_at(SUITE_YAML_INDENT, "at", at);
	}
	kprintf(SUITE_YAML_INDENT "...\n");
}

/* Run (or list) the selected tests of one suite as subtest n; false if any failed or it leaked. */
static bool run_suite(const struct ktest *begin, const struct ktest *end, const char *suite,
		      const char *filter, int n, bool list)
{
	kprintf("# Subtest: %s\n", suite);
	kprintf(SUBTEST_INDENT "1..%d\n", count_suite(begin, end, suite, filter));
	const struct ktest *decl = suite_declaration(begin, end, suite);
	struct suite_memory m = {0};
	if (!list)
		ktest_memory_now(&m.before);
	bool ok = true;
	int i = 0;
	for (const struct ktest *t = begin; t < end; t++) {
		if (strcmp(t->suite, suite) != 0 || !selected(t, filter))
			continue;
		i64 delta = 0;
		if (list)
			list_one(t, ++i);
		else
			ok &= run_one(t, ++i, &delta);
		if (delta && !m.first) {
			m.first = t;
			m.first_delta = delta;
		}
	}
	if (list) {
		kprintf("ok %d - %s # SKIP " LISTED_REASON "\n", n, suite);
		return true;
	}
	ktest_memory_now(&m.after);
	bool changed = m.after.free != m.before.free || m.after.tables != m.before.tables;
	bool kept = decl && (decl->flags & KTEST_KEEPS_MEMORY);
	if (changed && (kept || !ok))
		report_leak(suite, decl, &m, !ok);
	bool leaked = changed && ok && !kept;
	kprintf("%s %d - %s\n", ok && !leaked ? "ok" : "not ok", n, suite);
	if (leaked)
		report_leak(suite, decl, &m, false);
	return ok && !leaked;
}

/* Panic unless [begin, end) is a well-formed registry with unique names. */
static void check_registry(const struct ktest *begin, const struct ktest *end)
{
	if (((uintptr_t)end - (uintptr_t)begin) % sizeof(struct ktest) != 0)
		panic("ktest: registry size is not a multiple of struct ktest");
	for (const struct ktest *t = begin; t < end; t++) {
		if (t->magic != KTEST_MAGIC)
			panic("ktest: registry entry %ld has a bad magic", (long)(t - begin));
		for (const struct ktest *u = begin; u < t; u++)
			if (strcmp(u->suite, t->suite) == 0 && ktest_str_equal_(u->name, t->name))
				panic("ktest: %s%s%s is registered twice", t->suite,
				      t->name ? "." : " (suite declaration)",
				      t->name ? t->name : "");
		if (!t->name && t->fn)
			panic("ktest: suite declaration %s has a test function", t->suite);
	}
}

/* Tests in [begin, end) (suite declarations are not). */
static int count_tests(const struct ktest *begin, const struct ktest *end)
{
	int n = 0;
	for (const struct ktest *t = begin; t < end; t++)
		n += t->name != NULL;
	return n;
}

/* Run (or list) the tests of [begin, end) that filter selects as TAP; returns the exit code. */
static u8 run_set(const struct ktest *begin, const struct ktest *end, const char *filter,
		  bool list, bool user)
{
	check_registry(begin, end);
	int suites = 0, tests = 0;
	for (const struct ktest *t = begin; t < end; t++) {
		tests += selected(t, filter);
		suites += selected(t, filter) && first_of_suite(begin, t, filter);
	}
	/* The initrd's test programs follow the kernel's suites. */
	int programs = user ? user_tests_count(filter) : 0;
	tests += programs;
	ktest_print_version();
	kprintf("1..%d\n", suites + programs);
	if (tests == 0 && filter)
		kprintf("# ktest.filter '%s' matched no test\n", filter);
	else if (tests == 0)
		kprintf("# no tests registered\n");
	else if (filter)
		kprintf("# ktest.filter '%s' selected %d of %d tests\n", filter, tests,
			count_tests(begin, end));
	if (list)
		kprintf("# ktest.list: listing %d tests, running none\n", tests);
	bool ok = true;
	int n = 0;
	for (const struct ktest *t = begin; t < end; t++)
		if (selected(t, filter) && first_of_suite(begin, t, filter))
			ok &= run_suite(begin, end, t->suite, filter, ++n, list);
	if (programs)
		ok &= user_tests_run(filter, n + 1, list);
	return ok ? DEBUG_EXIT_PASS : DEBUG_EXIT_FAIL;
}

u8 ktest_run_set(const struct ktest *begin, const struct ktest *end, const char *filter)
{
	return run_set(begin, end, filter, false, false);
}

u8 ktest_run(const char *filter)
{
	return run_set(__ktest_start, __ktest_end, filter, kernel_options.ktest_list, true);
}
