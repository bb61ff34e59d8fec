/*
 * Bringing up the application processors (smp.h). The BSP copies the
 * trampoline (trampoline.asm) to TRAMPOLINE_PHYS, identity-mapped only while
 * APs are being started, and starts one AP at a time: the trampoline's
 * parameter block holds that AP's stack and number, so APs never race for
 * it. An AP answers by publishing its number once its GDT, TSS, IDT, per-CPU
 * area and timer are set; then it becomes the scheduler's idle context on
 * that CPU (sched.c), taking its timer ticks, the IPIs of smp_call and the
 * scheduler's kicks, and running the threads it may run.
 */
#include <cpu.h>
#include <gdt.h>
#include <lapic.h>
#include <layout.h>
#include <panic.h>
#include <percpu.h>
#include <pmm.h>
#include <printf.h>
#include <sched.h>
#include <smp.h>
#include <string.h>
#include <timer.h>
#include <tlb.h>
#include <trap.h>
#include <vmm.h>

/* The INIT-SIPI-SIPI waits of the MP specification (SDM Vol. 3A §9.4.4.1). */
#define INIT_WAIT_NS 10000000ULL /* 10 ms after INIT */
#define SIPI_WAIT_NS 200000ULL   /* 200 us between the SIPIs */
/* How long smp_call waits for the target to run the function. */
#define CALL_TIMEOUT_NS (2000ULL * NS_PER_MS)

/*
 * AP kernel stacks: in the upper half of the kernel-stack slot, far from
 * the threads' stacks below (their tables are never shared), one guard page
 * below each. CPU 0 keeps the boot stack.
 */
#define AP_STACKS_BASE (KSTACKS_BASE + PML4_SLOT_SIZE / 2)
#define AP_STACK_STRIDE (KERNEL_STACK_SIZE + PAGE_SIZE)

/* The trampoline's parameter block, in trampoline.asm's order. */
struct trampoline_params {
	u64 cr0, cr3, cr4, efer, stack, entry, cpu;
};

extern const u8 trampoline_start[], trampoline_end[], trampoline_params[];

static struct acpi_cpus fw_cpus;
static u64 boot_ticks;
u32 smp_cpus_up = 1;
static u32 left_out;
/* The number of the last AP that reached ap_entry's end (written by that AP). */
static volatile u32 ap_answered;

/* smp_call's mailbox, one per target CPU. */
struct call_box {
	void (*fn)(void *arg);
	void *arg;
	volatile u32 done;
	volatile u32 busy; /* a caller owns the box */
};
static struct call_box call_boxes[MAX_CPUS];

/* smp_run's work, one per AP: its idle loop runs fn with interrupts on. */
struct run_box {
	void (*fn)(void *arg);
	void *arg;
	volatile u32 done;
};
static struct run_box run_boxes[MAX_CPUS];

static u64 ap_stack_base(u32 cpu)
{
	return AP_STACKS_BASE + (u64)cpu * AP_STACK_STRIDE + PAGE_SIZE;
}

void smp_stack_bounds(u32 cpu, u64 *lo, u64 *hi)
{
	*lo = ap_stack_base(cpu);
	*hi = *lo + KERNEL_STACK_SIZE;
}

int smp_stack_guard_cpu(u64 va)
{
	if (va < AP_STACKS_BASE || va >= AP_STACKS_BASE + MAX_CPUS * AP_STACK_STRIDE)
		return -1;
	u64 off = (va - AP_STACKS_BASE) % AP_STACK_STRIDE;
	return off < PAGE_SIZE ? (int)((va - AP_STACKS_BASE) / AP_STACK_STRIDE) : -1;
}

/* Map CPU cpu's kernel stack (its guard page stays unmapped): 0 or -E_NOMEM, nothing leaked. */
static int ap_stack_map(u32 cpu)
{
	return kstack_map_at(ap_stack_base(cpu));
}

