/*
 * Exception dispatch. An exception a test armed for (trap_expect) is
 * recorded and survived; any other one is fatal: it is dumped as TAP
 * comment lines, followed by "Bail out!", and QEMU exits with
 * DEBUG_EXIT_PANIC.
 */
#include <cpu.h>
#include <layout.h>
#include <paging.h>
#include <panic.h>
#include <printf.h>
#include <serial.h>
#include <string.h>
#include <proc.h>
#include <sched.h>
#include <selfpage.h>
#include <timer.h>
#include <smp.h>
#include <tlb.h>
#include <trap.h>
#include <uaccess.h>
#include <vmm.h>

/* Selector error code (SDM Vol. 3A §6.13): external event, IDT, LDT, index. */
#define SEL_ERR_EXT (1ULL << 0)
#define SEL_ERR_IDT (1ULL << 1)
#define SEL_ERR_TI (1ULL << 2)
#define SEL_ERR_INDEX_SHIFT 3

extern const u8 __stack_guard[], __stack_bottom[];

struct trap_expectation trap_expected;
static struct trap_record trap_recorded;
/* Why the VMM did not resolve the last #PF (for the report), or NULL. */
static const char *pf_refusal;

static const struct {
	const char *mnemonic;
	const char *name;
} exceptions[EXCEPTION_VECTORS] = {
	[VEC_DE] = {"#DE", "divide error"},
	[VEC_DB] = {"#DB", "debug"},
	[VEC_NMI] = {"NMI", "non-maskable interrupt"},
	[VEC_BP] = {"#BP", "breakpoint"},
	[VEC_OF] = {"#OF", "overflow"},
	[VEC_BR] = {"#BR", "bound range exceeded"},
	[VEC_UD] = {"#UD", "invalid opcode"},
	[VEC_NM] = {"#NM", "device not available"},
	[VEC_DF] = {"#DF", "double fault"},
	[9] = {"#CSO", "coprocessor segment overrun"},
	[VEC_TS] = {"#TS", "invalid TSS"},
	[VEC_NP] = {"#NP", "segment not present"},
	[VEC_SS] = {"#SS", "stack-segment fault"},
	[VEC_GP] = {"#GP", "general protection"},
	[VEC_PF] = {"#PF", "page fault"},
	[VEC_MF] = {"#MF", "x87 floating-point error"},
	[VEC_AC] = {"#AC", "alignment check"},
	[VEC_MC] = {"#MC", "machine check"},
	[VEC_XM] = {"#XM", "SIMD floating-point"},
	[VEC_VE] = {"#VE", "virtualization"},
	[VEC_CP] = {"#CP", "control protection"},
	[VEC_HV] = {"#HV", "hypervisor injection"},
	[VEC_VC] = {"#VC", "VMM communication"},
	[VEC_SX] = {"#SX", "security"},
};

const char *trap_mnemonic(u64 vector)
{
	if (vector < EXCEPTION_VECTORS && exceptions[vector].mnemonic)
		return exceptions[vector].mnemonic;
	return "#??";
}

const char *trap_name(u64 vector)
{
	if (vector < EXCEPTION_VECTORS && exceptions[vector].name)
		return exceptions[vector].name;
	return "reserved";
}

void trap_decode_pf_error(u64 error_code, char *buf, size_t size)
{
	ksnprintf(buf, size, "%s, %s, %s%s%s",
		  (error_code & PF_ERR_P) ? "protection violation" : "not present",
		  (error_code & PF_ERR_I) ? "fetch" : (error_code & PF_ERR_W) ? "write" : "read",
		  (error_code & PF_ERR_U) ? "user" : "supervisor",
		  (error_code & PF_ERR_RSVD) ? ", reserved bit set" : "",
		  (error_code & PF_ERR_I) && (error_code & PF_ERR_W) ? ", write" : "");
}

/* Describe an error code, as far as the vector gives it a meaning. */
static void decode_error(const struct trap_frame *f, char *buf, size_t size)
{
	u64 e = f->error_code;
	switch (f->vector) {
	case VEC_PF:
		trap_decode_pf_error(e, buf, size);
		break;
	case VEC_TS:
	case VEC_NP:
	case VEC_SS:
	case VEC_GP:
		if (e == 0) {
			ksnprintf(buf, size, "no selector");
			break;
		}
		ksnprintf(buf, size, "%s index %llu%s", (e & SEL_ERR_IDT) ? "IDT"
				  : (e & SEL_ERR_TI) ? "LDT" : "GDT",
			  e >> SEL_ERR_INDEX_SHIFT, (e & SEL_ERR_EXT) ? ", external" : "");
		break;
	default:
		ksnprintf(buf, size, "-");
		break;
	}
}

