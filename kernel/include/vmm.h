/*
 * The paging API (the MetalSVM operations), working only through the
 * self-map: there is no direct map of physical memory. A PTE is written at
 * its self-map address directly; if its page table does not exist yet, the
 * write faults and the #PF handler creates the table (bottom-up, nested at
 * most three deep). Every unmap and flag change invalidates the TLB entry.
 */
#ifndef OUROBOROS_VMM_H
#define OUROBOROS_VMM_H

#include <types.h>

/* Mapping flags (not PTE bits: the API translates them). */
#define VMM_WRITE   (1u << 0) /* writable */
#define VMM_USER    (1u << 1) /* user-accessible (user half only) */
#define VMM_EXEC    (1u << 2) /* executable (else NX, when the CPU has NX) */
#define VMM_GLOBAL  (1u << 3) /* global (kernel half only) */
#define VMM_LARGE   (1u << 4) /* 2 MiB pages (vaddr, paddr, size 2 MiB-aligned) */
#define VMM_HUGE    (1u << 5) /* 1 GiB pages (only when CPUID reports them) */

/* unmap_region options. */
#define VMM_FREE_FRAMES (1u << 0) /* give the mapped frames back to the PMM */

/* An address space: the physical frame of its PML4. */
typedef u64 pml4_t;

/*
 * Map npages pages (4 KiB, or 2 MiB/1 GiB with VMM_LARGE/VMM_HUGE) from
 * vaddr to paddr. 0, or -E_ALIGN, -E_CANON, -E_SELFMAP, -E_EXIST, -E_HUGE,
 * -E_NOMEM, -E_INVAL. On failure, the pages this call mapped are unmapped
 * again and tables it created are released (all or nothing).
 */
int map_region(u64 vaddr, u64 paddr, u64 npages, u32 flags);

/* Unmap npages 4 KiB pages (or the huge pages covering them); release tables that empty. */
int unmap_region(u64 vaddr, u64 npages, u32 options);

/* Change the flags of npages mapped pages; -E_NOTMAPPED if one is not mapped (nothing changes then). */
int set_page_flags(u64 vaddr, u64 npages, u32 flags);

/* Physical address vaddr maps to: 0 and *paddr set, or -E_NOTMAPPED. */
int virt_to_phys(u64 vaddr, u64 *paddr);

/* A new address space: kernel half shared, user half copied (new tables, same frames). */
int copy_page_map(pml4_t *out);

/* Free the user half's tables of an address space that is not current (and its frames if asked). */
int drop_page_map(pml4_t space, u32 options);

/* Switch to an address space (loads CR3). */
void switch_page_map(pml4_t space);

/* The current address space. */
pml4_t current_page_map(void);

/* Register [base, base+size) as demand-zero: a fault there maps a zeroed frame. */
int vmm_register_demand_zero(u64 base, u64 size, u32 flags);

/* Set up the kernel's own mapping (W^X from the linker symbols), NX, the regions. */
void vmm_init(void);

/* Print the live mapping tree as merged ranges with flags, as `# ` TAP comments. */
void vmm_dump(void);

#endif
