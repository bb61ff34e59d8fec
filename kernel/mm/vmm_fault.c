/*
 * The #PF handler: on-the-fly page-table creation and demand-zero pages.
 *
 * A write to an entry whose table does not exist faults with CR2 inside a
 * page-table window. The missing table is the page holding CR2; the entry
 * that should point at it is one level up for the same address. The handler
 * takes a frame, zeroes it through the COW scratch page, links it there
 * (that write may fault in turn when the level above is missing too: nested
 * faults, bottom-up, at most three deep) and returns, so the faulting store
 * runs again. Zeroed before it is linked, the table never shows a walk its
 * frame's old contents (SDM 4.10.4); until the scratch page's own table
 * exists (early boot; later too if boot's cow_init found no frame, until a
 * fork's succeeds), it is zeroed in place after the link instead, and
 * every CPU flushes (table_zero_linked).
 *
 * Out of frames: every entry store that may meet a missing table goes
 * through vmm_entry_store below (pte_write_flush, pte_run_install_new), an
 * instruction with a fixup. When the handler finds no frame and the fault
 * was raised by that instruction, it resumes at the fixup instead, which
 * makes vmm_entry_store return false; a nested handler that sees its own
 * parent store fail gives its frame back and skips its faulting store the
 * same way, so the failure travels back up to map_region (or copy_page_map),
 * which undoes what it did and returns -E_NOMEM. Anywhere else it is fatal.
 */
#include "vmm_internal.h"
#include <cpu.h>
#include <image.h>
#include <panic.h>
#include <percpu.h>
#include <pmm.h>
#include <proc.h>
#include <sched.h>
#include <smap.h>
#include <trap.h>

/* Demand-zero regions the handler knows (the heap and a few for tests). */
#define DEMAND_ZERO_REGIONS 8

/*
 * bool vmm_entry_store(volatile u64 *entry, u64 value): the one store
 * instruction, at vmm_entry_store_insn, whose fault may be skipped by
 * resuming at vmm_entry_store_fixup (returns false instead of true).
 */
__asm__(".pushsection .text\n"
	".globl vmm_entry_store\n"
	".type vmm_entry_store, @function\n"
	"vmm_entry_store:\n"
	"	movl $1, %eax\n"
	".globl vmm_entry_store_insn\n"
	"vmm_entry_store_insn:\n"
	"	movq %rsi, (%rdi)\n"
	"	ret\n"
	".globl vmm_entry_store_fixup\n"
	"vmm_entry_store_fixup:\n"
	"	xorl %eax, %eax\n"
	"	ret\n"
	".size vmm_entry_store, . - vmm_entry_store\n"
	".popsection\n");
extern const u8 vmm_entry_store_insn[], vmm_entry_store_fixup[];
/* The user-copy instruction (kernel/proc/uaccess.c). */
extern const u8 uaccess_copy_insn[];

struct demand_zero_region {
	u64 base, size; /* [base, base + size): size, not end, since the end may be 2^64 */
	u32 flags;
	bool used;
};

static struct demand_zero_region regions[DEMAND_ZERO_REGIONS];
/* Table-creating faults in progress (under the paging lock, interrupts off in the handler). */
static u64 table_fault_depth;

/*
 * Which window, level and address an address inside a page-table window
 * belongs to: it is the entry at `level` for *va in window *w. Windows are
 * tried smallest first, since each level's window lies inside the next one's.
 */
static bool decode_window(u64 addr, enum pt_window *w, int *level, u64 *va)
{
	for (int l = LEVEL_PML4; l >= LEVEL_PT; l--) {
		for (int i = WINDOW_SELF; i <= WINDOW_OTHER; i++) {
			u64 base = window_base((enum pt_window)i, l);
			/* One 8-byte entry per level_span(l) of the 48-bit space. */
			u64 size = (1ULL << (VA_BITS - va_shift(l))) * sizeof(u64);
			if (addr < base || addr - base >= size)
				continue;
			*w = (enum pt_window)i;
			*level = l;
			*va = CANONICAL_VA(((addr - base) / sizeof(u64)) << va_shift(l));
			return true;
		}
	}
	return false;
}

/* 8 bytes a store: an eighth of the iterations memset's rep stosb takes (TCG runs each alone). */
void vmm_zero_page(void *page)
{
	u64 n = PAGE_SIZE / sizeof(u64);
	__asm__ volatile("rep stosq" : "+D"(page), "+c"(n) : "a"(0ULL) : "memory");
}

void table_zero_linked(void *table)
{
	vmm_zero_page(table);
	/* Whichever space or window it is in, kernel-half batches reach every CPU. */
	struct tlb_batch b;
	tlb_batch_begin(&b, TLB_KERNEL);
	tlb_batch_tables_changed(&b);
	load_cr3(read_cr3());
	tlb_batch_finish(&b);
}

