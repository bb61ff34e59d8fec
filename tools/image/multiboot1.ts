/**
 * The multiboot1 image: what iPXE's BIOS build boots (`kernel kernel.mb1`
 * in the PXE tree's script). iPXE loads only ELF32 or an "a.out kludge"
 * image, so the image is the kernel's PT_LOAD segments laid out flat from
 * the lowest physical address, and the multiboot1 header in boot.asm says
 * where it goes (header_addr, load_addr, load_end_addr, bss_end_addr,
 * entry_addr).
 *
 * kernel.elf carries that header disarmed (checksum 0): QEMU's -kernel tries
 * multiboot1 before PVH, so an armed header there would change how every
 * QEMU run boots. This module checks the header's addresses against the ELF
 * and writes the checksum into the flat copy only.
 */
import { type ElfImage, physicalReader, PT_LOAD, symbolValue } from "../core/elf.ts";

/** Multiboot Specification 0.6.96, §3.1.1-§3.1.3. */
export const MB1 = {
  /** The header's magic field. */
  headerMagic: 0x1BADB002,
  /** Loaders look for the header in the first this-many bytes of the file... */
  searchLimit: 8192,
  /** ...at 32-bit aligned offsets. */
  align: 4,
  /** Flag bit 16: load by the address fields (the "a.out kludge"). */
  aoutKludge: 1 << 16,
  /** Bytes from magic through entry_addr. */
  headerSize: 32,
} as const;

/** The symbols of boot.asm the image is checked against. */
export const MB1_SYMBOLS = { header: "mb1_header", entry: "boot_entry_mb1" } as const;

/** A multiboot1 header as found in a file. */
export interface Mb1Header {
  /** Byte offset of the magic in the file. */
  offset: number;
  magic: number;
  flags: number;
  checksum: number;
  headerAddr: number;
  loadAddr: number;
  loadEndAddr: number;
  bssEndAddr: number;
  entryAddr: number;
}

/** The image cannot be made, or a file is not a bootable multiboot1 image. */
export class Mb1ImageError extends Error {
  constructor(readonly problems: string[]) {
    super(`multiboot1 image: ${problems.join("; ")}`);
    this.name = "Mb1ImageError";
  }
}

/** The checksum that makes magic + flags + checksum zero (mod 2^32). */
export function mb1Checksum(magic: number, flags: number): number {
  return (-(magic + flags)) >>> 0;
}

/** The header fields at `offset` of `bytes` (which must hold MB1.headerSize bytes there). */
export function readMb1Header(bytes: Uint8Array, offset: number): Mb1Header {
  const v = new DataView(bytes.buffer, bytes.byteOffset + offset, MB1.headerSize);
  const u = (i: number) => v.getUint32(i * 4, true);
  return {
    offset,
    magic: u(0),
    flags: u(1),
    checksum: u(2),
    headerAddr: u(3),
    loadAddr: u(4),
    loadEndAddr: u(5),
    bssEndAddr: u(6),
    entryAddr: u(7),
  };
}

/** True if the header's checksum is valid: a loader would take it. */
export function isArmed(h: Mb1Header): boolean {
  return ((h.magic + h.flags + h.checksum) >>> 0) === 0;
}

/**
 * The header a multiboot1 loader (QEMU, GRUB, iPXE) would find in a file:
 * the first magic at an aligned offset within MB1.searchLimit bytes whose
 * checksum is valid; null if none.
 */
export function findArmedMb1Header(bytes: Uint8Array): Mb1Header | null {
  const end = Math.min(bytes.length, MB1.searchLimit) - MB1.headerSize;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let off = 0; off <= end; off += MB1.align) {
    if (v.getUint32(off, true) !== MB1.headerMagic) continue;
    const h = readMb1Header(bytes, off);
    if (isArmed(h)) return h;
  }
  return null;
}

const hex = (n: number | bigint) => `0x${n.toString(16)}`;

/** Where the PT_LOAD segments lie: lowest address, end of the file part, end of memory. */
function loadSpan(elf: ElfImage): { load: bigint; loadEnd: bigint; bssEnd: bigint } {
  const loads = elf.segments.filter((s) => s.type === PT_LOAD && s.memsz > 0);
  if (loads.length === 0) throw new Mb1ImageError(["the ELF has no PT_LOAD segment"]);
  const min = (a: bigint[]) => a.reduce((x, y) => (y < x ? y : x));
  const max = (a: bigint[]) => a.reduce((x, y) => (y > x ? y : x));
  return {
    load: min(loads.map((s) => s.paddr)),
    loadEnd: max(loads.map((s) => s.paddr + BigInt(s.filesz))),
    bssEnd: max(loads.map((s) => s.paddr + BigInt(s.memsz))),
  };
}

