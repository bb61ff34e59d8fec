/*
 * Failure-class selftests: `selftest=<name>` runs one of these instead of
 * the tests, as suite "selftest" with a single test <name>, so the toolchain
 * can prove it detects each way a run can go wrong. Each one fails on
 * purpose, for real (no simulation): a triple fault, a hang, a panic, a page
 * fault, a failed assertion, garbage instead of TAP, a stack overflow, a
 * suite that leaks frames and page tables (and one that keeps them, declared).
 */
#include <cpu.h>
#include <ktest.h>
#include <oracle.h>
#include <vmm.h>
#include <layout.h>
#include <panic.h>
#include <pmm.h>
#include <printf.h>
#include <proc.h>
#include <sched.h>
#include <serial.h>
#include <smap.h>
#include <pmm.h>
#include <smp.h>
#include <spinlock.h>
#include <string.h>
#include <timer.h>
#include <tlb.h>

/* Bytes of garbage for `selftest=garbage`: a few hundred, as the runner expects. */
#define GARBAGE_BYTES 400
/* An address nothing maps: in the user half, where the kernel has no mappings at all. */
#define UNMAPPED_ADDRESS 0x0000100000000000ULL
/* Room for the names of all selftests, for the unknown-name message. */
#define SELFTEST_NAMES_MAX 256
/* Where the leak selftests map a page: a user-half slot nothing else uses (its tables are new). */
#define LEAK_ADDRESS 0x0000140000000000ULL
/* Where tlb-noack maps a kernel page: the upper half of the device slot, unused. */
#define TLB_SELFTEST_VA (MMIO_BASE + PML4_SLOT_SIZE / 2)
/* tlb-noack's acknowledgement wait (the production wait is TLB_ACK_TIMEOUT_MS). */
#define TLB_NOACK_WAIT_MS 50ULL
/* Any frame address will do for a mapping nothing reads. */
#define LEAK_FAKE_PHYS 0x100000000ULL

static void st_triple_fault(void)
{
	/* With an empty IDT, int3 cannot be delivered, nor can the #GP or #DF that follow. */
	struct descriptor_pointer empty_idt = {0, 0};
	lidt(&empty_idt);
	__asm__ volatile("int3");
	panic("selftest: survived int3 with an empty IDT");
}

static void st_hang(void)
{
	halt_forever();
}

static void st_panic(void)
{
	panic("selftest: deliberate panic");
}

static void st_fault(void)
{
	volatile const u64 *p = (volatile const u64 *)UNMAPPED_ADDRESS;
	u64 v = *p;
	panic("selftest: read 0x%llx from unmapped address %p without a fault", v, (void *)p);
}

static void st_fail(void)
{
	u64 answer = 6 * 7;
	KASSERT_EQ(answer, 54);
}

/* Recurse until the stack runs into its guard page; `stop` is never reached. */
static volatile u64 recursion_stop = ~0ULL;

__attribute__((noinline)) static u64 recurse(u64 depth)
{
	volatile u8 frame[256]; /* make each level use real stack */
	frame[0] = (u8)depth;
	if (depth == recursion_stop)
		return 0;
	return recurse(depth + 1) + frame[0];
}

static void st_stack_overflow(void)
{
	u64 r = recurse(0);
	panic("selftest: recursion returned %llu without overflowing the stack", r);
}

static int kstack_overflow_thread(void *arg)
{
	(void)arg;
	return (int)recurse(0);
}

/* The same on a kernel thread's own stack (kernel/proc/sched.c), guard page below it. */
static void st_kstack_overflow(void)
{
	int pid = kthread_create("overflow", kstack_overflow_thread, NULL);
	if (pid < 0)
		panic("selftest: no kernel thread (%d)", pid);
	proc_wait(pid, NULL);
	panic("selftest: the kernel thread ended without overflowing its stack");
}

/* Print non-TAP bytes (text and binary, no line structure), then claim success. */
static NORETURN void garbage(void)
{
	static const char text[] = "garbage\x01\x02\xff\xfe not TAP ";
	u32 x = 0x2545F491; /* xorshift32 state: any nonzero seed */
	for (int i = 0; i < GARBAGE_BYTES; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		char c = (i % 3 == 0) ? text[(x >> 8) % (sizeof(text) - 1)] : (char)x;
		serial_putc(c == '\n' || c == '\r' ? '~' : c);
	}
	debug_exit(DEBUG_EXIT_PASS);
}

