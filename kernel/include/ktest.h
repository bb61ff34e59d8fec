/*
 * The in-kernel test framework. Tests register themselves in the `.ktest`
 * section and run at boot; results go to COM1 as TAP version 14, one subtest
 * per suite:
 *
 *   KTEST(layout, constants) {
 *       KASSERT_EQ(PAGE_SIZE, 1ULL << PAGE_SHIFT);
 *   }
 *
 * A failed assertion records its diagnostic and returns from the test
 * function, so assertions belong in the test body itself (not in helpers).
 *
 * Every suite is checked for leaks: the PMM's free frames and the page-table
 * frames of the current space are counted before and after it, and any
 * difference fails the suite, naming how many frames were lost or gained.
 * A suite that keeps memory on purpose declares it (anywhere in its files):
 *
 *   KTEST_SUITE(heap, KTEST_KEEPS_MEMORY, "the heap keeps the pages it grew into");
 */
#ifndef OUROBOROS_KTEST_H
#define OUROBOROS_KTEST_H

#include <types.h>

/* Marks a registry entry; a mismatch means the section is not an array of struct ktest. */
#define KTEST_MAGIC 0x6b74657374303031ULL /* "ktest001" */

/* Suite flags (KTEST_SUITE). */
#define KTEST_KEEPS_MEMORY (1u << 0) /* frames it takes and keeps are no leak */

/* A test, or (name and fn NULL) the declaration of a suite's flags. */
struct ktest {
	u64 magic;
	const char *suite;
	const char *name; /* NULL: a suite declaration */
	void (*fn)(void);
	const char *todo; /* non-NULL: a TODO test, with the reason */
	const char *file;
	u64 line;
	u32 flags;          /* suite declarations: KTEST_KEEPS_MEMORY... */
	const char *reason; /* suite declarations: why the flags are needed */
};

/* The registry, bounded by the linker script. */
extern const struct ktest __ktest_start[], __ktest_end[];

#define KTEST_REGISTER_(suite, name, todo)                                              \
	static void ktest_fn_##suite##_##name(void);                                    \
	static const struct ktest ktest_entry_##suite##_##name                          \
		__attribute__((used, no_reorder, section(".ktest"), aligned(8))) = {    \
			KTEST_MAGIC, #suite, #name, ktest_fn_##suite##_##name, todo,    \
			__FILE__, __LINE__, 0, NULL,                                    \
	};                                                                              \
	static void ktest_fn_##suite##_##name(void)

/*
 * Define and register test `name` of `suite` (both C identifiers). no_reorder
 * keeps entries in source order (GCC otherwise emits a file's in reverse),
 * so tests run in the order they are written.
 */
#define KTEST(suite, name) KTEST_REGISTER_(suite, name, NULL)
/* A test that is known to fail: reported "# TODO reason"; its failure does not fail the run. */
#define KTEST_TODO(suite, name, reason) KTEST_REGISTER_(suite, name, reason)

/* Declare flags of `suite` (KTEST_KEEPS_MEMORY), with the reason; at most once per suite. */
#define KTEST_SUITE(suite, suite_flags, why)                                             \
	static const struct ktest ktest_suite_##suite                                    \
		__attribute__((used, no_reorder, section(".ktest"), aligned(8))) = {     \
			KTEST_MAGIC, #suite, NULL, NULL, NULL, __FILE__, __LINE__,       \
			suite_flags, why,                                                \
	}

/* The bits set in v (a CPU mask, a flag set); libgcc (__builtin_popcount) is not linked. */
static inline u32 ktest_bits_set(u64 v)
{
	u32 n = 0;
	for (; v; v &= v - 1)
		n++;
	return n;
}

/* Record a failure of the running test (used by the macros below). */
void ktest_fail_(const char *file, int line, const char *message, const char *expected,
		 const char *actual);
void ktest_fail_u64_(const char *file, int line, const char *message, const char *relation,
		     u64 expected, u64 actual);
void ktest_fail_str_(const char *file, int line, const char *message, const char *expected,
		     const char *actual);
void ktest_skip_(const char *reason);

/* Fail the test unless cond holds. */
#define KASSERT(cond)                                                      \
	do {                                                               \
		if (!(cond)) {                                             \
			ktest_fail_(__FILE__, __LINE__, #cond, NULL, NULL); \
			return;                                            \
		}                                                          \
	} while (0)

/* Fail the test unless actual == expected (compared and printed as u64). */
#define KASSERT_EQ(actual, expected)                                                       \
	do {                                                                               \
		u64 ktest_a_ = (u64)(actual), ktest_e_ = (u64)(expected);                  \
		if (ktest_a_ != ktest_e_) {                                                \
			ktest_fail_u64_(__FILE__, __LINE__, #actual " == " #expected, "",  \
					ktest_e_, ktest_a_);                               \
			return;                                                            \
		}                                                                          \
	} while (0)

/* Fail the test if actual == unexpected. */
#define KASSERT_NE(actual, unexpected)                                                     \
	do {                                                                               \
		u64 ktest_a_ = (u64)(actual), ktest_e_ = (u64)(unexpected);                \
		if (ktest_a_ == ktest_e_) {                                                \
			ktest_fail_u64_(__FILE__, __LINE__, #actual " != " #unexpected,    \
					"not ", ktest_e_, ktest_a_);                       \
			return;                                                            \
		}                                                                          \
	} while (0)

/* Fail the test unless the two C strings are equal (NULL equals only NULL). */
#define KASSERT_STREQ(actual, expected)                                                     \
	do {                                                                                \
		const char *ktest_a_ = (actual), *ktest_e_ = (expected);                    \
		if (!ktest_str_equal_(ktest_a_, ktest_e_)) {                                \
			ktest_fail_str_(__FILE__, __LINE__, #actual " == " #expected,       \
					ktest_e_, ktest_a_);                                \
			return;                                                             \
		}                                                                           \
	} while (0)

/* End the test as skipped: "ok N - name # SKIP reason". */
#define KTEST_SKIP(reason)               \
	do {                             \
		ktest_skip_(reason);     \
		return;                  \
	} while (0)

bool ktest_str_equal_(const char *a, const char *b);

/* Print a TAP comment inside the running subtest ("    # ..."). */
void ktest_log(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* Print "TAP version 14" (once; later calls do nothing). */
void ktest_print_version(void);

/*
 * Run the registered tests that `filter` selects (NULL: all) as TAP; with
 * `ktest.list` on the command line, list them instead (each "# SKIP listed").
 * Returns the debug-exit code: DEBUG_EXIT_PASS or DEBUG_EXIT_FAIL.
 */
u8 ktest_run(const char *filter);

/* Run the tests in [begin, end) as TAP (selftests use it for their own entries). */
u8 ktest_run_set(const struct ktest *begin, const struct ktest *end, const char *filter);

/*
 * Escape src as the body of a YAML double-quoted scalar into dst[size]
 * (always terminated). Returns the full escaped length (>= size: truncated).
 */
size_t ktest_yaml_escape(char *dst, size_t size, const char *src);

/* What the leak check counts (ktest_memory_now). */
struct ktest_memory {
	u64 free;   /* frames free in the PMM */
	u64 tables; /* page-table frames of the current space (PML4 and below, self-map excluded) */
};

/* Count free frames and the current space's page tables (walked top-down, read-only). */
void ktest_memory_now(struct ktest_memory *out);

/* Run the failure-class selftest `name` instead of the tests (never returns). */
NORETURN void selftest_run(const char *name);
/* False for a selftest that must run before any TAP is printed (garbage). */
bool selftest_prints_tap(const char *name);

#endif
