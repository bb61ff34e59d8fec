/*
 * Page faults delivered to the process (selfpage.h). A user-mode fault in a
 * self-paged region saves the interrupted trap frame in the kernel, copies
 * it with the faulting address and error code onto the handler's own
 * exception stack, and returns to user mode at the handler:
 *   rdi = &info (struct { u64 addr, err; struct trap_frame frame; }),
 *   rsi = address, rdx = error code, rsp = &info - 8 (a zero return address:
 *   a handler that returns faults at NULL and is killed).
 * fault_resume puts the saved frame back into the system call's own frame
 * and returns from it by iretq (upcall_iret below; sysret would lose rcx
 * and r11), so the code resumes exactly where it was; the common syscall
 * path is untouched. The user's copy is information only: the kernel's copy is what comes
 * back, so a handler cannot forge segments or flags.
 */
#include <layout.h>
#include <paging.h>
#include <panic.h>
#include <proc.h>
#include <sched.h>
#include <selfpage.h>
#include <string.h>
#include <syscalls.h>
#include <uaccess.h>

#define RFLAGS_DF (1ULL << 10)

/*
 * NORETURN void upcall_iret(struct trap_frame *f): return to user mode with
 * every register of f (the top of the kernel stack: nothing above it is
 * needed any more), as the syscall entry's exit does but by iretq.
 */
__asm__(".pushsection .text\n"
	".globl upcall_iret\n"
	".type upcall_iret, @function\n"
	"upcall_iret:\n"
	"	movq %rdi, %rsp\n"
	"	popq %r15\n popq %r14\n popq %r13\n popq %r12\n popq %r11\n popq %r10\n"
	"	popq %r9\n popq %r8\n popq %rbp\n popq %rdi\n popq %rsi\n popq %rdx\n"
	"	popq %rcx\n popq %rbx\n popq %rax\n"
	"	addq $16, %rsp\n" /* vector, error code */
	"	swapgs\n"
	"	iretq\n"
	".size upcall_iret, . - upcall_iret\n"
	".popsection\n");
NORETURN void upcall_iret(struct trap_frame *f);

/* What the handler finds on its stack, above a zero return address. */
struct fault_info {
	u64 ret; /* where a handler that returns goes: NULL */
	u64 addr, err;
	struct trap_frame frame;
};

/* Per process slot; `pid` tells whether it is this process's (else it is reset). */
struct upcall_state {
	int pid;
	u64 entry, stack_top;
	bool in_handler;
	struct trap_frame saved;
	u64 last_addr, last_err; /* the fault being handled */
	u32 repeats;             /* resumes in a row that left their fault unfixed */
	u64 upcalls;
};

static struct upcall_state states[NPROC];

/* The current process's state, reset if the slot was someone else's. */
static struct upcall_state *state_of(struct proc *p)
{
	struct upcall_state *s = &states[p - proc_table];
	if (s->pid != p->pid)
		*s = (struct upcall_state){.pid = p->pid};
	return s;
}

i64 sys_fault_handler(u64 entry, u64 stack_top)
{
	sched_pin_boot_cpu(); /* the self-paging state is CPU 0's (sched.h) */
	struct upcall_state *s = state_of(sched_current());
	if (!entry) {
		s->entry = s->stack_top = 0;
		return 0;
	}
	if (entry >= USER_END || stack_top >= USER_END || stack_top < PAGE_SIZE)
		return -E_KERNADDR;
	if (!IS_ALIGNED(stack_top, 16))
		return -E_ALIGN;
	s->entry = entry;
	s->stack_top = stack_top;
	return 0;
}

bool selfpage_fault(struct trap_frame *f, u64 cr2, const struct region *r)
{
	struct proc *p = sched_current();
	if (!selfpage_region(r))
		return false;
	struct upcall_state *s = state_of(p);
	if (!s->entry)
		proc_kill_current_fault(VEC_PF, "#PF (page fault) at address 0x%016llx, rip 0x%016llx: "
				       "self-paged region and no fault handler",
				       cr2, f->rip);
	if (s->in_handler)
		proc_kill_current_fault(VEC_PF, "#PF (page fault) at address 0x%016llx, rip 0x%016llx: "
				       "fault inside the fault handler (handling 0x%016llx)",
				       cr2, f->rip, s->last_addr);
	s->last_addr = cr2;
	s->last_err = f->error_code;
	struct fault_info info = {0, cr2, f->error_code, *f};
	/* &info.addr 16-aligned: the handler's rsp is 8 below a multiple of 16, as after a call. */
	u64 at = ALIGN_DOWN(s->stack_top - sizeof(info) + sizeof(u64), 16) - sizeof(u64);
	if (copy_to_user(at, &info, sizeof(info)) != 0)
		proc_kill_current_fault(VEC_PF, "#PF (page fault) at address 0x%016llx, rip 0x%016llx: "
				       "the fault handler's stack at 0x%016llx is not writable",
				       cr2, f->rip, s->stack_top);
	s->saved = *f;
	s->in_handler = true;
	s->upcalls++;
	f->rip = s->entry;
	f->rsp = at;
	f->rdi = at + sizeof(u64);
	f->rsi = cr2;
	f->rdx = f->error_code;
	f->rflags &= ~RFLAGS_DF; /* the ABI's direction flag at a function's entry */
	return true;
}

/* Would the access of a fault with error code err at addr now go through? */
static bool fixed(u64 addr, u64 err)
{
	int level;
	u64 leaf = paging_walk(addr, &level);
	if (!(leaf & PTE_P) || !(leaf & PTE_U))
		return false;
	if ((err & PF_ERR_W) && !(leaf & PTE_W))
		return false;
	return !(err & PF_ERR_I) || !(leaf & PTE_NX);
}

i64 sys_fault_resume(void)
{
	sched_pin_boot_cpu(); /* the self-paging state is CPU 0's (sched.h) */
	struct proc *p = sched_current();
	struct upcall_state *s = state_of(p);
	if (!s->in_handler)
		return -E_NOFAULT;
	/* The system call's frame: syscall_entry built it at the top of the kernel stack. */
	/*
	 * Left unfixed, the access faults again: allowed a few times in a row
	 * (a handler may fix one thing at a time), then the process is killed.
	 */
	if (!fixed(s->last_addr, s->last_err)) {
		if (++s->repeats > FAULT_RETRY_LIMIT)
			proc_kill_current_fault(
				VEC_PF, "#PF (page fault) at address 0x%016llx, rip 0x%016llx: the fault "
				"handler resumed %u times without fixing it",
				s->last_addr, s->saved.rip, s->repeats);
	} else {
		s->repeats = 0;
	}
	struct trap_frame *f = (struct trap_frame *)(p->kstack_top - sizeof(*f));
	*f = s->saved;
	s->in_handler = false;
	proc_return_to_user(f);
	upcall_iret(f);
}

void selfpage_exit(struct proc *p)
{
	selfpage_frames_exit(p);
	states[p - proc_table] = (struct upcall_state){0};
}
