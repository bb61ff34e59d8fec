/*
 * Processes: creation from a program image, regions and their demand-zero
 * faults, exit, kill and wait. Everything a process holds is released in
 * one place (proc_exit): its address space with every frame and table
 * (drop_current_page_map), then its kernel stack once another thread runs (sched.c).
 */
#include <cow.h>
#include <cpu.h>
#include <elf.h>
#include <gdt.h>
#include <layout.h>
#include <panic.h>
#include <paging.h>
#include <percpu.h>
#include <pmm.h>
#include <printf.h>
#include <proc.h>
#include <sched.h>
#include <selfpage.h>
#include <smap.h>
#include <spinlock.h>
#include <string.h>
#include <trap.h>
#include <vmm.h>

/* RFLAGS a process starts with: IF, and bit 1 which is always set. */
#define RFLAGS_USER_INITIAL (RFLAGS_IF | (1ULL << 1))

extern const u8 uthread_trampoline[];
struct proc *proc_alloc(const char *name, const u8 *trampoline, u64 frame_bytes, int *err);
void kstack_unmap(struct proc *p);
NORETURN void sched_exit_current(void);

struct proc *proc_by_pid(int pid)
{
	for (int i = 0; i < NPROC; i++)
		if (proc_table[i].state != PROC_UNUSED && proc_table[i].pid == pid)
			return &proc_table[i];
	return NULL;
}

static struct spinlock load_lock = SPINLOCK_INIT("program-load", LOCK_ORDER_LOAD);

bool load_enter(void)
{
	return spin_lock_outer(&load_lock);
}

void load_leave(bool took)
{
	spin_unlock_taken(&load_lock, took);
}

int proc_count(void)
{
	int n = 0;
	for (int i = 0; i < NPROC; i++)
		n += proc_table[i].state != PROC_UNUSED || proc_table[i].kstack_top;
	return n;
}

u32 region_vmm_flags(u32 rights)
{
	/* No access at all: a kernel-only page, so any user access is a protection fault. */
	if (!rights)
		return 0;
	return VMM_USER | ((rights & REGION_WRITE) ? VMM_WRITE : 0) |
	       ((rights & REGION_EXEC) ? VMM_EXEC : 0);
}

const struct region *proc_region_of(struct proc *p, u64 va)
{
	for (int i = 0; i < PROC_REGIONS; i++)
		if (p->regions[i].end && va >= p->regions[i].start && va < p->regions[i].end)
			return &p->regions[i];
	return NULL;
}

int proc_region_add(struct proc *p, u64 start, u64 end, u32 rights, const char *name)
{
	if (!IS_ALIGNED(start, PAGE_SIZE) || !IS_ALIGNED(end, PAGE_SIZE) || start >= end ||
	    end > USER_END || start < PAGE_SIZE)
		return -E_INVAL;
	struct region *free = NULL;
	for (int i = 0; i < PROC_REGIONS; i++) {
		struct region *r = &p->regions[i];
		if (!r->end)
			free = free ? free : r;
		else if (start < r->end && end > r->start)
			return -E_EXIST;
	}
	if (!free)
		return -E_NOSPC;
	*free = (struct region){start, end, rights, name};
	return 0;
}

/*
 * Map a zeroed frame at page (current space) with the flags `first` (the
 * kernel zeroes it through them), then `flags`: 0 or -E_NOMEM.
 */
static int map_zeroed_as(u64 page, u32 first, u32 flags)
{
	u64 frame;
	if (pmm_alloc(&frame) != 0)
		return -E_NOMEM;
	if (map_region(page, frame, 1, first) != 0) {
		MUST(pmm_free(frame) == 0);
		return -E_NOMEM;
	}
	vmm_zero_page((void *)page);
	if (first != flags)
		MUST(set_page_flags(page, 1, flags) == 0);
	return 0;
}

/* Map a zeroed frame at page (current space) with the rights' flags: 0 or -E_NOMEM. */
static int map_zeroed(u64 page, u32 rights)
{
	/*
	 * A writable region's page is mapped as it will stay and zeroed through
	 * that mapping (the process cannot run meanwhile), unless SMAP forbids
	 * the kernel that store; any other one is kernel-only, writable and not
	 * executable while it is zeroed, then gets its rights.
	 */
	u32 flags = region_vmm_flags(rights);
	u32 first = (flags & VMM_WRITE) && !smap_on() ? flags : VMM_WRITE;
	return map_zeroed_as(page, first, flags);
}

