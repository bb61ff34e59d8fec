/*
 * The paging library (pager.h): memory objects over self-paged regions and
 * the one fault handler that serves them. Its own bookkeeping (frame
 * tables, backing stores, the handler's stack) lives in ordinary mmap
 * memory, which the kernel pages, so the handler never faults in a
 * self-paged region.
 */
#include "pager.h"

#define PAGE PAGE_SIZE
#define MAX_OBJS 16
#define HANDLER_STACK_PAGES 4

static struct pager_obj *objs[MAX_OBJS];
static unsigned char *scratch; /* a self-paged page where a copy's new frame is filled */

/* Anonymous kernel-paged memory for the library's own tables. */
static void *anon(unsigned long bytes)
{
	long r = sys_mmap(NULL, bytes, PROT_READ | PROT_WRITE, 0);
	return r < 0 ? NULL : (void *)r;
}

int pager_init(void)
{
	unsigned char *stack = anon(HANDLER_STACK_PAGES * PAGE);
	long s = sys_selfpage(NULL, PAGE, 0);
	if (!stack || s < 0)
		return s < 0 ? (int)s : -E_NOMEM;
	scratch = (unsigned char *)s;
	return (int)sys_fault_handler((void *)pager_handler, stack + HANDLER_STACK_PAGES * PAGE);
}

/* Attach o (its kind and sizes set) to a new self-paged region. */
static int attach(struct pager_obj *o)
{
	long r = sys_selfpage(NULL, o->npages * PAGE, 0);
	if (r < 0)
		return (int)r;
	o->base = (unsigned char *)r;
	o->frames = anon(o->npages * sizeof(unsigned long));
	if (!o->frames)
		return -E_NOMEM;
	for (int i = 0; i < MAX_OBJS; i++)
		if (!objs[i]) {
			objs[i] = o;
			return 0;
		}
	return -E_NOSPC;
}

int pager_zero(struct pager_obj *o, unsigned long npages)
{
	*o = (struct pager_obj){.kind = PAGER_ZERO, .npages = npages};
	return attach(o);
}

int pager_cow(struct pager_obj *o, struct pager_obj *src)
{
	*o = (struct pager_obj){.kind = PAGER_COW, .npages = src->npages, .source = src};
	return attach(o);
}

int pager_paged(struct pager_obj *o, unsigned long npages, unsigned long max_frames)
{
	if (!max_frames)
		return -E_INVAL;
	*o = (struct pager_obj){.kind = PAGER_PAGED, .npages = npages, .max_frames = max_frames};
	o->backing = anon(npages * PAGE);
	o->in_backing = anon(npages);
	o->resident = anon(max_frames * sizeof(unsigned long));
	if (!o->backing || !o->in_backing || !o->resident)
		return -E_NOMEM;
	return attach(o);
}

int pager_destroy(struct pager_obj *o)
{
	long err = sys_munmap(o->base, o->npages * PAGE);
	for (unsigned long i = 0; i < o->npages && !err; i++)
		if (o->frames[i]) {
			err = sys_frame_free(o->frames[i]);
			o->frames[i] = 0;
		}
	for (int i = 0; i < MAX_OBJS; i++)
		if (objs[i] == o)
			objs[i] = NULL;
	return (int)err;
}

static struct pager_obj *obj_of(unsigned long addr)
{
	for (int i = 0; i < MAX_OBJS; i++) {
		struct pager_obj *o = objs[i];
		if (o && addr >= (unsigned long)o->base &&
		    addr < (unsigned long)o->base + o->npages * PAGE)
			return o;
	}
	return NULL;
}

/* Give up: resume unfixed, so the kernel kills the process after its retry limit. */
static __attribute__((noreturn)) void unfixable(void)
{
	sys_fault_resume();
	sys_exit(127);
}

/* A new zeroed frame mapped read-write at page for o's page idx; 0 or -E_x. */
static long fresh(struct pager_obj *o, unsigned long idx, unsigned char *page)
{
	long f = sys_frame_alloc(0);
	if (f < 0)
		return f;
	o->frames[idx] = (unsigned long)f;
	return sys_frame_map(page, (unsigned long)f, PROT_READ | PROT_WRITE, 0);
}

/*
 * cow: the source page's frame mapped read-only, or (write, or no source
 * frame) a frame of its own holding a copy of what the page shows.
 */
static long cow_fault(struct pager_obj *o, unsigned long idx, unsigned char *page,
		      unsigned long err)
{
	unsigned long src = o->source->frames[idx];
	if (!(err & PF_PRESENT) && src && !(err & PF_WRITE))
		return sys_frame_map(page, src, PROT_READ, 0);
	long f = sys_frame_alloc(0);
	if (f < 0)
		return f;
	long r = sys_frame_map(scratch, (unsigned long)f, PROT_READ | PROT_WRITE, 0);
	if (r < 0)
		return r;
	if (err & PF_PRESENT) /* our read-only view of the source: readable here */
		memcpy(scratch, page, PAGE);
	else if (src && (r = sys_frame_map(page, src, PROT_READ, 0)) == 0)
		memcpy(scratch, page, PAGE);
	if (r < 0 || (r = sys_frame_unmap(scratch, PAGE)) < 0)
		return r;
	if ((err & PF_PRESENT) || src)
		if ((r = sys_frame_unmap(page, PAGE)) < 0)
			return r;
	o->frames[idx] = (unsigned long)f;
	o->copies++;
	return sys_frame_map(page, (unsigned long)f, PROT_READ | PROT_WRITE, 0);
}

/* paged: evict the oldest resident page when full, then bring page idx in. */
static long paged_fault(struct pager_obj *o, unsigned long idx, unsigned char *page)
{
	unsigned long frame;
	if (o->nresident == o->max_frames) {
		unsigned long victim = o->resident[o->oldest];
		unsigned char *vpage = o->base + victim * PAGE;
		memcpy(o->backing + victim * PAGE, vpage, PAGE);
		long r = sys_frame_unmap(vpage, PAGE);
		if (r < 0)
			return r;
		o->in_backing[victim] = 1;
		frame = o->frames[victim];
		o->frames[victim] = 0;
		o->resident[o->oldest] = idx;
		o->oldest = (o->oldest + 1) % o->max_frames;
		o->evictions++;
	} else {
		long f = sys_frame_alloc(0);
		if (f < 0)
			return f;
		frame = (unsigned long)f;
		o->resident[o->nresident++] = idx;
	}
	o->frames[idx] = frame;
	long r = sys_frame_map(page, frame, PROT_READ | PROT_WRITE, 0);
	if (r < 0)
		return r;
	if (o->in_backing[idx])
		memcpy(page, o->backing + idx * PAGE, PAGE);
	else
		memset(page, 0, PAGE); /* a reused frame holds its last page */
	return 0;
}

void pager_handler(struct fault_info *info)
{
	struct pager_obj *o = obj_of(info->addr);
	if (!o)
		unfixable();
	unsigned long idx = (info->addr - (unsigned long)o->base) / PAGE;
	unsigned char *page = o->base + idx * PAGE;
	long r = -E_INVAL;
	o->faults++;
	switch (o->kind) {
	case PAGER_ZERO:
		if (!(info->err & PF_PRESENT))
			r = fresh(o, idx, page);
		break;
	case PAGER_COW:
		r = cow_fault(o, idx, page, info->err);
		break;
	case PAGER_PAGED:
		if (!(info->err & PF_PRESENT))
			r = paged_fault(o, idx, page);
		break;
	}
	if (r < 0)
		unfixable();
	sys_fault_resume();
	sys_exit(126); /* resume only fails outside a fault */
}
