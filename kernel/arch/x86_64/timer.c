/*
 * The LAPIC timer in periodic mode (Intel SDM Vol. 3A §11.5.4) and the TSC
 * clock. Neither has a known frequency, so both are measured against the
 * PIT (8254: 1.193182 MHz on every PC, microvm included): channel 0 counts
 * down in mode 2 and is read back with a latch command while the LAPIC count
 * and the TSC run for CALIBRATION_PIT_TICKS.
 *
 * The PIT's 16-bit count wraps every 55 ms, and a virtual CPU can stand
 * still longer than that on a loaded host while the PIT, the LAPIC and the
 * TSC (all host time under TCG) run on: a wrap missed between two reads
 * makes both rates look several times too high, and every deadline of the
 * guest wrong. So each PIT read is stamped with the TSC on both sides, a
 * window is thrown away when two reads lie so far apart that a wrap could
 * hide between them, or when its start or end was not caught between two
 * close PIT reads, and the median of CAL_SAMPLES good windows is kept.
 * A missed wrap undercounts the PIT ticks, so it can only make the rates
 * look higher, and a stall without one leaves them right: on a host so
 * loaded that no window comes through clean, the stalled window with the
 * lowest TSC rate is kept instead of giving up.
 */
#include <cpu.h>
#include <io.h>
#include <lapic.h>
#include <layout.h>
#include <panic.h>
#include <percpu.h>
#include <printf.h>
#include <sched.h>
#include <timer.h>
#include <trap.h>
#include <vmm.h>

/* Local APIC (SDM Vol. 3A §11.4): the base MSR and the registers used, as offsets. */
#define MSR_APIC_BASE 0x1Bu
#define APIC_BASE_ENABLE (1ULL << 11)
#define APIC_BASE_ADDR_MASK 0xFFFFFF000ULL
#define LAPIC_TPR 0x80
#define LAPIC_EOI 0xB0
#define LAPIC_SVR 0xF0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CURRENT 0x390
#define LAPIC_TIMER_DIVIDE 0x3E0
#define SVR_ENABLE (1u << 8)
#define LVT_MASKED (1u << 16)
#define LVT_TIMER_PERIODIC (1u << 17)
#define TIMER_DIVIDE_BY_16 0x3u
#define LAPIC_COUNT_MAX 0xFFFFFFFFu

/* 8259 PIC data ports: writing all ones masks every line (the LAPIC does the work). */
#define PIC1_DATA 0x21
#define PIC2_DATA 0xA1
#define PIC_MASK_ALL 0xFF

/* 8254 PIT (channel 0, mode 2, lobyte/hibyte, binary) and its input clock. */
#define PIT_CH0 0x40
#define PIT_CMD 0x43
#define PIT_CMD_CH0_MODE2 0x34
#define PIT_CMD_LATCH_CH0 0x00
#define PIT_HZ 1193182ULL
/* 2 ms of PIT ticks a window: CAL_SAMPLES of them cost what one 10 ms window did. */
#define CALIBRATION_PIT_TICKS (PIT_HZ / 500)
/* A window's start or end lies between two PIT reads at most this far apart (0.4 % each). */
#define CAL_EDGE_MAX_TICKS (CALIBRATION_PIT_TICKS / 128)
/*
 * A window is thrown away when one span between two reads takes more than
 * 1/CAL_GAP_SHARE of it. A wrap is missed only across a span of 55 ms or
 * more (27 windows), and such a span still passes when the other spans add
 * up to three times as much: more stalls, together over 160 ms, in a window
 * of 2 ms of PIT time (e.g. three spans of 55-57 ms that each hide a wrap,
 * and a fourth just under 55 ms). That window reads high, and the median
 * moves only when 3 of CAL_SAMPLES windows are that wrong. Shorter stalls
 * throw a good window away, at no risk.
 */
#define CAL_GAP_SHARE 4
/*
 * Good windows wanted (the median is kept), and windows tried before giving
 * up: a host so loaded that most windows see a stall still gives a few.
 */
#define CAL_SAMPLES 5
#define CAL_MAX_TRIES 64
/* Reads of a counter that does not move before we decide the PIT is broken. */
#define PIT_STUCK_READS 100000

static volatile u32 *lapic;
static volatile u64 ticks;
static u64 lapic_hz, tsc_hz, tsc_start;
/* ns = tsc * ns_mult >> 32 (tsc_hz >= 2^32 / 2^30 keeps it in range: see clock_ns). */
static u64 ns_mult;

u32 lapic_read(u32 reg)
{
	return lapic[reg / sizeof(u32)];
}

void lapic_write(u32 reg, u32 value)
{
	lapic[reg / sizeof(u32)] = value;
}

void lapic_eoi(void)
{
	lapic_write(LAPIC_EOI, 0);
}

static u16 pit_read(void)
{
	outb(PIT_CMD, PIT_CMD_LATCH_CH0);
	u8 lo = inb(PIT_CH0);
	u8 hi = inb(PIT_CH0);
	return (u16)(lo | (hi << 8));
}

