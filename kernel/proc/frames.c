/*
 * Physical memory as something a process holds (selfpage.h): the holding
 * records, frame_alloc/free/map/unmap/protect/query, selfpage regions and
 * spawn_grant. Every refusal is checked before anything changes.
 */
#include <cpu.h>
#include <layout.h>
#include <paging.h>
#include <panic.h>
#include <pmm.h>
#include <proc.h>
#include <sched.h>
#include <selfpage.h>
#include <smap.h>
#include <string.h>
#include <syscalls.h>
#include <uaccess.h>
#include <vmm.h>

#define LARGE_FRAMES (LARGE_PAGE_SIZE / PAGE_SIZE)
/*
 * The record pool: demand-zero kernel heap, so its pages are taken as
 * records are, and all given back when the last record goes. Its first page
 * is where a new frame is zeroed (there is no direct map to do it through):
 * sharing the pool's page table, it does not make and free one per frame.
 */
#define SCRATCH_VA (HEAP_BASE + PML4_SLOT_SIZE / 8 * 7)
#define POOL_BASE (SCRATCH_VA + PAGE_SIZE)
#define POOL_MAX (1u << 20)
#define BUCKETS 4096
/* Frames frame_alloc(FRAME_2M) takes off the PMM looking for an aligned run. */
#define CONTIG_WINDOW 4096
#define GRANTS_MAX 16

/* One frame (4 KiB, or a 2 MiB run) held by one process. */
struct holding {
	u64 frame;   /* physical address; 2 MiB-aligned when huge */
	u32 next;    /* next record of its hash chain (index + 1), 0 at the end */
	int pid;     /* the holder (0: record free) */
	u32 maps;    /* 4 KiB pages of it the holder has mapped */
	bool huge;
	bool writable;
	bool zeroed; /* the frame's old contents are gone (shared by every holder's record) */
};

static struct holding *const pool = (struct holding *)POOL_BASE;
static u32 pool_top;       /* records ever used (the pool's high-water mark) */
static u32 pool_free_head; /* free records (index + 1, linked through next) */
static u64 in_use;
static u32 buckets[BUCKETS]; /* chains, index + 1 */
static u64 contig[CONTIG_WINDOW];

const char selfpage_region_name[] = "selfpaged";

bool selfpage_region(const struct region *r)
{
	return r && r->name == selfpage_region_name;
}

u64 selfpage_holdings(void)
{
	return in_use;
}

static u32 bucket_of(u64 key)
{
	return (u32)((key >> PAGE_SHIFT) * 0x9E3779B1u) % BUCKETS;
}

/* The record of pid for exactly (frame, huge), or NULL. */
static struct holding *exact(int pid, u64 frame, bool huge)
{
	for (u32 i = buckets[bucket_of(frame)]; i; i = pool[i - 1].next) {
		struct holding *h = &pool[i - 1];
		if (h->pid == pid && h->frame == frame && h->huge == huge)
			return h;
	}
	return NULL;
}

/* Any record for (frame, huge) not of pid, or NULL. */
static struct holding *other_holder(int pid, u64 frame, bool huge)
{
	for (u32 i = buckets[bucket_of(frame)]; i; i = pool[i - 1].next) {
		struct holding *h = &pool[i - 1];
		if (h->pid != pid && h->frame == frame && h->huge == huge)
			return h;
	}
	return NULL;
}

/* pid's record covering the 4 KiB frame (its own, or a 2 MiB run's), or NULL. */
static struct holding *covering(int pid, u64 frame)
{
	struct holding *h = exact(pid, frame, false);
	return h ? h : exact(pid, ALIGN_DOWN(frame, LARGE_PAGE_SIZE), true);
}

/* A new record: 0, or -E_NOSPC with the pool full. */
static int hold_add(int pid, u64 frame, bool huge, bool writable, bool zeroed)
{
	u32 idx;
	if (pool_free_head) {
		idx = pool_free_head;
		pool_free_head = pool[idx - 1].next;
	} else if (pool_top < POOL_MAX) {
		idx = ++pool_top;
	} else {
		return -E_NOSPC;
	}
	u32 b = bucket_of(frame);
	pool[idx - 1] = (struct holding){frame, buckets[b], pid, 0, huge, writable, zeroed};
	buckets[b] = idx;
	in_use++;
	return 0;
}