/*
 * Send an IPI (ICR low word `low`) to APIC ID dest and wait until the APIC
 * has sent it. Interrupts off meanwhile: the two ICR writes must not be
 * split by a handler sending an IPI of its own.
 */
static void send_ipi(u32 dest, u32 low)
{
	u64 flags = read_rflags();
	cli();
	while (lapic_read(LAPIC_ICR_LO) & ICR_DELIVERY_PENDING)
		__builtin_ia32_pause();
	lapic_write(LAPIC_ICR_HI, dest << ICR_DEST_SHIFT);
	lapic_write(LAPIC_ICR_LO, low);
	while (lapic_read(LAPIC_ICR_LO) & ICR_DELIVERY_PENDING)
		__builtin_ia32_pause();
	if (flags & RFLAGS_IF)
		__asm__ volatile("sti" : : : "memory");
}

void smp_send_ipi(u32 cpu, u32 vector)
{
	send_ipi(percpu_of(cpu)->apic_id, ICR_DELIVERY_FIXED | vector);
}

static void delay_ns(u64 ns)
{
	u64 end = clock_ns() + ns;
	while (clock_ns() < end)
		__builtin_ia32_pause();
}

/*
 * True when AP `cpu` answered before `deadline` (clock_ns). Between two
 * looks this CPU halts until its timer tick (timer_init ran before smp_init):
 * an AP takes tens of milliseconds to answer under TCG, and a boot CPU
 * spinning meanwhile takes a host core from the AP's own vCPU thread (on a
 * loaded 2-core host the AP then missed the deadline).
 */
static bool wait_answer(u32 cpu, u64 deadline)
{
	while (__atomic_load_n(&ap_answered, __ATOMIC_ACQUIRE) != cpu)
		if (clock_ns() >= deadline)
			return false;
		else
			wait_for_interrupt();
	return true;
}

/* The AP's first C code, on its own stack, interrupts off. */
static NORETURN void ap_entry(u64 cpu)
{
	gdt_init_cpu((u32)cpu);
	idt_load();
	percpu_init((u32)cpu);
	syscall_init();
	u64 lo, hi;
	smp_stack_bounds((u32)cpu, &lo, &hi);
	percpu_set_kernel_stack(hi);
	this_cpu()->apic_id = lapic_id();
	timer_init_ap();
	__atomic_store_n(&ap_answered, (u32)cpu, __ATOMIC_RELEASE);
	/* Counted first: the scheduler's locking depends on the count (sched.c). */
	while (smp_cpu_count() <= cpu)
		__builtin_ia32_pause();
	sched_run_ap(hi);
}

