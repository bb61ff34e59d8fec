/*
 * The access-rights matrix, after kvm-unit-tests' x86/access.c (our own
 * code): page-table bits against what the CPU enforces. For a test page the
 * bits P, R/W, U/S and NX of the entry at one level vary (the other levels
 * allow everything), under CR0.WP on and off and SMEP and SMAP on and off
 * where the CPU has them; for each access type a model (predict() below,
 * from Intel SDM Vol. 3A §4.6 and §4.7) says whether it faults, the #PF error
 * code, and the accessed/dirty bits afterwards; the access is then made for
 * real and all three compared. One test per level x access type; a
 * disagreement prints the combination in full.
 *
 * Two runs: entries written directly (every level), and through the paging
 * API (map_region / set_page_flags / unmap_region: the leaf, the only level
 * the API sets bits on).
 *
 * Access types: supervisor read, write and fetch (by the test itself, a #PF
 * caught by the trap expectation), user read, write and fetch (a ring-3
 * probe, user_probe.h: a fault or the ud2 after the access ends it).
 *
 * EFER.NXE: every kernel data page carries NX where the CPU has it, so the
 * kernel cannot clear NXE under itself (bit 63 would be a reserved bit in
 * all of them). Each group is therefore split in two: the NXE-on half runs
 * on a CPU with NX, the NXE-off half on one without (configuration no-nx,
 * where boot.asm never sets NXE and paging_nx_bit() is 0); the other half
 * is reported as skipped, with the reason. With NXE off, an entry written
 * with bit 63 faults with P|RSVD, and fetches NX would refuse are allowed.
 *
 * Accessed/dirty bits (SDM §4.8): after a successful access A is set on
 * the entry of every level and D on the leaf iff the access wrote. The SDM
 * says nothing direct about a walk that ends in a #PF; the rules kept here
 * are those kvm-unit-tests' access test checks on hardware: the leaf keeps
 * A and D clear, a non-present entry and the entries below it (never
 * reached) stay clear, and A on the table entries the walk passed before it
 * stopped (and on a table entry with a reserved bit) is left open. TCG's
 * walker sets A on each table entry as it passes it, before the rights are
 * checked, and never on the entry where it stopped (target/i386
 * mmu_translate): matrix_size prints how often the open ones were set.
 *
 * Where TCG and the SDM differ: TCG reports a reserved-bit fault as RSVD
 * without P; SDM §4.7 sets RSVD only together with P. The model says P|RSVD;
 * under TCG only, exactly that difference is accepted and counted
 * (err_agrees()).
 */
#include <cpu.h>
#include <ktest.h>
#include <layout.h>
#include <oracle.h>
#include <paging.h>
#include <panic.h>
#include <pmm.h>
#include <printf.h>
#include <smap.h>
#include <timer.h>
#include <trap.h>
#include <user_probe.h>
#include <vmm.h>
#include "../mm/vmm_internal.h"
#include "test_vmm_util.h"

/* The test page: alone in a user-half PML4 slot (tests own 64..127 per family; this is 120). */
#define TVA INDICES_VA(120, 5, 6, 7)
/* Its neighbour in the same PT (keeps the tables while the API run unmaps the page). */
#define TVA_NEIGHBOUR (TVA + PAGE_SIZE)
/* Offset of the byte read and written (offset 0 holds the `ret` fetched). */
#define DATA_OFF 64
#define INSN_RET 0xc3
/* Where a user fetch goes in the test page: a ud2 (0f 0b), so a fetch that works ends in #UD. */
#define UFETCH_OFF 32
/* The ring-3 code of user reads and writes, in a slot of its own (the varied entries are not on its path). */
#define UCODE INDICES_VA(121, 0, 0, 0)
#define UREAD_OFF 0  /* movb (%rax), %al; ud2 */
#define UWRITE_OFF 16 /* movb $1, (%rax); ud2 */
#define VEC_UD 6

#define CR0_WP (1ULL << 16)

enum access { ACC_READ, ACC_WRITE, ACC_FETCH, ACC_UREAD, ACC_UWRITE, ACC_UFETCH };
static const char *const access_name[] = {"supervisor read", "supervisor write",
					  "supervisor fetch", "user read", "user write", "user fetch"};

