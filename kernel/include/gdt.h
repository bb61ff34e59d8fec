/* The kernel GDT and TSS (Intel SDM Vol. 3A §3.4.5, §7.7). */
#ifndef OUROBOROS_GDT_H
#define OUROBOROS_GDT_H

#include <types.h>

/*
 * Segment selectors: index << 3, TI = 0 (GDT). The order is the one
 * syscall/sysret impose (SDM Vol. 3A §5.8.8): STAR[47:32] gives the kernel
 * CS and CS + 8 its SS; STAR[63:48] + 8 the user SS and + 16 the user CS.
 */
#define GDT_KERNEL_CS 0x08
#define GDT_KERNEL_DS 0x10
#define GDT_USER_DS_BASE 0x18 /* user data, DPL 3 (selector with RPL 3 below) */
#define GDT_USER_CS_BASE 0x20 /* 64-bit user code, DPL 3 */
#define GDT_TSS 0x28
#define RPL_USER 3
#define GDT_USER_DS (GDT_USER_DS_BASE | RPL_USER)
#define GDT_USER_CS (GDT_USER_CS_BASE | RPL_USER)
/* STAR[63:48]: sysret adds 8 for SS and 16 for CS. */
#define GDT_SYSRET_BASE (GDT_USER_DS_BASE - 8)

/* Interrupt stack table slots (1-based; 0 in a gate means "no IST"). */
#define IST_DOUBLE_FAULT 1
#define IST_NMI 2
#define IST_MACHINE_CHECK 3
#define IST_COUNT 3

/* Load the kernel GDT and the TSS whose IST stacks catch #DF, NMI and #MC. */
void gdt_init(void);

/* The same for CPU `cpu` (its own GDT, TSS and IST stacks); gdt_init is gdt_init_cpu(0). */
void gdt_init_cpu(u32 cpu);

/*
 * The stack the CPU switches to when an interrupt or exception arrives in
 * user mode (TSS.RSP0): the top of the running thread's kernel stack.
 */
void tss_set_kernel_stack(u64 top);

/* True when addr lies inside one of the IST stacks (for the backtrace walker). */
bool ist_stack_contains(u64 addr, u64 *lo, u64 *hi);

#endif
