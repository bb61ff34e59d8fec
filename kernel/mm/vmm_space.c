/*
 * Address spaces: copy_page_map, drop_page_map, switch_page_map.
 *
 * A space that is not current is worked on through a temporary second
 * recursive entry, as MetalSVM does: PML4[OTHER_SLOT] of the current space
 * points at the other PML4, whose own self-map slot points at itself. The
 * other space's tables then appear at fixed addresses (paging.h), and the
 * ordinary code paths (pte_write_flush, the fault-driven table creation,
 * clear_range and the release of empty tables) work on them with
 * WINDOW_OTHER. A CR3 load drops every TLB entry of that window at once
 * (none is global): on this CPU, the next one after the detach (a switch's,
 * or the next attach's; percpu.h: window_stale).
 *
 * SMP: the window is global state (it lives in the current space's PML4,
 * which other CPUs may have loaded too, and there is one attached space at
 * a time): it is used only under the paging lock (vmm_internal.h), and
 * detaching shoots the window down on every CPU that has the current space
 * loaded. A space's CPU mask is kept by switch_page_map (tlb.h).
 */
#include "vmm_internal.h"
#include <cpu.h>
#include <panic.h>
#include <percpu.h>
#include <pmm.h>
#include <tlb.h>

/* The CPU that has a space attached in the other window, or LOCK_NO_CPU. */
static u32 other_cpu = LOCK_NO_CPU;

bool vmm_other_attached(void)
{
	return other_cpu == this_cpu()->cpu_id;
}

/* Show space's tables in the other window (the paging lock is held). */
static void other_attach(pml4_t space)
{
	ASSERT(other_cpu == LOCK_NO_CPU && vmm_lock_held());
	struct percpu *c = this_cpu();
	/* A detach here left this CPU's window entries for a later CR3 load: it is now. */
	if (c->window_stale) {
		c->window_stale = false;
		load_cr3(read_cr3());
	}
	/* Tables are data: P|W, NX where the CPU has it, never G. Not present before: nothing to drop. */
	MUST(vmm_entry_store(pte_slot(WINDOW_SELF, LEVEL_PML4, OTHER_PT_BASE),
			     space | PTE_P | PTE_W | paging_nx_bit()));
	other_cpu = this_cpu()->cpu_id;
}

/* Clear this space's entry of the other window into b (a table entry: b flushes all). */
static void other_unlink(struct tlb_batch *b)
{
	ASSERT(vmm_other_attached());
	MUST(pte_write_flush(WINDOW_SELF, LEVEL_PML4, OTHER_PT_BASE, 0, b));
}

/*
 * Remove the other window and every TLB entry it left on the other CPUs
 * sharing this space; this CPU's TLB entries of window pages go with its
 * next CR3 load (window_stale). Until then they stay harmless, even once
 * the space's tables are freed and their frames reused: the clear's invlpg
 * dropped every paging-structure cache entry of this CPU (SDM 4.10.4.1:
 * INVLPG invalidates all of them, whatever their address; on AMD only with
 * EFER.TCE clear, APM Vol. 2 §3.1.7, as boot.asm keeps it), so no walk
 * reads a table through a stale entry, and the window pages themselves are
 * never accessed unattached (the next attach here reloads CR3 first,
 * however late it comes: a fork's parent keeps running), and a speculative
 * access through a leaf entry writes nothing. Under TCG each CR3 load drops
 * QEMU's whole soft TLB and jump cache. A space whose frames are freed
 * next is dropped with other_drop.
 */
static void other_detach(void)
{
	struct tlb_batch b;
	/* The slot is in the kernel half, but the entry is this space's own: its CPUs only. */
	tlb_batch_begin(&b, TLB_CURRENT);
	other_unlink(&b);
	this_cpu()->window_stale = true;
	tlb_batch_finish(&b);
	other_cpu = LOCK_NO_CPU;
}

/*
 * Clear the attached `space`'s user half (options: VMM_FREE_FRAMES) into a
 * window batch (tlb.h: tlb_batch_begin_window), detach and free it: its
 * PML4 joins the tables the batch holds, and its finish reloads CR3 here,
 * sends a full round to every other CPU sharing this space (idle ones too: their walks may cache
 * the window's tables) and only then gives the frames to the PMM. A CPU
 * is not asked because its window is stale (percpu.h: window_stale): its
 * detach's invlpg left it leaf entries of window pages only, which no walk
 * reads a table through (other_detach). 0 or the first error freeing them.
 */
static int other_drop(pml4_t space, u32 options)
{
	struct tlb_batch b;
	tlb_batch_begin_window(&b);
	int err = clear_range(WINDOW_OTHER, 0, USER_END, options, &b);
	other_unlink(&b);
	int freed = frame_in_image(space) ? 0 : tlb_batch_free_table(&b, space);
	int held = tlb_batch_finish(&b);
	/* Reloaded after the entry went: no window entry is left on this CPU. */
	this_cpu()->window_stale = false;
	other_cpu = LOCK_NO_CPU;
	return err ? err : freed ? freed : held;
}