/* Bits that vary at the chosen level: bit 0 P, 1 W, 2 U, 3 NX. */
#define B_P 1u
#define B_W 2u
#define B_U 4u
#define B_NX 8u

struct combo {
	int level;   /* LEVEL_PT..LEVEL_PML4: whose entry has `bits` */
	u32 bits;
	enum access acc;
	bool wp, nxe, smep, smap;
};

struct outcome {
	bool fault;
	u64 err;    /* #PF error code when fault */
	u32 a_mask; /* bit l-1: level l's entry has A */
	bool dirty; /* the leaf has D */
};

/* The model's answer: the outcome, and the levels whose A it leaves open. */
struct prediction {
	struct outcome o;
	u32 a_open; /* bit l-1: A on level l's entry may be either (not compared) */
};

#define LEVEL_BIT(l) (1u << ((l) - 1))
#define ALL_LEVELS 0xfu
/* The levels above `level`: on the path to it. */
#define LEVELS_ABOVE(level) (ALL_LEVELS & ~((1u << (level)) - 1))

static u64 entry_bits(u32 bits)
{
	return ((bits & B_P) ? PTE_P : 0) | ((bits & B_W) ? PTE_W : 0) | ((bits & B_U) ? PTE_U : 0) |
	       ((bits & B_NX) ? PTE_NX : 0);
}

/* Whether the rights allow the access (SDM §4.6; the walk reached a valid translation). */
static bool allowed(const struct combo *c, bool user, enum access kind)
{
	bool user_page = c->bits & B_U, writable = c->bits & B_W;
	bool xd = c->nxe && (c->bits & B_NX); /* without NXE, bit 63 never forbids a fetch */
	if (user) /* CPL 3: the page must be a user page; W and XD always count (§4.6.1) */
		return user_page && (kind != ACC_WRITE || writable) && (kind != ACC_FETCH || !xd);
	if (kind == ACC_READ) /* SMAP: no user page (AC is clear) */
		return !(user_page && c->smap);
	if (kind == ACC_WRITE) /* SMAP, then W unless CR0.WP is off */
		return !(user_page && c->smap) && (writable || !c->wp);
	return !xd && !(user_page && c->smep); /* fetch: XD, and SMEP: no user page */
}

/*
 * The model: SDM Vol. 3A §4.5 (the walk), §4.6 (access rights), §4.7 (#PF
 * error code), §4.8 (A/D), with kvm-unit-tests' rules where §4.8 is silent
 * (the header comment).
 */
static struct prediction predict(const struct combo *c)
{
	struct prediction p = {0};
	bool user = c->acc >= ACC_UREAD;
	enum access kind = user ? (enum access)(c->acc - ACC_UREAD) : c->acc;
	u64 how = (kind == ACC_WRITE ? PF_ERR_W : 0) | (user ? PF_ERR_U : 0);
	/* I is reported only when NXE or SMEP is on (§4.7). */
	how |= kind == ACC_FETCH && (c->nxe || c->smep) ? PF_ERR_I : 0;
	bool absent = !(c->bits & B_P);
	bool reserved = !absent && (c->bits & B_NX) && !c->nxe; /* bit 63 without NXE (§4.5.4) */
	if (absent || reserved) { /* the walk stops at the varied entry */
		p.o.fault = true;
		p.o.err = (reserved ? PF_ERR_P | PF_ERR_RSVD : 0) | how;
		/* Never written: a non-present entry, nor the leaf; a reserved-bit table entry: open. */
		p.a_open = LEVELS_ABOVE(c->level) |
			   (reserved && c->level != LEVEL_PT ? LEVEL_BIT(c->level) : 0);
		return p;
	}
	if (!allowed(c, user, kind)) { /* a valid translation, refused: the leaf stays clean */
		p.o.fault = true;
		p.o.err = PF_ERR_P | how;
		p.a_open = LEVELS_ABOVE(LEVEL_PT);
		return p;
	}
	p.o.a_mask = ALL_LEVELS; /* every entry of the walk */
	p.o.dirty = kind == ACC_WRITE;
	return p;
}

static u64 base[LEVEL_PML4 + 1]; /* the path's entries, A/D clear */
static u64 frame, code_frame;

static void write_cr0(u64 v)
{
	__asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory");
}

static void write_cr4(u64 v)
{
	__asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory");
}

