/*
 * The C library and the simplest system calls: argc/argv as the kernel laid
 * them out, string functions, snprintf, getpid, the monotonic clock, and
 * write's refusal of a bad descriptor.
 */
#include "ulib.h"

static void test_args(int argc, char **argv)
{
	tap_ok(argc >= 1, "argc >= 1 (got %d)", argc);
	tap_ok(argv[argc] == NULL, "argv[argc] is NULL");
	tap_ok(argc >= 1 && argv[0] != NULL && strlen(argv[0]) > 0, "argv[0] is a name");
	/* argv lies on the user stack, below its top: below the kernel half. */
	tap_ok((uintptr_t)argv > 0 && (uintptr_t)argv < USER_STACK_TOP &&
		       (uintptr_t)argv >= USER_STACK_BOTTOM,
	       "argv lies on the user stack (%p)", (void *)argv);
	tap_ok(((uintptr_t)argv & 7) == 0, "argv is 8-byte aligned");
	for (int i = 0; i < argc; i++)
		tap_diag("argv[%d] = '%s'", i, argv[i]);
}

static void test_strings(void)
{
	char buf[32];
	TAP_EQ(strlen("hello"), 5);
	tap_ok(strcmp("abc", "abd") < 0 && strcmp("b", "a") > 0 && strcmp("x", "x") == 0,
	       "strcmp orders");
	memset(buf, 'z', sizeof(buf));
	memcpy(buf, "12345", 6);
	memmove(buf + 1, buf, 5);
	tap_ok(memcmp(buf, "112345", 6) == 0, "memmove handles overlap");
	TAP_EQ(snprintf(buf, sizeof(buf), "%d|%5s|%-3x|%03u|%lld", -42, "ab", 0xa, 7U, -1LL),
	       strlen("-42|   ab|a  |007|-1"));
	tap_ok(strcmp(buf, "-42|   ab|a  |007|-1") == 0, "snprintf formats ('%s')", buf);
	TAP_EQ(snprintf(buf, 4, "%s", "truncated"), 9);
	tap_ok(strcmp(buf, "tru") == 0, "snprintf truncates and terminates");
}

static void test_calls(void)
{
	long pid = sys_getpid();
	tap_ok(pid > 0, "getpid is positive (%ld)", pid);
	TAP_EQ(sys_getpid(), pid);
	long t0 = sys_clock();
	sys_yield();
	long t1 = sys_clock();
	tap_ok(t0 >= 0 && t1 >= t0, "clock is monotonic (%ld then %ld)", t0, t1);
	TAP_EQ(sys_write(99, "x", 1), -E_BADF);
	TAP_EQ(sys_write(STDOUT_FD, "# write returns its length\n", 27), 27);
	TAP_EQ(sys_write(STDOUT_FD, "x", 0), 0);
	TAP_EQ(syscall0(SYSCALL_TABLE_SIZE + 1), -E_NOSYS);
	TAP_EQ(syscall0(0), -E_NOSYS);
	TAP_EQ(syscall0(SYSCALL_TABLE_SIZE - 1), -E_NOSYS); /* a number no call has */
}

int main(int argc, char **argv)
{
	tap_plan(21);
	test_args(argc, argv);
	test_strings();
	test_calls();
	return tap_done();
}
