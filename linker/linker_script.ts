/**
 * Generation of the kernel's linker script from the layout.
 *
 * The image has two halves: the 32-bit boot code at its physical address
 * (identity-mapped while paging is switched on), and the higher-half kernel
 * whose virtual address is its physical address plus KERNEL_VIRT_OFFSET.
 * Every section of the higher half is page-aligned, so text can be mapped
 * RX, rodata R and data/bss RW, and every bound has a symbol.
 */
import { hex } from "./constants.ts";
import { type Layout, PAGE_SIZE } from "./layout.ts";

/** Symbols the script defines, in address order (all virtual addresses). */
export const SECTION_SYMBOLS = [
  "__image_start",
  "__boot_start",
  "__boot_end",
  "__text_start",
  "__text_end",
  "__rodata_start",
  "__rodata_end",
  "__data_start",
  "__data_end",
  "__bss_start",
  "__bss_end",
  "__stack_guard",
  "__stack_bottom",
  "__stack_top",
  "__image_end",
] as const;

/** Name of a symbol the linker script defines. */
export type SectionSymbol = typeof SECTION_SYMBOLS[number];

/** Render the linker script. */
export function renderLinkerScript(layout: Layout): string {
  const off = hex(layout.kernelVirtOffset);
  const page = hex(PAGE_SIZE);
  const at = (s: string) => `AT(ADDR(${s}) - ${off})`;
  return `/* generated from linker/layout.ts by tools/build: do not edit */
OUTPUT_FORMAT("elf64-x86-64")
OUTPUT_ARCH(i386:x86-64)
/* Multiboot2 loaders start here (physical, 32-bit); PVH loaders use the Xen note. */
ENTRY(boot_entry_mb2)

PHDRS
{
  boot   PT_LOAD FLAGS(5);
  text   PT_LOAD FLAGS(5);
  rodata PT_LOAD FLAGS(4);
  data   PT_LOAD FLAGS(6);
  note   PT_NOTE FLAGS(4);
}

SECTIONS
{
  . = ${hex(layout.kernelPhysBase)};
  __image_start = .;
  __boot_start = .;
  /* The multiboot2 header must sit in the first 32 KiB of the file. */
  .boot : {
    KEEP(*(.multiboot2))
    *(.boot.text)
    *(.boot.data)
  } :boot
  .note.Xen : { KEEP(*(.note.Xen)) } :boot :note
  . = ALIGN(${page});
  __boot_end = .;

  . += ${off};

  .text ALIGN(${page}) : ${at(".text")} {
    __text_start = .;
    *(.text .text.*)
    . = ALIGN(${page});
    __text_end = .;
  } :text

  .rodata ALIGN(${page}) : ${at(".rodata")} {
    __rodata_start = .;
    *(.rodata .rodata.*)
    . = ALIGN(8);
    __ktest_start = .;
    KEEP(*(.ktest))
    __ktest_end = .;
    . = ALIGN(${page});
    __rodata_end = .;
  } :rodata

  .data ALIGN(${page}) : ${at(".data")} {
    __data_start = .;
    *(.data .data.*)
    . = ALIGN(${page});
    KEEP(*(.pagetables))
    . = ALIGN(${page});
    __data_end = .;
  } :data

  .bss ALIGN(${page}) (NOLOAD) : ${at(".bss")} {
    __bss_start = .;
    *(.bss .bss.* COMMON)
    . = ALIGN(${page});
    __bss_end = .;
  } :data

  /* One unmapped guard page below the kernel stack catches overflows. */
  .stack ALIGN(${page}) (NOLOAD) : ${at(".stack")} {
    __stack_guard = .;
    . += ${page};
    __stack_bottom = .;
    . += ${hex(BigInt(layout.kernelStackPages) * PAGE_SIZE)};
    __stack_top = .;
  } :data

  __image_end = .;
  /* The 32-bit entry loads CR3 before paging is on: it needs a physical address. */
  boot_pml4_phys = boot_pml4 - ${off};
  boot_tables_end_phys = boot_tables_end - ${off};
  ASSERT(__image_end - ${off} <= ${
    hex(layout.kernelPhysBase + layout.maxKernelSize)
  }, "kernel image exceeds MAX_KERNEL_SIZE: raise maxKernelSize in linker/layout.ts")

  /DISCARD/ : {
    *(.comment) *(.note.GNU-stack) *(.note.gnu.*) *(.eh_frame) *(.eh_frame_hdr)
  }
}
`;
}