/* Map the test page (a `ret` at offset 0) and its neighbour; remember the path. */
static bool setup(void)
{
	if (pmm_alloc(&frame) != 0)
		return false;
	if (map_region(TVA, frame, 1, VMM_WRITE) != 0)
		return false;
	static const u8 code[] = {[UREAD_OFF] = 0x8a, 0x00, 0x0f, 0x0b,
				  [UWRITE_OFF] = 0xc6, 0x00, 0x01, 0x0f, 0x0b};
	volatile u8 *t = (volatile u8 *)TVA;
	t[0] = INSN_RET;
	t[UFETCH_OFF] = 0x0f;
	t[UFETCH_OFF + 1] = 0x0b;
	if (set_page_flags(TVA, 1, VMM_WRITE | VMM_USER | VMM_EXEC) != 0 ||
	    map_region(TVA_NEIGHBOUR, frame, 1, VMM_USER) != 0)
		return false;
	/* The ring-3 code: written while kernel-only (SMAP), then a user page. */
	if (pmm_alloc(&code_frame) != 0 || map_region(UCODE, code_frame, 1, VMM_WRITE) != 0)
		return false;
	for (u64 i = 0; i < sizeof(code); i++)
		((volatile u8 *)UCODE)[i] = code[i];
	if (set_page_flags(UCODE, 1, VMM_USER | VMM_EXEC) != 0)
		return false;
	for (int l = LEVEL_PML4; l >= LEVEL_PT; l--)
		base[l] = *selfmap_entry(l, TVA) & ~(PTE_A | PTE_D);
	return true;
}

static void teardown(void)
{
	/* Pages never mapped are skipped; a frame never taken is 0, which the PMM refuses. */
	MUST(unmap_region(TVA, 2, 0) == 0);
	MUST(unmap_region(UCODE, 1, 0) == 0);
	if (frame)
		MUST(pmm_free(frame) == 0);
	if (code_frame)
		MUST(pmm_free(code_frame) == 0);
	frame = code_frame = 0;
}

/*
 * Write the path for c: all present top-down, then bottom-up with the final
 * values (A/D clean: a store through the self-map sets A/D only above the
 * entry it writes). Returns the varied entry.
 */
static u64 write_path(const struct combo *c)
{
	u64 varied = 0;
	struct tlb_batch b;
	tlb_batch_begin(&b, TLB_CURRENT);
	for (int l = LEVEL_PML4; l >= LEVEL_PT; l--)
		MUST(pte_write_flush(WINDOW_SELF, l, TVA, base[l], &b));
	for (int l = LEVEL_PT; l <= LEVEL_PML4; l++) {
		u64 v = base[l];
		if (l == c->level)
			varied = v = (v & ~(PTE_P | PTE_W | PTE_U | PTE_NX)) | entry_bits(c->bits);
		MUST(pte_write_flush(WINDOW_SELF, l, TVA, v, &b));
	}
	tlb_batch_finish(&b);
	return varied;
}

/* A user access through a ring-3 probe: fault and err (a fault elsewhere, or no #UD after, is flagged). */
static void user_access_now(enum access acc, struct outcome *o)
{
	u64 target = acc == ACC_UFETCH ? TVA + UFETCH_OFF : TVA + DATA_OFF;
	u64 rip = acc == ACC_UFETCH ? target : UCODE + (acc == ACC_UREAD ? UREAD_OFF : UWRITE_OFF);
	struct probe_result r;
	invlpg(TVA);
	user_probe_run(rip, target, &r);
	o->fault = r.vector != VEC_UD;
	o->err = r.error_code;
	if (r.vector == VEC_UD)
		o->err = 0;
	else if (r.vector != VEC_PF || r.cr2 != target)
		o->err = ~0ULL; /* neither the access's #PF nor the ud2 after it: never what the model says */
}

