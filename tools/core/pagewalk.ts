/**
 * An x86-64 4-level page walker over a physical-memory reader. It knows the
 * architecture (Intel SDM Vol. 3A §4.5), not our generator: it is the
 * independent model the generated tables are checked against.
 */
import {
  canonical,
  LEVEL_NAMES,
  PAGE_SHIFT,
  PTE_ADDR_MASK,
  pteFlag,
  TABLE_ENTRIES,
} from "../../linker/layout.ts";

/** Reads `length` bytes at a physical address, or undefined if none are there. */
export type PhysReader = (paddr: bigint, length: number) => Uint8Array | undefined;

/** Effective rights of a translation (AND of W and U, OR of NX, over all levels). */
export interface Rights {
  writable: boolean;
  user: boolean;
  noExecute: boolean;
  global: boolean;
}

/** One leaf translation: a page of `size` bytes at `va` mapping to `pa`. */
export interface Mapping extends Rights {
  va: bigint;
  pa: bigint;
  size: bigint;
  /** Level of the leaf entry: 1 (PT, 4 KiB), 2 (PD, 2 MiB), 3 (PDPT, 1 GiB). */
  level: number;
}

/** A paging structure found in the tree. */
export interface TableNode {
  level: number;
  phys: bigint;
  /** Lowest virtual address the table translates. */
  va: bigint;
}

/** The walk hit something the hardware would not accept, or the reader has no data. */
export class WalkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WalkError";
  }
}

const P = pteFlag("P");
const W = pteFlag("W");
const U = pteFlag("U");
const PS = pteFlag("PS");
const G = pteFlag("G");
const NX = pteFlag("NX");
const ENTRY_BYTES = 8;

/**
 * The 512 entries' bytes of the table at a physical address. A reader that
 * gives fewer bytes is a WalkError here, not a RangeError at the entry read
 * (or, for an entry inside the short read, no error at all).
 */
