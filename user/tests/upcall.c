/*
 * Page faults delivered to the process: the handler runs in user mode on its
 * own stack with the address, error code and interrupted state, maps a frame
 * and resumes the code exactly where it was (every register kept); the
 * kernel kills for no handler, a fault inside the handler, a handler that
 * does not fix the fault, a handler that returns.
 */
#include "pager.h"

#define PAGE PAGE_SIZE

static unsigned char handler_stack[4 * PAGE] __attribute__((aligned(16)));
static struct fault_info seen;
static unsigned long seen_rsp;
/* Written by the handler behind the compiler's back. */
static volatile unsigned long calls;
static unsigned char *region;

static void handler(struct fault_info *info)
{
	unsigned long rsp;
	__asm__ volatile("movq %%rsp, %0" : "=r"(rsp));
	seen = *info;
	seen_rsp = rsp;
	calls++;
	unsigned long page = info->addr & ~(PAGE - 1);
	if (info->err & PF_PRESENT) {
		/* Protection: let the write through. */
		if (sys_frame_protect((void *)page, PAGE, PROT_READ | PROT_WRITE) < 0)
			sys_exit(89);
	} else {
		long f = sys_frame_alloc(0);
		if (f < 0 ||
		    sys_frame_map((void *)page, (unsigned long)f, PROT_READ | PROT_WRITE, 0) < 0)
			sys_exit(90);
	}
	sys_fault_resume();
	sys_exit(91);
}

/* Load known values into every general register, store to *p, read them back. */
static void registers_across_fault(volatile unsigned long *p, unsigned long out[9])
{
	__asm__ volatile("movq %%rbp, %%r12\n"
			 "movq $0x1111, %%rax\n movq $0x2222, %%rbx\n movq $0x3333, %%rcx\n"
			 "movq $0x4444, %%rdx\n movq $0x5555, %%rsi\n movq $0x6666, %%r8\n"
			 "movq $0x7777, %%r11\n movq $0x8888, %%r15\n movq $0x9999, %%rbp\n"
			 "movq %%rax, (%%rdi)\n" /* the fault */
			 "movq %%rbp, %%r10\n movq %%r12, %%rbp\n"
			 "movq %%rax, 0(%1)\n movq %%rbx, 8(%1)\n movq %%rcx, 16(%1)\n"
			 "movq %%rdx, 24(%1)\n movq %%rsi, 32(%1)\n movq %%r8, 40(%1)\n"
			 "movq %%r11, 48(%1)\n movq %%r15, 56(%1)\n movq %%r10, 64(%1)\n"
			 :
			 : "D"(p), "r"(out)
			 : "rax", "rbx", "rcx", "rdx", "rsi", "r8", "r10", "r11", "r12", "r15", "memory");
}

static void test_handler(void)
{
	TAP_EQ(sys_fault_resume(), -E_NOFAULT);
	TAP_EQ(sys_fault_handler((void *)handler, handler_stack + sizeof(handler_stack)), 0);
	unsigned long out[9];
	volatile unsigned long *p = (volatile unsigned long *)(region + 3 * PAGE + 16);
	registers_across_fault(p, out);
	TAP_EQ(calls, 1);
	TAP_EQ(seen.addr, (unsigned long)p);
	tap_ok((seen.err & (PF_PRESENT | PF_WRITE | 4)) == (PF_WRITE | 4),
	       "error code: not present, write, user (0x%lx)", seen.err);
	tap_ok(seen.frame.rax == 0x1111 && seen.frame.rcx == 0x3333 && seen.frame.r11 == 0x7777,
	       "the interrupted registers are on the handler's stack");
	tap_ok(seen_rsp < (unsigned long)handler_stack + sizeof(handler_stack) &&
		       seen_rsp >= (unsigned long)handler_stack,
	       "the handler runs on its own stack");
	static const unsigned long want[9] = {0x1111, 0x2222, 0x3333, 0x4444, 0x5555,
					      0x6666, 0x7777, 0x8888, 0x9999};
	int same = 1;
	for (int i = 0; i < 9; i++)
		same &= out[i] == want[i];
	tap_ok(same, "resumed exactly: every register (rcx and r11 too) as before the fault");
	TAP_EQ(*p, 0x1111);
	/* A protection fault: read-only page, written. */
	TAP_EQ(sys_frame_protect((void *)(region + 3 * PAGE), PAGE, PROT_READ), 0);
	unsigned long before = calls;
	*p = 7;
	TAP_EQ(calls, before + 1);
	TAP_EQ(*p, 7);
	/* The same access faulting again after each fix is no retry: not killed. */
	before = calls;
	for (unsigned long i = 0; i < 10; i++) {
		sys_frame_protect((void *)(region + 3 * PAGE), PAGE, PROT_READ);
		*p = i;
	}
	TAP_EQ(calls, before + 10);
}

/* A child in a mode of bin/spchild: killed by #PF (status WAIT_KILLED | 14). */
static void test_kill(const char *mode, const char *what)
{
	const char *argv[] = {"spchild", mode, NULL};
	long pid = sys_spawn("bin/spchild", argv);
	int status = -1;
	long w = sys_wait((int)pid, &status);
	if (!tap_ok(pid > 0 && w == pid && status == (WAIT_KILLED | 14), "killed: %s", what))
		tap_diag("  pid %ld wait %ld status 0x%x", pid, w, status);
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	tap_plan(18);
	long r = sys_selfpage(NULL, 8 * PAGE, 0);
	if (!tap_ok(r > 0, "a self-paged region"))
		return tap_done();
	region = (unsigned char *)r;
	test_handler();
	test_kill("nohandler", "a fault in a self-paged region with no handler");
	test_kill("inhandler", "a fault inside the fault handler");
	test_kill("nofix", "a handler that resumes without fixing the fault");
	test_kill("returns", "a handler that returns instead of resuming");
	return tap_done();
}