/* One PIT read and the TSC just before and just after it. */
struct pit_stamp {
	u16 count;
	u64 before, after;
};

/* Read the PIT once: the count was latched between s.before and s.after on the TSC. */
static struct pit_stamp pit_read_stamped(void)
{
	struct pit_stamp s;
	s.before = rdtsc();
	s.count = pit_read();
	s.after = rdtsc();
	return s;
}

/* What one calibration window measured. */
struct cal_window {
	u64 lapic_hz, tsc_hz;
};

/*
 * How a window went: CAL_GOOD ones count; a CAL_STALLED one (rates measured,
 * possibly too high) only when no window was good; a CAL_WIDE_EDGE one never.
 */
enum cal_verdict { CAL_GOOD, CAL_WIDE_EDGE, CAL_STALLED };

/* The TSC span of reads a, b (a first): at least the time between them. */
static u64 read_gap(const struct pit_stamp *a, const struct pit_stamp *b)
{
	return b->after - a->before;
}

/*
 * Measure one window into *w (CAL_GOOD and CAL_STALLED ones are filled in):
 * the LAPIC count starts between reads a and b and is read between c and d,
 * pairs at most CAL_EDGE_MAX_TICKS apart, each edge taken at its pair's
 * middle (ticks2 counts half PIT ticks); a good one has no span between two
 * reads that may hide a wrap.
 */
static enum cal_verdict cal_window(struct cal_window *w)
{
	lapic_write(LAPIC_TIMER_DIVIDE, TIMER_DIVIDE_BY_16);
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
	struct pit_stamp a = pit_read_stamped();
	lapic_write(LAPIC_TIMER_INIT, LAPIC_COUNT_MAX);
	u64 t0 = rdtsc();
	struct pit_stamp b = pit_read_stamped(), prev = b, c = b;
	u64 gap = read_gap(&a, &b), elapsed = 0;
	for (u64 same = 0; elapsed < CALIBRATION_PIT_TICKS;) {
		c = pit_read_stamped();
		/* A PIT that stopped mid-window would keep us here for ever. */
		same = c.count == prev.count ? same + 1 : 0;
		if (same > PIT_STUCK_READS)
			panic("timer: the PIT stopped counting during calibration "
			      "(%llu reads in a row gave %u)",
			      same, (u32)c.count);
		elapsed += (u16)(prev.count - c.count); /* counts down; mod 2^16 (CAL_GAP_SHARE) */
		if (read_gap(&prev, &c) > gap)
			gap = read_gap(&prev, &c);
		prev = c;
	}
	u64 lapic_counts = LAPIC_COUNT_MAX - lapic_read(LAPIC_TIMER_CURRENT);
	u64 t1 = rdtsc();
	struct pit_stamp d = pit_read_stamped();
	if (read_gap(&c, &d) > gap)
		gap = read_gap(&c, &d);
	u64 start_ticks = (u16)(a.count - b.count), end_ticks = (u16)(c.count - d.count);
	if (start_ticks > CAL_EDGE_MAX_TICKS || end_ticks > CAL_EDGE_MAX_TICKS)
		return CAL_WIDE_EDGE;
	u64 ticks2 = 2 * elapsed + start_ticks + end_ticks;
	w->lapic_hz = lapic_counts * 2 * PIT_HZ / ticks2;
	w->tsc_hz = (t1 - t0) * 2 * PIT_HZ / ticks2;
	return gap > read_gap(&a, &d) / CAL_GAP_SHARE ? CAL_STALLED : CAL_GOOD;
}

/*
 * Set lapic_hz and tsc_hz: the median of CAL_SAMPLES good windows (or fewer:
 * CAL_MAX_TRIES); with none, the stalled window with the lowest TSC rate.
 */