/* Make the access; fill fault and err. */
static void access_now(enum access acc, struct outcome *o)
{
	if (acc >= ACC_UREAD) {
		user_access_now(acc, o);
		return;
	}
	invlpg(TVA);
	trap_expect(VEC_PF);
	volatile u8 *p = (volatile u8 *)TVA;
	switch (acc) {
	case ACC_READ:
		__asm__ volatile(TRAP_FIXUP_SITE("movb (%0), %%al") : : "r"(p + DATA_OFF)
				 : "rax", TRAP_FIXUP_CLOBBERS);
		break;
	case ACC_WRITE:
		__asm__ volatile(TRAP_FIXUP_SITE("movb $1, (%0)") : : "r"(p + DATA_OFF)
				 : TRAP_FIXUP_CLOBBERS);
		break;
	default:
		/*
		 * call the `ret`: a fault comes at the page (any rip), with the
		 * return address pushed: the resume point drops it.
		 */
		__asm__ volatile("movq $0, trap_expected+0(%%rip)\n\t"
				 "leaq 2f(%%rip), %%r11\n\t"
				 "movq %%r11, trap_expected+8(%%rip)\n\t"
				 "call *%0\n\t"
				 "jmp 3f\n"
				 "2: addq $8, %%rsp\n"
				 "3:\n"
				 :
				 : "r"(p)
				 : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",
				   "memory");
		break;
	}
	struct trap_record r = trap_expect_end();
	o->fault = r.hit;
	o->err = r.hit ? r.error_code : 0;
}

/*
 * Read A on every level's entry and D on the leaf, top-down: reading an
 * entry through the self-map sets A only on the levels above it, already
 * read. An entry the walk cannot pass (not present, or bit 63 without NXE)
 * is written back as in base to reach the ones below it (write_path and
 * api_leaf set the whole path again for the next combination).
 */
static void read_ad(struct outcome *o)
{
	o->a_mask = 0;
	o->dirty = false;
	struct tlb_batch b;
	tlb_batch_begin(&b, TLB_CURRENT);
	for (int l = LEVEL_PML4; l >= LEVEL_PT; l--) {
		u64 e = *selfmap_entry(l, TVA);
		if (e & PTE_A)
			o->a_mask |= LEVEL_BIT(l);
		if (l == LEVEL_PT)
			o->dirty = e & PTE_D;
		else if (!(e & PTE_P) || ((e & PTE_NX) && !paging_nx_bit()))
			MUST(pte_write_flush(WINDOW_SELF, l, TVA, base[l], &b));
	}
	tlb_batch_finish(&b);
}

static u64 open_seen, open_set; /* A bits the model left open, and how many the CPU set */
static u64 rsvd_without_p;       /* reserved-bit faults TCG reported without P */

/* QEMU's TCG, by its hypervisor signature (CPUID 40000000H: "TCGTCGTCGTCG"). */
static bool under_tcg(void)
{
	if (!(cpuid(1, 0).ecx & (1u << 31))) /* no hypervisor present */
		return false;
	struct cpuid_regs r = cpuid(0x40000000u, 0);
	/* "TCGT", "CGTC", "GTCG", each little-endian */
	return r.ebx == 0x54474354u && r.ecx == 0x43544743u && r.edx == 0x47435447u;
}

/*
 * The CPU's error code against the model's. One known TCG divergence: its
 * page walker (target/i386 mmu_translate, do_fault_rsvd, QEMU 7.2 and
 * later) reports a reserved-bit fault as RSVD without P, where SDM §4.7
 * says RSVD is set only together with P. The model keeps the SDM's P|RSVD;
 * under TCG, and for that case only, the CPU's RSVD without P is accepted
 * and counted (matrix_size prints the count).
 */
static bool err_agrees(u64 model, u64 cpu)
{
	if (model == cpu)
		return true;
	if ((model & PF_ERR_RSVD) && cpu == (model & ~PF_ERR_P) && under_tcg()) {
		rsvd_without_p++;
		return true;
	}
	return false;
}

static u32 count_levels(u32 mask)
{
	u32 n = 0;
	for (; mask; mask &= mask - 1)
		n++;
	return n;
}

/* Whether the CPU's outcome is the model's: fault, error code, A where the model fixes it, D. */
static bool agree(const struct prediction *p, const struct outcome *a)
{
	u32 fixed = ALL_LEVELS & ~p->a_open;
	open_seen += count_levels(p->a_open);
	open_set += count_levels(a->a_mask & p->a_open);
	return p->o.fault == a->fault && (!a->fault || err_agrees(p->o.err, a->err)) &&
	       (a->a_mask & fixed) == (p->o.a_mask & fixed) && a->dirty == p->o.dirty;
}

