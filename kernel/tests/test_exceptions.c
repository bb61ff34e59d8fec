/*
 * Exceptions provoked on purpose and survived through the fixup mechanism:
 * each checks the vector, error code, CR2 and RIP the handler recorded
 * against what the instruction must have produced.
 */
#include <cpu.h>
#include <gdt.h>
#include <image.h>
#include <ktest.h>
#include <paging.h>
#include <string.h>
#include <trap.h>

/* A non-canonical address: bits 63..48 are not copies of bit 47. */
#define NON_CANONICAL 0x8000000000000000ULL

KTEST(exceptions, int3_returns)
{
	u64 after;
	trap_expect(VEC_BP);
	/* int3 is a trap: the CPU pushes the address of the next instruction. */
	__asm__ volatile("int3\n1:\n\tleaq 1b(%%rip), %0" : "=r"(after) : : "memory");
	struct trap_record r = trap_expect_end();
	KASSERT(r.hit);
	KASSERT_EQ(r.vector, VEC_BP);
	KASSERT_EQ(r.rip, after);
}

KTEST(exceptions, registers_preserved)
{
	/* Every general register survives an exception and the return from it. */
	trap_expect(VEC_BP);
	/* Register variables are only bound at the asm: no call between here and there. */
	register u64 r8 __asm__("r8") = 0x0808080808080808ULL;
	register u64 r9 __asm__("r9") = 0x0909090909090909ULL;
	register u64 r10 __asm__("r10") = 0x1010101010101010ULL;
	register u64 r12 __asm__("r12") = 0x1212121212121212ULL;
	register u64 r13 __asm__("r13") = 0x1313131313131313ULL;
	register u64 r14 __asm__("r14") = 0x1414141414141414ULL;
	register u64 r15 __asm__("r15") = 0x1515151515151515ULL;
	u64 a = 0xaaaaaaaaaaaaaaaaULL, b = 0xbbbbbbbbbbbbbbbbULL, c = 0xccccccccccccccccULL;
	u64 d = 0xddddddddddddddddULL, si = 0x5151515151515151ULL, di = 0xd1d1d1d1d1d1d1d1ULL;
	__asm__ volatile("int3"
			 : "+a"(a), "+b"(b), "+c"(c), "+d"(d), "+S"(si), "+D"(di), "+r"(r8),
			   "+r"(r9), "+r"(r10), "+r"(r12), "+r"(r13), "+r"(r14), "+r"(r15)
			 :
			 : "memory");
	/* ... nor between the asm and these copies. */
	u64 v8 = r8, v9 = r9, v10 = r10, v12 = r12, v13 = r13, v14 = r14, v15 = r15;
	KASSERT(trap_expect_end().hit);
	KASSERT_EQ(a, 0xaaaaaaaaaaaaaaaaULL);
	KASSERT_EQ(b, 0xbbbbbbbbbbbbbbbbULL);
	KASSERT_EQ(c, 0xccccccccccccccccULL);
	KASSERT_EQ(d, 0xddddddddddddddddULL);
	KASSERT_EQ(si, 0x5151515151515151ULL);
	KASSERT_EQ(di, 0xd1d1d1d1d1d1d1d1ULL);
	KASSERT_EQ(v8, 0x0808080808080808ULL);
	KASSERT_EQ(v9, 0x0909090909090909ULL);
	KASSERT_EQ(v10, 0x1010101010101010ULL);
	KASSERT_EQ(v12, 0x1212121212121212ULL);
	KASSERT_EQ(v13, 0x1313131313131313ULL);
	KASSERT_EQ(v14, 0x1414141414141414ULL);
	KASSERT_EQ(v15, 0x1515151515151515ULL);
}

KTEST(exceptions, ud2_fixup)
{
	u64 site;
	trap_expect(VEC_UD);
	/* Resumed at 2:, the lea finds where 1: (the ud2) was. */
	__asm__ volatile(TRAP_FIXUP_SITE("ud2") "leaq 1b(%%rip), %0"
			 : "=r"(site)
			 :
			 : TRAP_FIXUP_CLOBBERS);
	struct trap_record r = trap_expect_end();
	KASSERT(r.hit);
	KASSERT_EQ(r.vector, VEC_UD);
	KASSERT_EQ(r.rip, site);
	KASSERT_EQ(r.error_code, 0);
}

KTEST(exceptions, guard_page_read)
{
	u64 addr = (u64)__stack_guard + sizeof(u64), value = 0, site;
	trap_expect(VEC_PF);
	__asm__ volatile(TRAP_FIXUP_SITE("movq (%2), %0") "leaq 1b(%%rip), %1"
			 : "+r"(value), "=r"(site)
			 : "r"(addr)
			 : TRAP_FIXUP_CLOBBERS);
	struct trap_record r = trap_expect_end();
	char decoded[64];
	trap_decode_pf_error(r.error_code, decoded, sizeof(decoded));
	KASSERT(r.hit);
	KASSERT_EQ(r.vector, VEC_PF);
	KASSERT_EQ(r.cr2, addr);
	KASSERT_EQ(r.rip, site);
	KASSERT_EQ(r.error_code & (PF_ERR_P | PF_ERR_W | PF_ERR_U | PF_ERR_I), 0);
	KASSERT_STREQ(decoded, "not present, read, supervisor");
}

