/*
 * fork: a child sharing the parent's user half copy-on-write (cow.h), with
 * the parent's regions and registers; its fork returns 0.
 */
#include <cow.h>
#include <proc.h>
#include <sched.h>
#include <string.h>
#include <trap.h>

extern const u8 uthread_trampoline[];
struct proc *proc_alloc(const char *name, const u8 *trampoline, u64 frame_bytes, int *err);
void kstack_unmap(struct proc *p);

/* The user registers p entered the kernel with (the top of its kernel stack). */
static struct trap_frame *user_frame(struct proc *p)
{
	return (struct trap_frame *)(p->kstack_top - sizeof(struct trap_frame));
}

int proc_fork(void)
{
	struct proc *cur = sched_current();
	if (!cur->user)
		return -E_INVAL;
	int err;
	struct proc *p = proc_alloc(cur->name, uthread_trampoline, sizeof(struct trap_frame), &err);
	if (!p)
		return err;
	err = cow_fork_space(&p->space);
	if (err != 0) {
		kstack_unmap(p);
		p->state = PROC_UNUSED;
		return err;
	}
	p->user = true;
	memcpy(p->regions, cur->regions, sizeof(p->regions));
	*user_frame(p) = *user_frame(cur);
	user_frame(p)->rax = 0;
	sched_wakeup(p);
	return p->pid;
}