/* What the region's rights say about an access with #PF error code err, or NULL if allowed. */
static const char *access_refusal(const struct region *r, u64 err)
{
	if ((err & PF_ERR_I) && !(r->rights & REGION_EXEC))
		return "execution in a non-executable region";
	if ((err & PF_ERR_W) && !(r->rights & REGION_WRITE))
		return "write to a read-only region";
	if (!(err & (PF_ERR_W | PF_ERR_I)) && !(r->rights & REGION_READ))
		return "read of a region without access";
	return NULL;
}

/* Why a fault at va finds no region: the stack guard, or nothing at all. */
static const char *no_region_refusal(struct proc *p, u64 va)
{
	const struct region *above = proc_region_of(p, ALIGN_DOWN(va, PAGE_SIZE) + PAGE_SIZE);
	if (above && above->name && strcmp(above->name, "stack") == 0)
		return "stack guard page (stack overflow)";
	if (va < PAGE_SIZE)
		return "NULL pointer (no region at this address)";
	return "no region at this address";
}

const char *proc_page_fault(u64 cr2, u64 err)
{
	struct proc *p = sched_current();
	if (!p->user)
		return "no mapping and no demand-zero region at this address";
	return proc_region_fault(proc_region_of(p, cr2), cr2, err);
}

const char *proc_region_fault(const struct region *r, u64 cr2, u64 err)
{
	struct proc *p = sched_current();
	if (!r)
		return no_region_refusal(p, cr2);
	if (selfpage_region(r))
		return "self-paged region: the process maps its pages itself";
	const char *why = access_refusal(r, err);
	if (why)
		return why;
	/* A write the region allows to a present page: a page fork shares. */
	if ((err & (PF_ERR_P | PF_ERR_W | PF_ERR_I)) == (PF_ERR_P | PF_ERR_W))
		return cow_write_fault(cr2);
	if (err & PF_ERR_P)
		return "protection violation: the page does not allow this access";
	int zeroed = map_zeroed(ALIGN_DOWN(cr2, PAGE_SIZE), r->rights);
	if (zeroed != 0)
		return "out of physical frames for a demand-zero page";
	p->user_faults++;
	return NULL;
}

/*
 * Copy size bytes to va in the current space (pages mapped here, the rest of
 * each zeroed, then given the rights): the first part of a segment. 0 or
 * -E_NOMEM.
 */
static int load_bytes(u64 va, const u8 *src, u64 size, u32 rights)
{
	for (u64 page = ALIGN_DOWN(va, PAGE_SIZE); page < va + size; page += PAGE_SIZE) {
		u64 frame;
		if (pmm_alloc(&frame) != 0)
			return -E_NOMEM;
		if (map_region(page, frame, 1, VMM_WRITE) != 0) {
			MUST(pmm_free(frame) == 0);
			return -E_NOMEM;
		}
		u64 from = page < va ? va : page;
		u64 to = page + PAGE_SIZE < va + size ? page + PAGE_SIZE : va + size;
		/* Zeroed where the copy does not write: a page it fills is not zeroed first. */
		memset((void *)page, 0, from - page);
		memcpy((void *)from, src + (from - va), to - from);
		memset((void *)to, 0, page + PAGE_SIZE - to);
		MUST(set_page_flags(page, 1, region_vmm_flags(rights)) == 0);
	}
	return 0;
}

/* A new user process shell: slot, kernel stack, empty address space. */
static struct proc *user_proc_new(const char *name, int *err)
{
	struct proc *p = proc_alloc(name, uthread_trampoline, sizeof(struct trap_frame), err);
	if (!p)
		return NULL;
	*err = new_page_map(&p->space);
	if (*err != 0) {
		kstack_unmap(p);
		p->state = PROC_UNUSED;
		return NULL;
	}
	p->user = true;
	return p;
}