/* Fill the trampoline's parameters for CPU cpu. */
static void trampoline_setup(u32 cpu)
{
	struct trampoline_params *p =
		(struct trampoline_params *)(TRAMPOLINE_PHYS + (u64)(trampoline_params - trampoline_start));
	u64 lo, hi;
	smp_stack_bounds(cpu, &lo, &hi);
	p->cr0 = read_cr0();
	p->cr3 = read_cr3();
	p->cr4 = read_cr4() & ~CR4_PCIDE;
	p->efer = EFER_LME | (rdmsr(MSR_EFER) & EFER_NXE);
	p->stack = hi;
	p->entry = (u64)ap_entry;
	p->cpu = cpu;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Start apic_id as CPU smp_cpus_up; the trampoline is mapped. 0, -E_NOMEM or -E_TIMEDOUT. */
static int start_cpu(u32 apic_id, u64 timeout_ms)
{
	u32 cpu = smp_cpus_up;
	if (ap_stack_map(cpu) != 0)
		return -E_NOMEM;
	trampoline_setup(cpu);
	send_ipi(apic_id, ICR_DELIVERY_INIT | ICR_LEVEL_ASSERT);
	delay_ns(INIT_WAIT_NS);
	u32 sipi = ICR_DELIVERY_STARTUP | (u32)(TRAMPOLINE_PHYS >> PAGE_SHIFT);
	send_ipi(apic_id, sipi);
	delay_ns(SIPI_WAIT_NS);
	if (__atomic_load_n(&ap_answered, __ATOMIC_ACQUIRE) != cpu)
		send_ipi(apic_id, sipi);
	if (!wait_answer(cpu, clock_ns() + timeout_ms * NS_PER_MS)) {
		/*
		 * Park it in wait-for-SIPI: it must not run a trampoline set up for
		 * another CPU, nor touch the stack given back here.
		 */
		send_ipi(apic_id, ICR_DELIVERY_INIT | ICR_LEVEL_ASSERT);
		MUST(unmap_region(ap_stack_base(cpu), KERNEL_STACK_PAGES, VMM_FREE_FRAMES) == 0);
		return -E_TIMEDOUT;
	}
	smp_cpus_up++;
	return 0;
}

/* Identity-map the trampoline page and copy the code in: 0 or the map_region error. */
static int trampoline_map(void)
{
	size_t len = (size_t)(trampoline_end - trampoline_start);
	ASSERT(len <= PAGE_SIZE);
	int err = map_region(TRAMPOLINE_PHYS, TRAMPOLINE_PHYS, 1, VMM_WRITE | VMM_EXEC);
	if (err)
		return err;
	memcpy((void *)TRAMPOLINE_PHYS, trampoline_start, len);
	return 0;
}

static void trampoline_unmap(void)
{
	MUST(unmap_region(TRAMPOLINE_PHYS, 1, 0) == 0);
}

int smp_start_cpu(u32 apic_id, u64 timeout_ms)
{
	if (smp_cpus_up >= MAX_CPUS)
		return -E_NOSPC;
	int err = trampoline_map();
	if (err)
		return err;
	err = start_cpu(apic_id, timeout_ms);
	trampoline_unmap();
	return err;
}

u64 smp_boot_ticks(void)
{
	return boot_ticks;
}

void smp_init(void)
{
	u64 tsc0 = rdtsc();
	u64 t0 = clock_ns();
	this_cpu()->apic_id = lapic_id();
	int err = acpi_find_cpus(&fw_cpus);
	if (err) {
		kprintf("# smp: no usable ACPI MADT (error %d): running on the boot CPU only\n", err);
		return;
	}
	kprintf("# smp: MADT lists %u CPUs (RSDP at 0x%llx from the %s)%s\n", fw_cpus.count,
		fw_cpus.rsdp_phys, fw_cpus.source, fw_cpus.ignored ? ", more than MAX_CPUS" : "");
	if (fw_cpus.ignored)
		kprintf("# smp: %u CPUs beyond MAX_CPUS=%d are left out\n", fw_cpus.ignored,
			MAX_CPUS);
	if (fw_cpus.count <= 1)
		return;
	if ((err = trampoline_map()) != 0) {
		kprintf("# smp: cannot map the trampoline (error %d): boot CPU only\n", err);
		return;
	}
	for (u32 i = 0; i < fw_cpus.count; i++) {
		u32 id = fw_cpus.apic_ids[i];
		if (id == this_cpu()->apic_id)
			continue;
		u32 cpu = smp_cpus_up;
		err = smp_cpus_up < MAX_CPUS ? start_cpu(id, SMP_START_TIMEOUT_MS) : -E_NOSPC;
		if (err) {
			left_out++;
			kprintf("# smp: CPU with APIC ID %u did not %s (error %d): left out\n", id,
				err == -E_TIMEDOUT ? "answer in time" : "start", err);
		} else {
			kprintf("# smp: CPU %u (APIC ID %u) up\n", cpu, id);
		}
	}
	trampoline_unmap();
	boot_ticks = rdtsc() - tsc0;
	kprintf("# smp: %u of %u CPUs up in %llu us\n", smp_cpus_up, fw_cpus.count,
		(clock_ns() - t0) / NS_PER_US);
}


const struct acpi_cpus *smp_firmware_cpus(void)
{
	return &fw_cpus;
}

u32 smp_cpus_left_out(void)
{
	return left_out;
}

void smp_ipi_call(void)
{
	struct call_box *b = &call_boxes[this_cpu()->cpu_id];
	void (*fn)(void *) = __atomic_load_n(&b->fn, __ATOMIC_ACQUIRE);
	if (fn) {
		/* fn may touch anything: not with the TLB of a lazy idle CPU (tlb.c). */
		tlb_idle_exit();
		b->fn = NULL;
		fn(b->arg);
		__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	}
	lapic_eoi();
}

void smp_kick(u32 cpu)
{
	if (cpu < smp_cpus_up && cpu != this_cpu()->cpu_id)
		send_ipi(percpu_of(cpu)->apic_id, ICR_DELIVERY_FIXED | VEC_IPI_CALL);
}

int smp_run(u32 cpu, void (*fn)(void *arg), void *arg)
{
	if (cpu == 0 || cpu >= smp_cpus_up || cpu == this_cpu()->cpu_id)
		return -E_INVAL;
	struct run_box *b = &run_boxes[cpu];
	if (__atomic_load_n(&b->fn, __ATOMIC_ACQUIRE))
		return -E_NOSPC;
	b->arg = arg;
	b->done = 0;
	__atomic_store_n(&b->fn, fn, __ATOMIC_RELEASE);
	/* Wake it from hlt: smp_ipi_call finds no call in its box and only acknowledges. */
	send_ipi(percpu_of(cpu)->apic_id, ICR_DELIVERY_FIXED | VEC_IPI_CALL);
	return 0;
}

int smp_run_wait(u32 cpu, u64 timeout_ms)
{
	if (cpu == 0 || cpu >= smp_cpus_up)
		return -E_INVAL;
	struct run_box *b = &run_boxes[cpu];
	u64 deadline = clock_ns() + timeout_ms * NS_PER_MS;
	while (!__atomic_load_n(&b->done, __ATOMIC_ACQUIRE)) {
		if (clock_ns() >= deadline)
			return -E_TIMEDOUT;
		tlb_poll(); /* the caller may run with interrupts off: serve its shootdowns */
		__builtin_ia32_pause();
	}
	return 0;
}

bool smp_run_poll(void)
{
	struct run_box *b = &run_boxes[this_cpu()->cpu_id];
	void (*fn)(void *) = __atomic_load_n(&b->fn, __ATOMIC_ACQUIRE);
	if (!fn)
		return false;
	__asm__ volatile("sti" : : : "memory");
	fn(b->arg);
	cli();
	__atomic_store_n(&b->fn, NULL, __ATOMIC_RELAXED);
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return true;
}

int smp_call(u32 cpu, void (*fn)(void *arg), void *arg)
{
	if (cpu >= smp_cpus_up)
		return -E_INVAL;
	if (cpu == this_cpu()->cpu_id) {
		fn(arg);
		return 0;
	}
	struct call_box *b = &call_boxes[cpu];
	while (__atomic_exchange_n(&b->busy, 1, __ATOMIC_ACQUIRE)) {
		tlb_poll(); /* the caller may run with interrupts off: serve its shootdowns */
		__builtin_ia32_pause();
	}
	b->arg = arg;
	b->done = 0;
	__atomic_store_n(&b->fn, fn, __ATOMIC_RELEASE);
	send_ipi(percpu_of(cpu)->apic_id, ICR_DELIVERY_FIXED | VEC_IPI_CALL);
	u64 deadline = clock_ns() + CALL_TIMEOUT_NS;
	int err = 0;
	while (!__atomic_load_n(&b->done, __ATOMIC_ACQUIRE)) {
		if (clock_ns() >= deadline) {
			err = -E_TIMEDOUT;
			break;
		}
		tlb_poll();
		__builtin_ia32_pause();
	}
	__atomic_store_n(&b->busy, 0, __ATOMIC_RELEASE);
	return err;
}