/* Give frame (a 2 MiB run too) back to the PMM. */
static void frames_free(u64 frame, bool huge)
{
	for (u64 i = 0; i < (huge ? LARGE_FRAMES : 1); i++)
		MUST(pmm_free(frame + i * PAGE_SIZE) == 0);
}

/* Drop a record (not mapped); the frame goes back to the PMM with its last holder. */
static void hold_remove(struct holding *h)
{
	ASSERT(h->pid && h->maps == 0);
	u32 idx = (u32)(h - pool) + 1, *link = &buckets[bucket_of(h->frame)];
	while (*link != idx)
		link = &pool[*link - 1].next;
	*link = h->next;
	u64 frame = h->frame;
	bool huge = h->huge;
	int pid = h->pid;
	*h = (struct holding){0};
	h->next = pool_free_head;
	pool_free_head = idx;
	in_use--;
	if (!other_holder(pid, frame, huge))
		frames_free(frame, huge);
	if (!in_use) {
		/* Nothing held: the pool's pages (and their tables) go back too. */
		u64 pages = ALIGN_UP((u64)pool_top * sizeof(*pool), PAGE_SIZE) / PAGE_SIZE;
		MUST(unmap_region(POOL_BASE, pages, VMM_FREE_FRAMES) == 0);
		pool_top = 0;
		pool_free_head = 0;
	}
}

/* True when frame is one of the current space's page tables (its PML4 or a user-half table). */
static bool is_own_table(u64 frame)
{
	if (frame == current_page_map())
		return true;
	for (u64 i4 = 0; i4 < TABLE_ENTRIES / 2; i4++) {
		u64 e4 = *selfmap_entry(LEVEL_PML4, INDICES_VA(i4, 0, 0, 0));
		if (!(e4 & PTE_P))
			continue;
		if (pte_frame(e4) == frame)
			return true;
		for (u64 i3 = 0; i3 < TABLE_ENTRIES; i3++) {
			u64 e3 = *selfmap_entry(LEVEL_PDPT, INDICES_VA(i4, i3, 0, 0));
			if (!(e3 & PTE_P) || (e3 & PTE_PS))
				continue;
			if (pte_frame(e3) == frame)
				return true;
			for (u64 i2 = 0; i2 < TABLE_ENTRIES; i2++) {
				u64 e2 = *selfmap_entry(LEVEL_PD, INDICES_VA(i4, i3, i2, 0));
				if ((e2 & PTE_P) && !(e2 & PTE_PS) && pte_frame(e2) == frame)
					return true;
			}
		}
	}
	return false;
}

/* Why pid may not use the 4 KiB frame it does not hold: the specific error. */
static int refusal(int pid, u64 frame)
{
	if (!pmm_manages(frame))
		return -E_FRAME_KERNEL;
	if (other_holder(pid, frame, false) ||
	    other_holder(pid, ALIGN_DOWN(frame, LARGE_PAGE_SIZE), true))
		return -E_FRAME_OTHER;
	if (is_own_table(frame))
		return -E_FRAME_PT;
	return -E_NOTHELD;
}

/* Every holder's record of (frame, huge): the frame is zeroed now. */
static void mark_zeroed(u64 frame, bool huge)
{
	for (u32 i = buckets[bucket_of(frame)]; i; i = pool[i - 1].next)
		if (pool[i - 1].frame == frame && pool[i - 1].huge == huge)
			pool[i - 1].zeroed = true;
}

/* Zero a frame through the scratch page. */
static int zero_frame(u64 frame)
{
	int err = map_region(SCRATCH_VA, frame, 1, VMM_WRITE);
	if (err)
		return err;
	vmm_zero_page((void *)SCRATCH_VA);
	MUST(unmap_region(SCRATCH_VA, 1, 0) == 0);
	return 0;
}

static void sort_frames(u64 *a, u64 n)
{
	for (u64 gap = n / 2; gap; gap /= 2)
		for (u64 i = gap; i < n; i++)
			for (u64 j = i; j >= gap && a[j - gap] > a[j]; j -= gap) {
				u64 t = a[j];
				a[j] = a[j - gap];
				a[j - gap] = t;
			}
}

