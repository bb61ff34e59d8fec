/* Running the initrd's test programs as nested TAP suites (user_tests.h). */
#include <cmdline.h>
#include <cpio.h>
#include <initrd.h>
#include <ktest.h>
#include <panic.h>
#include <printf.h>
#include <proc.h>
#include <sched.h>
#include <serial.h>
#include <string.h>
#include <timer.h>
#include <user_tests.h>

/* Directory of the test programs inside the initrd. */
#define TESTS_DIR "tests/"
#define SUITE_PREFIX "user_"
#define LINE_MAX_KEPT 256
#define NAME_MAX_KEPT 64
#define INDENT "    "

/* A line being assembled from one writer's writes. */
struct line_buf {
	char buf[LINE_MAX_KEPT];
	u32 len;
};

/* The running test program and what its TAP said so far. */
static struct {
	int pid; /* 0: none running */
	struct line_buf own, spawned;
	int plan;  /* -1 until "1..N" */
	int results, failures;
	bool bailed;
} run;

/* The program name of an archive entry under TESTS_DIR, or NULL. */
static const char *test_name(const char *entry)
{
	if (entry[0] == '.' && entry[1] == '/')
		entry += 2;
	while (*entry == '/')
		entry++;
	if (strncmp(entry, TESTS_DIR, sizeof(TESTS_DIR) - 1) != 0)
		return NULL;
	const char *name = entry + sizeof(TESTS_DIR) - 1;
	return *name && !strchr(name, '/') ? name : NULL;
}

/* True when some glob's suite part (before its first '.') matches suite. */
static bool suite_selected(const char *filter, const char *suite)
{
	if (!filter)
		return true;
	char one[LINE_MAX_KEPT];
	while (filter) {
		const char *comma = strchr(filter, ',');
		u64 len = comma ? (u64)(comma - filter) : strlen(filter);
		u64 part = 0;
		while (part < len && filter[part] != '.')
			part++;
		if (part < sizeof(one)) {
			memcpy(one, filter, part);
			one[part] = '\0';
			if (glob_match(one, suite))
				return true;
		}
		filter = comma ? comma + 1 : NULL;
	}
	return false;
}

/* Call fn(name, path) for each selected test program; returns how many. */
static int each_test(const char *filter, void (*fn)(const char *name, const char *path, void *ctx),
		     void *ctx)
{
	const void *archive;
	u64 len;
	if (initrd_get(&archive, &len) != 0)
		return 0;
	struct cpio_iter it;
	struct cpio_file f;
	int n = 0;
	cpio_iter_init(&it, archive, len);
	while (cpio_next(&it, &f) == 1) {
		const char *name = test_name(f.name);
		char suite[NAME_MAX_KEPT];
		if (!name || (f.mode & CPIO_MODE_TYPE) != CPIO_MODE_FILE)
			continue;
		ksnprintf(suite, sizeof(suite), SUITE_PREFIX "%s", name);
		if (!suite_selected(filter, suite))
			continue;
		n++;
		if (fn)
			fn(name, f.name, ctx);
	}
	return n;
}

int user_tests_count(const char *filter)
{
	return each_test(filter, NULL, NULL);
}

/* True when line starts with prefix. */
static bool starts(const char *line, const char *prefix)
{
	return strncmp(line, prefix, strlen(prefix)) == 0;
}

/* A complete line of the test program itself: count it, print it indented. */
static void own_line(const char *line)
{
	if (starts(line, "TAP version"))
		return; /* the kernel's stream has its version line already */
	if (starts(line, "1..")) {
		run.plan = 0;
		for (const char *p = line + 3; *p >= '0' && *p <= '9'; p++)
			run.plan = run.plan * 10 + (*p - '0');
	} else if (starts(line, "ok ") || starts(line, "not ok ")) {
		run.results++;
		if (line[0] == 'n' && !strstr(line, "# TODO") && !strstr(line, "# todo"))
			run.failures++;
	} else if (starts(line, "Bail out!")) {
		run.bailed = true;
	}
	kprintf(INDENT "%s\n", line);
}

/* Flush b as a line (own TAP, or a comment for a spawned program's output). */
static void flush_line(struct line_buf *b, bool own)
{
	b->buf[b->len] = '\0';
	if (own)
		own_line(b->buf);
	else
		kprintf(INDENT "# %s\n", b->buf);
	b->len = 0;
}

/* True when p is the running test program or one of its descendants (orphans included). */
static bool in_test(struct proc *p)
{
	return run.pid && p->session == run.pid;
}