/* Undo user_proc_new after a failed load (the space is not current). */
static void user_proc_abort(struct proc *p)
{
	MUST(drop_page_map(p->space, VMM_FREE_FRAMES) == 0);
	kstack_unmap(p);
	p->state = PROC_UNUSED;
}

/* The initial user register state: entry, stack, the two first arguments. */
static void set_user_frame(struct proc *p, u64 rip, u64 rsp, u64 rdi, u64 rsi)
{
	struct trap_frame *f = (struct trap_frame *)(p->kstack_top - sizeof(struct trap_frame));
	memset(f, 0, sizeof(*f));
	f->rip = rip;
	f->cs = GDT_USER_CS;
	f->rflags = RFLAGS_USER_INITIAL;
	f->rsp = rsp;
	f->ss = GDT_USER_DS;
	f->rdi = rdi;
	f->rsi = rsi;
}

/* Run fn(p, ctx) with p's address space current, then come back. */
static int in_space(struct proc *p, int (*fn)(struct proc *, const void *), const void *ctx)
{
	pml4_t home = current_page_map();
	switch_page_map(p->space);
	int err = fn(p, ctx);
	switch_page_map(home);
	return err;
}

struct blob {
	const void *code;
	u64 size, code_va, stack_top, stack_pages;
};

static int load_blob(struct proc *p, const void *ctx)
{
	const struct blob *b = ctx;
	u64 end = ALIGN_UP(b->code_va + b->size, PAGE_SIZE);
	int err = proc_region_add(p, b->code_va, end, REGION_READ | REGION_EXEC, "text");
	if (!err)
		err = proc_region_add(p, b->stack_top - b->stack_pages * PAGE_SIZE, b->stack_top,
				      REGION_READ | REGION_WRITE, "stack");
	if (!err)
		err = load_bytes(b->code_va, b->code, b->size, REGION_READ | REGION_EXEC);
	return err;
}

int proc_spawn_blob(const void *code, u64 size, u64 code_va, u64 stack_top, u64 stack_pages,
		    const char *name)
{
	if (!size || !IS_ALIGNED(code_va, PAGE_SIZE) || !IS_ALIGNED(stack_top, PAGE_SIZE) ||
	    !stack_pages)
		return -E_INVAL;
	int err;
	struct proc *p = user_proc_new(name, &err);
	if (!p)
		return err;
	struct blob b = {code, size, code_va, stack_top, stack_pages};
	if ((err = in_space(p, load_blob, &b)) != 0) {
		user_proc_abort(p);
		return err;
	}
	set_user_frame(p, code_va, stack_top, 0, 0);
	sched_wakeup(p);
	return p->pid;
}

struct elf_load {
	const u8 *image;
	const struct elf_plan *plan;
	int argc;
	const char *const *argv;
	u64 rsp, argv_va; /* out: the initial stack pointer and argv */
};

/*
 * The initial stack (System V AMD64 ABI §3.4.1), in its top page: argc,
 * argv[0..argc-1], NULL, an empty environment (NULL), an empty auxiliary
 * vector (AT_NULL, 0), then the strings. rsp 16-byte aligned at argc.
 */
static int build_stack(struct elf_load *l)
{
	u64 top = USER_STACK_TOP, page = top - PAGE_SIZE;
	u64 strings = 0;
	for (int i = 0; i < l->argc; i++)
		strings += strlen(l->argv[i]) + 1;
	u64 words = 1 + (u64)l->argc + 1 + 1 + 2;
	if (l->argc < 0 || strings + words * sizeof(u64) + 16 > PAGE_SIZE)
		return -E_TOOBIG;
	/* Kernel-only while it is written (SMAP), then the stack's rights (below). */
	int err = map_zeroed_as(page, VMM_WRITE, VMM_WRITE);
	if (err)
		return err;
	u64 str = top - strings;
	u64 sp = ALIGN_DOWN(str - words * sizeof(u64), 16);
	u64 *w = (u64 *)sp;
	*w++ = (u64)l->argc;
	l->argv_va = (u64)w;
	for (int i = 0; i < l->argc; i++) {
		u64 n = strlen(l->argv[i]) + 1;
		memcpy((void *)str, l->argv[i], n);
		*w++ = str;
		str += n;
	}
	*w++ = 0; /* argv end */
	*w++ = 0; /* envp end */
	*w++ = 0; /* AT_NULL */
	*w++ = 0;
	l->rsp = sp;
	MUST(set_page_flags(page, 1, region_vmm_flags(REGION_READ | REGION_WRITE)) == 0);
	return 0;
}