/*
 * The index in a[0..n) of the first of LARGE_FRAMES entries in a row that
 * are consecutive frames, in ascending or descending order, whose lowest
 * frame is 2 MiB-aligned (the first such run in the order taken): else n.
 */
static u64 find_run(const u64 *a, u64 n)
{
	u64 up = 1, down = 1;
	for (u64 i = 1; i < n; i++) {
		up = a[i] == a[i - 1] + PAGE_SIZE ? up + 1 : 1;
		down = a[i] == a[i - 1] - PAGE_SIZE ? down + 1 : 1;
		if ((up >= LARGE_FRAMES && IS_ALIGNED(a[i + 1 - LARGE_FRAMES], LARGE_PAGE_SIZE)) ||
		    (down >= LARGE_FRAMES && IS_ALIGNED(a[i], LARGE_PAGE_SIZE)))
			return i + 1 - LARGE_FRAMES;
	}
	return n;
}

/*
 * A 2 MiB-aligned run of 512 free frames: the PMM is a stack of 4 KiB
 * frames, so take up to CONTIG_WINDOW of them, look for a run among them
 * and give the rest back. 0 and *out, or -E_NOCONTIG (none in the window),
 * -E_NOMEM. The stack gives back what was freed last, and frees often go
 * in address order: a run is most often there in the order taken, found
 * in one pass; the window is sorted only when it is not.
 */
static int alloc_run(u64 *out)
{
	u64 n = 0;
	while (n < CONTIG_WINDOW && pmm_alloc(&contig[n]) == 0)
		n++;
	u64 start = find_run(contig, n);
	if (start == n) {
		sort_frames(contig, n);
		start = find_run(contig, n);
	}
	/* The rest back in ascending order where it mostly descends (as sorted frames went back). */
	bool reverse = n && contig[0] > contig[n - 1];
	for (u64 k = 0; k < n; k++) {
		u64 i = reverse ? n - 1 - k : k;
		if (i < start || i >= start + LARGE_FRAMES || start == n)
			MUST(pmm_free(contig[i]) == 0);
	}
	if (start == n)
		return n < LARGE_FRAMES ? -E_NOMEM : -E_NOCONTIG;
	u64 first = contig[start], last = contig[start + LARGE_FRAMES - 1];
	*out = first < last ? first : last;
	return 0;
}

i64 sys_frame_alloc(int flags)
{
	sched_pin_boot_cpu(); /* the self-paging state is CPU 0's (sched.h) */
	if (flags & ~FRAME_2M)
		return -E_INVAL;
	bool huge = flags & FRAME_2M;
	u64 frame;
	int err = huge ? alloc_run(&frame) : pmm_alloc(&frame);
	if (err)
		return err;
	/*
	 * A 4 KiB frame is zeroed where it is first mapped (no scratch mapping
	 * to make and tear down); a 2 MiB run now, since its pages may be mapped
	 * one by one.
	 */
	for (u64 i = 0; huge && i < LARGE_FRAMES && !err; i++)
		err = zero_frame(frame + i * PAGE_SIZE);
	if (!err)
		err = hold_add(sched_current()->pid, frame, huge, true, huge);
	if (err) {
		frames_free(frame, huge);
		return err;
	}
	return (i64)frame;
}

i64 sys_frame_free(u64 frame)
{
	sched_pin_boot_cpu(); /* the self-paging state is CPU 0's (sched.h) */
	int pid = sched_current()->pid;
	if (!IS_ALIGNED(frame, PAGE_SIZE))
		return -E_ALIGN;
	struct holding *h = exact(pid, frame, false);
	if (!h && IS_ALIGNED(frame, LARGE_PAGE_SIZE))
		h = exact(pid, frame, true);
	if (!h)
		return refusal(pid, frame);
	if (h->maps)
		return -E_MAPPED;
	hold_remove(h);
	return 0;
}

/*
 * Check [addr, addr+len) for the frame calls: 0, or -E_ALIGN, -E_WRAP,
 * -E_SELFMAP, -E_KERNADDR (kernel half or the hole below it), -E_NOTSELFPAGED
 * (not all inside one self-paged region of the caller).
 */
