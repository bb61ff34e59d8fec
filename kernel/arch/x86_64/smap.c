/* SMEP and SMAP turned on where the CPU has them (smap.h). */
#include <cpu.h>
#include <smap.h>

u8 smap_enabled;

static void write_cr4(u64 v)
{
	__asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory");
}

void smap_init(void)
{
	if (cpuid(0, 0).eax < CPUID_STRUCT_FEATURES)
		return;
	u32 ebx = cpuid(CPUID_STRUCT_FEATURES, 0).ebx;
	u64 cr4 = read_cr4();
	if (ebx & CPUID_EBX_SMEP)
		cr4 |= CR4_SMEP;
	if (ebx & CPUID_EBX_SMAP) {
		/* AC is clear here (the kernel never sets it outside the copy routines). */
		cr4 |= CR4_SMAP;
		smap_enabled = 1;
	}
	write_cr4(cr4);
}

bool smep_on(void)
{
	return (read_cr4() & CR4_SMEP) != 0;
}
