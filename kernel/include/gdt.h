/* The kernel GDT and TSS (Intel SDM Vol. 3A §3.4.5, §7.7). */
#ifndef OUROBOROS_GDT_H
#define OUROBOROS_GDT_H

#include <types.h>

/* Segment selectors: index << 3, TI = 0 (GDT), RPL 0. */
#define GDT_KERNEL_CS 0x08
#define GDT_KERNEL_DS 0x10
#define GDT_TSS 0x18

/* Interrupt stack table slots (1-based; 0 in a gate means "no IST"). */
#define IST_DOUBLE_FAULT 1
#define IST_NMI 2
#define IST_MACHINE_CHECK 3
#define IST_COUNT 3

/* Load the kernel GDT and the TSS whose IST stacks catch #DF, NMI and #MC. */
void gdt_init(void);

/* True when addr lies inside one of the IST stacks (for the backtrace walker). */
bool ist_stack_contains(u64 addr, u64 *lo, u64 *hi);

#endif
