/*
 * The IDT: one interrupt gate per exception vector, each to its isr.asm
 * stub. #DF, NMI and #MC run on their own IST stacks (gdt.c) because they
 * can arrive when the current stack is unusable.
 */
#include <cpu.h>
#include <gdt.h>
#include <panic.h>
#include <trap.h>

/* Gate type and attribute byte (Intel SDM Vol. 3A §6.14.1, Figure 6-8). */
#define GATE_INTERRUPT 0xE /* 64-bit interrupt gate: IF is cleared on entry */
#define GATE_PRESENT (1u << 7)
#define IDT_ENTRIES 256 /* vectors without a stub stay not-present */

struct idt_gate {
	u16 offset_lo;
	u16 selector;
	u8 ist;  /* bits 0..2: IST slot, 0 = none */
	u8 type; /* P, DPL, gate type */
	u16 offset_mid;
	u32 offset_hi;
	u32 reserved;
} PACKED;

_Static_assert(sizeof(struct idt_gate) == 16, "a long-mode gate is 16 bytes");

extern const u64 isr_stub_table[EXCEPTION_VECTORS];
extern const u64 irq_stub_table[IRQ_VECTORS];
extern const u64 spurious_stub;

static struct idt_gate idt[IDT_ENTRIES] __attribute__((aligned(16)));

/* The IST slot for a vector that may arrive on a broken stack, or 0. */
static u8 ist_for(int vector)
{
	switch (vector) {
	case VEC_DF:
		return IST_DOUBLE_FAULT;
	case VEC_NMI:
		return IST_NMI;
	case VEC_MC:
		return IST_MACHINE_CHECK;
	default:
		return 0;
	}
}

/* Point gate `vector` at `handler`, kernel code segment, DPL 0. */
static void idt_set_gate(int vector, u64 handler, u8 ist)
{
	idt[vector] = (struct idt_gate){
		.offset_lo = handler & 0xFFFF,
		.selector = GDT_KERNEL_CS,
		.ist = ist,
		.type = GATE_PRESENT | GATE_INTERRUPT,
		.offset_mid = (handler >> 16) & 0xFFFF,
		.offset_hi = handler >> 32,
	};
}

void idt_init(void)
{
	for (int v = 0; v < EXCEPTION_VECTORS; v++) {
		ASSERT(isr_stub_table[v] != 0);
		idt_set_gate(v, isr_stub_table[v], ist_for(v));
	}
	for (int i = 0; i < IRQ_VECTORS; i++)
		idt_set_gate(IRQ_VECTOR_FIRST + i, irq_stub_table[i], 0);
	idt_set_gate(VEC_SPURIOUS, spurious_stub, 0);
	idt_load();
}

void idt_load(void)
{
	struct descriptor_pointer idtr = {sizeof(idt) - 1, (u64)idt};
	lidt(&idtr);
}
