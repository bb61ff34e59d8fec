/**
 * Generation of the C header and the NASM include that carry the layout's
 * constants into the kernel. Output is deterministic: the same layout gives
 * byte-identical files.
 */
import { ARCH_CONSTANTS } from "./arch.ts";
import {
  BOOT_PROTOCOL,
  bootPageTableCount,
  canonical,
  DEBUG_EXIT,
  EARLY_WINDOW_SIZE,
  HUGE_PAGE_SIZE,
  INDEX_BITS,
  KERNEL_FIRST_SLOT,
  LARGE_PAGE_SIZE,
  type Layout,
  LEVELS,
  ORACLE_UART,
  PAGE_SHIFT,
  PAGE_SIZE,
  PML4_SLOT_SIZE,
  PTE_ADDR_MASK,
  PTE_BITS,
  type PteFlag,
  pteFlag,
  TABLE_ENTRIES,
  USER_END,
  VA_BITS,
} from "./layout.ts";

/** One named constant, with the comment that explains it. */
export interface Constant {
  name: string;
  value: bigint;
  doc: string;
}

/** Every constant the kernel sees, in a fixed order. */
export function layoutConstants(layout: Layout): Constant[] {
  const c = (name: string, value: bigint | number, doc: string): Constant => ({
    name,
    value: BigInt(value),
    doc,
  });
  const flags = (Object.keys(PTE_BITS) as PteFlag[]).map((f) =>
    c(`PTE_${f}`, pteFlag(f), `entry flag ${f} (bit ${PTE_BITS[f]})`)
  );
  return [
    c("PAGE_SHIFT", PAGE_SHIFT, "log2 of the base page size"),
    c("PAGE_SIZE", PAGE_SIZE, "base page size"),
    c("LARGE_PAGE_SIZE", LARGE_PAGE_SIZE, "2 MiB page (PD entry with PS)"),
    c("HUGE_PAGE_SIZE", HUGE_PAGE_SIZE, "1 GiB page (PDPT entry with PS)"),
    c("TABLE_ENTRIES", TABLE_ENTRIES, "entries per paging structure"),
    c("INDEX_BITS", INDEX_BITS, "address bits per table index"),
    c("PAGING_LEVELS", LEVELS, "PML4, PDPT, PD, PT"),
    c("VA_BITS", VA_BITS, "linear-address width under 4-level paging"),
    c("PTE_ADDR_MASK", PTE_ADDR_MASK, "physical-address bits of an entry"),
    ...flags,
    c("KERNEL_PHYS_BASE", layout.kernelPhysBase, "physical load address"),
    c(
      "KERNEL_VIRT_OFFSET",
      layout.kernelVirtOffset,
      "virtual = physical + this, for the image",
    ),
    c("KERNEL_PML4_SLOT", layout.kernelPml4Slot, "PML4 slot of the kernel"),
    c("MAX_KERNEL_SIZE", layout.maxKernelSize, "largest image the boot tables map"),
    c("BOOT_PT_COUNT", bootPageTableCount(layout), "page tables for the image"),
    c("RECURSIVE_SLOT", layout.recursiveSlot, "PML4 slot of the self-map"),
    c("SELFMAP_BASE", layout.selfMapBase, "start of the self-map window"),
    c("SELFMAP_END", layout.selfMapEnd, "end of the self-map window"),
    c("SELFMAP_PT_BASE", layout.tableBase[1], "all PTs, through the self-map"),
    c("SELFMAP_PD_BASE", layout.tableBase[2], "all PDs, through the self-map"),
    c("SELFMAP_PDPT_BASE", layout.tableBase[3], "all PDPTs, through the self-map"),
    c("SELFMAP_PML4", layout.tableBase[4], "the PML4, through the self-map"),
    c("KERNEL_STACK_PAGES", layout.kernelStackPages, "kernel stack pages"),
    c(
      "KERNEL_STACK_SIZE",
      BigInt(layout.kernelStackPages) * PAGE_SIZE,
      "kernel stack bytes (a guard page lies below)",
    ),
    c("EARLY_WINDOW_BASE", layout.earlyWindowBase, "boot-info mapping window"),
    c("EARLY_WINDOW_SIZE", EARLY_WINDOW_SIZE, "size of the early window"),
    c("PML4_SLOT_SIZE", PML4_SLOT_SIZE, "bytes one PML4 slot covers"),
    c("USER_END", USER_END, "first address above the user half"),
    c("KERNEL_HALF_START", canonical(USER_END), "first kernel-half address"),
    c("KERNEL_FIRST_SLOT", KERNEL_FIRST_SLOT, "first kernel-half PML4 slot"),
    c("PMM_STACK_SLOT", layout.pmmStackSlot, "PML4 slot of the PMM free-frame stack"),
    c("PMM_STACK_BASE", layout.pmmStackBase, "PMM free-frame stack region"),
    c("HEAP_SLOT", layout.heapSlot, "PML4 slot of the kernel heap"),
    c("HEAP_BASE", layout.heapBase, "demand-zero kernel heap region"),
    c("OTHER_SLOT", layout.otherSlot, "PML4 slot of the other-space window"),
    ...userLayoutConstants(layout),
    c("KSTACKS_SLOT", layout.kernelStacksSlot, "PML4 slot of the threads' kernel stacks"),
    c("KSTACKS_BASE", layout.kernelStacksBase, "threads' kernel stacks, each above a guard page"),
    c("MMIO_SLOT", layout.mmioSlot, "PML4 slot of the device-register window"),
    c("MMIO_BASE", layout.mmioBase, "device registers (local APIC)"),
    c("BOOT_PROTOCOL_PVH", BOOT_PROTOCOL.pvh, "started by a PVH loader"),
    c("BOOT_PROTOCOL_MB2", BOOT_PROTOCOL.multiboot2, "started by multiboot2"),
    c("BOOT_PROTOCOL_MB1", BOOT_PROTOCOL.multiboot1, "started by multiboot1"),
    c("DEBUG_EXIT_PORT", DEBUG_EXIT.port, "QEMU isa-debug-exit I/O port"),
    c("ORACLE_UART_PORT", ORACLE_UART.port, "UART the oracle runner resumes the kernel on"),
    c("DEBUG_EXIT_PASS", DEBUG_EXIT.pass, "exit code: all tests passed"),
    c("DEBUG_EXIT_FAIL", DEBUG_EXIT.fail, "exit code: a test failed"),
    c("DEBUG_EXIT_PANIC", DEBUG_EXIT.panic, "exit code: panic or exception"),
    ...ARCH_CONSTANTS,
  ];
}

