/* Checked, fault-safe copies between the kernel and the current process (uaccess.h). */
#include <layout.h>
#include <paging.h>
#include <proc.h>
#include <sched.h>
#include <trap.h>
#include <uaccess.h>

/*
 * u64 uaccess_copy(void *dst, const void *src, u64 len): rep movsb at
 * uaccess_copy_insn; a fault there resumes at uaccess_copy_fixup, which
 * returns the bytes left (rcx: the CPU updates it as the copy goes). With
 * SMAP on, stac before the copy and clac after it (on both ways out) are
 * the only places the kernel opens user pages (smap.h).
 */
__asm__(".pushsection .text\n"
	".globl uaccess_copy\n"
	".type uaccess_copy, @function\n"
	"uaccess_copy:\n"
	"	movq %rdx, %rcx\n"
	"	cmpb $0, smap_enabled(%rip)\n"
	"	je 1f\n"
	"	stac\n" /* user pages open for the one copy instruction */
	"1:\n"
	".globl uaccess_copy_insn\n"
	"uaccess_copy_insn:\n"
	"	rep movsb\n"
	"	xorl %eax, %eax\n"
	"	jmp 2f\n"
	".globl uaccess_copy_fixup\n"
	"uaccess_copy_fixup:\n"
	"	movq %rcx, %rax\n"
	"2:	cmpb $0, smap_enabled(%rip)\n"
	"	je 3f\n"
	"	clac\n"
	"3:	ret\n"
	".size uaccess_copy, . - uaccess_copy\n"
	".popsection\n");
u64 uaccess_copy(void *dst, const void *src, u64 len);
extern const u8 uaccess_copy_insn[], uaccess_copy_fixup[];

bool uaccess_fixup(struct trap_frame *f)
{
	if (f->rip != (u64)uaccess_copy_insn)
		return false;
	f->rip = (u64)uaccess_copy_fixup;
	return true;
}

bool user_range_ok(u64 va, u64 len, u32 rights)
{
	if (len == 0)
		return va < USER_END;
	/* Kernel and non-canonical addresses are all >= USER_END; so is a range that wraps. */
	if (va >= USER_END || len > USER_END - va)
		return false;
	struct proc *p = sched_current();
	u64 end = va + len;
	while (va < end) {
		const struct region *r = proc_region_of(p, va);
		if (!r || (r->rights & rights) != rights)
			return false;
		va = r->end;
	}
	return true;
}

int copy_from_user(void *dst, u64 src, u64 len)
{
	if (!user_range_ok(src, len, REGION_READ))
		return -E_FAULT;
	return uaccess_copy(dst, (const void *)src, len) ? -E_FAULT : 0;
}

int copy_to_user(u64 dst, const void *src, u64 len)
{
	if (!user_range_ok(dst, len, REGION_WRITE))
		return -E_FAULT;
	return uaccess_copy((void *)dst, src, len) ? -E_FAULT : 0;
}

i64 strncpy_from_user(char *dst, u64 src, u64 size)
{
	for (u64 i = 0; i < size; i++) {
		/* Byte by byte: the string may end just before an unmapped page. */
		int err = copy_from_user(&dst[i], src + i, 1);
		if (err)
			return err;
		if (!dst[i])
			return (i64)i;
	}
	return -E_TOOBIG;
}