/* The guard page holding va: the boot stack's, or a thread's (sched.c); 0 if none. */
static u64 stack_guard_of(u64 va)
{
	if (va >= (u64)__stack_guard && va < (u64)__stack_bottom)
		return (u64)__stack_guard;
	return kstack_guard_slot(va) >= 0 ? ALIGN_DOWN(va, PAGE_SIZE) : 0;
}

/* The guard page a fault ran into when a kernel stack overflowed, or 0. */
static u64 is_stack_overflow(const struct trap_frame *f, u64 cr2)
{
	u64 g = (f->vector == VEC_PF || f->vector == VEC_DF) ? stack_guard_of(cr2) : 0;
	return g ? g : stack_guard_of(f->rsp);
}

/* Print the registers of f as TAP comment lines. */
static void dump_registers(const struct trap_frame *f, u64 cr2)
{
	kprintf("# rip 0x%016llx  cs  0x%04llx  rflags 0x%016llx\n", f->rip, f->cs, f->rflags);
	kprintf("# rsp 0x%016llx  ss  0x%04llx\n", f->rsp, f->ss);
	kprintf("# cr2 0x%016llx  cr3 0x%016llx\n", cr2, read_cr3());
	kprintf("# rax 0x%016llx  rbx 0x%016llx  rcx 0x%016llx\n", f->rax, f->rbx, f->rcx);
	kprintf("# rdx 0x%016llx  rsi 0x%016llx  rdi 0x%016llx\n", f->rdx, f->rsi, f->rdi);
	kprintf("# rbp 0x%016llx  r8  0x%016llx  r9  0x%016llx\n", f->rbp, f->r8, f->r9);
	kprintf("# r10 0x%016llx  r11 0x%016llx  r12 0x%016llx\n", f->r10, f->r11, f->r12);
	kprintf("# r13 0x%016llx  r14 0x%016llx  r15 0x%016llx\n", f->r13, f->r14, f->r15);
}

/* Report an exception nobody expected, then leave QEMU. */
static NORETURN void trap_fatal(const struct trap_frame *f, u64 cr2)
{
	static bool reporting;
	if (reporting) {
		/* The report itself faulted: say so in as few steps as possible. */
		kprintf("\nBail out! exception %s while reporting an exception\n",
			trap_mnemonic(f->vector));
		debug_exit(DEBUG_EXIT_PANIC);
	}
	reporting = true;
	char err[96];
	decode_error(f, err, sizeof(err));
	u64 overflow = is_stack_overflow(f, cr2);
	if (!serial_at_line_start())
		kprintf("\n");
	kprintf("# exception %llu %s (%s)\n", f->vector, trap_mnemonic(f->vector),
		trap_name(f->vector));
	kprintf("# error code 0x%llx (%s)\n", f->error_code, err);
	if (f->vector == VEC_PF && pf_refusal)
		kprintf("# page fault at 0x%016llx: %s\n", cr2, pf_refusal);
	if (overflow)
		kprintf("# kernel stack overflow: the fault hit the guard page at 0x%016llx\n",
			overflow);
	dump_registers(f, cr2);
	backtrace_print(f->rip, f->rbp);
	char why[160] = "";
	if (f->vector == VEC_PF)
		ksnprintf(why, sizeof(why), ", %s at 0x%016llx: %s", err, cr2,
			  pf_refusal ? pf_refusal : "?");
	kprintf("Bail out! exception %s (%s) at rip 0x%016llx%s%s\n", trap_mnemonic(f->vector),
		trap_name(f->vector), f->rip, why, overflow ? " (kernel stack overflow)" : "");
	debug_exit(DEBUG_EXIT_PANIC);
}

/* True when f is the exception the running test armed for. */
static bool trap_matches(const struct trap_frame *f)
{
	const struct trap_expectation *e = &trap_expected;
	if (!e->armed || e->vector != f->vector)
		return false;
	/* Faults report the instruction itself, traps the one after it. */
	return e->fault_rip == 0 || f->rip == e->fault_rip || f->rip == e->resume_rip;
}

