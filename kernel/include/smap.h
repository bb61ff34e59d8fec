/*
 * SMEP and SMAP (Intel SDM Vol. 3A §4.6.1): with them on, the kernel cannot
 * execute a user page at all, nor read or write one unless RFLAGS.AC is set.
 * AC is set (stac) only by the user-copy routines (kernel/proc/uaccess.c)
 * around their one copy instruction and cleared (clac) after it; every
 * interrupt and exception entry clears it too, so a handler never runs with
 * user pages open.
 */
#ifndef OUROBOROS_SMAP_H
#define OUROBOROS_SMAP_H

#include <layout.h> /* CPUID_STRUCT_FEATURES, CPUID_EBX_SMEP/SMAP, CR4_SMEP/SMAP (linker/arch.ts) */
#include <types.h>

/* 1 when CR4.SMAP is on: the entry code and the copy routines test it before clac/stac. */
extern u8 smap_enabled;

/* Turn SMEP and SMAP on where CPUID reports them (after vmm_init: no user page is in use before). */
void smap_init(void);

/* Whether SMEP / SMAP are on. */
bool smep_on(void);
static inline bool smap_on(void)
{
	return smap_enabled != 0;
}

#endif
