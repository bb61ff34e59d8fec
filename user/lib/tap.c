/* The TAP helper (ulib.h): numbered results, a plan, and a verdict for exit. */
#include "ulib.h"

static int planned = -1, run, failed;

void tap_plan(int n)
{
	planned = n;
	printf("TAP version 14\n1..%d\n", n);
}

/* Print "ok N - name" (or "not ok") with name formatted from fmt, and a directive. */
static void result(int cond, const char *directive, const char *fmt, va_list ap)
{
	char name[256];
	vsnprintf(name, sizeof(name), fmt, ap);
	run++;
	printf("%sok %d - %s%s\n", cond ? "" : "not ", run, name, directive);
}

int tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	result(cond, "", fmt, ap);
	va_end(ap);
	if (!cond)
		failed++;
	return cond;
}

void tap_skip(const char *reason, const char *fmt, ...)
{
	char directive[160];
	snprintf(directive, sizeof(directive), " # SKIP %s", reason);
	va_list ap;
	va_start(ap, fmt);
	result(1, directive, fmt, ap);
	va_end(ap);
}

void tap_diag(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	printf("# %s\n", line);
}

int tap_done(void)
{
	if (planned >= 0 && run != planned) {
		tap_diag("planned %d tests but ran %d", planned, run);
		failed++;
	}
	return failed > 255 ? 255 : failed; /* an exit status keeps 8 bits */
}
