/**
 * Host-side model check of a built kernel image: reads the boot page tables
 * out of the ELF (as the loader would place them in physical memory) and
 * checks them with the independent walker in pagewalk.ts against what the
 * layout and the linker symbols promise.
 */
import { type ElfImage, physicalReader, symbolValue } from "./elf.ts";
import { type Layout, PAGE_SIZE, pteFlag, selfMapTableAddress } from "../../linker/layout.ts";
import {
  enumerateMappings,
  levelName,
  type Mapping,
  type PhysReader,
  tableTree,
  translate,
  type WalkOptions,
} from "./pagewalk.ts";

const hex = (v: bigint) => "0x" + v.toString(16);

/** What a page of the image must look like. */
interface Expect {
  pa: bigint;
  writable: boolean;
  executable: boolean;
  what: string;
}

/** The pages the boot tables must map, by virtual address. */
function expectedPages(image: ElfImage, layout: Layout): Map<bigint, Expect> {
  const s = (n: string) => symbolValue(image, n);
  const pages = new Map<bigint, Expect>();
  for (let a = s("__boot_start"); a < s("__boot_end"); a += PAGE_SIZE) {
    pages.set(a, { pa: a, writable: true, executable: true, what: "boot code (identity)" });
  }
  // W^X: [from, to, writable, executable]
  const regions: [string, string, boolean, boolean][] = [
    ["__text_start", "__text_end", false, true],
    ["__rodata_start", "__rodata_end", false, false],
    ["__data_start", "__data_end", true, false],
    ["__bss_start", "__bss_end", true, false],
    ["__stack_bottom", "__stack_top", true, false],
  ];
  for (const [from, to, writable, executable] of regions) {
    for (let v = s(from); v < s(to); v += PAGE_SIZE) {
      const what = from.slice(2, -6);
      pages.set(v, { pa: v - layout.kernelVirtOffset, writable, executable, what });
    }
  }
  return pages;
}

/**
 * The image's memory as the CPU sees it once boot.asm ran on a CPU without
 * NX: bit 63 cleared in every 8-byte entry from boot_pml4_phys up to
 * boot_tables_end_phys (its strip loop), the rest as loaded. Only whole
 * entries at 8-aligned addresses in [boot_pml4_phys, boot_tables_end_phys)
 * are stripped; a read at an unaligned address is as loaded. Exported for
 * its tests.
 */
export function withoutNxReader(image: ElfImage): PhysReader {
  const read = physicalReader(image);
  const from = symbolValue(image, "boot_pml4_phys");
  const to = symbolValue(image, "boot_tables_end_phys");
  const nx = pteFlag("NX");
  return (paddr, length) => {
    const bytes = read(paddr, length);
    if (!bytes) return undefined;
    // Only aligned entries are stripped; the offsets of [from, to) in this read, as numbers.
    if (paddr % 8n !== 0n || to <= paddr || from >= paddr + BigInt(length)) return bytes;
    const first = from > paddr ? Math.ceil(Number(from - paddr) / 8) * 8 : 0;
    const end = Math.min(length, Number(to - paddr));
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let off = first; off + 8 <= length && off < end; off += 8) {
      v.setBigUint64(off, v.getBigUint64(off, true) & ~nx, true);
    }
    return bytes;
  };
}

/**
 * Check the boot tables of an image. Returns the problems found; an empty
 * list means: every page of the image translates to its physical address
 * with the right rights, the guard page and everything else is unmapped, and
 * the self-map yields every table at its computed address.
 *
 * With `nxe: false`, the tables as boot.asm leaves them on a CPU without NX
 * (EFER.NXE off): no entry may keep bit 63 (a reserved bit then), and every
 * page is executable.
 */
export function checkBootTables(
  image: ElfImage,
  layout: Layout,
  options: WalkOptions = {},
): string[] {
  const problems: string[] = [];
  const nxe = options.nxe !== false;
  const read = nxe ? physicalReader(image) : withoutNxReader(image);
  const cr3 = symbolValue(image, "boot_pml4_phys");
  const slot = layout.recursiveSlot;
  const inWindow = (va: bigint) => va >= layout.selfMapBase && va < layout.selfMapEnd;

  let leaves: Mapping[];
  try {
    leaves = enumerateMappings(read, cr3, options);
  } catch (e) {
    return [`walking the tables failed: ${(e as Error).message}`];
  }

  // 1. The image, page by page, and nothing else outside the self-map window.
  const pages = expectedPages(image, layout);
  const seen = new Set<bigint>();
  for (const m of leaves.filter((m) => !inWindow(m.va))) {
    for (let off = 0n; off < m.size; off += PAGE_SIZE) {
      const va = m.va + off;
      const want = pages.get(va);
      if (!want) {
        problems.push(`unexpected mapping ${hex(va)} -> ${hex(m.pa + off)}`);
        continue;
      }
      seen.add(va);
      if (m.pa + off !== want.pa) {
        problems.push(
          `${want.what} page ${hex(va)} maps to ${hex(m.pa + off)}, not ${hex(want.pa)}`,
        );
      }
      if (m.writable !== want.writable) {
        problems.push(`${want.what} page ${hex(va)} is ${m.writable ? "" : "not "}writable`);
      }
      if (m.noExecute === (want.executable || !nxe)) {
        problems.push(`${want.what} page ${hex(va)} is ${m.noExecute ? "not " : ""}executable`);
      }
      if (m.user) problems.push(`${want.what} page ${hex(va)} is user-accessible`);
    }
  }
  for (const [va, want] of pages) {
    if (!seen.has(va)) problems.push(`${want.what} page ${hex(va)} is not mapped`);
  }
  const guard = symbolValue(image, "__stack_guard");
  if (translate(read, cr3, guard, options)) {
    problems.push(`stack guard page ${hex(guard)} is mapped`);
  }

  // 2. The self-map entry itself (without NXE nothing can be non-executable).
  const self = translate(read, cr3, layout.tableBase[4], options);
  if (!self || self.pa !== (cr3 & ~(PAGE_SIZE - 1n))) {
    problems.push(`the self-map does not yield the PML4 at ${hex(layout.tableBase[4])}`);
  } else {
    if (self.global) problems.push("the self-map entry has the G bit");
    if (!self.writable) problems.push("the self-map entry is not writable");
    if (self.user) problems.push("the self-map entry is user-accessible");
    if (nxe && !self.noExecute) problems.push("the self-map entry is executable");
  }

  // 3. Every table at its computed self-map address, and nothing else in the window.
  const tables = tableTree(read, cr3, [slot]);
  for (const t of tables) {
    const va = selfMapTableAddress(slot, t.level, t.va);
    const got = translate(read, cr3, va, options);
    if (!got || got.pa !== t.phys) {
      problems.push(
        `${levelName(t.level)} for ${hex(t.va)} (frame ${
          hex(t.phys)
        }) is not at its self-map address ${hex(va)}` +
          (got ? ` (found ${hex(got.pa)})` : " (unmapped)"),
      );
    }
  }
  const windowLeaves = leaves.filter((m) => inWindow(m.va));
  if (windowLeaves.length !== tables.length) {
    problems.push(
      `the self-map window has ${windowLeaves.length} pages for ${tables.length} tables`,
    );
  }
  return problems;
}
