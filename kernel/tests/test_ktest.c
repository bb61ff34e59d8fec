/* The framework's own pieces: glob filters, the command line, YAML escaping, printf. */
#include <cmdline.h>
#include <ktest.h>
#include <printf.h>
#include <string.h>

KTEST(ktest, registry_order)
{
	/* Tests of one file appear in source order, and suites of this file group in order. */
	for (const struct ktest *t = __ktest_start + 1; t < __ktest_end; t++)
		if (strcmp(t[-1].file, t->file) == 0)
			KASSERT(t[-1].line < t->line);
	KASSERT_STREQ(__ktest_start->suite, "bootinfo"); /* files link in path order */
}

KTEST(ktest, glob_exact)
{
	KASSERT(glob_match("layout.constants", "layout.constants"));
	KASSERT(!glob_match("layout.constants", "layout.constant"));
	KASSERT(!glob_match("layout.constant", "layout.constants"));
	KASSERT(!glob_match("exceptions.int3", "selfmap.int3"));
}

KTEST(ktest, glob_star)
{
	KASSERT(glob_match("*", ""));
	KASSERT(glob_match("*", "anything.at_all"));
	KASSERT(glob_match("layout.*", "layout.constants"));
	KASSERT(glob_match("layout.*", "layout."));
	KASSERT(!glob_match("layout.*", "layoutx.constants"));
	KASSERT(glob_match("*.int3*", "exceptions.int3_returns"));
	KASSERT(glob_match("*a*b", "xxaybzb")); /* needs backtracking */
	KASSERT(!glob_match("*a*b", "xxaybzbc"));
	KASSERT(glob_match("**", "x"));
}

KTEST(ktest, glob_question)
{
	KASSERT(glob_match("a?c", "abc"));
	KASSERT(!glob_match("a?c", "ac"));
	KASSERT(!glob_match("a?c", "abbc"));
	KASSERT(glob_match("???", "xyz"));
	KASSERT(!glob_match("?", ""));
}

KTEST(ktest, glob_empty)
{
	KASSERT(glob_match("", ""));
	KASSERT(!glob_match("", "a"));
	KASSERT(!glob_match("a", ""));
}

KTEST(ktest, glob_list)
{
	KASSERT(glob_match_list("layout.*,exceptions.*", "exceptions.ud2"));
	KASSERT(glob_match_list("layout.*,exceptions.*", "layout.stack"));
	KASSERT(!glob_match_list("layout.*,exceptions.*", "selfmap.walk"));
	KASSERT(glob_match_list("a,,b", "b"));
	KASSERT(!glob_match_list("a,,b", "c"));
}

/* Large: keep it off the stack. */
static struct kernel_options opts;

KTEST(ktest, cmdline_known_options)
{
	int warnings = cmdline_parse("ktest.filter=layout.*,selfmap.* selftest=panic", &opts);
	KASSERT_EQ(warnings, 0);
	KASSERT_STREQ(opts.ktest_filter, "layout.*,selfmap.*");
	KASSERT_STREQ(opts.selftest, "panic");
}

KTEST(ktest, cmdline_spacing_and_last_wins)
{
	int warnings = cmdline_parse("  \tselftest=a   selftest=b\t ", &opts);
	KASSERT_EQ(warnings, 0);
	KASSERT_STREQ(opts.selftest, "b");
	KASSERT(opts.ktest_filter == NULL);
	KASSERT_EQ(cmdline_parse("", &opts), 0);
	KASSERT(opts.selftest == NULL);
	KASSERT_EQ(cmdline_parse(NULL, &opts), 0);
}

KTEST(ktest, cmdline_unknown_reported)
{
	int warnings = cmdline_parse("quiet console=ttyS0 ktest.filter=x.y selftest", &opts);
	KASSERT_EQ(warnings, 3);
	KASSERT_STREQ(opts.warnings[0], "unknown kernel option 'quiet'");
	KASSERT_STREQ(opts.warnings[1], "unknown kernel option 'console'");
	KASSERT_STREQ(opts.warnings[2], "kernel option 'selftest' needs a value");
	KASSERT_STREQ(opts.ktest_filter, "x.y");
	KASSERT(opts.selftest == NULL);
	KASSERT_EQ(cmdline_parse("ktest.filter=", &opts), 1);
	KASSERT(opts.ktest_filter == NULL);
}

KTEST(ktest, cmdline_list_flag)
{
	KASSERT_EQ(cmdline_parse("ktest.filter=a.* ktest.list", &opts), 0);
	KASSERT(opts.ktest_list);
	KASSERT_STREQ(opts.ktest_filter, "a.*");
	KASSERT_EQ(cmdline_parse("ktest.filter=a.*", &opts), 0);
	KASSERT(!opts.ktest_list);
	/* A flag given a value is a mistake worth a warning, and does not set the flag. */
	KASSERT_EQ(cmdline_parse("ktest.list=yes", &opts), 1);
	KASSERT_STREQ(opts.warnings[0], "kernel option 'ktest.list' takes no value");
	KASSERT(!opts.ktest_list);
}