/** What is wrong with the kernel's (disarmed) header, checked against the ELF itself. */
function checkKernelHeader(elf: ElfImage, h: Mb1Header, headerAddr: bigint): string[] {
  const { load, loadEnd, bssEnd } = loadSpan(elf);
  const entry = symbolValue(elf, MB1_SYMBOLS.entry);
  const problems: string[] = [];
  const expect = (what: string, got: number, want: bigint) => {
    if (BigInt(got) !== want) problems.push(`${what} is ${hex(got)}, the ELF says ${hex(want)}`);
  };
  if (h.magic !== MB1.headerMagic) problems.push(`bad magic ${hex(h.magic)}`);
  if ((h.flags & MB1.aoutKludge) === 0) problems.push("the a.out kludge flag (bit 16) is clear");
  if (isArmed(h)) {
    problems.push("kernel.elf's header is armed: QEMU -kernel would boot it as multiboot1");
  }
  expect("header_addr", h.headerAddr, headerAddr);
  expect("load_addr", h.loadAddr, load);
  expect("load_end_addr", h.loadEndAddr, loadEnd);
  expect("bss_end_addr", h.bssEndAddr, bssEnd);
  expect("entry_addr", h.entryAddr, entry);
  const offset = headerAddr - load;
  if (offset % BigInt(MB1.align) !== 0n || offset + BigInt(MB1.headerSize) > MB1.searchLimit) {
    problems.push(`the header lies at image offset ${hex(offset)}: not aligned or past 8 KiB`);
  }
  return problems;
}

/**
 * What a loader checks of a flat image: an armed header in the first 8 KiB
 * with the kludge flag, loading from the file's first byte (header offset =
 * header_addr - load_addr), the whole file part present, the entry inside.
 * Returns the header; throws Mb1ImageError listing every problem.
 */
export function validateMultiboot1Image(image: Uint8Array): Mb1Header {
  const h = findArmedMb1Header(image);
  if (h === null) {
    throw new Mb1ImageError(["no multiboot1 header with a valid checksum in the first 8 KiB"]);
  }
  const problems: string[] = [];
  if ((h.flags & MB1.aoutKludge) === 0) problems.push("the a.out kludge flag (bit 16) is clear");
  if (h.headerAddr - h.loadAddr !== h.offset) {
    problems.push(
      `header at file offset ${hex(h.offset)} but header_addr - load_addr = ${
        hex(h.headerAddr - h.loadAddr)
      }`,
    );
  }
  if (!(h.loadAddr < h.loadEndAddr && h.loadEndAddr <= h.bssEndAddr)) {
    problems.push("load_addr < load_end_addr <= bss_end_addr does not hold");
  }
  if (image.length < h.loadEndAddr - h.loadAddr) {
    problems.push(`the file has ${image.length} bytes, less than load_end_addr - load_addr`);
  }
  if (h.entryAddr < h.loadAddr || h.entryAddr >= h.loadEndAddr) {
    problems.push(`entry_addr ${hex(h.entryAddr)} is outside the loaded bytes`);
  }
  if (problems.length > 0) throw new Mb1ImageError(problems);
  return h;
}

/**
 * The flat multiboot1 image of a kernel ELF: [load_addr, load_end_addr) as
 * the loader must place it, the header armed. Throws Mb1ImageError if the
 * kernel's header disagrees with its own segments.
 */
export function buildMultiboot1Image(elf: ElfImage): { image: Uint8Array; header: Mb1Header } {
  const headerAddr = symbolValue(elf, MB1_SYMBOLS.header);
  const read = physicalReader(elf);
  const raw = read(headerAddr, MB1.headerSize);
  if (raw === undefined) {
    throw new Mb1ImageError([`${MB1_SYMBOLS.header} (${hex(headerAddr)}) is in no segment`]);
  }
  const problems = checkKernelHeader(elf, readMb1Header(raw, 0), headerAddr);
  if (problems.length > 0) throw new Mb1ImageError(problems);
  const { load, loadEnd } = loadSpan(elf);
  const image = new Uint8Array(Number(loadEnd - load));
  for (const s of elf.segments.filter((s) => s.type === PT_LOAD && s.filesz > 0)) {
    image.set(elf.bytes.subarray(s.offset, s.offset + s.filesz), Number(s.paddr - load));
  }
  const offset = Number(headerAddr - load);
  const h = readMb1Header(image, offset);
  new DataView(image.buffer).setUint32(offset + 8, mb1Checksum(h.magic, h.flags), true);
  return { image, header: validateMultiboot1Image(image) };
}
