/*
 * Processes from user space: spawn with arguments, wait for a given child or
 * any, exit statuses, -E_CHILD, sleep against the clock, and many
 * spawn/exit/wait cycles.
 */
#include "ulib.h"

static long run_true(void)
{
	const char *argv[] = {"true", NULL};
	long pid = sys_spawn("bin/true", argv);
	if (pid < 0)
		return pid;
	int status = -1;
	return sys_wait((int)pid, &status) == pid ? status : -1;
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	tap_plan(8);
	TAP_EQ(run_true(), 0);
	TAP_EQ(sys_wait(WAIT_ANY, NULL), -E_CHILD);
	const char *argv2[] = {"crash", "no-such-mode", NULL};
	long pid = sys_spawn("bin/crash", argv2);
	tap_ok(pid > 0, "spawn with two arguments (%ld)", pid);
	int status = -1;
	TAP_EQ(sys_wait(WAIT_ANY, &status), pid);
	TAP_EQ(status, 3); /* crash's exit status for an unknown mode */
	long t0 = sys_clock();
	TAP_EQ(sys_sleep(30 * 1000 * 1000), 0);
	long slept = sys_clock() - t0;
	tap_ok(slept >= 30 * 1000 * 1000, "sleep 30 ms lasts at least 30 ms (%ld ns)", slept);
	int ok = 1;
	for (int i = 0; i < 100 && ok; i++)
		ok = run_true() == 0;
	tap_ok(ok, "100 spawn/exit/wait cycles");
	return tap_done();
}