/* A per level, PML4 first: 1 or 0, or ? where the model leaves it open. */
static void a_text(u32 mask, u32 open, char out[LEVEL_PML4 + 1])
{
	for (int l = LEVEL_PML4; l >= LEVEL_PT; l--)
		out[LEVEL_PML4 - l] = (open & LEVEL_BIT(l)) ? '?' : (mask & LEVEL_BIT(l)) ? '1' : '0';
	out[LEVEL_PML4] = 0;
}

static void print_combo(const char *how, const struct combo *c, u64 entry,
			const struct prediction *p, const struct outcome *a)
{
	static const char *const level_name[] = {"", "PT", "PD", "PDPT", "PML4"};
	char ma[LEVEL_PML4 + 1], ca[LEVEL_PML4 + 1];
	a_text(p->o.a_mask, p->a_open, ma);
	a_text(a->a_mask, 0, ca);
	ktest_log("%s: %s entry P=%u W=%u U=%u NX=%u (0x%llx), %s, CR0.WP=%u EFER.NXE=%u "
		  "SMEP=%u SMAP=%u: model %s err 0x%llx A(PML4..PT) %s D %u, "
		  "CPU %s err 0x%llx A %s D %u",
		  how, level_name[c->level], c->bits & 1, (c->bits >> 1) & 1, (c->bits >> 2) & 1,
		  (c->bits >> 3) & 1, entry, access_name[c->acc], c->wp, c->nxe, c->smep, c->smap,
		  p->o.fault ? "fault" : "ok", p->o.err, ma, p->o.dirty,
		  a->fault ? "fault" : "ok", a->err, ca, a->dirty);
}

/*
 * The leaf through the API for c: unmapped (P=0), or mapped fresh with
 * flags (A/D clear). The API's stores went through the self-map, which set
 * A (and D) on the entries above the leaf: those are cleared bottom-up, as
 * write_path does, so the access's own A bits can be read at every level.
 * Returns the leaf entry.
 */
static u64 api_leaf(const struct combo *c)
{
	MUST(unmap_region(TVA, 1, 0) == 0);
	if (c->bits & B_P) {
		u32 flags = ((c->bits & B_W) ? VMM_WRITE : 0) | ((c->bits & B_U) ? VMM_USER : 0) |
			    ((c->bits & B_NX) ? 0 : VMM_EXEC);
		/* map, then set_page_flags to the same flags: both calls are on the path. */
		MUST(map_region(TVA, frame, 1, flags ^ VMM_WRITE) == 0);
		MUST(set_page_flags(TVA, 1, flags) == 0);
	}
	u64 leaf = *selfmap_pte(TVA);
	struct tlb_batch b;
	tlb_batch_begin(&b, TLB_CURRENT);
	for (int l = LEVEL_PD; l <= LEVEL_PML4; l++)
		MUST(pte_write_flush(WINDOW_SELF, l, TVA,
				     *selfmap_entry(l, TVA) & ~(PTE_A | PTE_D), &b));
	tlb_batch_finish(&b);
	return leaf;
}

/* Combinations per group: 16 bit patterns x CR0.WP x SMEP x SMAP (EFER.NXE is the group's). */
#define COMBOS_PER_GROUP (16 * 2 * 2 * 2)

static u64 groups_seen, combos_run, not_run_nxe, not_run_smep_smap;

