/*
 * The paging API (the MetalSVM operations), working only through the
 * self-map: there is no direct map of physical memory. A PTE is written at
 * its self-map address directly; if its page table does not exist yet, the
 * write faults and the #PF handler creates the table (bottom-up, nested at
 * most three deep). Every unmap and flag change invalidates the TLB entry:
 * entries are written only through the page-table write API (pte.h).
 *
 * Address spaces that are not current are reached through a second,
 * temporary recursive entry (PML4[OTHER_SLOT], paging.h), as MetalSVM does:
 * the same code and the same fault-driven table creation then work on them.
 *
 * Kernel-half mappings are shared by every address space: each space copies
 * PML4 entries 256..511 of the space it was copied from. That stays valid
 * because the kernel-half PDPTs exist from vmm_init on and are never freed;
 * map_region refuses kernel-half addresses in a PML4 slot the kernel does
 * not use (-E_INVAL).
 *
 * Errors: -E_INVAL (unknown flags or options, a zero count, a page size the
 * CPU lacks, VMM_USER in the kernel half or VMM_GLOBAL in the user half, a
 * kernel slot not in use, a physical range beyond MAXPHYADDR), -E_ALIGN,
 * -E_CANON (a non-canonical address, or a range leaving its half), -E_SELFMAP
 * (touches a page-table window: the self-map or the other-space window),
 * -E_EXIST, -E_HUGE, -E_NOTMAPPED, -E_NOMEM. Checking order: flags and
 * count, alignment, canonical, windows, then the half, slot and physical
 * range; then the pages in address order (the first page that cannot be
 * done decides); nothing has changed when any of these is returned.
 *
 * SMP: every operation may be called on any CPU at once. They run under the
 * paging lock (spinlock.h's order, taken once a second CPU is up), and an
 * unmap or a change of rights is invalidated on every other CPU that may
 * have cached it before the call returns (tlb.h: the kernel half on every
 * CPU up, a user half on the CPUs that have that space loaded, which
 * switch_page_map keeps track of).
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

/* unmap_region / drop_page_map options. */
#define VMM_FREE_FRAMES (1u << 0) /* give the mapped frames back to the PMM */

/* An address space: the physical frame of its PML4. */
typedef u64 pml4_t;

/*
 * Map npages pages (4 KiB, or 2 MiB/1 GiB with VMM_LARGE/VMM_HUGE) from
 * vaddr to paddr. 0, or -E_INVAL, -E_ALIGN, -E_CANON, -E_SELFMAP, -E_HUGE
 * (a page lies under an existing larger page), -E_EXIST (a page, or a table
 * where a large page should go, is already there), -E_NOMEM. All or nothing:
 * everything but -E_NOMEM is found before anything changes; on -E_NOMEM (out
 * of frames for a page table, met by the #PF handler in the middle of the
 * call) the pages this call mapped are unmapped again and the tables it
 * created are released, so the PMM's free count is what it was before.
 */
MUST_CHECK int map_region(u64 vaddr, u64 paddr, u64 npages, u32 flags);

/*
 * Unmap the npages 4 KiB pages from vaddr; pages not mapped are skipped. A
 * 2 MiB or 1 GiB page in the range must lie in it entirely (-E_HUGE, and
 * nothing changes). Tables that become empty are released bottom-up and
 * their frames go back to the PMM: PTs, PDs and user-half PDPTs (never the
 * shared kernel-half PDPTs, the early window's PT or the PMM region's
 * tables; boot tables inside the image are unlinked but not freed). With
 * VMM_FREE_FRAMES every 4 KiB frame unmapped goes back to the PMM too; a
 * frame the PMM refuses makes the call return its error (after the whole
 * range is unmapped).
 */
MUST_CHECK int unmap_region(u64 vaddr, u64 npages, u32 options);

/*
 * Give the npages 4 KiB pages from vaddr the flags (VMM_WRITE, VMM_USER,
 * VMM_EXEC, VMM_GLOBAL; the page size stays). -E_NOTMAPPED if one is not
 * mapped, -E_HUGE if a large page is only partly in the range: nothing
 * changes then. Frames and accessed/dirty bits are kept.
 */
MUST_CHECK int set_page_flags(u64 vaddr, u64 npages, u32 flags);

/* Physical address vaddr maps to: 0 and *paddr set, or -E_CANON, -E_NOTMAPPED. */
MUST_CHECK int virt_to_phys(u64 vaddr, u64 *paddr);

/*
 * Make the page tables over the kernel range [va, va + bytes) now (nothing
 * is mapped) and keep them: never released when they empty, so mapping and
 * unmapping pages there makes and frees no table. For a range whose pages
 * come and go (the threads' kernel stacks). Boot only. 0, or -E_INVAL (not
 * a page-aligned range of slots the kernel shares), -E_CANON, -E_SELFMAP
 * (the page tables' windows), -E_HUGE (a large page there), -E_NOMEM or
 * -E_NOSPC (too many kept ranges); on an error nothing is kept and the
 * range's empty tables are released.
 */
MUST_CHECK int vmm_make_kept_tables(u64 va, u64 bytes);