static int load_elf(struct proc *p, const void *ctx)
{
	struct elf_load *l = (struct elf_load *)ctx;
	for (u32 i = 0; i < l->plan->nsegments; i++) {
		const struct elf_segment *s = &l->plan->segments[i];
		u32 rights = s->prot; /* PROT_* bits: region rights as they are */
		u64 start = ALIGN_DOWN(s->vaddr, PAGE_SIZE), end = ALIGN_UP(s->vaddr + s->memsz, PAGE_SIZE);
		int err = proc_region_add(p, start, end, rights, (rights & REGION_EXEC) ? "text" :
							       (rights & REGION_WRITE) ? "data" : "rodata");
		if (!err && s->filesz)
			err = load_bytes(s->vaddr, l->image + s->offset, s->filesz, rights);
		if (err)
			return err;
	}
	int err = proc_region_add(p, USER_STACK_BOTTOM, USER_STACK_TOP, REGION_READ | REGION_WRITE,
				  "stack");
	return err ? err : build_stack(l);
}

static int spawn_elf(const void *image, u64 size, const char *name, int argc,
		     const char *const *argv)
{
	static struct elf_plan plan; /* big for a stack: under the load lock */
	int err = elf_parse(image, size, &plan);
	if (err)
		return err;
	struct proc *p = user_proc_new(name, &err);
	if (!p)
		return err;
	struct elf_load l = {image, &plan, argc, argv, 0, 0};
	if ((err = in_space(p, load_elf, &l)) != 0) {
		user_proc_abort(p);
		return err;
	}
	set_user_frame(p, plan.entry, l.rsp, (u64)argc, l.argv_va);
	sched_wakeup(p);
	return p->pid;
}

int proc_spawn_elf(const void *image, u64 size, const char *name, int argc,
		   const char *const *argv)
{
	bool took = load_enter();
	int err = spawn_elf(image, size, name, argc, argv);
	load_leave(took);
	return err;
}

static int exec_elf(const void *image, u64 size, const char *name, int argc,
		    const char *const *argv)
{
	static struct elf_plan plan; /* under the load lock */
	static struct proc next; /* the new image's space and regions until it is complete */
	struct proc *cur = sched_current();
	if (!cur->user)
		return -E_INVAL;
	int err = elf_parse(image, size, &plan);
	if (err)
		return err;
	memset(&next, 0, sizeof(next));
	if ((err = new_page_map(&next.space)) != 0)
		return err;
	struct elf_load l = {image, &plan, argc, argv, 0, 0};
	if ((err = in_space(&next, load_elf, &l)) != 0) {
		MUST(drop_page_map(next.space, VMM_FREE_FRAMES) == 0);
		return err;
	}
	/* Loaded: only now does the old program go. */
	pml4_t old = cur->space;
	cur->space = next.space;
	switch_page_map(cur->space);
	MUST(drop_page_map(old, VMM_FREE_FRAMES) == 0);
	memcpy(cur->regions, next.regions, sizeof(cur->regions));
	strlcpy(cur->name, name, sizeof(cur->name));
	set_user_frame(cur, plan.entry, l.rsp, (u64)argc, l.argv_va);
	return 0;
}

int proc_exec_elf(const void *image, u64 size, const char *name, int argc,
		  const char *const *argv)
{
	bool took = load_enter();
	int err = exec_elf(image, size, name, argc, argv);
	load_leave(took);
	return err;
}

/* Give the current process's children to nobody; zombies among them are freed now (lock held). */
static void orphan_children(struct proc *cur)
{
	for (int i = 0; i < NPROC; i++) {
		struct proc *c = &proc_table[i];
		if (c->parent != cur || c->state == PROC_UNUSED)
			continue;
		c->parent = NULL;
		if (c->state == PROC_ZOMBIE && !c->kstack_top)
			c->state = PROC_UNUSED;
	}
}