/** The user half's regions and the initrd window (issue 12's block of the layout). */
export function userLayoutConstants(layout: Layout): Constant[] {
  const c = (name: string, value: bigint | number, doc: string): Constant => ({
    name,
    value: BigInt(value),
    doc,
  });
  return [
    c("USER_PROGRAM_BASE", layout.userProgramBase, "lowest address a user program is linked at"),
    c("USER_PROGRAM_END", layout.userProgramEnd, "end of the user program area"),
    c("USER_MMAP_BASE", layout.userMmapBase, "region for anonymous mappings"),
    c("USER_MMAP_END", layout.userMmapEnd, "end of the anonymous-mapping region"),
    c("USER_STACK_TOP", layout.userStackTop, "initial user stack pointer (one past the stack)"),
    c("USER_STACK_PAGES", layout.userStackPages, "largest user stack, in pages"),
    c("USER_STACK_BOTTOM", layout.userStackBottom, "lowest byte of the user stack"),
    c("USER_STACK_GUARD", layout.userStackGuard, "unmapped guard page below the user stack"),
    c("INITRD_SLOT", layout.initrdSlot, "PML4 slot of the initrd window"),
    c("INITRD_BASE", layout.initrdBase, "initrd window (first boot module, read-only)"),
  ];
}

/** The user programs' `layout.h`: the page size and the user half's regions. */
export function renderUserLayoutHeader(layout: Layout): string {
  const ks: Constant[] = [
    { name: "PAGE_SIZE", value: PAGE_SIZE, doc: "base page size" },
    { name: "USER_END", value: USER_END, doc: "first address above the user half" },
    { name: "KERNEL_HALF_START", value: canonical(USER_END), doc: "first kernel-half address" },
    ...userLayoutConstants(layout).filter((k) => k.name.startsWith("USER_")),
    // What self-paging tests aim their refusals at (a kernel frame, the self-map).
    {
      name: "KERNEL_PHYS_BASE",
      value: layout.kernelPhysBase,
      doc: "the kernel image's first frame",
    },
    { name: "SELFMAP_BASE", value: layout.selfMapBase, doc: "start of the self-map window" },
    { name: "LARGE_PAGE_SIZE", value: LARGE_PAGE_SIZE, doc: "2 MiB page size" },
  ];
  return [
    `/* ${BANNER} */`,
    "#ifndef OUROBOROS_USER_LAYOUT_H",
    "#define OUROBOROS_USER_LAYOUT_H",
    "",
    ...ks.flatMap((k) => [`/* ${k.doc} */`, `#define ${k.name} ${hex(k.value)}ULL`]),
    "",
    "#endif",
    "",
  ].join("\n");
}

/** 0x-prefixed hexadecimal, zero-padded to 16 digits for addresses. */
export function hex(value: bigint, width = 0): string {
  return "0x" + value.toString(16).padStart(width, "0");
}

const BANNER = "generated from linker/layout.ts by tools/build: do not edit";

/** The C header `layout.h`. */
export function renderCHeader(layout: Layout): string {
  const lines = [
    `/* ${BANNER} */`,
    "#ifndef OUROBOROS_LAYOUT_H",
    "#define OUROBOROS_LAYOUT_H",
    "",
  ];
  for (const k of layoutConstants(layout)) {
    lines.push(`/* ${k.doc} */`);
    lines.push(`#define ${k.name} ${hex(k.value)}ULL`);
  }
  lines.push("", "#endif", "");
  return lines.join("\n");
}

/** The NASM include `layout.inc`. */
export function renderNasmInclude(layout: Layout): string {
  const lines = [`; ${BANNER}`, ""];
  for (const k of layoutConstants(layout)) {
    lines.push(`%define ${k.name} ${hex(k.value)} ; ${k.doc}`);
  }
  lines.push("");
  return lines.join("\n");
}
