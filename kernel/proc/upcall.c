/*
 * Page faults delivered to the process (selfpage.h). A user-mode fault in a
 * self-paged region saves the interrupted trap frame in the kernel, copies
 * it with the faulting address and error code onto the handler's own
 * exception stack, and returns to user mode at the handler:
 *   rdi = &info (struct { u64 addr, err; struct trap_frame frame; }),
 *   rsi = address, rdx = error code, rsp = &info - 8 (a zero return address:
 *   a handler that returns faults at NULL and is killed).
 * fault_resume puts the saved frame back into the system call's own frame
 * and the syscall path returns through iretq (rcx and r11 are the
 * interrupted code's, not sysret's), so the code resumes exactly where it
 * was. The user's copy is information only: the kernel's copy is what comes
 * back, so a handler cannot forge segments or flags.
 */
#include <layout.h>
#include <panic.h>
#include <proc.h>
#include <sched.h>
#include <selfpage.h>
#include <string.h>
#include <syscalls.h>
#include <uaccess.h>

#define RFLAGS_DF (1ULL << 10)

/* What the handler finds on its stack. */
struct fault_info {
	u64 addr, err;
	struct trap_frame frame;
};

/* Per process slot; `pid` tells whether it is this process's (else it is reset). */
struct upcall_state {
	int pid;
	u64 entry, stack_top;
	bool in_handler;
	struct trap_frame saved;
	u64 last_addr, last_rip; /* the last fault delivered, and how many times in a row */
	u32 repeats;
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

bool selfpage_fault(struct trap_frame *f, u64 cr2)
{
	struct proc *p = sched_current();
	if (!selfpage_region(proc_region_of(p, cr2)))
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
	if (cr2 == s->last_addr && f->rip == s->last_rip) {
		if (++s->repeats > FAULT_RETRY_LIMIT)
			proc_kill_current_fault(
				VEC_PF, "#PF (page fault) at address 0x%016llx, rip 0x%016llx: the fault "
				"handler resumed %u times without fixing it",
				cr2, f->rip, s->repeats);
	} else {
		s->repeats = 0;
		s->last_addr = cr2;
		s->last_rip = f->rip;
	}
	struct fault_info info = {cr2, f->error_code, *f};
	u64 at = ALIGN_DOWN(s->stack_top - sizeof(info), 16), ret = 0;
	if (copy_to_user(at, &info, sizeof(info)) != 0 ||
	    copy_to_user(at - sizeof(ret), &ret, sizeof(ret)) != 0)
		proc_kill_current_fault(VEC_PF, "#PF (page fault) at address 0x%016llx, rip 0x%016llx: "
				       "the fault handler's stack at 0x%016llx is not writable",
				       cr2, f->rip, s->stack_top);
	s->saved = *f;
	s->in_handler = true;
	s->upcalls++;
	f->rip = s->entry;
	f->rsp = at - sizeof(ret);
	f->rdi = at;
	f->rsi = cr2;
	f->rdx = f->error_code;
	f->rflags &= ~RFLAGS_DF; /* the ABI's direction flag at a function's entry */
	return true;
}

i64 sys_fault_resume(void)
{
	struct proc *p = sched_current();
	struct upcall_state *s = state_of(p);
	if (!s->in_handler)
		return -E_NOFAULT;
	/* The system call's frame: syscall_entry built it at the top of the kernel stack. */
	struct trap_frame *f = (struct trap_frame *)(p->kstack_top - sizeof(*f));
	*f = s->saved;
	s->in_handler = false;
	/* The dispatcher stores this in rax; rcx and r11 differ from sysret's: iretq returns. */
	return (i64)s->saved.rax;
}

void selfpage_exit(struct proc *p)
{
	selfpage_frames_exit(p);
	states[p - proc_table] = (struct upcall_state){0};
}