/*
 * Link the new table in `frame`, seen at window address `table`, at the
 * entry of level + 1 for va in w, zeroed first: false when that store
 * failed (the level above had no frame either; nothing was linked).
 */
static bool table_link_zeroed(enum pt_window w, int level, u64 va, u64 frame, void *table)
{
	bool zeroed = scratch_zero_frame(frame);
	if (!vmm_entry_store(pte_slot(w, level + 1, va), table_link(frame, va)))
		return false;
	if (!zeroed)
		table_zero_linked(table);
	return true;
}

/* Resume a store that faulted for a table no frame was left for; false if it was no such store. */
static bool skip_failed_store(struct trap_frame *f)
{
	if (f->rip != (u64)vmm_entry_store_insn)
		return false;
	f->rip = (u64)vmm_entry_store_fixup;
	return true;
}

/* Why a window fault cannot be served by creating a table, or NULL if it can. */
static const char *table_fault_refusal(u64 err, enum pt_window w, int level, u64 va)
{
	if (err & PF_ERR_P)
		return "protection violation inside a page-table window";
	if ((err & (PF_ERR_W | PF_ERR_U | PF_ERR_I)) != PF_ERR_W)
		return "read of a page table that does not exist (walk top-down first)";
	if (w == WINDOW_OTHER && !vmm_other_attached())
		return "the other-space window is used with no space attached";
	if (level == LEVEL_PML4)
		return "a PML4 is missing";
	if (level == LEVEL_PDPT && va >= KERNEL_HALF_START &&
	    !kernel_slot_may_grow(va_index(va, LEVEL_PML4)))
		return "a new kernel-half PDPT would not be shared by the other spaces";
	return NULL;
}

/* Create the missing table holding the entry at cr2; NULL when done (or skipped on OOM). */
static const char *table_fault(struct trap_frame *f, u64 cr2, enum pt_window w, int level,
			       u64 va)
{
	const char *refusal = table_fault_refusal(f->error_code, w, level, va);
	if (refusal)
		return refusal;
	/*
	 * Race-free creation: stores into the windows happen only inside paging
	 * operations, which hold the paging lock once a second CPU is up, so
	 * two CPUs never fault on the same missing table at once (the second
	 * finds it made). A store outside one would race: a broken invariant.
	 */
	if (!vmm_lock_held())
		panic("vmm: page table created at 0x%llx without the paging lock (CPU %u)", cr2,
		      this_cpu()->cpu_id);
	if (++table_fault_depth > MAX_TABLE_FAULT_DEPTH)
		panic("vmm: table faults nested %llu deep at 0x%llx", table_fault_depth, cr2);
	if (table_fault_depth > vmm_stats.max_depth)
		vmm_stats.max_depth = table_fault_depth;
	const char *why = NULL;
	u64 frame;
	if (pmm_alloc(&frame) != 0) {
		vmm_stats.oom_fixups++;
		if (!skip_failed_store(f))
			why = "out of physical frames for a page table";
	} else if (!table_link_zeroed(w, level, va, frame, (void *)ALIGN_DOWN(cr2, PAGE_SIZE))) {
		/* The level above had no frame either: this store fails with it. */
		MUST(pmm_free(frame) == 0);
		if (!skip_failed_store(f))
			why = "out of physical frames for a page table";
	} else {
		/*
		 * Linked over a not-present entry, which no walk caches, and this
		 * fault dropped what the faulting walk cached for cr2: the store
		 * that faulted walks the new table afresh.
		 */
		vmm_stats.table_faults++;
	}
	table_fault_depth--;
	return why;
}

/* The demand-zero region holding va, or NULL. */
static const struct demand_zero_region *region_of(u64 va)
{
	for (int i = 0; i < DEMAND_ZERO_REGIONS; i++)
		if (regions[i].used && va - regions[i].base < regions[i].size)
			return &regions[i];
	return NULL;
}

/* Map a zeroed frame at the page of cr2 in region r (the paging lock is held); NULL when done. */
static const char *demand_zero_locked(u64 err, u64 cr2, const struct demand_zero_region *r)
{
	if (err & PF_ERR_P)
		return "protection violation in a demand-zero region";
	if ((err & PF_ERR_U) && !(r->flags & VMM_USER))
		return "user access to a kernel demand-zero region";
	u64 frame, page = ALIGN_DOWN(cr2, PAGE_SIZE);
	if (pmm_alloc(&frame) != 0)
		return "out of physical frames for a demand-zero page";
	/* Kernel-only, writable and not executable while it is zeroed (SMAP), then its rights. */
	u32 first = VMM_WRITE;
	if (map_region(page, frame, 1, first) != 0) {
		MUST(pmm_free(frame) == 0);
		return "out of physical frames for a demand-zero page's tables";
	}
	vmm_zero_page((void *)page);
	if (r->flags != first)
		MUST(set_page_flags(page, 1, r->flags) == 0);
	vmm_stats.demand_zero_faults++;
	return NULL;
}

