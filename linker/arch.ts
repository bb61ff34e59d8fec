/**
 * x86-64 facts both the C and the NASM side of the kernel use: the EFER MSR,
 * the CPUID leaves and bits, CR4's bits, and COM1's 16550 UART. Generated into layout.h
 * and layout.inc with the layout's constants, so neither side defines them.
 */

/** A named constant with the comment that explains it. */
export interface ArchConstant {
  name: string;
  value: bigint;
  doc: string;
}

const k = (name: string, value: bigint | number, doc: string): ArchConstant => ({
  name,
  value: BigInt(value),
  doc,
});
const bit = (n: number) => 1n << BigInt(n);

/** The EFER MSR and its bits (Intel SDM Vol. 4, Table 2-2; Vol. 3A §2.2.1). */
export const EFER: readonly ArchConstant[] = [
  k("MSR_EFER", 0xc000_0080, "extended feature enable register (MSR)"),
  k("EFER_SCE", bit(0), "EFER: syscall/sysret enable"),
  k("EFER_LME", bit(8), "EFER: long mode enable"),
  k("EFER_NXE", bit(11), "EFER: the NX bit of page entries is honoured"),
  k(
    "EFER_TCE",
    bit(15),
    "EFER: AMD translation cache extension; set, INVLPG keeps upper-level paging-structure cache entries (AMD APM Vol. 2 §3.1.7); the kernel keeps it clear",
  ),
];

/** CPUID leaves and feature bits (Intel SDM Vol. 2A, CPUID). */
export const CPUID: readonly ArchConstant[] = [
  k("CPUID_EXT_MAX", 0x8000_0000, "CPUID leaf: EAX = highest extended leaf"),
  k("CPUID_EXT_FEATURES", 0x8000_0001, "CPUID leaf: extended features (EDX and ECX bits below)"),
  k("CPUID_EDX_NX", bit(20), "CPUID 80000001H EDX: no-execute pages"),
  k("CPUID_EDX_PAGE1GB", bit(26), "CPUID 80000001H EDX: 1 GiB pages"),
  k("CPUID_EDX_LM", bit(29), "CPUID 80000001H EDX: long mode"),
  k("CPUID_ECX_TCE", bit(17), "CPUID 80000001H ECX: EFER.TCE exists (AMD APM Vol. 3, E.4.2)"),
  k("CPUID_EXT_ADDR_SIZES", 0x8000_0008, "CPUID leaf: EAX[7:0] = MAXPHYADDR"),
  k("CPUID_FEATURES", 1, "CPUID leaf: basic features (ECX bits below)"),
  k("CPUID_1_ECX_HYPERVISOR", bit(31), "CPUID 1 ECX: running under a hypervisor"),
  k("CPUID_HYPERVISOR_LEAF", 0x4000_0000, "CPUID leaf: the hypervisor's vendor signature"),
  k("CPUID_STRUCT_FEATURES", 7, "CPUID leaf (ECX = 0): structured extended features"),
  k("CPUID_EBX_SMEP", bit(7), "CPUID 7 EBX: supervisor-mode execution prevention"),
  k("CPUID_EBX_SMAP", bit(20), "CPUID 7 EBX: supervisor-mode access prevention"),
];

/** CR4 bits (Intel SDM Vol. 3A §2.5). */
export const CR4: readonly ArchConstant[] = [
  k("CR4_PAE", bit(5), "CR4: physical address extension (needed for long mode)"),
  k("CR4_PGE", bit(7), "CR4: global pages (kept off: the TLB's full flush is a CR3 reload)"),
  k("CR4_PCIDE", bit(17), "CR4: process-context identifiers (may only be set in long mode)"),
  k("CR4_SMEP", bit(20), "CR4: supervisor-mode execution prevention"),
  k("CR4_SMAP", bit(21), "CR4: supervisor-mode access prevention"),
];

/** COM1, a 16550 UART: the kernel's console (PC16550D datasheet, Table II). */
export const UART: readonly ArchConstant[] = [
  k("COM1_PORT", 0x3f8, "COM1's I/O base: the console"),
  k("UART_THR", 0, "UART register: transmit holding (write, DLAB = 0)"),
  k("UART_RBR", 0, "UART register: receive buffer (read, DLAB = 0)"),
  k("UART_DLL", 0, "UART register: divisor latch low (DLAB = 1)"),
  k("UART_IER", 1, "UART register: interrupt enable (DLAB = 0)"),
  k("UART_DLM", 1, "UART register: divisor latch high (DLAB = 1)"),
  k("UART_FCR", 2, "UART register: FIFO control (write)"),
  k("UART_LCR", 3, "UART register: line control"),
  k("UART_MCR", 4, "UART register: modem control"),
  k("UART_LSR", 5, "UART register: line status"),
  k("UART_LSR_DATA_READY", bit(0), "LSR: a received byte is waiting"),
  k("UART_LSR_THR_EMPTY", bit(5), "LSR: the transmitter can take a byte"),
];

/**
 * Local APIC registers and interrupt-command bits SMP uses (Intel SDM Vol. 3A
 * §11.4.1 Table 11-1, §11.6.1 Figure 11-12), and the AP trampoline's page.
 */
export const APIC: readonly ArchConstant[] = [
  k("LAPIC_ID", 0x20, "LAPIC register: the APIC ID in bits 31..24"),
  k("LAPIC_ID_SHIFT", 24, "LAPIC ID register: shift of the ID"),
  k("LAPIC_ICR_LO", 0x300, "LAPIC register: interrupt command, low word (writing sends)"),
  k("LAPIC_ICR_HI", 0x310, "LAPIC register: interrupt command, destination in bits 31..24"),
  k("ICR_DEST_SHIFT", 24, "ICR high word: shift of the destination APIC ID"),
  k("ICR_DELIVERY_FIXED", 0, "ICR: fixed delivery of the vector"),
  k("ICR_DELIVERY_INIT", 5 << 8, "ICR: INIT"),
  k("ICR_DELIVERY_STARTUP", 6 << 8, "ICR: start-up IPI (vector = page number of the code)"),
  k("ICR_DELIVERY_PENDING", bit(12), "ICR: send pending (read-only)"),
  k("ICR_LEVEL_ASSERT", bit(14), "ICR: level assert"),
  k("TRAMPOLINE_PHYS", 0x8000, "physical page the APs start in (below 1 MiB, RAM everywhere)"),
];

/**
 * The TLB shootdown (kernel/mm/tlb.c): its IPI vector (after the timer, 32, and
 * smp_call's, 33; below IRQ_VECTOR_FIRST + IRQ_VECTORS, the vectors isr.asm has
 * stubs for) and the ceiling above which a range is flushed whole instead of page
 * by page (Linux's tlb_single_page_flush_ceiling: 33 invlpg cost about one refill),
 * and how many freed frames a batch holds back until the other CPUs have
 * invalidated them (Linux's mmu_gather batch).
 */
export const TLB: readonly ArchConstant[] = [
  k("VEC_IPI_TLB", 34, "IPI vector: invalidate TLB entries another CPU changed"),
  k("TLB_FLUSH_CEILING", 33, "pages a shootdown invalidates one by one; more: a full flush"),
  k("TLB_GATHER_FRAMES", 32, "freed frames a batch holds until its round; more: an early round"),
];

/** Every architectural constant, in a fixed order. */
export const ARCH_CONSTANTS: readonly ArchConstant[] = [
  ...EFER,
  ...CPUID,
  ...CR4,
  ...UART,
  ...APIC,
  ...TLB,
];
