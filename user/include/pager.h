/*
 * Self-paging from user space (issue 14): the fault information the kernel
 * puts on the handler's stack, and a paging library of memory objects
 * attached to self-paged regions (user/lib/pager.c):
 *   zero-fill  anonymous memory: a fresh zeroed frame per page touched;
 *   cow        copy-on-write over another object: reads map the source's
 *              frame read-only, the first write copies it into a frame of
 *              its own (the dataspaces lecture's COW dataspace);
 *   paged      holds at most N frames; past that it evicts the oldest page to
 *              a backing store and brings pages back on fault (FIFO).
 * One handler serves every object; it never touches an unmapped page of a
 * self-paged region itself (a fault inside the handler kills the process).
 */
#ifndef OUROBOROS_USER_PAGER_H
#define OUROBOROS_USER_PAGER_H

#include "ulib.h"

/* The interrupted state, in the kernel's trap-frame order (kernel/include/trap.h). */
struct fault_frame {
	unsigned long r15, r14, r13, r12, r11, r10, r9, r8;
	unsigned long rbp, rdi, rsi, rdx, rcx, rbx, rax;
	unsigned long vector, error_code;
	unsigned long rip, cs, rflags, rsp, ss;
};

/* What the handler receives (rdi): the faulting address, the #PF error code, the state. */
struct fault_info {
	unsigned long addr, err;
	struct fault_frame frame;
};

/* #PF error-code bits. */
#define PF_PRESENT 1UL
#define PF_WRITE 2UL

enum pager_kind { PAGER_ZERO, PAGER_COW, PAGER_PAGED };

/* A memory object attached to a self-paged region. */
struct pager_obj {
	enum pager_kind kind;
	unsigned char *base;   /* the region */
	unsigned long npages;
	unsigned long *frames; /* frame of each page it owns (0: none) */
	struct pager_obj *source; /* cow: the object copied */
	unsigned char *backing;   /* paged: one page per page of the object */
	unsigned char *in_backing; /* paged: the page's contents are in backing */
	unsigned long *resident;   /* paged: pages holding a frame, oldest first (a ring) */
	unsigned long max_frames, nresident, oldest;
	unsigned long faults, evictions, copies;
};

/* Register the library's handler with its own exception stack: 0 or -E_x. */
int pager_init(void);

/* Attach a zero-fill object of npages: 0 or -E_x. */
int pager_zero(struct pager_obj *o, unsigned long npages);
/* Attach a copy-on-write object over src (same size): 0 or -E_x. */
int pager_cow(struct pager_obj *o, struct pager_obj *src);
/* Attach a paged object of npages holding at most max_frames frames: 0 or -E_x. */
int pager_paged(struct pager_obj *o, unsigned long npages, unsigned long max_frames);
/* Detach: unmap, give the frames back, unmap the region: 0 or -E_x. */
int pager_destroy(struct pager_obj *o);

/* The handler itself (for programs that install it with a stack of their own). */
__attribute__((noreturn)) void pager_handler(struct fault_info *info);

#endif