/*
 * Make the attached PML4 `space` empty but for the kernel half, shared, and
 * its own self-map: one run of not-present entries made present, no entry
 * to flush one by one. `zeroed`: its frame was zeroed before it was
 * attached; else it is zeroed here, whatever it held.
 */
static void other_init_pml4(pml4_t space, bool zeroed)
{
	/*
	 * Else its old contents were live as the table that maps the other
	 * window's PDPT pages, in this space's PML4, which every CPU sharing
	 * this space may walk: zeroed, then flushed here and on them.
	 */
	if (!zeroed)
		table_zero_linked((void *)window_entry_addr(WINDOW_OTHER, LEVEL_PML4, 0));
	volatile const u64 *from = window_entry(WINDOW_SELF, LEVEL_PML4, KERNEL_HALF_START);
	struct pte_run to = pte_run_at(WINDOW_OTHER, LEVEL_PML4, KERNEL_HALF_START);
	u64 n = TABLE_ENTRIES - KERNEL_FIRST_SLOT;
	for (u64 i = table_next_present(from, 0, n); i < n;
	     i = table_next_present(from, i + 1, n)) {
		u64 slot = KERNEL_FIRST_SLOT + i, value = from[i];
		if (slot == RECURSIVE_SLOT)
			value = space | PTE_P | PTE_W | paging_nx_bit();
		else if (slot == OTHER_SLOT)
			continue; /* this very entry: it belongs to the current space only */
		pte_run_install(&to, i, value);
	}
}

/*
 * Copy the present PTEs among the n from va's (its PT exists here) into the
 * other space: the first through the store that faults the other PT into
 * existence, the rest directly (not present before: no invalidation). false
 * when no frame was left for a table.
 */
static bool copy_ptes(u64 va, u64 n)
{
	volatile const u64 *from = window_entry(WINDOW_SELF, LEVEL_PT, va);
	struct pte_run to = pte_run_at(WINDOW_OTHER, LEVEL_PT, va);
	bool table = false;
	/* Each run of present entries entry by entry, the holes between runs by repe scasq. */
	for (u64 i = 0; i < n; i = table_next_present(from, i, n)) {
		for (u64 e; i < n && ((e = from[i]) & PTE_P); i++) {
			if (table)
				pte_run_install(&to, i, e);
			else if (!(table = pte_run_install_new(&to, i, e)))
				return false;
		}
	}
	return true;
}

/* Copy every user-half leaf of the current space into the other one (tables made by faults). */
static int copy_user_half(void)
{
	u64 va = 0;
	while (va < USER_END) {
		struct range_step s;
		range_step_at(WINDOW_SELF, va, &s);
		u64 step = range_step_pt_bytes(&s, va, USER_END - va);
		if (step) {
			if (!copy_ptes(va, step / PAGE_SIZE))
				return -E_NOMEM;
		} else {
			if (!s.entry)
				range_step_skip_holes(WINDOW_SELF, &s, va, USER_END - va);
			step = range_step_left(&s, va);
			/* A new space's entry, not present before: a store, which may fault its table in. */
			if (s.entry && !vmm_entry_store(pte_slot(WINDOW_OTHER, s.level, va), s.entry))
				return -E_NOMEM;
		}
		va += step;
	}
	return 0;
}

int other_space_open(pml4_t *out)
{
	u64 space;
	if (pmm_alloc(&space) != 0)
		return -E_NOMEM;
	/*
	 * Zeroed before it is attached, no walk through the window ever saw its
	 * old contents (a walk caches present entries only), so no CR3 load is
	 * owed: under TCG each one drops QEMU's whole soft TLB and jump cache,
	 * and a spawn made six.
	 */
	bool zeroed = scratch_zero_frame(space);
	other_attach(space);
	other_init_pml4(space, zeroed);
	*out = space;
	return 0;
}

int other_space_close(pml4_t space, int err)
{
	if (!err) {
		other_detach();
		return 0;
	}
	/* A new space, loaded nowhere: its tables go after the window's flush. */
	MUST(other_drop(space, 0) == 0); /* frees no data frame: no error */
	return err;
}

bool other_pt_new(u64 va, bool zero)
{
	ASSERT(vmm_other_attached() && va < USER_END);
	/* The highest missing table on va's path: read top-down, each table read exists. */
	int top = LEVEL_PT;
	for (int l = LEVEL_PML4; l > LEVEL_PT && top == LEVEL_PT; l--)
		if (!(*window_entry(WINDOW_OTHER, l, va) & PTE_P))
			top = l - 1;
	ASSERT(top > LEVEL_PT || !(*window_entry(WINDOW_OTHER, LEVEL_PD, va) & PTE_P));
	/* Every frame first, so that running out changes nothing. */
	u64 frames[LEVEL_PML4 - 1];
	for (int k = 0; k < top; k++) {
		if (pmm_alloc(&frames[k]) != 0) {
			while (k--)
				MUST(pmm_free(frames[k]) == 0);
			return false;
		}
	}
	for (int l = top, k = 0; l >= LEVEL_PT; l--, k++) {
		/*
		 * Zeroed before the link: a PDPT or PD of the other space is walked
		 * as a table through the window (a PT is only a data page there).
		 */
		bool zeroed = (l == LEVEL_PT && !zero) || scratch_zero_frame(frames[k]);
		struct pte_run link = pte_run_at(WINDOW_OTHER, l + 1, va);
		pte_run_install(&link, 0, table_link(frames[k], va));
		if (!zeroed)
			table_zero_linked((void *)window_entry_addr(WINDOW_OTHER, l,
								    ALIGN_DOWN(va, level_span(l + 1))));
	}
	return true;
}

