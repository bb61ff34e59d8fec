/*
 * Self-paging (issue 14, after Barrelfish's user-managed virtual memory):
 * a process holds physical frames (handles are their physical addresses),
 * maps them itself into regions it declared self-paged, and handles the
 * page faults there in user mode.
 *
 * Safety: a frame can be mapped only by a process holding it, writable only
 * when held read-write, only inside the caller's self-paged regions of the
 * user half. Holdings live in a pool of records in the kernel heap (one per
 * frame and holder: memory in proportion to what is held), hashed by frame.
 * A frame goes back to the PMM when its last holder lets it go; a process's
 * holdings are let go when it ends (after its self-paged pages are unmapped
 * without freeing them: the frames are the holdings', not the space's).
 */
#ifndef OUROBOROS_SELFPAGE_H
#define OUROBOROS_SELFPAGE_H

#include <trap.h>
#include <types.h>

struct proc;
struct region;

/* The name of self-paged regions (compared by address: the mark of one). */
extern const char selfpage_region_name[];

/* True when r is a self-paged region. */
bool selfpage_region(const struct region *r);

/* True when [addr, addr+len) overlaps a self-paged region of the current process. */
bool selfpage_overlaps(u64 addr, u64 len);

/*
 * Unmap (without freeing) the held frames mapped in the self-paged parts of
 * [addr, addr+len) of the current process: what munmap does before it drops
 * the regions.
 */
void selfpage_unmap_range(u64 addr, u64 len);

/*
 * A user-mode page fault at cr2, in region r of the current process (NULL:
 * none): false when r is not self-paged; true when the process's handler
 * has been entered (f now points at it). A fault with no handler, inside
 * the handler, or left unfixed more than FAULT_RETRY_LIMIT times kills the
 * process (does not return).
 */
bool selfpage_fault(struct trap_frame *f, u64 cr2, const struct region *r);

/* The current process ends: its self-paged pages unmapped, its holdings let go. */
void selfpage_exit(struct proc *p);

/* The frame half of selfpage_exit (frames.c): unmap self-paged pages, drop the holdings. */
void selfpage_frames_exit(struct proc *p);

/* Records in use (every holder of every held frame), for leak checks. */
u64 selfpage_holdings(void);

#endif