function tableView(read: PhysReader, phys: bigint): DataView {
  const want = TABLE_ENTRIES * ENTRY_BYTES;
  const bytes = read(phys, want);
  if (!bytes) {
    throw new WalkError(`no memory at table address 0x${phys.toString(16)}`);
  }
  if (bytes.length < want) {
    throw new WalkError(
      `short read at table address 0x${phys.toString(16)}: ${bytes.length} of ${want} bytes`,
    );
  }
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The present bit, if it is in an entry's low 32 bits (then tested before the entry is read whole). */
const P_LOW = BigInt.asUintN(32, P) === P ? Number(P) : 0;

/**
 * The present entries of the table at a physical address, by index, without
 * making a BigInt of each of the (mostly empty) others.
 */
function presentEntries(read: PhysReader, phys: bigint): [number, bigint][] {
  const v = tableView(read, phys);
  const out: [number, bigint][] = [];
  for (let i = 0; i < TABLE_ENTRIES; i++) {
    if (P_LOW !== 0 && (v.getUint32(i * ENTRY_BYTES, true) & P_LOW) === 0) continue;
    const e = v.getBigUint64(i * ENTRY_BYTES, true);
    if ((e & P) !== 0n) out.push([i, e]);
  }
  return out;
}

/**
 * Entry `index` of the table at a physical address (the whole table must be
 * in memory, as for a walk of it), without making the other 511.
 */
function readEntry(read: PhysReader, phys: bigint, index: number): bigint {
  return tableView(read, phys).getBigUint64(index * ENTRY_BYTES, true);
}

function shiftOf(level: number): bigint {
  return BigInt(PAGE_SHIFT + 9 * (level - 1));
}

/** How the CPU walks. */
export interface WalkOptions {
  /**
   * EFER.NXE (default on). Off, bit 63 of an entry is a reserved bit (SDM
   * Vol. 3A §4.5.4): a walk meeting it throws, and nothing is non-executable.
   */
  nxe?: boolean;
}

/** Throw for a present entry the CPU would refuse with a reserved-bit fault. */
function checkReserved(entry: bigint, level: number, index: number, options: WalkOptions): void {
  if (options.nxe === false && (entry & NX) !== 0n) {
    throw new WalkError(
      `${levelName(level)} entry ${index} sets bit 63 (NX), a reserved bit with EFER.NXE off`,
    );
  }
}

function combine(r: Rights, entry: bigint, leaf: boolean): Rights {
  return {
    writable: r.writable && (entry & W) !== 0n,
    user: r.user && (entry & U) !== 0n,
    noExecute: r.noExecute || (entry & NX) !== 0n,
    global: leaf && (entry & G) !== 0n,
  };
}

/**
 * Every leaf mapping reachable from CR3, in address order. The self-map
 * needs no special case: a walk is always exactly four levels deep, so an
 * entry that points back at a table makes that table appear as a page.
 */
export function enumerateMappings(
  read: PhysReader,
  cr3: bigint,
  options: WalkOptions = {},
): Mapping[] {
  const out: Mapping[] = [];
  const all: Rights = { writable: true, user: true, noExecute: false, global: false };
  const visit = (phys: bigint, level: number, base: bigint, rights: Rights) => {
    presentEntries(read, phys).forEach(([i, e]) => {
      const va = base | (BigInt(i) << shiftOf(level));
      const leaf = level === 1 || (level <= 3 && (e & PS) !== 0n);
      if (level === 4 && (e & PS) !== 0n) {
        throw new WalkError(`PML4 entry ${i} has PS set (reserved)`);
      }
      checkReserved(e, level, i, options);
      const r = combine(rights, e, leaf);
      if (leaf) {
        const size = 1n << shiftOf(level);
        out.push({ ...r, va: canonical(va), pa: e & PTE_ADDR_MASK & ~(size - 1n), size, level });
      } else {
        visit(e & PTE_ADDR_MASK, level - 1, va, r);
      }
    });
  };
  visit(cr3 & PTE_ADDR_MASK, 4, 0n, all);
  return out;
}

/** Translate one virtual address; undefined when it is not mapped (throws on a reserved bit). */
export function translate(
  read: PhysReader,
  cr3: bigint,
  va: bigint,
  options: WalkOptions = {},
): (Mapping & { paddr: bigint }) | undefined {
  let phys = cr3 & PTE_ADDR_MASK;
  let rights: Rights = { writable: true, user: true, noExecute: false, global: false };
  for (let level = 4; level >= 1; level--) {
    const index = Number((va >> shiftOf(level)) & BigInt(TABLE_ENTRIES - 1));
    const e = readEntry(read, phys, index);
    if ((e & P) === 0n) return undefined;
    checkReserved(e, level, index, options);
    const leaf = level === 1 || (level <= 3 && (e & PS) !== 0n);
    rights = combine(rights, e, leaf);
    if (leaf) {
      const size = 1n << shiftOf(level);
      const pa = e & PTE_ADDR_MASK & ~(size - 1n);
      return {
        ...rights,
        va: canonical(va & ~(size - 1n)),
        pa,
        size,
        level,
        paddr: pa | (va & (size - 1n)),
      };
    }
    phys = e & PTE_ADDR_MASK;
  }
  return undefined;
}

/**
 * Every paging structure of the tree, found by walking from CR3 while never
 * following the PML4 entries listed in `skipPml4` (the self-map slot).
 */
export function tableTree(
  read: PhysReader,
  cr3: bigint,
  skipPml4: number[] = [],
): TableNode[] {
  const out: TableNode[] = [];
  const visit = (phys: bigint, level: number, base: bigint) => {
    out.push({ level, phys, va: canonical(base) });
    if (level === 1) return;
    presentEntries(read, phys).forEach(([i, e]) => {
      if (level <= 3 && (e & PS) !== 0n) return;
      if (level === 4 && skipPml4.includes(i)) return;
      visit(e & PTE_ADDR_MASK, level - 1, base | (BigInt(i) << shiftOf(level)));
    });
  };
  visit(cr3 & PTE_ADDR_MASK, 4, 0n);
  return out;
}

/** Human name of a level (PT, PD, PDPT, PML4). */
export function levelName(level: number): string {
  return LEVEL_NAMES[level] ?? `level ${level}`;
}
