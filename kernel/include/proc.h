/*
 * Processes: a table of NPROC slots, each with its address space (a PML4
 * made by new_page_map: the kernel half shared, the user half its own), a
 * kernel stack with an unmapped guard page below it, one thread, and a list
 * of user regions (the thesis's VMAs). Every user page belongs to a region;
 * a fault on a missing page inside a region allowing the access maps a
 * zeroed frame (demand-zero), any other user fault kills the process.
 *
 * Lifecycle: spawn -> runnable/running/sleeping/waiting -> zombie (exit or
 * kill: address space and its frames freed at once, the kernel stack as soon
 * as another thread runs) -> unused (the parent's wait takes the status).
 * A process whose parent is gone is reaped as soon as it ends.
 */
#ifndef OUROBOROS_PROC_H
#define OUROBOROS_PROC_H

#include <percpu.h>
#include <sched.h>
#include <smp.h>
#include <syscalls.h>
#include <types.h>
#include <vmm.h>

#define NPROC 128
#define PROC_REGIONS 32
#define PROC_NAME_MAX 32
#define KILL_REASON_MAX 192

/*
 * Region rights (what the process may do; the PTEs say the same, U set unless
 * no right at all): the ABI's PROT_* bits, as mmap, mprotect and ELF segments
 * give them.
 */
#define REGION_READ PROT_READ
#define REGION_WRITE PROT_WRITE
#define REGION_EXEC PROT_EXEC
#define REGION_RIGHTS (REGION_READ | REGION_WRITE | REGION_EXEC)

enum proc_state {
	PROC_UNUSED,
	PROC_RUNNABLE,
	PROC_RUNNING,
	PROC_SLEEPING, /* until wake_ns */
	PROC_WAITING,  /* for a child */
	PROC_ZOMBIE,   /* ended; status kept for the parent */
	PROC_EMBRYO,   /* a claimed slot being made (proc_alloc): not runnable, not woken */
};

/* A range of the user half with its rights: [start, end), page-aligned. */
struct region {
	u64 start, end;
	u32 rights; /* REGION_* */
	const char *name; /* "text", "stack", "mmap"... for kill reasons */
};

/* How a process ended, as wait reports it. */
struct exit_info {
	int status;  /* exit status (0..255), or -1 when killed */
	bool killed;
	u64 vector;  /* the fault that killed it, or KILL_NO_VECTOR */
	char reason[KILL_REASON_MAX]; /* the kill reason, "" after exit */
	u32 cpus_ran;    /* bit c: it ran on CPU c */
	u64 migrations;  /* times it resumed on another CPU than the one it last ran on */
};

/* exit_info.vector of a process killed for something other than a CPU exception. */
#define KILL_NO_VECTOR 0xff

struct proc {
	enum proc_state state;
	int pid;
	char name[PROC_NAME_MAX];
	struct proc *parent;
	bool user;      /* has a user half (else a kernel thread) */
	pml4_t space;
	/* Kernel stack: [kstack_top - KERNEL_STACK_SIZE, kstack_top), guard page below. */
	u64 kstack_top;
	u64 saved_rsp; /* while not running: its rsp inside context_switch */
	struct region regions[PROC_REGIONS];
	u64 wake_ns;
	bool killed;   /* ends at its next return towards user mode (or wait/sleep) */
	bool exiting;  /* proc_exit has recorded its status: a kill now comes too late */
	struct exit_info exit;
	/* Kernel threads: the function and argument the trampoline calls. */
	int (*fn)(void *);
	void *arg;
	u64 user_faults; /* demand-zero faults served */
	u64 deadline_ns; /* killed when clock_ns() passes it (0: none) */
	int session;     /* pid of the test program it descends from (inherited), or 0 */
	/* SMP (sched.c; written under the scheduler's lock). */
	u32 cpus_allowed; /* bit c: CPU c may run it (inherited by fork; sched_set_cpus) */
	u32 cpus_ran;     /* bit c: it ran on CPU c */
	u32 cpu;          /* the CPU it runs or last ran on */
	bool on_cpu;      /* a CPU runs it (cleared by the next context after the switch) */
	u64 migrations;   /* times it resumed on another CPU than it last ran on */
};

/* The slot of pid, or NULL. */
struct proc *proc_by_pid(int pid);

/* Every slot (for the scheduler). */
extern struct proc proc_table[NPROC];

/*
 * A new process running a program image in memory (an ELF64 file; argv[argc]
 * strings, copied), child of the current process. pid, or -E_x (the ELF's
 * error, -E_NOMEM, -E_NOSPC with no free slot) with nothing leaked.
 */
int proc_spawn_elf(const void *image, u64 size, const char *name, int argc,
		   const char *const *argv);