/* A checkpoint whose dump claims a page QEMU cannot find: the oracle must object. */
static void st_oracle_lie(void)
{
	const u64 lie = KERNEL_HALF_START; /* nothing is mapped at the start of the kernel half */
	oracle_begin("oracle-lie");
	vmm_dump("    ");
	kprintf("    # map %016llx-%016llx %016llx -rw nx\n", lie, lie + PAGE_SIZE, PAGE_SIZE);
	oracle_end("oracle-lie");
}

/*
 * A user page in the kernel's own space at UNMAPPED_ADDRESS holding `ret`,
 * written while it is still kernel-only (SMAP would refuse the store), then
 * made a user page with the flags given.
 */
static void *user_page_with_ret(u32 flags)
{
	u64 frame;
	if (pmm_alloc(&frame) != 0 || map_region(UNMAPPED_ADDRESS, frame, 1, VMM_WRITE) != 0)
		panic("selftest: no frame for a user page");
	*(volatile u8 *)UNMAPPED_ADDRESS = 0xc3; /* ret */
	if (set_page_flags(UNMAPPED_ADDRESS, 1, flags) != 0)
		panic("selftest: set_page_flags refused a user page");
	return (void *)UNMAPPED_ADDRESS;
}

/* The kernel calls into a user page: SMEP must fault it. */
static void st_smep(void)
{
	if (!smep_on())
		panic("selftest: this CPU has no SMEP (run it on -cpu max)");
	void (*fn)(void) = (void (*)(void))user_page_with_ret(VMM_USER | VMM_EXEC);
	fn();
	panic("selftest: the kernel executed a user page without a fault");
}

/* The kernel reads a user page outside the copy routines: SMAP must fault it. */
static void st_smap(void)
{
	if (!smap_on())
		panic("selftest: this CPU has no SMAP (run it on -cpu max)");
	volatile const u8 *p = user_page_with_ret(VMM_USER);
	u8 v = *p;
	panic("selftest: the kernel read 0x%x from a user page without a fault", v);
}

/* Take two locks against their documented order: the check must panic naming both. */
static void st_lock_order(void)
{
	static struct spinlock high = SPINLOCK_INIT("selftest-high", LOCK_ORDER_PMM);
	static struct spinlock low = SPINLOCK_INIT("selftest-low", LOCK_ORDER_TEST);
	spin_lock(&high);
	spin_lock(&low);
	panic("selftest: taking locks out of order went unnoticed");
}

/* Hold a lock into a context switch: the scheduler's check must panic naming it. */
static void st_lock_switch(void)
{
	static struct spinlock held = SPINLOCK_INIT("selftest-held", LOCK_ORDER_TEST);
	spin_lock(&held);
	sched_yield();
	panic("selftest: a lock held across a context switch went unnoticed");
}

/*
 * Block with the scheduler's lock held, as a sleeper does, and another lock
 * too: the switch's own check, which lets the scheduler's lock through by
 * design, must still panic naming the other one.
 */
static void st_lock_switch_block(void)
{
	static struct spinlock held = SPINLOCK_INIT("selftest-held", LOCK_ORDER_TEST);
	spin_lock(&held);
	sched_lock_acquire();
	struct proc *cur = sched_current();
	cur->wake_ns = ~0ULL;
	cur->state = PROC_SLEEPING;
	sched_block();
	panic("selftest: a lock held into sched_block's switch went unnoticed");
}

/*
 * CPU 1 turns its interrupts off and never serves a shootdown (runs on smp2).
 * It halts with interrupts off: the IPI stays pending and nothing else wakes
 * it, so it is as deaf as a CPU spinning, without a host core spinning too.
 */
static void halt_deaf(void *arg)
{
	cli();
	__atomic_store_n((bool *)arg, true, __ATOMIC_RELEASE);
	halt_forever();
}

