/*
 * The early window: a 2 MiB range whose page table exists from boot but is
 * empty. Before the memory manager runs, it is the only way to read physical
 * memory outside the kernel image (boot information, command line, memory map).
 */
#ifndef OUROBOROS_EARLY_MAP_H
#define OUROBOROS_EARLY_MAP_H

#include <types.h>

/*
 * Map [phys, phys+len) read-only (and NX when EFER.NXE is on) into free
 * pages of the window. Returns the virtual address of phys, or NULL when the
 * window has no run of free pages that long.
 */
MUST_CHECK const void *early_map(u64 phys, size_t len);

/* Unmap a range returned by early_map (same len). */
void early_unmap(const void *va, size_t len);

/* Pages of the window in use (for tests: every map must be undone). */
size_t early_map_pages_in_use(void);

#endif