/*
 * Replace the current (user) process's program by an ELF image, as exec
 * does: the new image is loaded into a new space first; only when it is
 * complete does the old space go (its frames freed or unshared) and the
 * process continue at the new entry with argc/argv. 0 (the trap frame now
 * starts the new program), or the ELF's error / -E_NOMEM with the process
 * unchanged; -E_INVAL for a kernel thread.
 */
int proc_exec_elf(const void *image, u64 size, const char *name, int argc,
		  const char *const *argv);

/* proc_exec_elf for the initrd's file `path`. */
int proc_exec_path(const char *path, int argc, const char *const *argv);

/*
 * fork: a child of the current user process with a copy-on-write copy of
 * its user half, its regions and its registers (the child's fork returns
 * 0). The child's pid, or -E_NOMEM (frames for the copy or the reservation
 * of its copies missing), -E_NOSPC (no process slot), -E_INVAL (a kernel
 * thread), with nothing changed.
 */
int proc_fork(void);

/* proc_spawn_elf for the initrd's file `path` (the process is named by its last part). */
int proc_spawn_path(const char *path, int argc, const char *const *argv);

/*
 * A new process from a raw code blob, for kernel tests: the bytes are copied
 * to `code_va` (RX), a stack region of `stack_pages` ends at `stack_top`
 * (guard page below), and the thread starts at code_va with rsp = stack_top.
 */
int proc_spawn_blob(const void *code, u64 size, u64 code_va, u64 stack_top, u64 stack_pages,
		    const char *name);

/*
 * Wait for child pid (-1: any) to end: its pid, its exit info copied to *out
 * (may be NULL), its slot freed. -E_CHILD without such a child; -E_SRCH
 * when the waiter itself was killed meanwhile.
 */
int proc_wait(int pid, struct exit_info *out);

/* End the current process with status. */
NORETURN void proc_exit(int status);

/*
 * Kill p (any state but unused/zombie) with a reason: it ends before running
 * user code again (at once if it is not running). 0, or -E_SRCH (no such
 * process, or one already in proc_exit: it ends with its own status).
 */
int proc_kill(struct proc *p, const char *reason);

/* proc_kill with the scheduler's lock held (p not NULL). */
int proc_kill_locked(struct proc *p, const char *reason);

/* Kill the current process (printf-style reason) and run another. */
NORETURN void proc_kill_current(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* The same for a CPU exception taken in user mode (wait reports the vector). */
NORETURN void proc_kill_current_fault(u64 vector, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* The slow part of proc_return_to_user. */
void proc_return_to_user_slow(void);

/* Before returning to user mode: die if killed, switch if the timer asked. */
static inline void proc_return_to_user(struct trap_frame *f)
{
	(void)f;
	if (__builtin_expect(this_cpu()->need_resched || sched_current()->killed, 0))
		proc_return_to_user_slow();
}

/* The current process's region holding va, or NULL. */
const struct region *proc_region_of(struct proc *p, u64 va);

/* Add a region (page-aligned, inside the user half, no overlap): 0 or -E_x. */
int proc_region_add(struct proc *p, u64 start, u64 end, u32 rights, const char *name);

/*
 * Anonymous memory (mmap/munmap/mprotect for the current process; rights
 * REGION_*). proc_mmap: the address, or -E_INVAL (zero length, a fixed
 * address outside the mmap area), -E_ALIGN (a misaligned fixed address), -E_EXIST (a fixed range
 * overlaps a region), -E_NOSPC (no gap or no region slot). proc_munmap
 * and proc_mprotect: 0, -E_ALIGN, -E_INVAL, -E_NOSPC (a split needs a region slot);
 * proc_mprotect also -E_NOTMAPPED when part of the range is in no region.
 */
i64 proc_mmap(u64 addr, u64 len, u32 rights, bool fixed);
int proc_munmap(u64 addr, u64 len);
int proc_mprotect(u64 addr, u64 len, u32 rights);

/* PTE flags for region rights: VMM_USER always, VMM_WRITE, VMM_EXEC. */
u32 region_vmm_flags(u32 rights);

/*
 * The page-fault path for the user half (vmm_page_fault calls it): map a
 * zeroed frame if cr2 lies in a region of the current process that allows
 * the access. NULL when resolved, else why not.
 */
const char *proc_page_fault(u64 cr2, u64 err);

/* proc_page_fault of a user process whose region at cr2 was found already (r; NULL: none). */
const char *proc_region_fault(const struct region *r, u64 cr2, u64 err);

/* Processes in use (not unused), for leak checks. */
int proc_count(void);

/*
 * Program loading's static buffers (an ELF plan, a copied argv: too big
 * for a kernel stack) are one CPU's at a time: load_enter takes their lock
 * (LOCK_ORDER_LOAD) unless this CPU holds it or only one CPU runs, and says
 * whether it did; load_leave(took) gives it back.
 */
bool load_enter(void);
void load_leave(bool took);

#endif