static void calibrate(void)
{
	outb(PIT_CMD, PIT_CMD_CH0_MODE2);
	outb(PIT_CH0, 0); /* reload 0 = 65536 */
	outb(PIT_CH0, 0);
	u16 first = pit_read();
	for (u64 n = 0; pit_read() == first; n++)
		if (n > PIT_STUCK_READS)
			panic("timer: the PIT does not count: nothing to calibrate the LAPIC timer with");
	/* good[0, n_good): by TSC rate (a window's LAPIC rate goes with it). */
	struct cal_window good[CAL_SAMPLES], w, slowest_stalled = { 0, 0 };
	u32 n_good = 0, tries = 0, wide = 0, stalled = 0;
	/* TCG translates the window's code during the first one: its end comes late. Not counted. */
	(void)cal_window(&w);
	for (; tries < CAL_MAX_TRIES && n_good < CAL_SAMPLES; tries++) {
		enum cal_verdict v = cal_window(&w);
		wide += v == CAL_WIDE_EDGE;
		if (v == CAL_STALLED && (stalled++ == 0 || w.tsc_hz < slowest_stalled.tsc_hz))
			slowest_stalled = w;
		if (v != CAL_GOOD)
			continue;
		u32 j = n_good++;
		for (; j > 0 && good[j - 1].tsc_hz > w.tsc_hz; j--)
			good[j] = good[j - 1];
		good[j] = w;
	}
	if (n_good == 0 && stalled == 0)
		panic("timer: no usable calibration window in %u tries (all %u had a start or end "
		      "not between two close PIT reads)",
		      tries, wide);
	if (n_good == 0) {
		/* Only without a good window: a stalled one may read high, a good one does not. */
		lapic_hz = slowest_stalled.lapic_hz;
		tsc_hz = slowest_stalled.tsc_hz;
		kprintf("# timer: no undisturbed calibration window in %u tries (%u with a wide edge, "
			"%u with a stall over a quarter of the window): kept the stalled one with the "
			"lowest TSC rate (a PIT wrap missed in a stall only makes the rates look higher)\n",
			tries, wide, stalled);
	} else {
		lapic_hz = good[(n_good - 1) / 2].lapic_hz;
		tsc_hz = good[(n_good - 1) / 2].tsc_hz;
		if (n_good < tries)
			kprintf("# timer: calibration kept %u of %u windows (%u with a wide edge, %u "
				"with a stall over a quarter of the window)\n",
				n_good, tries, wide, stalled);
	}
	if (lapic_hz < TIMER_HZ || tsc_hz == 0)
		panic("timer: calibration failed (LAPIC %llu Hz, TSC %llu Hz)", lapic_hz, tsc_hz);
}

/* Enable this CPU's local APIC: LINT0/1 masked, spurious vector set. */
static void lapic_enable(void)
{
	wrmsr(MSR_APIC_BASE, rdmsr(MSR_APIC_BASE) | APIC_BASE_ENABLE);
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
	lapic_write(LAPIC_LVT_LINT1, LVT_MASKED);
	lapic_write(LAPIC_SVR, SVR_ENABLE | VEC_SPURIOUS);
}

void timer_init(void)
{
	u64 base = rdmsr(MSR_APIC_BASE);
	/* Device registers: never executable; QEMU and the MTRRs make the page uncached. */
	if (map_region(MMIO_BASE, base & APIC_BASE_ADDR_MASK, 1, VMM_WRITE) != 0)
		panic("timer: cannot map the local APIC");
	lapic = (volatile u32 *)MMIO_BASE;
	outb(PIC1_DATA, PIC_MASK_ALL);
	outb(PIC2_DATA, PIC_MASK_ALL);
	lapic_enable();
	calibrate();
	/* 2^32 ns per tsc_hz: ns = tsc * 10^9 / tsc_hz without a 128-bit division. */
	ns_mult = (NS_PER_SEC << 32) / tsc_hz;
	tsc_start = rdtsc();
	lapic_write(LAPIC_TIMER_INIT, (u32)(lapic_hz / TIMER_HZ));
	lapic_write(LAPIC_LVT_TIMER, LVT_TIMER_PERIODIC | VEC_TIMER);
	kprintf("# timer: LAPIC timer %llu Hz (divided by 16), TSC %llu Hz, %d interrupts/s\n",
		lapic_hz, tsc_hz, TIMER_HZ);
}

void timer_init_ap(void)
{
	/* Every CPU's LAPIC sits at the same physical address: the BSP's window serves all. */
	ASSERT(lapic && lapic_hz);
	lapic_enable();
	lapic_write(LAPIC_TIMER_DIVIDE, TIMER_DIVIDE_BY_16);
	lapic_write(LAPIC_TIMER_INIT, (u32)(lapic_hz / TIMER_HZ));
	lapic_write(LAPIC_LVT_TIMER, LVT_TIMER_PERIODIC | VEC_TIMER);
}

u32 lapic_id(void)
{
	return lapic_read(LAPIC_ID) >> LAPIC_ID_SHIFT;
}

u64 timer_ticks(void)
{
	return ticks;
}

u64 timer_lapic_hz(void)
{
	return lapic_hz;
}

u64 timer_tsc_hz(void)
{
	return tsc_hz;
}

u64 clock_ns(void)
{
	u64 d = rdtsc() - tsc_start;
	return (u64)(((unsigned __int128)d * ns_mult) >> 32);
}

void timer_interrupt(struct trap_frame *f)
{
	struct percpu *c = this_cpu();
	u64 now = clock_ns();
	c->tick_gap_ns = now - c->last_tick_ns;
	c->last_tick_ns = now;
	/* A reader that sees this tick counted sees its gap (or a later one). */
	__atomic_store_n(&c->ticks, c->ticks + 1, __ATOMIC_RELEASE);
	lapic_eoi();
	/* The tick count is the boot CPU's; every CPU's tick preempts its user mode. */
	if (c->cpu_id == 0)
		ticks++;
	sched_tick(f);
}
