/* Ring-3 probes (user_probe.h): iretq to user mode, back by the first exception. */
#include <cpu.h>
#include <gdt.h>
#include <layout.h>
#include <percpu.h>
#include <proc.h>
#include <sched.h>
#include <trap.h>
#include <user_probe.h>

bool user_probe_active;

/* The test's rsp while the probe runs (probe_enter saved its callee-saved registers there). */
static u64 saved_rsp, discard_rsp;
static struct probe_result got;
/* The stack exceptions from the probe are taken on (TSS.RSP0 while it runs). */
static u8 probe_stack[2 * PAGE_SIZE] __attribute__((aligned(16)));
/* rip, cs, rflags, rsp, ss for iretq. */
static u64 iret_frame[5];

extern void context_switch(u64 *save_rsp, u64 new_rsp);
void probe_enter(u64 *save_rsp, const u64 *iret, u64 rax);

/*
 * Save the callee-saved registers and rsp as context_switch does, then
 * iretq into ring 3 with the kernel's GS swapped away (the entry swaps back).
 */
__asm__(".pushsection .text\n"
	".globl probe_enter\n"
	"probe_enter:\n"
	"	pushq %rbp\n pushq %rbx\n pushq %r12\n pushq %r13\n pushq %r14\n pushq %r15\n"
	"	movq %rsp, (%rdi)\n"
	"	movq %rsi, %rsp\n"
	"	movq %rdx, %rax\n"
	"	swapgs\n"
	"	iretq\n"
	".popsection\n");

void user_probe_catch(struct trap_frame *f, u64 cr2)
{
	got = (struct probe_result){f->vector, f->error_code, cr2, f->rip};
	user_probe_active = false;
	/* Back into user_probe_run, as if probe_enter had returned; this stack is dropped. */
	context_switch(&discard_rsp, saved_rsp);
}

void user_probe_run(u64 rip, u64 arg, struct probe_result *out)
{
	/* RFLAGS: bit 1 only (IF off: no interrupt can come while the probe runs). */
	iret_frame[0] = rip;
	iret_frame[1] = GDT_USER_CS;
	iret_frame[2] = 1ULL << 1;
	iret_frame[3] = 0;
	iret_frame[4] = GDT_USER_DS;
	percpu_set_kernel_stack((u64)probe_stack + sizeof(probe_stack));
	got = (struct probe_result){0};
	user_probe_active = true;
	probe_enter(&saved_rsp, iret_frame, arg);
	percpu_set_kernel_stack(sched_current()->kstack_top);
	*out = got;
}
