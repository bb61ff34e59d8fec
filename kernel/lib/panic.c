/*
 * panic(): the one way out when the kernel cannot go on. It reports in TAP
 * (comment lines, then "Bail out!") so the runner sees why the run ended,
 * and leaves QEMU through isa-debug-exit with DEBUG_EXIT_PANIC.
 */
#include <cpu.h>
#include <gdt.h>
#include <io.h>
#include <layout.h>
#include <panic.h>
#include <percpu.h>
#include <printf.h>
#include <serial.h>
#include <smp.h>
#include <string.h>

/* Deepest backtrace printed: enough for any sane call chain, bounded if the chain loops. */
#define BACKTRACE_MAX_FRAMES 32
/* Longest panic message kept. */
#define PANIC_MSG_MAX 256

extern const u8 __stack_bottom[], __stack_top[];

/* The CPU whose panic is being reported (PANIC_NO_CPU: none). */
#define PANIC_NO_CPU 0xFFFFFFFFu
static u32 panic_cpu = PANIC_NO_CPU;

bool panic_in_progress(void)
{
	return __atomic_load_n(&panic_cpu, __ATOMIC_RELAXED) != PANIC_NO_CPU;
}

NORETURN void debug_exit(u8 code)
{
	outb(DEBUG_EXIT_PORT, code);
	/* Without the isa-debug-exit device the write does nothing: stop here. */
	halt_forever();
}

/* The stack holding addr, as [*lo, *hi), or false if addr is on no kernel stack. */
static bool stack_bounds(u64 addr, u64 *lo, u64 *hi)
{
	if (addr >= (u64)__stack_bottom && addr < (u64)__stack_top) {
		*lo = (u64)__stack_bottom;
		*hi = (u64)__stack_top;
		return true;
	}
	return ist_stack_contains(addr, lo, hi);
}

/* True when a saved frame pointer can be read without faulting. */
static bool frame_readable(u64 rbp)
{
	u64 lo, hi;
	return IS_ALIGNED(rbp, sizeof(u64)) && stack_bounds(rbp, &lo, &hi) &&
	       rbp + 2 * sizeof(u64) <= hi;
}

void backtrace_print(u64 rip, u64 rbp)
{
	kprintf("# backtrace:\n");
	kprintf("#   [0] 0x%016llx\n", rip);
	for (int i = 1; i < BACKTRACE_MAX_FRAMES && frame_readable(rbp); i++) {
		const u64 *frame = (const u64 *)rbp;
		u64 next = frame[0], ret = frame[1];
		if (ret == 0)
			break;
		kprintf("#   [%d] 0x%016llx\n", i, ret);
		/*
		 * Callers' frames lie above their callees' on the same stack, so a
		 * chain that does not climb is corrupt; the one allowed jump is from
		 * an IST stack back to the interrupted stack.
		 */
		u64 lo, hi;
		stack_bounds(rbp, &lo, &hi);
		if (next >= lo && next < hi && next <= rbp)
			break;
		rbp = next;
	}
}

/* Replace line breaks in msg in place, so "Bail out!" stays one line. */
static void flatten(char *msg)
{
	for (; *msg; msg++)
		if (*msg == '\n' || *msg == '\r')
			*msg = ' ';
}

NORETURN void panic(const char *fmt, ...)
{
	cli();
	/* GS (this_cpu) is set up on every CPU that runs once a second one is up. */
	u32 me = smp_cpu_count() >= 2 ? this_cpu()->cpu_id : 0, first = PANIC_NO_CPU;
	if (!__atomic_compare_exchange_n(&panic_cpu, &first, me, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		/*
		 * Another CPU is reporting its panic: stop here, so the run ends
		 * with the first reason, not with this one cutting it short.
		 */
		if (first != me)
			halt_forever();
		/* A panic while panicking on this CPU: the first report may be garbled, but end the run. */
		kprintf("%sBail out! panic: nested panic\n", serial_at_line_start() ? "" : "\n");
		debug_exit(DEBUG_EXIT_PANIC);
	}

	static char msg[PANIC_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	kvsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	flatten(msg);

	/* Start a fresh line: the panic may interrupt a half-printed one. */
	if (!serial_at_line_start())
		kprintf("\n");
	kprintf("# panic: %s\n", msg);
	u64 rbp = (u64)__builtin_frame_address(0);
	backtrace_print((u64)__builtin_return_address(0), *(const u64 *)rbp);
	kprintf("Bail out! panic: %s\n", msg);
	debug_exit(DEBUG_EXIT_PANIC);
}
