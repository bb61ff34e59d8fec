/*
 * Access to user memory from system calls. A user pointer is a number until
 * checked: it must lie in the user half (not NULL's page, not straddling the
 * end of the half, canonical), inside regions of the current process that
 * allow the access; then it is copied by one instruction whose fault (a page
 * the process unmapped or protected meanwhile, out of frames for a
 * demand-zero page) returns -E_FAULT instead of faulting the kernel.
 */
#ifndef OUROBOROS_UACCESS_H
#define OUROBOROS_UACCESS_H

#include <types.h>

/* Copy len bytes from user address src: 0 or -E_FAULT. */
int copy_from_user(void *dst, u64 src, u64 len);

/* Copy len bytes to user address dst: 0 or -E_FAULT. */
int copy_to_user(u64 dst, const void *src, u64 len);

/* Copy a NUL-terminated user string into dst[size]: its length, -E_FAULT, or -E_TOOBIG. */
i64 strncpy_from_user(char *dst, u64 src, u64 size);

/* True when [va, va + len) is in the user half and in regions granting `rights` (REGION_*). */
bool user_range_ok(u64 va, u64 len, u32 rights);

struct trap_frame;
/* A kernel #PF inside the copy instruction: resume at its fixup (true), else false. */
bool uaccess_fixup(struct trap_frame *f);

#endif
