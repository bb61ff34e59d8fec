/*
 * The periodic timer: the local APIC timer of the boot CPU (every machine of
 * the matrix has one, microvm included), calibrated against the PIT, and a
 * monotonic clock read from the TSC calibrated the same way. The 8259 PICs
 * are masked: every device interrupt the kernel takes comes from the LAPIC.
 */
#ifndef OUROBOROS_TIMER_H
#define OUROBOROS_TIMER_H

#include <types.h>

/* Timer interrupts per second (the scheduler's time slice is one period). */
#define TIMER_HZ 100
#define NS_PER_SEC 1000000000ULL
#define NS_PER_MS 1000000ULL
#define NS_PER_US 1000ULL

struct trap_frame;

/* Map the LAPIC, calibrate its timer and the TSC, start the periodic interrupt (IF stays as is). */
void timer_init(void);

/* Timer interrupts taken since timer_init. */
u64 timer_ticks(void);

/* Nanoseconds since timer_init, from the TSC: never goes back. */
u64 clock_ns(void);

/* LAPIC timer counts per second and TSC counts per second, as calibrated. */
u64 timer_lapic_hz(void);
u64 timer_tsc_hz(void);

/* Handle VEC_TIMER (trap_dispatch): count, acknowledge, let the scheduler see the tick. */
void timer_interrupt(struct trap_frame *f);

/* Acknowledge the interrupt being handled at the LAPIC. */
void lapic_eoi(void);

#endif
