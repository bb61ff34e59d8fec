/*
 * The kernel's own GDT (the boot GDT lives in the identity-mapped boot code,
 * which will not stay mapped) and a TSS. In long mode the TSS only supplies
 * stacks: its interrupt stack table gives #DF, NMI and #MC known-good stacks,
 * so a kernel-stack overflow into the guard page ends in a report instead of
 * a triple fault (the CPU cannot push a #PF frame onto a full stack).
 */
#include <gdt.h>
#include <layout.h>
#include <panic.h>
#include <percpu.h>
#include <string.h>

/* Segment-descriptor access byte (Intel SDM Vol. 3A §3.4.5). */
#define SEG_ACCESSED (1u << 0)
#define SEG_RW (1u << 1)          /* code: readable; data: writable */
#define SEG_EXEC (1u << 3)        /* code segment */
#define SEG_CODE_DATA (1u << 4)   /* S: code/data (not a system segment) */
#define SEG_DPL_USER (3u << 5)  /* descriptor privilege level 3 */
#define SEG_PRESENT (1u << 7)
#define SEG_TYPE_TSS64 0x9u       /* system type: available 64-bit TSS (§3.5) */
/* Descriptor flags nibble (bits 52..55). */
#define SEG_FLAG_LONG (1u << 1)   /* L: 64-bit code */
#define SEG_FLAG_DB (1u << 2)     /* default operand size 32 (must be 0 with L) */
#define SEG_FLAG_GRAN (1u << 3)   /* limit in 4 KiB units */
#define SEG_LIMIT_MAX 0xFFFFFu    /* 20-bit limit, all ones */

/* Bytes of each IST stack: room for the exception dump's printf and backtrace. */
#define IST_STACK_SIZE (4 * PAGE_SIZE)

enum { GDT_NULL, GDT_CODE, GDT_DATA, GDT_UDATA, GDT_UCODE, GDT_TSS_LO, GDT_TSS_HI, GDT_ENTRIES };

/* The 64-bit TSS (SDM Vol. 3A §7.7, Figure 7-11). */
struct tss {
	u32 reserved0;
	u64 rsp[3];
	u64 reserved1;
	u64 ist[7];
	u64 reserved2;
	u16 reserved3;
	u16 iomap_base;
} PACKED;

struct descriptor_pointer {
	u16 limit;
	u64 base;
} PACKED;

/*
 * One GDT, TSS and set of IST stacks per CPU: ltr marks a TSS descriptor
 * busy (the CPU writes it), so two CPUs cannot share one, and each needs
 * its own RSP0 and emergency stacks.
 */
static u64 gdts[MAX_CPUS][GDT_ENTRIES] __attribute__((aligned(16)));
static struct tss tsss[MAX_CPUS] __attribute__((aligned(16)));
static u8 ist_stacks[MAX_CPUS][IST_COUNT][IST_STACK_SIZE] __attribute__((aligned(PAGE_SIZE)));

/* A flat code or data descriptor (base and limit are ignored in long mode). */
static u64 segment_descriptor(u32 access, u32 flags)
{
	u64 limit = SEG_LIMIT_MAX;
	return (limit & 0xFFFF) | ((u64)access << 40) | ((limit >> 16) << 48) | ((u64)flags << 52);
}

/* The two GDT slots of a 64-bit TSS descriptor (SDM Vol. 3A §7.2.3). */
static void tss_descriptor(u64 base, u32 limit, u64 *lo, u64 *hi)
{
	*lo = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) |
	      ((u64)(SEG_PRESENT | SEG_TYPE_TSS64) << 40) | ((u64)((limit >> 16) & 0xF) << 48) |
	      (((base >> 24) & 0xFF) << 56);
	*hi = base >> 32;
}

/* Load gdt, reload CS with a far return and the data segments, then the TSS. */
static void gdt_load(u64 *gdt)
{
	struct descriptor_pointer gdtr = {sizeof(gdts[0]) - 1, (u64)gdt};
	__asm__ volatile("lgdt %0\n\t"
			 "pushq %1\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:\n\t"
			 "movw %w2, %%ds\n\t"
			 "movw %w2, %%es\n\t"
			 "movw %w2, %%ss\n\t"
			 "ltr %w3"
			 :
			 : "m"(gdtr), "i"(GDT_KERNEL_CS), "r"(GDT_KERNEL_DS), "r"(GDT_TSS)
			 : "rax", "memory");
}

void gdt_init(void)
{
	gdt_init_cpu(0);
}

void gdt_init_cpu(u32 cpu)
{
	ASSERT(cpu < MAX_CPUS);
	u64 *gdt = gdts[cpu];
	struct tss *tss = &tsss[cpu];
	u32 code = SEG_PRESENT | SEG_CODE_DATA | SEG_EXEC | SEG_RW | SEG_ACCESSED;
	u32 data = SEG_PRESENT | SEG_CODE_DATA | SEG_RW | SEG_ACCESSED;
	gdt[GDT_NULL] = 0;
	gdt[GDT_CODE] = segment_descriptor(code, SEG_FLAG_LONG | SEG_FLAG_GRAN);
	gdt[GDT_DATA] = segment_descriptor(data, SEG_FLAG_DB | SEG_FLAG_GRAN);
	gdt[GDT_UDATA] = segment_descriptor(data | SEG_DPL_USER, SEG_FLAG_DB | SEG_FLAG_GRAN);
	gdt[GDT_UCODE] = segment_descriptor(code | SEG_DPL_USER, SEG_FLAG_LONG | SEG_FLAG_GRAN);
	ASSERT(GDT_CODE * sizeof(u64) == GDT_KERNEL_CS && GDT_DATA * sizeof(u64) == GDT_KERNEL_DS);
	ASSERT(GDT_UDATA * sizeof(u64) == GDT_USER_DS_BASE &&
	       GDT_UCODE * sizeof(u64) == GDT_USER_CS_BASE);
	ASSERT(GDT_SYSRET_BASE + 8 == GDT_USER_DS_BASE && GDT_SYSRET_BASE + 16 == GDT_USER_CS_BASE);
	ASSERT(GDT_TSS_LO * sizeof(u64) == GDT_TSS);

	memset(tss, 0, sizeof(*tss));
	/* ist[] is 0-based in the structure, IST numbers are 1-based. */
	for (int i = 0; i < IST_COUNT; i++)
		tss->ist[i] = (u64)ist_stacks[cpu][i] + IST_STACK_SIZE;
	tss->iomap_base = sizeof(*tss); /* no I/O permission bitmap */
	tss_descriptor((u64)tss, sizeof(*tss) - 1, &gdt[GDT_TSS_LO], &gdt[GDT_TSS_HI]);
	gdt_load(gdt);
}

void tss_set_kernel_stack(u64 top)
{
	tsss[this_cpu()->cpu_id].rsp[0] = top;
}

bool ist_stack_contains(u64 addr, u64 *lo, u64 *hi)
{
	for (int i = 0; i < MAX_CPUS * IST_COUNT; i++) {
		u64 base = (u64)ist_stacks[i / IST_COUNT][i % IST_COUNT];
		if (addr >= base && addr < base + IST_STACK_SIZE) {
			*lo = base;
			*hi = base + IST_STACK_SIZE;
			return true;
		}
	}
	return false;
}