static int sp_range(u64 addr, u64 len, u64 align)
{
	if (!len || !IS_ALIGNED(addr, align) || !IS_ALIGNED(len, align))
		return len ? -E_ALIGN : -E_INVAL;
	if (addr + len < addr)
		return -E_WRAP;
	u64 last = addr + len - 1;
	if ((addr <= SELFMAP_END - 1 && last >= SELFMAP_BASE) ||
	    (addr <= OTHER_PT_END - 1 && last >= OTHER_PT_BASE))
		return -E_SELFMAP;
	if (last >= USER_END)
		return -E_KERNADDR;
	const struct region *r = proc_region_of(sched_current(), addr);
	if (!selfpage_region(r) || last >= r->end)
		return -E_NOTSELFPAGED;
	return 0;
}

/* VMM flags for PROT_* (PROT_NONE: a supervisor-only page, so user access faults). */
static int prot_flags(int prot, u32 *flags)
{
	if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC))
		return -E_INVAL;
	*flags = prot ? VMM_USER | ((prot & PROT_WRITE) ? VMM_WRITE : 0) |
			     ((prot & PROT_EXEC) ? VMM_EXEC : 0)
		      : 0;
	return 0;
}

/* The caller may map frames [frame, frame+n pages) with prot: 0 or the refusal. */
static int may_map(int pid, u64 frame, u64 n, int prot)
{
	for (u64 i = 0; i < n; i++) {
		const struct holding *h = covering(pid, frame + i * PAGE_SIZE);
		/* A 2 MiB page over frames not all held has its own answer. */
		if (!h)
			return n > 1 ? -E_NOTHELD : refusal(pid, frame + i * PAGE_SIZE);
		if ((prot & PROT_WRITE) && !h->writable)
			return -E_READONLY;
	}
	return 0;
}

/* Add d to the map counts of the frames [frame, frame+n pages) (all held). */
static void count_maps(int pid, u64 frame, u64 n, int d)
{
	for (u64 i = 0; i < n; i++) {
		struct holding *h = covering(pid, frame + i * PAGE_SIZE);
		ASSERT(h);
		h->maps += (u32)d;
	}
}

i64 sys_frame_map(u64 addr, u64 frame, int prot, int flags)
{
	sched_pin_boot_cpu(); /* the self-paging state is CPU 0's (sched.h) */
	int pid = sched_current()->pid;
	u32 vflags;
	if ((flags & ~FRAME_2M) || prot_flags(prot, &vflags) || !(prot & PROT_READ))
		return -E_INVAL;
	bool huge = flags & FRAME_2M;
	u64 size = huge ? LARGE_PAGE_SIZE : PAGE_SIZE, n = size / PAGE_SIZE;
	int err = sp_range(addr, size, size);
	if (err)
		return err;
	if (!IS_ALIGNED(frame, size))
		return -E_ALIGN;
	if ((err = may_map(pid, frame, n, prot)) != 0)
		return err;
	struct holding *h = covering(pid, frame);
	for (u64 i = 0; huge && i < n; i++) {
		/* 4 KiB frames of ours under a 2 MiB page: zeroed first, through the scratch page. */
		u64 sub = frame + i * PAGE_SIZE;
		if (!covering(pid, sub)->zeroed) {
			if ((err = zero_frame(sub)) != 0)
				return err;
			mark_zeroed(sub, false);
		}
	}
	if (!huge && !h->zeroed) {
		/*
		 * First mapping of a new 4 KiB frame: zeroed through it before the
		 * process runs again. Writable for the kernel while it is zeroed;
		 * kernel-only too when SMAP would refuse the kernel a user page (the
		 * flag change then costs about 390 instructions more).
		 */
		bool smap = smap_on();
		u32 first = smap ? VMM_WRITE : vflags | VMM_WRITE;
		if ((err = map_region(addr, frame, 1, first)) != 0)
			return err;
		vmm_zero_page((void *)addr);
		mark_zeroed(frame, false);
		if (first != vflags)
			MUST(set_page_flags(addr, 1, vflags) == 0);
	} else if ((err = map_region(addr, frame, 1, vflags | (huge ? VMM_LARGE : 0))) != 0) {
		return err;
	}
	count_maps(pid, frame, n, 1);
	return 0;
}