/* Run every combination of one group: the number of disagreements. */
static int run_group(int level, enum access acc, bool api, bool nxe)
{
	bool has_smep = read_cr4() & CR4_SMEP, has_smap = read_cr4() & CR4_SMAP;
	u64 cr0 = read_cr0(), cr4 = read_cr4();
	int bad = 0, run = 0;
	for (u32 bits = 0; bits < 16; bits++)
		for (int wp = 0; wp < 2; wp++)
			for (int smep = 0; smep <= (int)has_smep; smep++)
				for (int smap = 0; smap <= (int)has_smap; smap++) {
		struct combo c = {level, bits, acc, wp, nxe, smep, smap};
		/* Without NXE the API writes no bit 63 (paging_nx_bit() is 0): expect an entry without it. */
		struct combo m = c;
		if (api && !nxe)
			m.bits &= ~B_NX;
		write_cr0(wp ? cr0 | CR0_WP : cr0 & ~CR0_WP);
		write_cr4((cr4 & ~(CR4_SMEP | CR4_SMAP)) | (smep ? CR4_SMEP : 0) |
			  (smap ? CR4_SMAP : 0));
		u64 entry = api ? api_leaf(&c) : write_path(&c);
		struct prediction p = predict(&m);
		struct outcome a;
		access_now(acc, &a);
		read_ad(&a);
		write_cr4(cr4);
		write_cr0(cr0);
		run++;
		if (!agree(&p, &a)) {
			if (bad++ < 4)
				print_combo(api ? "API" : "direct", &m, entry, &p, &a);
		}
	}
	write_cr4(cr4);
	write_cr0(cr0);
	combos_run += run;
	not_run_smep_smap += COMBOS_PER_GROUP - run;
	if (!api)
		(void)write_path(&(struct combo){LEVEL_PT, B_P | B_W | B_U, ACC_READ, 1, 1, 0, 0});
	return bad;
}

static u64 first_ns, last_ns; /* when the first group began and the last one ended */

#define GROUP_OTHER_NXE (-1) /* the group needs EFER.NXE the other way */
#define GROUP_NO_SETUP (-2)

static int group(int level, enum access acc, bool api, bool nxe)
{
	groups_seen++;
	if (nxe != cpu_nx_enabled()) {
		not_run_nxe += COMBOS_PER_GROUP;
		return GROUP_OTHER_NXE;
	}
	if (!first_ns)
		first_ns = clock_ns();
	if (!setup()) {
		teardown();
		return GROUP_NO_SETUP;
	}
	int bad = run_group(level, acc, api, nxe);
	teardown();
	last_ns = clock_ns();
	return bad;
}

#define NXE_ON_SKIP "EFER.NXE is off: the CPU has no NX (the NXE-on half runs on e.g. max)"
#define NXE_OFF_SKIP "EFER.NXE is on: the NXE-off half needs a CPU without NX (config no-nx)"

/* One group: level x access type, entries written directly or through the API, one EFER.NXE. */
#define ACCESS_GROUP(name, level, acc, api, nxe)                                         \
	KTEST(access, name)                                                              \
	{                                                                                \
		int bad = group(level, acc, api, nxe);                                   \
		if (bad == GROUP_OTHER_NXE)                                              \
			KTEST_SKIP((nxe) ? NXE_ON_SKIP : NXE_OFF_SKIP);                  \
		KASSERT(bad != GROUP_NO_SETUP);                                          \
		KASSERT_EQ(bad, 0);                                                      \
	}

