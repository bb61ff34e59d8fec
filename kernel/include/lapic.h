/*
 * The local APIC registers SMP needs besides the timer's (Intel SDM Vol. 3A
 * §11.4.1 Table 11-1, §11.6.1 the interrupt command register). The window is
 * mapped by timer_init; every CPU reaches its own APIC at the same address.
 */
#ifndef OUROBOROS_LAPIC_H
#define OUROBOROS_LAPIC_H

#include <types.h>

#define LAPIC_ID 0x20
#define LAPIC_ID_SHIFT 24
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_DEST_SHIFT 24            /* destination APIC ID in ICR_HI */
#define ICR_DELIVERY_FIXED (0u << 8)
#define ICR_DELIVERY_INIT (5u << 8)
#define ICR_DELIVERY_STARTUP (6u << 8)
#define ICR_DELIVERY_PENDING (1u << 12) /* send pending: read-only */
#define ICR_LEVEL_ASSERT (1u << 14)
#define ICR_TRIGGER_LEVEL (1u << 15)

u32 lapic_read(u32 reg);
void lapic_write(u32 reg, u32 value);

/* This CPU's APIC ID. */
u32 lapic_id(void);

/* Enable an application processor's LAPIC and its periodic timer (BSP calibrated it). */
void timer_init_ap(void);

#endif
