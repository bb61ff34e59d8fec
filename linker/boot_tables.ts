/**
 * Generation of the boot page tables as NASM data.
 *
 * The tables are built in two passes: the first link uses zero-filled tables
 * of the final size, so every address in the image is already final; the
 * second pass fills them from the symbols of the first link. The build checks
 * that no symbol moved between the passes.
 *
 * What is mapped, and nothing else:
 * - the 32-bit boot code, identity-mapped, so paging can be switched on under it;
 * - the higher-half image page by page, W^X: text read-only and executable,
 *   rodata read-only and NX, data, bss and stack writable and NX, the stack's
 *   guard page left out (the 32-bit entry strips NX where the CPU lacks it);
 * - the early window's page table (present, but with no entries);
 * - the self-map: PML4[slot] points at the PML4 itself, with P|W|NX and never G.
 */
import { hex } from "./constants.ts";
import {
  bootPageTableCount,
  LARGE_PAGE_SIZE,
  type Layout,
  PAGE_SIZE,
  pteFlag,
  TABLE_ENTRIES,
  tableIndex,
} from "./layout.ts";
import type { SectionSymbol } from "./linker_script.ts";

/** The page-table labels, in the order they are laid out in `.pagetables`. */
export function bootTableNames(layout: Layout): string[] {
  const pts = Array.from(
    { length: bootPageTableCount(layout) },
    (_, i) => `boot_pt_image${i}`,
  );
  return [
    "boot_pml4",
    "boot_pdpt_low",
    "boot_pd_low",
    "boot_pt_low",
    "boot_pdpt_high",
    "boot_pd_high",
    ...pts,
    "boot_pt_early",
  ];
}

/** Virtual addresses the generator needs from the first link. */
export type ImageSymbols = Record<SectionSymbol | "boot_pml4", bigint>;

/** A table: its label and 512 entries. */
export interface BootTable {
  name: string;
  entries: bigint[];
}

const P = pteFlag("P");
const W = pteFlag("W");
const NX = pteFlag("NX");

/** Compute the boot tables' contents from the first link's symbols. */
export function computeBootTables(
  layout: Layout,
  sym: ImageSymbols,
): BootTable[] {
  const names = bootTableNames(layout);
  const tables = new Map<string, bigint[]>(
    names.map((n) => [n, new Array<bigint>(TABLE_ENTRIES).fill(0n)]),
  );
  const phys = (name: string) =>
    sym.boot_pml4 + BigInt(names.indexOf(name)) * PAGE_SIZE -
    layout.kernelVirtOffset;
  const table = (name: string) => tables.get(name)!;
  const link = (parent: string, index: number, child: string) => {
    table(parent)[index] = phys(child) | P | W;
  };

  // Identity map of the boot code: one PT under PML4[0].
  const bootStart = sym.__boot_start;
  const bootEnd = sym.__boot_end;
  if ((bootEnd - 1n) / LARGE_PAGE_SIZE !== bootStart / LARGE_PAGE_SIZE) {
    throw new Error("the boot code must lie inside one 2 MiB region");
  }
  link("boot_pml4", tableIndex(bootStart, 4), "boot_pdpt_low");
  link("boot_pdpt_low", tableIndex(bootStart, 3), "boot_pd_low");
  link("boot_pd_low", tableIndex(bootStart, 2), "boot_pt_low");
  for (let a = bootStart; a < bootEnd; a += PAGE_SIZE) {
    table("boot_pt_low")[tableIndex(a, 1)] = a | P | W;
  }

  // The higher half: PML4 -> PDPT -> PD -> one PT per 2 MiB of image.
  const off = layout.kernelVirtOffset;
  link("boot_pml4", tableIndex(off, 4), "boot_pdpt_high");
  link("boot_pdpt_high", tableIndex(off, 3), "boot_pd_high");
  const firstPd = tableIndex(layout.kernelPhysBase + off, 2);
  const writableFrom = sym.__data_start;
  const executableTo = sym.__text_end;
  for (let v = sym.__text_start; v < sym.__image_end; v += PAGE_SIZE) {
    if (v >= sym.__stack_guard && v < sym.__stack_bottom) continue;
    const pt = `boot_pt_image${tableIndex(v, 2) - firstPd}`;
    if (!tables.has(pt)) throw new Error(`image page ${hex(v)} has no PT`);
    link("boot_pd_high", tableIndex(v, 2), pt);
    // W^X: text is RX, rodata R, data/bss/stack RW; all but text are NX.
    table(pt)[tableIndex(v, 1)] = (v - off) | P | (v >= writableFrom ? W : 0n) |
      (v >= executableTo ? NX : 0n);
  }
  link("boot_pd_high", tableIndex(layout.earlyWindowBase, 2), "boot_pt_early");

  // The self-map: P|W|NX (tables are data), never G (a global self-map entry
  // would survive CR3 switches and show one address space's tables in another).
  table("boot_pml4")[layout.recursiveSlot] = phys("boot_pml4") | P | W | NX;
  return names.map((name) => ({ name, entries: table(name) }));
}

/** Zero-filled tables of the final size, for the first link. */
export function placeholderBootTables(layout: Layout): BootTable[] {
  return bootTableNames(layout).map((name) => ({
    name,
    entries: new Array<bigint>(TABLE_ENTRIES).fill(0n),
  }));
}

/** Render tables as a NASM source for the `.pagetables` section. */
export function renderBootTables(tables: BootTable[]): string {
  const out = [
    "; generated from linker/layout.ts by tools/build: do not edit",
    "bits 64",
    `section .pagetables progbits alloc write noexec align=${PAGE_SIZE}`,
    "",
  ];
  for (const t of tables) {
    out.push(`global ${t.name}`, `align ${PAGE_SIZE}`, `${t.name}:`);
    let zeros = 0;
    const flush = () => {
      if (zeros) out.push(`    times ${zeros} dq 0`);
      zeros = 0;
    };
    t.entries.forEach((e, i) => {
      if (e === 0n) {
        zeros++;
        return;
      }
      flush();
      out.push(`    dq ${hex(e, 16)} ; [${i}]`);
    });
    flush();
  }
  out.push("global boot_tables_end", "boot_tables_end:", "");
  return out.join("\n");
}