KTEST(exceptions, text_write)
{
	/* Write back the byte that is there: harmless if the protection were missing. */
	u8 *addr = (u8 *)__text_start;
	u8 byte = *addr;
	trap_expect(VEC_PF);
	__asm__ volatile(TRAP_FIXUP_SITE("movb %0, (%1)") : : "q"(byte), "r"(addr) : TRAP_FIXUP_CLOBBERS);
	struct trap_record r = trap_expect_end();
	char decoded[64];
	trap_decode_pf_error(r.error_code, decoded, sizeof(decoded));
	KASSERT(r.hit);
	KASSERT_EQ(r.vector, VEC_PF);
	KASSERT_EQ(r.cr2, (u64)addr);
	KASSERT_EQ(r.error_code & (PF_ERR_P | PF_ERR_W | PF_ERR_U | PF_ERR_I), PF_ERR_P | PF_ERR_W);
	KASSERT_STREQ(decoded, "protection violation, write, supervisor");
}

KTEST(exceptions, divide_by_zero)
{
	static volatile u64 zero;
	u64 divisor = zero, rax = 1, rdx = 0, site;
	trap_expect(VEC_DE);
	__asm__ volatile(TRAP_FIXUP_SITE("divq %3") "leaq 1b(%%rip), %2"
			 : "+a"(rax), "+d"(rdx), "=r"(site)
			 : "r"(divisor)
			 : TRAP_FIXUP_CLOBBERS);
	struct trap_record r = trap_expect_end();
	KASSERT(r.hit);
	KASSERT_EQ(r.vector, VEC_DE);
	KASSERT_EQ(r.rip, site);
}

KTEST(exceptions, non_canonical_gp)
{
	u64 value = 0;
	trap_expect(VEC_GP);
	__asm__ volatile(TRAP_FIXUP_SITE("movq (%1), %0")
			 : "+r"(value)
			 : "r"(NON_CANONICAL)
			 : TRAP_FIXUP_CLOBBERS);
	struct trap_record r = trap_expect_end();
	KASSERT(r.hit);
	KASSERT_EQ(r.vector, VEC_GP);
	KASSERT_EQ(r.error_code, 0);
}

KTEST(exceptions, unarmed_after_hit)
{
	/* One shot: the expectation is spent by the first exception. */
	trap_expect(VEC_BP);
	__asm__ volatile("int3" : : : "memory");
	KASSERT(!trap_expected.armed);
	KASSERT(trap_expect_end().hit);
	/* And nothing is recorded when nothing happens. */
	trap_expect(VEC_UD);
	KASSERT(!trap_expect_end().hit);
}

/* The descriptor tables the CPU is using, read back with sidt/sgdt/str. */
struct table_register {
	u16 limit;
	u64 base;
} PACKED;

struct gate {
	u16 offset_lo, selector;
	u8 ist, type;
	u16 offset_mid;
	u32 offset_hi, reserved;
} PACKED;

#define GATE_PRESENT_INTERRUPT 0x8E /* P, DPL 0, 64-bit interrupt gate (SDM Figure 6-8) */

KTEST(exceptions, descriptor_tables)
{
	struct table_register idtr, gdtr;
	u16 tr;
	__asm__ volatile("sidt %0\n\tsgdt %1\n\tstr %2" : "=m"(idtr), "=m"(gdtr), "=r"(tr));
	KASSERT_EQ(tr, GDT_TSS);
	KASSERT((idtr.limit + 1) / sizeof(struct gate) >= EXCEPTION_VECTORS);
	const struct gate *g = (const struct gate *)idtr.base;
	for (int v = 0; v < EXCEPTION_VECTORS; v++) {
		KASSERT_EQ(g[v].type, GATE_PRESENT_INTERRUPT);
		KASSERT_EQ(g[v].selector, GDT_KERNEL_CS);
		u64 target = g[v].offset_lo | (u64)g[v].offset_mid << 16 | (u64)g[v].offset_hi << 32;
		KASSERT(target >= (u64)__text_start && target < (u64)__text_end);
	}
	/* The vectors that can arrive on a dead stack have stacks of their own. */
	KASSERT_EQ(g[VEC_DF].ist, IST_DOUBLE_FAULT);
	KASSERT_EQ(g[VEC_NMI].ist, IST_NMI);
	KASSERT_EQ(g[VEC_MC].ist, IST_MACHINE_CHECK);
	KASSERT_EQ(g[VEC_PF].ist, 0);
	u16 cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	KASSERT_EQ(cs, GDT_KERNEL_CS);
	KASSERT(gdtr.base >= (u64)__data_start && gdtr.base < (u64)__bss_end);
}