/* A new space with the kernel half shared; the user half copied when copy_user is set. */
static int make_page_map(pml4_t *out, bool copy_user)
{
	int err = other_space_open(out);
	if (err)
		return err;
	return other_space_close(*out, copy_user ? copy_user_half() : 0);
}

int copy_page_map(pml4_t *out)
{
	bool locked = vmm_lock_take();
	int err = make_page_map(out, true);
	vmm_lock_drop(locked);
	return err;
}

int new_page_map(pml4_t *out)
{
	bool locked = vmm_lock_take();
	int err = make_page_map(out, false);
	vmm_lock_drop(locked);
	return err;
}

/* True when p can be a PML4: a page-aligned frame below the physical limit. */
static bool pml4_frame_ok(pml4_t p)
{
	return p && IS_ALIGNED(p, PAGE_SIZE) && p < paging_phys_limit();
}

/*
 * Clear the current space's user half (its frames freed with
 * VMM_FREE_FRAMES), invalidating on the CPUs that have it loaded: 0 or the
 * first error.
 */
static int clear_user_half(pml4_t space, u32 options)
{
	struct tlb_batch b;
	tlb_batch_begin(&b, space);
	int err = clear_range(WINDOW_SELF, 0, USER_END, options, &b);
	int held = tlb_batch_finish(&b); /* the frames it held: freed now */
	return err ? err : held;
}

/* drop_page_map after its argument checks, under the paging lock. */
static int drop_locked(pml4_t space, u32 options)
{
	/* Loaded on another CPU (or this one): not ours to destroy. */
	if (tlb_space_cpus(space))
		return -E_INVAL;
	other_attach(space);
	/* A PML4 of ours points at itself: anything else is not an address space. */
	u64 self = *window_entry(WINDOW_OTHER, LEVEL_PML4, INDICES_VA(RECURSIVE_SLOT, 0, 0, 0));
	if (pte_frame(self) != space || !(self & PTE_P)) {
		other_detach();
		return -E_INVAL;
	}
	/* Loaded nowhere (checked above): only the window's caches hold its tables. */
	return other_drop(space, options);
}

int drop_page_map(pml4_t space, u32 options)
{
	if ((options & ~VMM_FREE_FRAMES) || !pml4_frame_ok(space) || space == current_page_map())
		return -E_INVAL;
	bool locked = vmm_lock_take();
	int err = drop_locked(space, options);
	vmm_lock_drop(locked);
	return err;
}

int drop_current_page_map(pml4_t next, u32 options)
{
	pml4_t space = current_page_map();
	if ((options & ~VMM_FREE_FRAMES) || !pml4_frame_ok(next) || next == space ||
	    frame_in_image(space))
		return -E_INVAL;
	bool locked = vmm_lock_take();
	/* Loaded on another CPU too: not ours to destroy (its mask is this CPU alone). */
	if (tlb_space_cpus(space) != 1u << this_cpu()->cpu_id) {
		vmm_lock_drop(locked);
		return -E_INVAL;
	}
	/*
	 * Cleared where it is loaded, through the self-map: each entry is
	 * invalidated here, and the batch reaches no other CPU (none has the
	 * space). Through the other window instead, detaching it would shoot
	 * the window down on every CPU sharing `next` (the kernel's space, on
	 * every idle or kernel-thread CPU) for an exit.
	 */
	int err = clear_user_half(space, options);
	/* The CR3 load drops what is left of the space here (tables, the PML4's own walk caches). */
	switch_page_map(next);
	int r = pmm_free(space);
	vmm_lock_drop(locked);
	return err ? err : r;
}

/*
 * The CPU mask (tlb.h): name the new space before loading it, so a change
 * made from now on reaches this CPU; keep naming the old one (leaving) until
 * the load has dropped its entries. The CR3 load drains the stores before
 * it; tlb_shootdown fences between its entry stores and its reading of the
 * records.
 */
void switch_page_map(pml4_t space)
{
	struct percpu *c = this_cpu();
	ASSERT(space && IS_ALIGNED(space, PAGE_SIZE) && other_cpu != c->cpu_id);
	/* Plain stores: the CR3 load is serializing, so both are visible before any walk of space. */
	__atomic_store_n(&c->leaving, c->space, __ATOMIC_RELAXED);
	__atomic_store_n(&c->space, space, __ATOMIC_RELAXED);
	/* Before the load: a detach here after it (this thread preempted) stays owed. */
	c->window_stale = false;
	load_cr3(space);
	__atomic_store_n(&c->leaving, 0, __ATOMIC_RELEASE);
}

pml4_t current_page_map(void)
{
	return read_cr3() & PTE_ADDR_MASK;
}