/* demand_zero_locked under the paging lock: two CPUs touching the same new page map it once. */
static const char *demand_zero_fault(u64 err, u64 cr2)
{
	bool locked = vmm_lock_take();
	u64 pa;
	/* The region is looked up again under the lock: another CPU may have removed it. */
	const struct demand_zero_region *r = region_of(cr2);
	const char *why;
	if (!r)
		why = "no mapping and no demand-zero region at this address";
	/* Another CPU may have mapped it between this fault and the lock: then nothing to do. */
	else if (locked && virt_to_phys(ALIGN_DOWN(cr2, PAGE_SIZE), &pa) == 0 && !(err & PF_ERR_P))
		why = NULL;
	else
		why = demand_zero_locked(err, cr2, r);
	vmm_lock_drop(locked);
	return why;
}

/* A kernel access to a present user page that SMEP or SMAP refused: which, else NULL. */
static const char *kernel_user_access(const struct trap_frame *f, u64 cr2)
{
	u64 err = f->error_code;
	int level;
	if ((err & (PF_ERR_U | PF_ERR_P)) != PF_ERR_P || !(paging_walk(cr2, &level) & PTE_U))
		return NULL;
	if (err & PF_ERR_I)
		return smep_on() ? "SMEP: the kernel executed a user page" : NULL;
	/* The copy routines' own faults (a shared page written, a bad pointer) are theirs. */
	if (!smap_on() || f->rip == (u64)uaccess_copy_insn)
		return NULL;
	return "SMAP: the kernel accessed a user page outside the user-copy routines";
}

const char *vmm_page_fault(struct trap_frame *f, u64 cr2)
{
	enum pt_window w;
	int level;
	u64 va;
	bool other_pt = cr2 >= OTHER_PT_BASE && cr2 < OTHER_PT_END;
	if ((in_selfmap(cr2) || other_pt) && decode_window(cr2, &w, &level, &va))
		return table_fault(f, cr2, w, level, va);
	if (cr2 >= (u64)__stack_guard && cr2 < (u64)__stack_bottom)
		return "guard page below the kernel stack";
	if (kstack_guard_slot(cr2) >= 0)
		return "guard page below a thread's kernel stack";
	if (region_of(cr2))
		return demand_zero_fault(f->error_code, cr2);
	/* The user half: the regions of the process whose space this is. */
	if (cr2 < USER_END) {
		const char *why = kernel_user_access(f, cr2);
		return why ? why : proc_page_fault(cr2, f->error_code);
	}
	if (f->error_code & PF_ERR_P)
		return "protection violation: the page does not allow this access";
	return "no mapping and no demand-zero region at this address";
}

int vmm_register_demand_zero(u64 base, u64 size, u32 flags)
{
	if ((flags & ~(VMM_WRITE | VMM_USER | VMM_EXEC)) || !size)
		return -E_INVAL;
	if (!IS_ALIGNED(size, PAGE_SIZE))
		return -E_ALIGN;
	int err = vmm_check_range(base, size / PAGE_SIZE, PAGE_SIZE);
	if (err)
		return err;
	if ((flags & VMM_USER) && base >= USER_END)
		return -E_INVAL;
	u64 last = base + size - 1;
	struct demand_zero_region *free = NULL;
	bool locked = vmm_lock_take();
	for (int i = 0; i < DEMAND_ZERO_REGIONS && err == 0; i++) {
		if (!regions[i].used)
			free = free ? free : &regions[i];
		else if (base <= regions[i].base + regions[i].size - 1 && last >= regions[i].base)
			err = -E_EXIST;
	}
	if (!err && !free)
		err = -E_NOSPC;
	if (!err)
		*free = (struct demand_zero_region){base, size, flags, true};
	vmm_lock_drop(locked);
	return err;
}

int vmm_unregister_demand_zero(u64 base)
{
	int err = -E_NOENT;
	bool locked = vmm_lock_take();
	for (int i = 0; i < DEMAND_ZERO_REGIONS && err; i++) {
		if (regions[i].used && regions[i].base == base) {
			regions[i].used = false;
			err = 0;
		}
	}
	vmm_lock_drop(locked);
	return err;
}
