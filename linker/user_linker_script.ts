/**
 * Generation of the linker script user programs are linked with. Programs
 * start at USER_PROGRAM_BASE; text, rodata and data are separate page-aligned
 * PT_LOAD segments (RX, R, RW) so the loader maps each with its own rights,
 * and the link fails if a program outgrows USER_PROGRAM_END.
 */
import { hex } from "./constants.ts";
import { type Layout, PAGE_SIZE } from "./layout.ts";

/** Render the user programs' linker script. */
export function renderUserLinkerScript(layout: Layout): string {
  const page = hex(PAGE_SIZE);
  return `/* generated from linker/layout.ts by tools/build: do not edit */
OUTPUT_FORMAT("elf64-x86-64")
OUTPUT_ARCH(i386:x86-64)
ENTRY(_start)

PHDRS
{
  text   PT_LOAD FLAGS(5);
  rodata PT_LOAD FLAGS(4);
  data   PT_LOAD FLAGS(6);
}

SECTIONS
{
  . = ${hex(layout.userProgramBase)};
  __program_start = .;

  .text : {
    *(.text.start)
    *(.text .text.*)
  } :text

  .rodata ALIGN(${page}) : {
    *(.rodata .rodata.*)
  } :rodata

  .data ALIGN(${page}) : {
    *(.data .data.*)
  } :data

  .bss : {
    __bss_start = .;
    *(.bss .bss.* COMMON)
    __bss_end = .;
  } :data

  __program_end = .;
  ASSERT(__program_end <= ${
    hex(layout.userProgramEnd)
  }, "user program exceeds USER_PROGRAM_END: raise userProgramEnd in linker/layout.ts")

  /DISCARD/ : {
    *(.comment) *(.note.GNU-stack) *(.note.gnu.*) *(.eh_frame) *(.eh_frame_hdr)
  }
}
`;
}
