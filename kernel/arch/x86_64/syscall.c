/*
 * The syscall/sysret path (Intel SDM Vol. 3A §5.8.8). syscall_entry swaps
 * to the kernel's GS, takes the thread's kernel stack from the per-CPU
 * area and builds a struct trap_frame (vector VEC_SYSCALL) as an interrupt
 * from user mode would have: one frame layout for every entry, so the
 * scheduler, the kill path and later fork or fault upcalls see one kind.
 *
 * The return goes through sysret only when the frame's rip is a user-half
 * address: sysret to a non-canonical rip raises #GP in ring 0 on the user's
 * stack on Intel CPUs. syscall_return_check kills a process whose return
 * address is outside the user half (only a syscall instruction in the last
 * two bytes of the half can produce one), so nothing else reaches sysret.
 */
#include <cpu.h>
#include <gdt.h>
#include <layout.h>
#include <panic.h>
#include <percpu.h>
#include <proc.h>
#include <sched.h>
#include <syscalls.h>
#include <trap.h>

/* MSRs and bits of the fast system call (SDM Vol. 4 Table 2-2). */
#define MSR_STAR 0xC0000081u
#define MSR_LSTAR 0xC0000082u
#define MSR_SFMASK 0xC0000084u
#define STAR_KERNEL_SHIFT 32
#define STAR_USER_SHIFT 48
/* RFLAGS bits syscall clears: IF, TF, DF, AC (SDM Vol. 1 §3.4.3). */
#define RFLAGS_TF (1ULL << 8)
#define RFLAGS_DF (1ULL << 10)
#define RFLAGS_AC (1ULL << 18)
#define SYSCALL_RFLAGS_MASK (RFLAGS_IF | RFLAGS_TF | RFLAGS_DF | RFLAGS_AC)

#define STR_(x) #x
#define STR(x) STR_(x)

__asm__(".pushsection .text\n"
	".globl syscall_entry\n"
	".type syscall_entry, @function\n"
	"syscall_entry:\n"
	"	swapgs\n"
	"	movq %rsp, %gs:" STR(PERCPU_USER_RSP) "\n"
	"	movq %gs:" STR(PERCPU_KERNEL_RSP) ", %rsp\n"
	"	pushq $" STR(GDT_USER_DS) "\n"
	"	pushq %gs:" STR(PERCPU_USER_RSP) "\n"
	"	pushq %r11\n" /* rflags */
	"	pushq $" STR(GDT_USER_CS) "\n"
	"	pushq %rcx\n" /* rip */
	"	pushq $0\n"   /* error code */
	"	pushq $" STR(VEC_SYSCALL) "\n"
	"	pushq %rax\n pushq %rbx\n pushq %rcx\n pushq %rdx\n pushq %rsi\n pushq %rdi\n"
	"	pushq %rbp\n pushq %r8\n pushq %r9\n pushq %r10\n pushq %r11\n pushq %r12\n"
	"	pushq %r13\n pushq %r14\n pushq %r15\n"
	"	movq %rsp, %rdi\n"
	"	xorl %ebp, %ebp\n" /* the backtrace ends here */
	"	call syscall_dispatch\n"
	"	popq %r15\n popq %r14\n popq %r13\n popq %r12\n popq %r11\n popq %r10\n"
	"	popq %r9\n popq %r8\n popq %rbp\n popq %rdi\n popq %rsi\n popq %rdx\n"
	"	popq %rcx\n popq %rbx\n popq %rax\n"
	"	addq $16, %rsp\n" /* vector, error code */
	"	movq (%rsp), %rcx\n"   /* rip: checked by syscall_return_check */
	"	movq 16(%rsp), %r11\n" /* rflags */
	"	movq 24(%rsp), %rsp\n" /* the user stack */
	"	swapgs\n"
	"	sysretq\n"
	".size syscall_entry, . - syscall_entry\n"
	".popsection\n");
extern const u8 syscall_entry[];

SYSCALL_DEFINE_TABLE(syscall_table);

void syscall_init(void)
{
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
	wrmsr(MSR_STAR, ((u64)GDT_KERNEL_CS << STAR_KERNEL_SHIFT) |
				((u64)GDT_SYSRET_BASE << STAR_USER_SHIFT));
	wrmsr(MSR_LSTAR, (u64)syscall_entry);
	wrmsr(MSR_SFMASK, SYSCALL_RFLAGS_MASK);
}

/*
 * Kill the process rather than sysret to an address outside the user half.
 * CS and SS are the entry code's constants; RFLAGS is what the process had
 * (sysret clears RF and VM itself, and ring 3 can change neither IOPL nor IF's
 * meaning for the kernel).
 */
static inline void syscall_return_check(struct trap_frame *f)
{
	if (__builtin_expect(f->rip >= USER_END, 0))
		proc_kill_current("return address 0x%016llx of a system call is not canonical "
				  "user code: refused before sysret",
				  f->rip);
}

void syscall_dispatch(struct trap_frame *f);
void syscall_dispatch(struct trap_frame *f)
{
	u64 nr = f->rax;
	syscall_fn fn = nr < SYSCALL_TABLE_SIZE ? syscall_table[nr] : NULL;
	f->rax = fn ? (u64)fn(f->rdi, f->rsi, f->rdx, f->r10, f->r8, f->r9) : (u64)-E_NOSYS;
	proc_return_to_user(f);
	syscall_return_check(f);
}
