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
 * EFER.NXE stays on: every kernel
 * data page carries NX, so the kernel cannot run with NXE clear (the NX bit
 * would be a reserved bit in all of them); the model covers NXE off, the
 * run counts those combinations as not run.
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

static u64 entry_bits(u32 bits)
{
	return ((bits & B_P) ? PTE_P : 0) | ((bits & B_W) ? PTE_W : 0) | ((bits & B_U) ? PTE_U : 0) |
	       ((bits & B_NX) ? PTE_NX : 0);
}

/* The model: SDM Vol. 3A §4.6 (access rights) and §4.7 (#PF error code). */
static struct outcome predict(const struct combo *c)
{
	struct outcome o = {0};
	bool user = c->acc >= ACC_UREAD;
	enum access kind = user ? (enum access)(c->acc - ACC_UREAD) : c->acc;
	u64 write = kind == ACC_WRITE ? PF_ERR_W : 0;
	/* I is reported only when NX or SMEP is on (§4.7). */
	u64 fetch = kind == ACC_FETCH && (c->nxe || c->smep) ? PF_ERR_I : 0;
	write |= user ? PF_ERR_U : 0;
	if (!(c->bits & B_P)) {
		o.fault = true;
		o.err = write | fetch;
		return o;
	}
	if ((c->bits & B_NX) && !c->nxe) { /* bit 63 reserved without NXE (§4.5.4) */
		o.fault = true;
		o.err = PF_ERR_P | PF_ERR_RSVD | write | fetch;
		return o;
	}
	bool user_page = c->bits & B_U, writable = c->bits & B_W;
	bool xd = c->nxe && (c->bits & B_NX);
	bool ok;
	if (user) /* CPL 3: the page must be a user page; W and XD always count (§4.6.1) */
		ok = user_page && (kind != ACC_WRITE || writable) && (kind != ACC_FETCH || !xd);
	else if (kind == ACC_READ) /* SMAP: no user page (AC is clear) */
		ok = !(user_page && c->smap);
	else if (kind == ACC_WRITE) /* SMAP, then W unless CR0.WP is off */
		ok = !(user_page && c->smap) && (writable || !c->wp);
	else /* XD, and SMEP: no user page */
		ok = !xd && !(user_page && c->smep);
	if (!ok) {
		o.fault = true;
		o.err = PF_ERR_P | write | fetch;
		return o;
	}
	o.a_mask = 0xf; /* every entry of the walk */
	o.dirty = kind == ACC_WRITE;
	return o;
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

/* Write the path for c: all present top-down, then bottom-up with the final values (A/D clean). */
static void write_path(const struct combo *c)
{
	struct tlb_batch b;
	tlb_batch_begin(&b, TLB_CURRENT);
	for (int l = LEVEL_PML4; l >= LEVEL_PT; l--)
		MUST(pte_write_flush(WINDOW_SELF, l, TVA, base[l], &b));
	for (int l = LEVEL_PT; l <= LEVEL_PML4; l++) {
		u64 v = base[l];
		if (l == c->level)
			v = (v & ~(PTE_P | PTE_W | PTE_U | PTE_NX)) | entry_bits(c->bits);
		MUST(pte_write_flush(WINDOW_SELF, l, TVA, v, &b));
	}
	tlb_batch_finish(&b);
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

/* Read A on every level's entry (top-down: a read through the self-map sets A only above) and D on the leaf. */
static void read_ad(const struct combo *c, struct outcome *o)
{
	o->a_mask = 0;
	o->dirty = false;
	for (int l = LEVEL_PML4; l >= LEVEL_PT; l--) {
		u64 e = *selfmap_entry(l, TVA);
		if (e & PTE_A)
			o->a_mask |= 1u << (l - 1);
		if (l == LEVEL_PT)
			o->dirty = e & PTE_D;
		/* Below a non-present entry nothing can be read (nor was walked). */
		if (!(e & PTE_P) || (l == c->level && (c->bits & B_NX) && !c->nxe))
			break;
	}
}

/* Whether actual agrees with the model; A/D compared where the model says them. */
static bool agree(const struct combo *c, const struct outcome *m, const struct outcome *a,
		  bool leaf_only)
{
	if (m->fault != a->fault || m->err != a->err)
		return false;
	if (m->fault)
		return !a->dirty || !(c->bits & B_P); /* a refused write dirties nothing */
	u32 mask = leaf_only ? 1u : 0xfu;
	return (a->a_mask & mask) == (m->a_mask & mask) && a->dirty == m->dirty;
}

static void print_combo(const char *how, const struct combo *c, const struct outcome *m,
			const struct outcome *a)
{
	static const char *const level_name[] = {"", "PT", "PD", "PDPT", "PML4"};
	ktest_log("%s: %s entry P=%u W=%u U=%u NX=%u, %s, CR0.WP=%u EFER.NXE=%u "
		  "SMEP=%u SMAP=%u: model %s err 0x%llx A 0x%x D %u, CPU %s err 0x%llx A 0x%x D %u",
		  how, level_name[c->level], c->bits & 1, (c->bits >> 1) & 1, (c->bits >> 2) & 1,
		  (c->bits >> 3) & 1, access_name[c->acc], c->wp, c->nxe, c->smep, c->smap,
		  m->fault ? "fault" : "ok", m->err, m->a_mask, m->dirty,
		  a->fault ? "fault" : "ok", a->err, a->a_mask, a->dirty);
}

/* The leaf through the API for c: unmapped (P=0), or mapped fresh with flags (A/D clear). */
static void api_leaf(const struct combo *c)
{
	MUST(unmap_region(TVA, 1, 0) == 0);
	if (!(c->bits & B_P))
		return;
	u32 flags = ((c->bits & B_W) ? VMM_WRITE : 0) | ((c->bits & B_U) ? VMM_USER : 0) |
		    ((c->bits & B_NX) ? 0 : VMM_EXEC);
	/* map, then set_page_flags to the same flags: both calls are on the path. */
	MUST(map_region(TVA, frame, 1, flags ^ VMM_WRITE) == 0);
	MUST(set_page_flags(TVA, 1, flags) == 0);
}

static u64 combos_run, combos_not_run;

/* Run every combination of one group: the number of disagreements. */
static int run_group(int level, enum access acc, bool api)
{
	bool has_smep = read_cr4() & CR4_SMEP, has_smap = read_cr4() & CR4_SMAP;
	u64 cr0 = read_cr0(), cr4 = read_cr4();
	int bad = 0;
	for (u32 bits = 0; bits < 16; bits++)
		for (int wp = 0; wp < 2; wp++)
			for (int nxe = 0; nxe < 2; nxe++)
				for (int smep = 0; smep <= (int)has_smep; smep++)
					for (int smap = 0; smap <= (int)has_smap; smap++) {
		struct combo c = {level, bits, acc, wp, nxe, smep, smap};
		if (!nxe) {
			combos_not_run++;
			continue;
		}
		write_cr0(wp ? cr0 | CR0_WP : cr0 & ~CR0_WP);
		write_cr4((cr4 & ~(CR4_SMEP | CR4_SMAP)) | (smep ? CR4_SMEP : 0) |
			  (smap ? CR4_SMAP : 0));
		if (api)
			api_leaf(&c);
		else
			write_path(&c);
		struct outcome a, m = predict(&c);
		access_now(acc, &a);
		read_ad(&c, &a);
		write_cr4(cr4);
		write_cr0(cr0);
		combos_run++;
		if (!agree(&c, &m, &a, api)) {
			if (bad++ < 4)
				print_combo(api ? "API" : "direct", &c, &m, &a);
		}
	}
	write_cr4(cr4);
	write_cr0(cr0);
	if (!api)
		write_path(&(struct combo){LEVEL_PT, B_P | B_W | B_U, ACC_READ, 1, 1, 0, 0});
	return bad;
}

static u64 first_ns, last_ns; /* when the first group began and the last one ended */

static int group(int level, enum access acc, bool api)
{
	if (!cpu_nx_enabled())
		return -1;
	if (!first_ns)
		first_ns = clock_ns();
	if (!setup()) {
		teardown();
		return -2;
	}
	int bad = run_group(level, acc, api);
	teardown();
	last_ns = clock_ns();
	return bad;
}

#define ACCESS_GROUP(name, level, acc, api)                                              \
	KTEST(access, name)                                                              \
	{                                                                                \
		int bad = group(level, acc, api);                                        \
		if (bad == -1)                                                           \
			KTEST_SKIP("no NX on this CPU");                                 \
		KASSERT(bad != -2);                                                      \
		KASSERT_EQ(bad, 0);                                                      \
	}

ACCESS_GROUP(pml4_supervisor_read, LEVEL_PML4, ACC_READ, false)
ACCESS_GROUP(pml4_supervisor_write, LEVEL_PML4, ACC_WRITE, false)
ACCESS_GROUP(pml4_supervisor_fetch, LEVEL_PML4, ACC_FETCH, false)
ACCESS_GROUP(pdpt_supervisor_read, LEVEL_PDPT, ACC_READ, false)
ACCESS_GROUP(pdpt_supervisor_write, LEVEL_PDPT, ACC_WRITE, false)
ACCESS_GROUP(pdpt_supervisor_fetch, LEVEL_PDPT, ACC_FETCH, false)
ACCESS_GROUP(pd_supervisor_read, LEVEL_PD, ACC_READ, false)
ACCESS_GROUP(pd_supervisor_write, LEVEL_PD, ACC_WRITE, false)
ACCESS_GROUP(pd_supervisor_fetch, LEVEL_PD, ACC_FETCH, false)
ACCESS_GROUP(pt_supervisor_read, LEVEL_PT, ACC_READ, false)
ACCESS_GROUP(pt_supervisor_write, LEVEL_PT, ACC_WRITE, false)
ACCESS_GROUP(pt_supervisor_fetch, LEVEL_PT, ACC_FETCH, false)
ACCESS_GROUP(pml4_user_read, LEVEL_PML4, ACC_UREAD, false)
ACCESS_GROUP(pml4_user_write, LEVEL_PML4, ACC_UWRITE, false)
ACCESS_GROUP(pml4_user_fetch, LEVEL_PML4, ACC_UFETCH, false)
ACCESS_GROUP(pdpt_user_read, LEVEL_PDPT, ACC_UREAD, false)
ACCESS_GROUP(pdpt_user_write, LEVEL_PDPT, ACC_UWRITE, false)
ACCESS_GROUP(pdpt_user_fetch, LEVEL_PDPT, ACC_UFETCH, false)
ACCESS_GROUP(pd_user_read, LEVEL_PD, ACC_UREAD, false)
ACCESS_GROUP(pd_user_write, LEVEL_PD, ACC_UWRITE, false)
ACCESS_GROUP(pd_user_fetch, LEVEL_PD, ACC_UFETCH, false)
ACCESS_GROUP(pt_user_read, LEVEL_PT, ACC_UREAD, false)
ACCESS_GROUP(pt_user_write, LEVEL_PT, ACC_UWRITE, false)
ACCESS_GROUP(pt_user_fetch, LEVEL_PT, ACC_UFETCH, false)
ACCESS_GROUP(api_leaf_supervisor_read, LEVEL_PT, ACC_READ, true)
ACCESS_GROUP(api_leaf_supervisor_write, LEVEL_PT, ACC_WRITE, true)
ACCESS_GROUP(api_leaf_supervisor_fetch, LEVEL_PT, ACC_FETCH, true)
ACCESS_GROUP(api_leaf_user_read, LEVEL_PT, ACC_UREAD, true)
ACCESS_GROUP(api_leaf_user_write, LEVEL_PT, ACC_UWRITE, true)
ACCESS_GROUP(api_leaf_user_fetch, LEVEL_PT, ACC_UFETCH, true)

KTEST(access, matrix_size)
{
	ktest_log("access matrix: %llu combinations run in %llu ms, %llu modelled but not run "
		  "(EFER.NXE off)",
		  combos_run, (last_ns - first_ns) / 1000000, combos_not_run);
	KASSERT(combos_run > 0);
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
			struct combo c = {level, sample[i], ACC_READ, true, true, false, false};
			char name[48];
			ksnprintf(name, sizeof(name), "access-%s-%c%c%c%c", level_name[level],
				  (c.bits & B_P) ? 'p' : '-', (c.bits & B_W) ? 'w' : '-',
				  (c.bits & B_U) ? 'u' : '-', (c.bits & B_NX) ? 'x' : '-');
			write_path(&c);
			oracle_checkpoint(name, probes, 2);
		}
	}
	write_path(&(struct combo){LEVEL_PT, B_P | B_W | B_U, ACC_READ, 1, 1, 0, 0});
	teardown();
}