/* EFER.NXE on: a CPU with NX. */
ACCESS_GROUP(pml4_supervisor_read, LEVEL_PML4, ACC_READ, false, true)
ACCESS_GROUP(pml4_supervisor_write, LEVEL_PML4, ACC_WRITE, false, true)
ACCESS_GROUP(pml4_supervisor_fetch, LEVEL_PML4, ACC_FETCH, false, true)
ACCESS_GROUP(pdpt_supervisor_read, LEVEL_PDPT, ACC_READ, false, true)
ACCESS_GROUP(pdpt_supervisor_write, LEVEL_PDPT, ACC_WRITE, false, true)
ACCESS_GROUP(pdpt_supervisor_fetch, LEVEL_PDPT, ACC_FETCH, false, true)
ACCESS_GROUP(pd_supervisor_read, LEVEL_PD, ACC_READ, false, true)
ACCESS_GROUP(pd_supervisor_write, LEVEL_PD, ACC_WRITE, false, true)
ACCESS_GROUP(pd_supervisor_fetch, LEVEL_PD, ACC_FETCH, false, true)
ACCESS_GROUP(pt_supervisor_read, LEVEL_PT, ACC_READ, false, true)
ACCESS_GROUP(pt_supervisor_write, LEVEL_PT, ACC_WRITE, false, true)
ACCESS_GROUP(pt_supervisor_fetch, LEVEL_PT, ACC_FETCH, false, true)
ACCESS_GROUP(pml4_user_read, LEVEL_PML4, ACC_UREAD, false, true)
ACCESS_GROUP(pml4_user_write, LEVEL_PML4, ACC_UWRITE, false, true)
ACCESS_GROUP(pml4_user_fetch, LEVEL_PML4, ACC_UFETCH, false, true)
ACCESS_GROUP(pdpt_user_read, LEVEL_PDPT, ACC_UREAD, false, true)
ACCESS_GROUP(pdpt_user_write, LEVEL_PDPT, ACC_UWRITE, false, true)
ACCESS_GROUP(pdpt_user_fetch, LEVEL_PDPT, ACC_UFETCH, false, true)
ACCESS_GROUP(pd_user_read, LEVEL_PD, ACC_UREAD, false, true)
ACCESS_GROUP(pd_user_write, LEVEL_PD, ACC_UWRITE, false, true)
ACCESS_GROUP(pd_user_fetch, LEVEL_PD, ACC_UFETCH, false, true)
ACCESS_GROUP(pt_user_read, LEVEL_PT, ACC_UREAD, false, true)
ACCESS_GROUP(pt_user_write, LEVEL_PT, ACC_UWRITE, false, true)
ACCESS_GROUP(pt_user_fetch, LEVEL_PT, ACC_UFETCH, false, true)
ACCESS_GROUP(api_leaf_supervisor_read, LEVEL_PT, ACC_READ, true, true)
ACCESS_GROUP(api_leaf_supervisor_write, LEVEL_PT, ACC_WRITE, true, true)
ACCESS_GROUP(api_leaf_supervisor_fetch, LEVEL_PT, ACC_FETCH, true, true)
ACCESS_GROUP(api_leaf_user_read, LEVEL_PT, ACC_UREAD, true, true)
ACCESS_GROUP(api_leaf_user_write, LEVEL_PT, ACC_UWRITE, true, true)
ACCESS_GROUP(api_leaf_user_fetch, LEVEL_PT, ACC_UFETCH, true, true)

/* EFER.NXE off: a CPU without NX (config no-nx). */
ACCESS_GROUP(pml4_supervisor_read_nxe_off, LEVEL_PML4, ACC_READ, false, false)
ACCESS_GROUP(pml4_supervisor_write_nxe_off, LEVEL_PML4, ACC_WRITE, false, false)
ACCESS_GROUP(pml4_supervisor_fetch_nxe_off, LEVEL_PML4, ACC_FETCH, false, false)
ACCESS_GROUP(pdpt_supervisor_read_nxe_off, LEVEL_PDPT, ACC_READ, false, false)
ACCESS_GROUP(pdpt_supervisor_write_nxe_off, LEVEL_PDPT, ACC_WRITE, false, false)
ACCESS_GROUP(pdpt_supervisor_fetch_nxe_off, LEVEL_PDPT, ACC_FETCH, false, false)
ACCESS_GROUP(pd_supervisor_read_nxe_off, LEVEL_PD, ACC_READ, false, false)
ACCESS_GROUP(pd_supervisor_write_nxe_off, LEVEL_PD, ACC_WRITE, false, false)
ACCESS_GROUP(pd_supervisor_fetch_nxe_off, LEVEL_PD, ACC_FETCH, false, false)
ACCESS_GROUP(pt_supervisor_read_nxe_off, LEVEL_PT, ACC_READ, false, false)
ACCESS_GROUP(pt_supervisor_write_nxe_off, LEVEL_PT, ACC_WRITE, false, false)
ACCESS_GROUP(pt_supervisor_fetch_nxe_off, LEVEL_PT, ACC_FETCH, false, false)
ACCESS_GROUP(pml4_user_read_nxe_off, LEVEL_PML4, ACC_UREAD, false, false)
ACCESS_GROUP(pml4_user_write_nxe_off, LEVEL_PML4, ACC_UWRITE, false, false)
ACCESS_GROUP(pml4_user_fetch_nxe_off, LEVEL_PML4, ACC_UFETCH, false, false)
ACCESS_GROUP(pdpt_user_read_nxe_off, LEVEL_PDPT, ACC_UREAD, false, false)
ACCESS_GROUP(pdpt_user_write_nxe_off, LEVEL_PDPT, ACC_UWRITE, false, false)
ACCESS_GROUP(pdpt_user_fetch_nxe_off, LEVEL_PDPT, ACC_UFETCH, false, false)
ACCESS_GROUP(pd_user_read_nxe_off, LEVEL_PD, ACC_UREAD, false, false)
ACCESS_GROUP(pd_user_write_nxe_off, LEVEL_PD, ACC_UWRITE, false, false)
ACCESS_GROUP(pd_user_fetch_nxe_off, LEVEL_PD, ACC_UFETCH, false, false)
ACCESS_GROUP(pt_user_read_nxe_off, LEVEL_PT, ACC_UREAD, false, false)
ACCESS_GROUP(pt_user_write_nxe_off, LEVEL_PT, ACC_UWRITE, false, false)
ACCESS_GROUP(pt_user_fetch_nxe_off, LEVEL_PT, ACC_UFETCH, false, false)
ACCESS_GROUP(api_leaf_supervisor_read_nxe_off, LEVEL_PT, ACC_READ, true, false)
ACCESS_GROUP(api_leaf_supervisor_write_nxe_off, LEVEL_PT, ACC_WRITE, true, false)
ACCESS_GROUP(api_leaf_supervisor_fetch_nxe_off, LEVEL_PT, ACC_FETCH, true, false)
ACCESS_GROUP(api_leaf_user_read_nxe_off, LEVEL_PT, ACC_UREAD, true, false)
ACCESS_GROUP(api_leaf_user_write_nxe_off, LEVEL_PT, ACC_UWRITE, true, false)
ACCESS_GROUP(api_leaf_user_fetch_nxe_off, LEVEL_PT, ACC_UFETCH, true, false)

