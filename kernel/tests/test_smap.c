/* SMEP and SMAP: on exactly when CPUID reports them, and AC closed in the kernel. */
#include <cpu.h>
#include <ktest.h>
#include <smap.h>

#define RFLAGS_AC (1ULL << 18)

KTEST(cpu, smep_and_smap_on_when_cpuid_reports_them)
{
	u32 ebx = cpuid(0, 0).eax >= CPUID_STRUCT_FEATURES ? cpuid(CPUID_STRUCT_FEATURES, 0).ebx : 0;
	u64 cr4 = read_cr4();
	KASSERT_EQ(!!(cr4 & CR4_SMEP), !!(ebx & CPUID_EBX_SMEP));
	KASSERT_EQ(!!(cr4 & CR4_SMAP), !!(ebx & CPUID_EBX_SMAP));
	KASSERT_EQ(smap_on(), !!(ebx & CPUID_EBX_SMAP));
	KASSERT_EQ(smep_on(), !!(ebx & CPUID_EBX_SMEP));
	/* User pages are closed whenever the kernel is outside the copy routines. */
	KASSERT_EQ(read_rflags() & RFLAGS_AC, 0);
	ktest_log("SMEP %s, SMAP %s", smep_on() ? "on" : "absent", smap_on() ? "on" : "absent");
}