/*
 * A new address space, copied from the current one: kernel half shared (PML4
 * entries 256..511 copied; its self-map slot points at its own PML4), user
 * half copied (new tables, same frames, same flags). 0 and *out set, or
 * -E_NOMEM with nothing leaked.
 */
MUST_CHECK int copy_page_map(pml4_t *out);

/* A new address space with the kernel half shared and an empty user half: 0 or -E_NOMEM. */
int new_page_map(pml4_t *out);

/*
 * Destroy an address space that is not current: free its user-half tables,
 * the mapped user frames too with VMM_FREE_FRAMES, and its PML4. 0, or
 * -E_INVAL (the current space or one another CPU has loaded, a misaligned
 * or zero frame, bad options).
 */
MUST_CHECK int drop_page_map(pml4_t space, u32 options);

/*
 * Destroy the current space as drop_page_map does (its user half cleared in
 * place, no other CPU asked) and switch this CPU to `next`. 0, or -E_INVAL
 * (another CPU has it loaded, `next` is it or not a PML4 frame, the boot
 * space, bad options) with nothing changed.
 */
MUST_CHECK int drop_current_page_map(pml4_t next, u32 options);

/*
 * Switch this CPU to an address space (loads CR3; the kernel half is the
 * same in all). The one way to change spaces: it keeps the space's CPU mask
 * (tlb_space_cpus) that the TLB shootdown asks. Not with the other window
 * attached on this CPU.
 */
void switch_page_map(pml4_t space);

/* The current address space. */
pml4_t current_page_map(void);

/*
 * Register [base, base+size) as demand-zero: a not-present fault there maps
 * a zeroed frame with `flags` (VMM_WRITE, VMM_USER, VMM_EXEC). 0, or -E_ALIGN,
 * -E_CANON, -E_SELFMAP, -E_INVAL (zero size, bad flags), -E_EXIST (overlaps
 * a region), -E_NOSPC (no room in the region table).
 */
MUST_CHECK int vmm_register_demand_zero(u64 base, u64 size, u32 flags);

/* Forget the demand-zero region starting at base (its pages stay mapped): 0 or -E_NOENT. */
MUST_CHECK int vmm_unregister_demand_zero(u64 base);

/*
 * Set up the kernel's own mapping: verify the image W^X from the linker
 * symbols (rewriting any page that differs) with the stack guard page
 * unmapped, remove the boot code's identity map, create the kernel-half
 * PDPTs every space shares, register the heap as demand-zero. Call after
 * pmm_init().
 */
void vmm_init(void);

/*
 * Print the live mapping tree of the current space, as the CPU sees it
 * (page-table windows included), as `# map START-END SIZE urw nx` TAP
 * comment lines: START and END (exclusive) and SIZE in 16 hex digits, then
 * u or -, r, w or -, then nx or x; virtually contiguous pages with equal
 * (user, write, nx) are merged, as QEMU's `info mem` merges them (it ignores
 * nx). `indent` goes before `#` (inside a TAP subtest: four spaces).
 */
void vmm_dump(const char *indent);

/* One merged range of the dump. */
struct vmm_range {
	u64 start, end; /* [start, end), canonical */
	bool user, write, nx;
};

/* Call fn for each merged range of the dump, in address order. */
void vmm_walk_ranges(void (*fn)(const struct vmm_range *r, void *ctx), void *ctx);

/* A dump line for r, without indent or newline ("# map ..."), into buf[size]. */
void vmm_format_range(const struct vmm_range *r, char *buf, size_t size);

/*
 * Accessed/dirty statistics of [base, base+size): how many mapped 4 KiB
 * pages (a 2 MiB page counts 512) have A set, and D set. 0, or -E_ALIGN,
 * -E_CANON, -E_SELFMAP, -E_INVAL (zero size).
 */
MUST_CHECK int vmm_ad_stats(u64 base, u64 size, u64 *accessed, u64 *dirty);

/* What the VMM has done since boot (for tests and diagnostics). */
struct vmm_stats {
	u64 table_faults;       /* page tables created by the #PF handler */
	u64 max_depth;          /* deepest nesting of table-creating faults seen */
	u64 demand_zero_faults; /* zeroed frames mapped on demand */
	u64 oom_fixups;         /* table faults that found no frame (their store was skipped) */
	u64 tables_released;    /* empty tables unlinked (and freed unless boot tables) */
	u64 image_pages_fixed;  /* kernel-image pages vmm_init had to rewrite for W^X */
};

/* Current counters. */
void vmm_get_stats(struct vmm_stats *out);

/* True when the CPU has 1 GiB pages (CPUID.80000001H:EDX.Page1GB[bit 26]). */
bool vmm_has_huge_pages(void);

/* Zero the 4 KiB page at `page` (mapped, writable) with 8-byte stores. */
void vmm_zero_page(void *page);

struct trap_frame;
/*
 * The #PF handler (called by trap_dispatch with the CR2 it read first):
 * creates missing page tables for writes inside a page-table window and maps
 * demand-zero pages. Returns NULL when the fault is resolved (the faulting
 * instruction runs again, or is skipped through the store fixup when no frame
 * was left), else why it is fatal, for the exception report.
 */
const char *vmm_page_fault(struct trap_frame *frame, u64 cr2);

#endif