/* A device interrupt: the timer, or the LAPIC's spurious vector (no EOI for it). */
static void irq_dispatch(struct trap_frame *f)
{
	if (f->vector == VEC_TIMER)
		timer_interrupt(f);
	else if (f->vector == VEC_IPI_CALL)
		smp_ipi_call(); /* sends its own EOI */
	else if (f->vector == VEC_IPI_TLB)
		tlb_ipi(); /* sends its own EOI */
	else if (f->vector != VEC_SPURIOUS)
		lapic_eoi();
}

/* An exception in user mode: resolve a demand-zero fault, else kill the process. */
static void user_exception(struct trap_frame *f, u64 cr2)
{
	if (f->vector == VEC_PF) {
		/*
		 * Straight to the process's regions: user mode never creates page
		 * tables (the windows are supervisor-only) and owns no kernel region.
		 * Self-paged regions go to the process's own handler. The region is
		 * looked up once for both.
		 */
		const char *why;
		if (cr2 < USER_END) {
			const struct region *r = proc_region_of(sched_current(), cr2);
			if (selfpage_fault(f, cr2, r))
				return;
			why = proc_region_fault(r, cr2, f->error_code);
		} else {
			why = vmm_page_fault(f, cr2);
		}
		if (!why)
			return;
		char err[96];
		trap_decode_pf_error(f->error_code, err, sizeof(err));
		proc_kill_current_fault(f->vector, "%s (%s) at address 0x%016llx, rip 0x%016llx: %s (%s)",
					trap_mnemonic(f->vector), trap_name(f->vector), cr2, f->rip,
					why, err);
	}
	char err[96];
	decode_error(f, err, sizeof(err));
	proc_kill_current_fault(f->vector, "%s (%s) at rip 0x%016llx, rsp 0x%016llx, error code 0x%llx (%s)",
				trap_mnemonic(f->vector), trap_name(f->vector), f->rip, f->rsp,
				f->error_code, err);
}

void trap_dispatch(struct trap_frame *f)
{
	/* CR2 first: a fault while reporting would overwrite it. */
	u64 cr2 = read_cr2();
	if (f->vector >= IRQ_VECTOR_FIRST) {
		irq_dispatch(f);
		if (trap_from_user(f))
			proc_return_to_user(f);
		return;
	}
	if (trap_from_user(f)) {
		/* A kernel test's single ring-3 access ends here (it does not return then). */
		if (user_probe_active)
			user_probe_catch(f, cr2);
		user_exception(f, cr2);
		proc_return_to_user(f);
		return;
	}
	/* Page faults go to the VMM first: missing page tables and demand-zero pages are its. */
	if (f->vector == VEC_PF) {
		pf_refusal = vmm_page_fault(f, cr2);
		if (!pf_refusal)
			return;
		/* A system call's copy from or to a bad user address: it returns -E_FAULT. */
		if (uaccess_fixup(f))
			return;
	}
	if (!trap_matches(f))
		trap_fatal(f, cr2);
	trap_recorded = (struct trap_record){
		.hit = true,
		.vector = f->vector,
		.error_code = f->error_code,
		.cr2 = cr2,
		.rip = f->rip,
	};
	if (trap_expected.resume_rip)
		f->rip = trap_expected.resume_rip;
	trap_expected.armed = false;
}

void trap_expect(u64 vector)
{
	trap_recorded = (struct trap_record){0};
	trap_expected = (struct trap_expectation){.vector = vector, .armed = true};
}

struct trap_record trap_expect_end(void)
{
	struct trap_record r = trap_recorded;
	trap_expected = (struct trap_expectation){0};
	trap_recorded = (struct trap_record){0};
	return r;
}

/* The shootdown's vector (linker/arch.ts) must have an isr.asm stub and differ from the others. */
_Static_assert(VEC_IPI_TLB >= IRQ_VECTOR_FIRST && VEC_IPI_TLB < IRQ_VECTOR_FIRST + IRQ_VECTORS &&
		       VEC_IPI_TLB != VEC_TIMER && VEC_IPI_TLB != VEC_IPI_CALL,
	       "VEC_IPI_TLB");