KTEST(ktest, cmdline_many_warnings)
{
	int warnings = cmdline_parse("a b c d e f g h i j", &opts);
	KASSERT_EQ(warnings, 10);
	KASSERT_EQ(opts.nwarnings, CMDLINE_MAX_WARNINGS);
	KASSERT_EQ(opts.dropped_warnings, 10 - CMDLINE_MAX_WARNINGS);
}

KTEST(ktest, yaml_escape)
{
	char buf[64];
	KASSERT_EQ(ktest_yaml_escape(buf, sizeof(buf), "plain text"), 10);
	KASSERT_STREQ(buf, "plain text");
	ktest_yaml_escape(buf, sizeof(buf), "say \"hi\"");
	KASSERT_STREQ(buf, "say \\\"hi\\\"");
	ktest_yaml_escape(buf, sizeof(buf), "a\\b");
	KASSERT_STREQ(buf, "a\\\\b");
	ktest_yaml_escape(buf, sizeof(buf), "l1\nl2\r\t");
	KASSERT_STREQ(buf, "l1\\nl2\\r\\t");
	ktest_yaml_escape(buf, sizeof(buf), "\x01\x1f\x7f\xff");
	KASSERT_STREQ(buf, "\\x01\\x1f\\x7f\\xff");
}

KTEST(ktest, yaml_escape_truncates)
{
	char buf[6];
	memset(buf, '#', sizeof(buf));
	/* 8 escaped characters into 5 + terminator; never half an escape is a concern of the reader. */
	KASSERT_EQ(ktest_yaml_escape(buf, sizeof(buf), "\"\"\"\""), 8);
	KASSERT_EQ(buf[5], '\0');
	KASSERT_EQ(strlen(buf), 5);
	KASSERT_EQ(ktest_yaml_escape(NULL, 0, "abc"), 3);
}

KTEST(ktest, snprintf_truncation)
{
	char buf[8];
	memset(buf, '#', sizeof(buf));
	KASSERT_EQ(ksnprintf(buf, sizeof(buf), "hello %s", "world"), 11);
	KASSERT_STREQ(buf, "hello w");
	char one[1] = {'#'};
	KASSERT_EQ(ksnprintf(one, sizeof(one), "abc"), 3);
	KASSERT_EQ(one[0], '\0');
	char guard[4] = {'#', '#', '#', '#'};
	KASSERT_EQ(ksnprintf(guard, 0, "abc"), 3);
	KASSERT_EQ(guard[0], '#'); /* size 0: nothing written at all */
	KASSERT_EQ(ksnprintf(buf, sizeof(buf), "%d", 1234567), 7);
	KASSERT_STREQ(buf, "1234567"); /* exactly fits */
}

KTEST(ktest, snprintf_formats)
{
	char buf[96];
	ksnprintf(buf, sizeof(buf), "%d %i %u %d", -42, 7, 4000000000u, 0);
	KASSERT_STREQ(buf, "-42 7 4000000000 0");
	ksnprintf(buf, sizeof(buf), "%x %X %llx", 0xbeefu, 0xbeefu, 0x123456789abcdefULL);
	KASSERT_STREQ(buf, "beef BEEF 123456789abcdef");
	ksnprintf(buf, sizeof(buf), "[%5d][%-5d][%05d][%05d]", 42, 42, 42, -42);
	KASSERT_STREQ(buf, "[   42][42   ][00042][-0042]");
	ksnprintf(buf, sizeof(buf), "%lld %llu", (long long)(-9223372036854775807LL - 1),
		  18446744073709551615ULL);
	KASSERT_STREQ(buf, "-9223372036854775808 18446744073709551615");
	ksnprintf(buf, sizeof(buf), "%zu %ld %lx", (size_t)12, -5L, 0xffUL);
	KASSERT_STREQ(buf, "12 -5 ff");
	ksnprintf(buf, sizeof(buf), "%p", (void *)0xffffffff80100000ULL);
	KASSERT_STREQ(buf, "0xffffffff80100000");
	ksnprintf(buf, sizeof(buf), "%p", (void *)0x1000);
	KASSERT_STREQ(buf, "0x0000000000001000");
	const char *volatile null_string = NULL; /* hidden from -Wformat-overflow */
	ksnprintf(buf, sizeof(buf), "%s|%6s|%-6s|%c|%%|%s", "ab", "ab", "ab", 'z', null_string);
	KASSERT_STREQ(buf, "ab|    ab|ab    |z|%|(null)");
	ksnprintf(buf, sizeof(buf), "%016llx", 0xabcULL);
	KASSERT_STREQ(buf, "0000000000000abc");
}
