/* CPU control: control registers, TLB, CPUID, MSRs, halting. */
#ifndef OUROBOROS_CPU_H
#define OUROBOROS_CPU_H

#include <layout.h> /* MSR_EFER, EFER_*, CPUID_*: generated from linker/arch.ts */
#include <types.h>

/* RFLAGS.IF (SDM Vol. 1 §3.4.3). */
#define RFLAGS_IF (1ULL << 9)

static inline u64 read_cr0(void)
{
	u64 v;
	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}

static inline u64 read_cr2(void)
{
	u64 v;
	__asm__ volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}

static inline u64 read_cr3(void)
{
	u64 v;
	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

static inline u64 read_cr4(void)
{
	u64 v;
	__asm__ volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}

static inline u64 read_rflags(void)
{
	u64 v;
	__asm__ volatile("pushfq; popq %0" : "=r"(v));
	return v;
}

/*
 * Load CR3: switch to the address space whose PML4 is at `value`, dropping
 * every non-global TLB entry (SDM Vol. 3A §4.10.4.1).
 */
static inline void load_cr3(u64 value)
{
	__asm__ volatile("mov %0, %%cr3" : : "r"(value) : "memory");
}

/* Drop any TLB entry for the page holding va (SDM Vol. 3A §4.10.4.1). */
static inline void invlpg(u64 va)
{
	__asm__ volatile("invlpg (%0)" : : "r"(va) : "memory");
}

struct cpuid_regs {
	u32 eax, ebx, ecx, edx;
};

static inline struct cpuid_regs cpuid(u32 leaf, u32 subleaf)
{
	struct cpuid_regs r;
	__asm__ volatile("cpuid"
			 : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx)
			 : "a"(leaf), "c"(subleaf));
	return r;
}

static inline u64 rdmsr(u32 msr)
{
	u32 lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((u64)hi << 32) | lo;
}

static inline void wrmsr(u32 msr, u64 value)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((u32)value), "d"((u32)(value >> 32)));
}

/*
 * The time-stamp counter (SDM Vol. 3B §18.17); under QEMU's -icount shift=0
 * it advances one tick per instruction. The memory clobber keeps the code it
 * times from moving across it.
 */
static inline u64 rdtsc(void)
{
	u32 lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return ((u64)hi << 32) | lo;
}

/* The operand of lgdt/lidt and what sgdt/sidt store (SDM Vol. 3A §2.4). */
struct descriptor_pointer {
	u16 limit;
	u64 base;
} PACKED;

/* Load the IDT register. */
static inline void lidt(const struct descriptor_pointer *p)
{
	__asm__ volatile("lidt %0" : : "m"(*p) : "memory");
}

/* The GDT register. */
static inline struct descriptor_pointer sgdt(void)
{
	struct descriptor_pointer p;
	__asm__ volatile("sgdt %0" : "=m"(p));
	return p;
}

/* The IDT register. */
static inline struct descriptor_pointer sidt(void)
{
	struct descriptor_pointer p;
	__asm__ volatile("sidt %0" : "=m"(p));
	return p;
}

/* Spin-wait hint (SDM Vol. 2B, PAUSE). */
static inline void cpu_pause(void)
{
	__asm__ volatile("pause");
}

static inline void cli(void)
{
	__asm__ volatile("cli" : : : "memory");
}

static inline void hlt(void)
{
	__asm__ volatile("hlt" : : : "memory");
}

/*
 * Halt until the next interrupt and take it, then give IF back its value:
 * sti's one-instruction shadow makes sti; hlt atomic, so an interrupt that
 * comes in between still ends the hlt instead of being missed.
 */
static inline void wait_for_interrupt(void)
{
	u64 flags = read_rflags();
	__asm__ volatile("sti; hlt" : : : "memory");
	if (!(flags & RFLAGS_IF))
		cli();
}

/* True when page entries may carry NX (boot.asm sets EFER.NXE only if CPUID has NX). */
static inline bool cpu_nx_enabled(void)
{
	return (rdmsr(MSR_EFER) & EFER_NXE) != 0;
}

/* Stop this CPU for good: interrupts off, so only NMI/SMI can wake it, and it halts again. */
static inline NORETURN void halt_forever(void)
{
	for (;;) {
		cli();
		hlt();
	}
}

#endif