/* End whatever the test program left running (orphans are reaped as they end). */
static void reap_session(int session)
{
	u64 give_up = clock_ns() + USER_TEST_DEADLINE_S * NS_PER_SEC;
	for (;;) {
		bool left = false;
		for (int i = 0; i < NPROC; i++) {
			struct proc *p = &proc_table[i];
			if (p->session != session || (p->state == PROC_UNUSED && !p->kstack_top))
				continue;
			left = true;
			if (p->state != PROC_ZOMBIE)
				proc_kill(p, "its test program ended");
		}
		if (!left || clock_ns() > give_up)
			return;
		sched_sleep_ns(NS_PER_SEC / TIMER_HZ);
	}
}

bool user_tests_write(struct proc *p, const char *buf, u64 len)
{
	if (!in_test(p))
		return false;
	bool own = p->pid == run.pid;
	struct line_buf *b = own ? &run.own : &run.spawned;
	for (u64 i = 0; i < len; i++) {
		if (buf[i] == '\n' || b->len == LINE_MAX_KEPT - 1) {
			flush_line(b, own);
			if (buf[i] == '\n')
				continue;
		}
		b->buf[b->len++] = buf[i];
	}
	return true;
}

struct run_ctx {
	int number;
	bool ok;
	bool list;
};

/* Run one test program as subtest ctx->number. */
static void run_one(const char *name, const char *path, void *arg)
{
	struct run_ctx *ctx = arg;
	int n = ctx->number++;
	kprintf("# Subtest: " SUITE_PREFIX "%s\n", name);
	if (ctx->list) {
		kprintf(INDENT "1..0 # SKIP listed: a user program's tests are known when it runs\n");
		kprintf("ok %d - " SUITE_PREFIX "%s # SKIP listed\n", n, name);
		return;
	}
	memset(&run, 0, sizeof(run));
	run.plan = -1;
	const char *argv[] = {name};
	/*
	 * Started on CPU 0 only, where this thread runs on until it waits: the
	 * program must not write before it is known as the test (run.pid, its
	 * session), else its first lines go to the console raw and uncounted
	 * (seen on smp4 once processes ran on every CPU). Its own mask after.
	 */
	u32 cpus = sched_set_spawn_cpus(1u);
	int pid = proc_spawn_path(path, 1, argv);
	sched_set_spawn_cpus(cpus);
	struct exit_info x = {0};
	char why[KILL_REASON_MAX + 64] = "";
	if (pid < 0) {
		ksnprintf(why, sizeof(why), "cannot start %s: error %d (%s)", path, pid,
			  error_name(pid) ? error_name(pid) : "?");
	} else {
		run.pid = pid;
		struct proc *p = proc_by_pid(pid);
		p->deadline_ns = clock_ns() + USER_TEST_DEADLINE_S * NS_PER_SEC;
		p->session = pid;
		MUST(sched_set_cpus(p, cpus) == 0);
		int got = proc_wait(pid, &x);
		reap_session(pid);
		if (run.own.len)
			flush_line(&run.own, true);
		if (run.spawned.len)
			flush_line(&run.spawned, false);
		run.pid = 0;
		if (got != pid)
			ksnprintf(why, sizeof(why), "wait failed: %d", got);
		else if (x.killed)
			ksnprintf(why, sizeof(why), "killed: %s", x.reason);
		else if (x.status != 0)
			ksnprintf(why, sizeof(why), "exited with status %d", x.status);
		else if (run.plan < 0)
			ksnprintf(why, sizeof(why), "exited without a TAP plan");
		else if (run.results != run.plan)
			ksnprintf(why, sizeof(why), "planned %d tests, ran %d", run.plan, run.results);
		else if (run.bailed)
			ksnprintf(why, sizeof(why), "bailed out");
	}
	bool ok = !why[0] && run.failures == 0;
	if (why[0]) {
		/* A result of its own, so the failure is reported by name. */
		if (run.plan < 0)
			kprintf(INDENT "1..%d\n", run.results + 1);
		kprintf(INDENT "not ok %d - %s\n", run.results + 1, x.killed ? "killed" : "ended");
		static char escaped[4 * sizeof(why)];
		ktest_yaml_escape(escaped, sizeof(escaped), why);
		kprintf(INDENT "  ---\n" INDENT "  message: \"%s\"\n" INDENT "  ...\n", escaped);
		/* The plan's remaining tests never ran: skipped, so the stream stays whole. */
		for (int k = run.results + 2; k <= run.plan; k++)
			kprintf(INDENT "ok %d - not run # SKIP the program %s\n", k,
				x.killed ? "was killed" : "ended");
	}
	kprintf("%s %d - " SUITE_PREFIX "%s\n", ok ? "ok" : "not ok", n, name);
	ctx->ok &= ok;
}

bool user_tests_run(const char *filter, int first, bool list)
{
	struct run_ctx ctx = {first, true, list};
	each_test(filter, run_one, &ctx);
	return ctx.ok;
}
