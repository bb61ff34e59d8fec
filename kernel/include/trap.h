/*
 * Exceptions: the IDT, the uniform trap frame isr.asm builds, and the fixup
 * mechanism tests use to provoke an exception on purpose and survive it.
 */
#ifndef OUROBOROS_TRAP_H
#define OUROBOROS_TRAP_H

#include <types.h>

/* Exception vectors (Intel SDM Vol. 3A §6.15, Table 6-1). */
#define VEC_DE 0  /* divide error */
#define VEC_DB 1  /* debug */
#define VEC_NMI 2 /* non-maskable interrupt */
#define VEC_BP 3  /* breakpoint (int3) */
#define VEC_OF 4  /* overflow */
#define VEC_BR 5  /* bound range exceeded */
#define VEC_UD 6  /* invalid opcode */
#define VEC_NM 7  /* device not available */
#define VEC_DF 8  /* double fault */
#define VEC_TS 10 /* invalid TSS */
#define VEC_NP 11 /* segment not present */
#define VEC_SS 12 /* stack-segment fault */
#define VEC_GP 13 /* general protection */
#define VEC_PF 14 /* page fault */
#define VEC_MF 16 /* x87 floating-point error */
#define VEC_AC 17 /* alignment check */
#define VEC_MC 18 /* machine check */
#define VEC_XM 19 /* SIMD floating-point */
#define VEC_VE 20 /* virtualization */
#define VEC_CP 21 /* control protection */
#define VEC_HV 28 /* hypervisor injection */
#define VEC_VC 29 /* VMM communication */
#define VEC_SX 30 /* security */
#define EXCEPTION_VECTORS 32
/* Device interrupts: isr.asm has stubs for IRQ_VECTORS vectors from IRQ_VECTOR_FIRST. */
#define IRQ_VECTOR_FIRST 32
#define IRQ_VECTORS 16
#define VEC_TIMER IRQ_VECTOR_FIRST /* the local APIC timer */
#define VEC_IPI_CALL (IRQ_VECTOR_FIRST + 1) /* smp.c: run a function on another CPU */
#define VEC_SPURIOUS 255           /* the local APIC's spurious vector (low 4 bits set) */
/* Not a vector: marks a trap frame built by the syscall entry. */
#define VEC_SYSCALL 0x100

/* What isr.asm pushes, lowest address first (its push order reversed). */
struct trap_frame {
	u64 r15, r14, r13, r12, r11, r10, r9, r8;
	u64 rbp, rdi, rsi, rdx, rcx, rbx, rax;
	u64 vector;
	u64 error_code; /* the CPU's, or 0 pushed by the stub where there is none */
	/* pushed by the CPU (SDM Vol. 3A §6.14.2) */
	u64 rip, cs, rflags, rsp, ss;
};

/* True when the frame was interrupted in (or came from) user mode. */
static inline bool trap_from_user(const struct trap_frame *f)
{
	return (f->cs & 3) == 3;
}

/* Build and load the IDT: every exception vector goes to trap_dispatch. */
void idt_init(void);

/* Load the (shared) IDT on this CPU: application processors after idt_init. */
void idt_load(void);

/* Called by isr.asm with the frame; returns to resume at frame->rip. */
void trap_dispatch(struct trap_frame *frame);

/* "#PF" for 14, etc.; "#??" for reserved vectors. */
const char *trap_mnemonic(u64 vector);
/* "page fault" for 14, etc. */
const char *trap_name(u64 vector);

/* Print the error-code meaning of a #PF into buf (e.g. "not present, read, supervisor"). */
void trap_decode_pf_error(u64 error_code, char *buf, size_t size);

/* What an expected exception looked like, for the test to assert on. */
struct trap_record {
	bool hit;
	u64 vector;
	u64 error_code;
	u64 cr2;
	u64 rip;
};

/*
 * The armed expectation. TRAP_FIXUP_SITE stores the addresses of its labels
 * 1: (the instruction expected to fault) and 2: (where to resume) here.
 */
struct trap_expectation {
	u64 fault_rip;  /* 0: any rip; else the faulting (or, for traps, next) rip */
	u64 resume_rip; /* 0: return to the rip the CPU pushed (right for traps like int3) */
	u64 vector;
	bool armed;
};
extern struct trap_expectation trap_expected;
/* TRAP_FIXUP_SITE stores at these offsets. */
_Static_assert(offsetof(struct trap_expectation, fault_rip) == 0, "fault_rip at +0");
_Static_assert(offsetof(struct trap_expectation, resume_rip) == 8, "resume_rip at +8");

/*
 * Arm a one-shot expectation of `vector`: the next such exception is recorded
 * instead of being fatal. Without a fixup site it resumes where the CPU says
 * (after a trap like int3); with one it must hit the site and resumes at 2:.
 */
void trap_expect(u64 vector);
/* Disarm; returns what was recorded since trap_expect (hit false if nothing). */
struct trap_record trap_expect_end(void);

/*
 * Inline-asm prologue for an instruction expected to fault: registers its
 * labels 1: (the instruction) and 2: (resume) in trap_expected, then runs
 * `insn` at 1:. Use in extended asm (operands or clobbers present), and add
 * TRAP_FIXUP_CLOBBERS to the clobbers. Call trap_expect(vector) first.
 */
#define TRAP_FIXUP_SITE(insn)                                   \
	"leaq 1f(%%rip), %%r11\n\t"                             \
	"movq %%r11, trap_expected+0(%%rip)\n\t"                \
	"leaq 2f(%%rip), %%r11\n\t"                             \
	"movq %%r11, trap_expected+8(%%rip)\n\t"                \
	"1: " insn "\n\t"                                       \
	"2:\n\t"
#define TRAP_FIXUP_CLOBBERS "r11", "memory"

/*
 * Ring-3 probes (kernel/tests/test_paging_access.c): while user_probe_active, an
 * exception from user mode is handed to user_probe_catch, which records it
 * and resumes the kernel test that entered user mode (it never returns).
 */
extern bool user_probe_active;
void user_probe_catch(struct trap_frame *f, u64 cr2);

#endif