/* The mapped page at va: 0 and its frame and size, or -E_NOTMAPPED. */
static int mapped_at(u64 va, u64 *frame, u64 *size)
{
	int level;
	u64 leaf = paging_walk(va, &level);
	if (!leaf)
		return -E_NOTMAPPED;
	*size = level == LEVEL_PD ? LARGE_PAGE_SIZE : PAGE_SIZE;
	*frame = pte_frame(leaf) & ~(*size - 1);
	return 0;
}

/* No 2 MiB page of [addr, end) sticks out of it: 0 or -E_HUGE. */
static int whole_pages(u64 addr, u64 end)
{
	for (u64 va = addr; va < end;) {
		u64 frame, size;
		if (mapped_at(va, &frame, &size) != 0) {
			va += PAGE_SIZE;
			continue;
		}
		if (ALIGN_DOWN(va, size) < addr || ALIGN_DOWN(va, size) + size > end)
			return -E_HUGE;
		va = ALIGN_DOWN(va, size) + size;
	}
	return 0;
}

/* Unmap the held pages of [addr, end) (checked), keeping the frames. */
static void unmap_held(int pid, u64 addr, u64 end)
{
	for (u64 va = addr; va < end;) {
		u64 frame, size;
		if (mapped_at(va, &frame, &size) != 0) {
			va += PAGE_SIZE;
			continue;
		}
		u64 base = ALIGN_DOWN(va, size);
		MUST(unmap_region(base, size / PAGE_SIZE, 0) == 0);
		count_maps(pid, frame, size / PAGE_SIZE, -1);
		va = base + size;
	}
}

i64 sys_frame_unmap(u64 addr, u64 len)
{
	sched_pin_boot_cpu(); /* the self-paging state is CPU 0's (sched.h) */
	int err = sp_range(addr, ALIGN_UP(len, PAGE_SIZE), PAGE_SIZE);
	if (err)
		return err;
	u64 end = addr + ALIGN_UP(len, PAGE_SIZE);
	if ((err = whole_pages(addr, end)) != 0)
		return err;
	unmap_held(sched_current()->pid, addr, end);
	return 0;
}

i64 sys_frame_protect(u64 addr, u64 len, int prot)
{
	sched_pin_boot_cpu(); /* the self-paging state is CPU 0's (sched.h) */
	int pid = sched_current()->pid;
	u32 vflags;
	if (prot_flags(prot, &vflags))
		return -E_INVAL;
	int err = sp_range(addr, ALIGN_UP(len, PAGE_SIZE), PAGE_SIZE);
	if (err)
		return err;
	u64 end = addr + ALIGN_UP(len, PAGE_SIZE);
	if ((err = whole_pages(addr, end)) != 0)
		return err;
	/* Rights first, for every page: then nothing has changed on a refusal. */
	for (u64 va = addr, frame, size; va < end; va += size) {
		if (mapped_at(va, &frame, &size) != 0) {
			size = PAGE_SIZE;
			continue;
		}
		if ((err = may_map(pid, frame, size / PAGE_SIZE, prot | PROT_READ)) != 0)
			return err;
	}
	for (u64 va = addr, frame, size; va < end; va += size) {
		if (mapped_at(va, &frame, &size) != 0) {
			size = PAGE_SIZE;
			continue;
		}
		MUST(set_page_flags(va, size / PAGE_SIZE, vflags) == 0);
	}
	return 0;
}

i64 sys_frame_query(u64 addr, int level)
{
	sched_pin_boot_cpu(); /* the self-paging state is CPU 0's (sched.h) */
	if (level < 0 || level > LEVEL_PML4)
		return -E_INVAL;
	if (addr >= USER_END)
		return -E_KERNADDR;
	if (level == LEVEL_PML4)
		return (i64)current_page_map();
	if (level == 0) {
		/* The 4 KiB frame backing addr, inside a 2 MiB page too. */
		int l;
		u64 leaf = paging_walk(addr, &l);
		if (!leaf)
			return -E_NOTMAPPED;
		u64 span = level_span(l);
		return (i64)((pte_frame(leaf) & ~(span - 1)) + ALIGN_DOWN(addr & (span - 1), PAGE_SIZE));
	}
	/* Walk down to the table at `level` (or the page at level 0). */
	for (int l = LEVEL_PML4; l > level; l--) {
		u64 e = *selfmap_entry(l, addr);
		if (!(e & PTE_P) || (l > LEVEL_PT && (e & PTE_PS)))
			return -E_NOTMAPPED;
		if (l == level + 1)
			return (i64)pte_frame(e);
	}
	return -E_NOTMAPPED;
}

