/*
 * The local APIC registers SMP needs besides the timer's (Intel SDM Vol. 3A
 * §11.4.1 Table 11-1, §11.6.1 the interrupt command register). The window is
 * mapped by timer_init; every CPU reaches its own APIC at the same address.
 */
#ifndef OUROBOROS_LAPIC_H
#define OUROBOROS_LAPIC_H

#include <types.h>

/* Register offsets and ICR bits: layout.h (generated from linker/arch.ts). */
#include <layout.h>

u32 lapic_read(u32 reg);
void lapic_write(u32 reg, u32 value);

/* This CPU's APIC ID. */
u32 lapic_id(void);

/* Enable an application processor's LAPIC and its periodic timer (BSP calibrated it). */
void timer_init_ap(void);

#endif