NORETURN void proc_exit(int status)
{
	struct proc *cur = sched_current();
	ASSERT(cur->pid != 0);
	/*
	 * Under the lock: a kill from another CPU writes the same fields. From
	 * here on a kill is refused, so the status it ends with is this one.
	 */
	sched_lock_acquire();
	if (!cur->killed) {
		cur->exit.status = status;
		cur->exit.killed = false;
		cur->exit.reason[0] = '\0';
	}
	cur->exiting = true;
	sched_lock_release();
	if (cur->user) {
		selfpage_exit(cur);
		cur->space = proc_table[0].space;
		MUST(drop_current_page_map(cur->space, VMM_FREE_FRAMES) == 0);
		memset(cur->regions, 0, sizeof(cur->regions));
		cur->user = false;
	}
	sched_lock_acquire();
	orphan_children(cur);
	cur->exit.cpus_ran = cur->cpus_ran;
	cur->exit.migrations = cur->migrations;
	cur->state = PROC_ZOMBIE;
	if (cur->parent && cur->parent->state == PROC_WAITING)
		sched_wakeup_sync_locked(cur->parent); /* this CPU leaves us now: no IPI */
	sched_exit_current();
}

int proc_kill(struct proc *p, const char *reason)
{
	if (!p)
		return -E_SRCH;
	sched_lock_acquire();
	int err = proc_kill_locked(p, reason);
	sched_lock_release();
	return err;
}

/* proc_kill_locked, recording `vector` with the reason when this kill is the first. */
static int kill_locked(struct proc *p, const char *reason, u64 vector)
{
	if (p->state == PROC_UNUSED || p->state == PROC_ZOMBIE || p->pid == 0 || p->exiting)
		return -E_SRCH;
	if (!p->killed) {
		p->killed = true;
		p->exit.killed = true;
		p->exit.status = -1;
		p->exit.vector = vector;
		strlcpy(p->exit.reason, reason, sizeof(p->exit.reason));
	}
	/* Blocked: let it run into its own end (it checks `killed` on every way out). */
	if (p->state == PROC_SLEEPING || p->state == PROC_WAITING)
		sched_wakeup_locked(p);
	return 0;
}

int proc_kill_locked(struct proc *p, const char *reason)
{
	return kill_locked(p, reason, KILL_NO_VECTOR);
}

/* Kill the current process with a formatted reason (an earlier kill's reason and vector stay). */
static NORETURN void vkill_current(u64 vector, const char *fmt, va_list ap)
{
	struct proc *cur = sched_current();
	char reason[KILL_REASON_MAX];
	kvsnprintf(reason, sizeof(reason), fmt, ap);
	sched_lock_acquire();
	MUST(kill_locked(cur, reason, vector) == 0);
	sched_lock_release();
	proc_exit(-1);
}

NORETURN void proc_kill_current(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vkill_current(KILL_NO_VECTOR, fmt, ap);
}

NORETURN void proc_kill_current_fault(u64 vector, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vkill_current(vector, fmt, ap);
}

void proc_return_to_user_slow(void)
{
	struct proc *cur = sched_current();
	struct percpu *cpu = this_cpu();
	if (cpu->need_resched) {
		cpu->need_resched = false;
		sched_yield();
	}
	if (cur->killed)
		proc_exit(-1);
}

int proc_wait(int pid, struct exit_info *out)
{
	struct proc *cur = sched_current();
	for (;;) {
		bool have = false;
		sched_lock_acquire();
		for (int i = 0; i < NPROC; i++) {
			struct proc *c = &proc_table[i];
			if (c->parent != cur || c->state == PROC_UNUSED || (pid != -1 && c->pid != pid))
				continue;
			have = true;
			if (c->state != PROC_ZOMBIE || c->kstack_top)
				continue;
			int got = c->pid;
			if (out)
				*out = c->exit;
			c->state = PROC_UNUSED;
			c->parent = NULL;
			sched_lock_release();
			return got;
		}
		/* Still under the lock: a child's exit cannot fall between this scan and the block. */
		if (!have || cur->killed) {
			sched_lock_release();
			return !have ? -E_CHILD : -E_SRCH;
		}
		cur->state = PROC_WAITING;
		sched_block();
	}
}