/* A kernel page unmapped while CPU 1 cannot acknowledge: the wait must panic naming CPU 1. */
static void st_tlb_noack(void)
{
	if (smp_cpu_count() < 2)
		KTEST_SKIP("needs 2 CPUs (smp2)");
	KASSERT_EQ(map_region(TLB_SELFTEST_VA, LEAK_FAKE_PHYS, 1, 0), 0);
	static bool deaf;
	KASSERT_EQ(smp_run(1, halt_deaf, &deaf), 0);
	/* Only once it is deaf: an IPI that reached it before its cli would be served. */
	u64 next = clock_ns() + NS_PER_SEC;
	while (!__atomic_load_n(&deaf, __ATOMIC_ACQUIRE)) {
		__builtin_ia32_pause();
		if (clock_ns() >= next) {
			ktest_log("waiting for CPU 1 to turn its interrupts off");
			next += NS_PER_SEC;
		}
	}
	ktest_log("CPU 1 halts with interrupts off: a kernel page's unmap must wait for it");
	/* Any wait ends the same way for a CPU that never acknowledges; a short one costs less. */
	tlb_test_set_ack_timeout_ms(TLB_NOACK_WAIT_MS);
	int err = unmap_region(TLB_SELFTEST_VA, 1, 0);
	panic("selftest: unmap_region returned %d: a CPU that never acknowledged went unnoticed",
	      err);
}

/* A TLB batch opened and never finished, then a context switch: the check must panic. */
static void st_tlb_open(void)
{
	if (smp_cpu_count() < 2)
		KTEST_SKIP("needs 2 CPUs (smp2): one CPU records no batch");
	struct tlb_batch b;
	tlb_batch_begin(&b, TLB_KERNEL);
	sched_yield();
	panic("selftest: a TLB batch left open across a context switch went unnoticed");
}

/* Take a frame, map a page in an empty slot (a PDPT, a PD and a PT), give none of it back. */
static void st_leak(void)
{
	u64 frame;
	KASSERT_EQ(pmm_alloc(&frame), 0);
	KASSERT_EQ(map_region(LEAK_ADDRESS, LEAK_FAKE_PHYS, 1, 0), 0);
}

#define SELFTEST(n, f) {KTEST_MAGIC, "selftest", n, f, NULL, __FILE__, __LINE__, 0, NULL}
/* Declares the suite of the selftest right after it (selftest_run includes it). */
#define SELFTEST_SUITE(flags, why) \
	{KTEST_MAGIC, "selftest", NULL, NULL, NULL, __FILE__, __LINE__, flags, why}

static const struct ktest selftests[] = {
	SELFTEST("triple-fault", st_triple_fault),
	SELFTEST("hang", st_hang),
	SELFTEST("panic", st_panic),
	SELFTEST("fault", st_fault),
	SELFTEST("fail", st_fail),
	SELFTEST("stack-overflow", st_stack_overflow),
	SELFTEST("kstack-overflow", st_kstack_overflow),
	SELFTEST("oracle-lie", st_oracle_lie),
	SELFTEST("smep", st_smep),
	SELFTEST("smap", st_smap),
	SELFTEST("lock-order", st_lock_order),
	SELFTEST("lock-switch", st_lock_switch),
	SELFTEST("lock-switch-block", st_lock_switch_block),
	SELFTEST("tlb-noack", st_tlb_noack),
	SELFTEST("tlb-open", st_tlb_open),
	SELFTEST("leak", st_leak),
	SELFTEST_SUITE(KTEST_KEEPS_MEMORY, "selftest: it keeps what it takes, and says so"),
	SELFTEST("leak-kept", st_leak),
};

bool selftest_prints_tap(const char *name)
{
	return strcmp(name, "garbage") != 0;
}

NORETURN void selftest_run(const char *name)
{
	if (!selftest_prints_tap(name))
		garbage();
	for (size_t i = 0; i < ARRAY_SIZE(selftests); i++) {
		if (!selftests[i].name || strcmp(selftests[i].name, name) != 0)
			continue;
		/* A suite declaration just before the test goes with it. */
		size_t first = i > 0 && !selftests[i - 1].name ? i - 1 : i;
		debug_exit(ktest_run_set(&selftests[first], &selftests[i + 1], NULL));
	}
	char known[SELFTEST_NAMES_MAX] = "garbage";
	for (size_t i = 0; i < ARRAY_SIZE(selftests); i++)
		if (selftests[i].name)
			ksnprintf(known + strlen(known), sizeof(known) - strlen(known), " %s",
				  selftests[i].name);
	ktest_print_version();
	panic("unknown selftest '%s' (known: %s)", name, known);
}