i64 sys_selfpage(u64 addr, u64 len, int flags)
{
	sched_pin_boot_cpu(); /* the self-paging state is CPU 0's (sched.h) */
	if (flags & ~MAP_FIXED)
		return -E_INVAL;
	i64 at = proc_mmap(addr, len, REGION_READ | REGION_WRITE | REGION_EXEC, flags & MAP_FIXED);
	if (at < 0)
		return at;
	struct region *r = (struct region *)proc_region_of(sched_current(), (u64)at);
	ASSERT(r);
	r->name = selfpage_region_name;
	return at;
}

bool selfpage_overlaps(u64 addr, u64 len)
{
	struct proc *p = sched_current();
	for (int i = 0; i < PROC_REGIONS; i++) {
		const struct region *r = &p->regions[i];
		if (r->end && selfpage_region(r) && addr < r->end && addr + len > r->start)
			return true;
	}
	return false;
}

void selfpage_unmap_range(u64 addr, u64 len)
{
	struct proc *p = sched_current();
	u64 end = addr + len < addr ? USER_END : addr + len;
	for (int i = 0; i < PROC_REGIONS; i++) {
		const struct region *r = &p->regions[i];
		if (!r->end || !selfpage_region(r) || addr >= r->end || end <= r->start)
			continue;
		u64 from = addr > r->start ? addr : r->start, to = end < r->end ? end : r->end;
		/* A 2 MiB page cut by the range goes whole: its frames stay held. */
		unmap_held(p->pid, from, to);
	}
}

void selfpage_frames_exit(struct proc *p)
{
	for (int i = 0; i < PROC_REGIONS; i++) {
		const struct region *r = &p->regions[i];
		if (r->end && selfpage_region(r))
			unmap_held(p->pid, r->start, r->end);
	}
	for (u32 i = 0; i < pool_top; i++)
		if (pool[i].pid == p->pid) {
			ASSERT(pool[i].maps == 0);
			hold_remove(&pool[i]);
		}
}

i64 sys_spawn_grant(u64 path, u64 argv, u64 grants, int count)
{
	sched_pin_boot_cpu(); /* the self-paging state is CPU 0's (sched.h) */
	int pid = sched_current()->pid;
	u64 g[GRANTS_MAX][2];
	if (count < 0 || count > GRANTS_MAX)
		return count < 0 ? -E_INVAL : -E_TOOBIG;
	if (count && copy_from_user(g, grants, (u64)count * sizeof(g[0])) != 0)
		return -E_FAULT;
	for (int i = 0; i < count; i++) {
		u64 frame = g[i][0];
		int prot = (int)g[i][1];
		if (prot != PROT_READ && prot != (PROT_READ | PROT_WRITE))
			return -E_INVAL;
		if (!IS_ALIGNED(frame, PAGE_SIZE))
			return -E_ALIGN;
		const struct holding *h = exact(pid, frame, false);
		if (!h && IS_ALIGNED(frame, LARGE_PAGE_SIZE))
			h = exact(pid, frame, true);
		if (!h)
			return refusal(pid, frame);
		if ((prot & PROT_WRITE) && !h->writable)
			return -E_READONLY;
	}
	i64 child = sys_spawn(path, argv);
	if (child < 0)
		return child;
	for (int i = 0; i < count; i++) {
		const struct holding *h = exact(pid, g[i][0], false);
		bool huge = !h;
		const struct holding *mine = huge ? exact(pid, g[i][0], true) : h;
		if (hold_add((int)child, g[i][0], huge, g[i][1] & PROT_WRITE, mine->zeroed) != 0) {
			/* Out of records: the child must not run with half its grants. */
			MUST(proc_kill(proc_by_pid((int)child), "out of holding records") == 0);
			return -E_NOSPC;
		}
	}
	return child;
}