KTEST(access, matrix_size)
{
	ktest_log("access matrix: %llu of %llu combinations run in %llu ms; not run: %llu need "
		  "EFER.NXE %s, %llu need SMEP or SMAP (the CPU lacks them)",
		  combos_run, groups_seen * COMBOS_PER_GROUP, (last_ns - first_ns) / NS_PER_MS,
		  not_run_nxe, cpu_nx_enabled() ? "off (config no-nx)" : "on", not_run_smep_smap);
	ktest_log("access matrix: A bits the model leaves open after a fault: %llu, the CPU set %llu",
		  open_seen, open_set);
	ktest_log("access matrix: %s; reserved-bit faults reported without P (TCG, against SDM "
		  "4.7): %llu",
		  under_tcg() ? "QEMU TCG" : "not TCG", rsvd_without_p);
	KASSERT(combos_run > 0);
	KASSERT_EQ(combos_run + not_run_nxe + not_run_smep_smap, groups_seen * COMBOS_PER_GROUP);
}

/*
 * The second oracle: for a sample of the combinations (entries written
 * directly, each level, six bit patterns), QEMU's own view over QMP (`info
 * tlb`, `gva2gpa`, by the runner) must equal the kernel's dump and
 * virt_to_phys. Runs only when booted with `oracle` (tests/oracle_test.ts).
 */
KTEST(access, qmp_oracle_sample)
{
	static const u32 sample[] = {B_P | B_W | B_U, B_P | B_U, B_P | B_W, B_P | B_W | B_U | B_NX,
				     B_P, 0};
	static const char *const level_name[] = {"", "pt", "pd", "pdpt", "pml4"};
	if (!oracle_enabled())
		KTEST_SKIP("needs the runner's QEMU oracle (boot with oracle)");
	KASSERT(setup());
	const u64 probes[] = {TVA, TVA + DATA_OFF};
	for (int level = LEVEL_PT; level <= LEVEL_PML4; level++) {
		for (size_t i = 0; i < sizeof(sample) / sizeof(sample[0]); i++) {
			/* Without NXE bit 63 is reserved: the kernel's own walk could not pass it. */
			if ((sample[i] & B_NX) && !cpu_nx_enabled())
				continue;
			struct combo c = {level, sample[i], ACC_READ, true, true, false, false};
			char name[48];
			ksnprintf(name, sizeof(name), "access-%s-%c%c%c%c", level_name[level],
				  (c.bits & B_P) ? 'p' : '-', (c.bits & B_W) ? 'w' : '-',
				  (c.bits & B_U) ? 'u' : '-', (c.bits & B_NX) ? 'x' : '-');
			write_path(&c);
			oracle_checkpoint(name, probes, 2);
		}
	}
	(void)write_path(&(struct combo){LEVEL_PT, B_P | B_W | B_U, ACC_READ, 1, 1, 0, 0});
	teardown();
}
