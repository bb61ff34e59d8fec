/**
 * A small reader for ELF64 little-endian x86-64 images: program headers,
 * section headers and the symbol table. Enough to read the kernel's symbols
 * and to read its memory by physical address, as a loader would place it.
 */

/** An ELF program header (one segment). */
export interface Segment {
  type: number;
  flags: number;
  offset: number;
  vaddr: bigint;
  paddr: bigint;
  filesz: number;
  memsz: number;
}

/** An ELF section header. */
export interface Section {
  name: string;
  type: number;
  flags: bigint;
  addr: bigint;
  offset: number;
  size: number;
}

/** A symbol-table entry. */
export interface ElfSymbol {
  name: string;
  value: bigint;
  size: number;
  type: number;
  bind: number;
  section: number;
}

/** A parsed ELF64 image. */
export interface ElfImage {
  entry: bigint;
  machine: number;
  segments: Segment[];
  sections: Section[];
  symbols: ElfSymbol[];
  bytes: Uint8Array;
}

/** ELF constants used here (System V gABI). */
export const PT_LOAD = 1;
export const PT_NOTE = 4;
export const EM_X86_64 = 62;
const SHT_SYMTAB = 2;
/** sh_type of a string table (what a symbol table's sh_link must name). */
const SHT_STRTAB = 3;

/** The file is not an ELF64 x86-64 image, or is truncated. */
export class ElfError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ElfError";
  }
}

/** Parse an ELF64 little-endian image. */
export function parseElf(bytes: Uint8Array): ElfImage {
  if (bytes.length < 64) throw new ElfError("file too short for an ELF header");
  const magic = [0x7f, 0x45, 0x4c, 0x46];
  if (!magic.every((b, i) => bytes[i] === b)) {
    throw new ElfError("not an ELF file (bad magic)");
  }
  if (bytes[4] !== 2 || bytes[5] !== 1) {
    throw new ElfError("not a 64-bit little-endian ELF");
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const check = (off: number, len: number, what: string) => {
    if (off < 0 || off + len > bytes.length) {
      throw new ElfError(`${what} lies outside the file`);
    }
  };
  const u16 = (o: number) => v.getUint16(o, true);
  const u32 = (o: number) => v.getUint32(o, true);
  const u64 = (o: number) => v.getBigUint64(o, true);
  const num = (o: number) => Number(u64(o));

  const phoff = num(32), shoff = num(40);
  const phentsize = u16(54), phnum = u16(56);
  const shentsize = u16(58), shnum = u16(60), shstrndx = u16(62);

  const segments: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    check(o, 56, "program header");
    segments.push({
      type: u32(o),
      flags: u32(o + 4),
      offset: num(o + 8),
      vaddr: u64(o + 16),
      paddr: u64(o + 24),
      filesz: num(o + 32),
      memsz: num(o + 40),
    });
  }

  const raw: (Section & { nameOff: number; link: number; entsize: number })[] = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    check(o, 64, "section header");
    raw.push({
      name: "",
      nameOff: u32(o),
      type: u32(o + 4),
      flags: u64(o + 8),
      addr: u64(o + 16),
      offset: num(o + 24),
      size: num(o + 32),
      link: u32(o + 40),
      entsize: num(o + 56),
    });
  }
  const decoder = new TextDecoder();
  const cstr = (off: number) => {
    let end = off;
    while (end < bytes.length && bytes[end] !== 0) end++;
    return decoder.decode(bytes.subarray(off, end));
  };
  const shstr = raw[shstrndx];
  for (const s of raw) if (shstr) s.name = cstr(shstr.offset + s.nameOff);

  const symbols: ElfSymbol[] = [];
  for (const s of raw.filter((s) => s.type === SHT_SYMTAB)) {
    // sh_link names the string table; 0 is the null section, never a table.
    const strtab = s.link === 0 ? undefined : raw[s.link];
    if (strtab === undefined) throw new ElfError("symbol table links to no string table");
    if (strtab.type !== SHT_STRTAB) {
      throw new ElfError(
        `symbol table links to section ${s.link} (${strtab.name || "unnamed"}), not a string table`,
      );
    }
    // A table that starts past the end holds no name (even its leading NUL);
    // one that only runs past the end is read name by name (stringTable). An
    // empty symbol table's may be empty anywhere: nothing is read from it.
    const nothingRead = strtab.size === 0 && s.size === 0;
    if (!nothingRead && strtab.offset >= bytes.length) {
      throw new ElfError("symbol table's string table lies outside the file");
    }
    check(s.offset, s.size, "symbol table");
    const name = stringTable(bytes, strtab.offset, strtab.size, cstr);
    for (let o = s.offset; o + 24 <= s.offset + s.size; o += s.entsize || 24) {
      const info = bytes[o + 4];
      symbols.push({
        name: name(u32(o)),
        type: info & 0xf,
        bind: info >> 4,
        section: u16(o + 6),
        value: u64(o + 8),
        size: num(o + 16),
      });
    }
  }
  const sections = raw.map(({ name, type, flags, addr, offset, size }) => ({
    name,
    type,
    flags,
    addr,
    offset,
    size,
  }));
  return { entry: u64(24), machine: u16(18), segments, sections, symbols, bytes };
}

/**
 * The names of a string table by offset. A table of plain ASCII (nearly
 * every one) is decoded once and its names are cut from the text (each
 * byte one character); any other is read name by name with `cstr`. The
 * symbols' names are read by the thousand, and under Deno a call to the
 * decoder costs more than the name.
 */
function stringTable(
  bytes: Uint8Array,
  offset: number,
  size: number,
  cstr: (off: number) => string,
): (off: number) => string {
  const end = Math.min(offset + size, bytes.length);
  // Offsets are read as unsigned numbers: never negative.
  const table = bytes.subarray(offset, end);
  if (table.some((b) => b >= 0x80) || table[table.length - 1] !== 0) {
    return (off) => cstr(offset + off);
  }
  const text = new TextDecoder().decode(table);
  return (off) => off < text.length ? text.slice(off, text.indexOf("\0", off)) : cstr(offset + off);
}

/** Each image's symbols by name, the first of a name (as a search from the start finds). */
const byName = new WeakMap<readonly ElfSymbol[], Map<string, ElfSymbol>>();

/** The value of a named symbol, or an ElfError naming the missing symbol. */
export function symbolValue(image: ElfImage, name: string): bigint {
  let index = byName.get(image.symbols);
  if (index === undefined) {
    index = new Map();
    for (const sym of image.symbols) if (!index.has(sym.name)) index.set(sym.name, sym);
    byName.set(image.symbols, index);
  }
  const s = index.get(name);
  if (!s) throw new ElfError(`symbol ${name} not found`);
  return s.value;
}

/**
 * Reads memory as the loader leaves it: bytes of PT_LOAD segments at their
 * physical addresses, zero past the file part. Addresses no segment covers
 * read as undefined.
 */
export function physicalReader(
  image: ElfImage,
): (paddr: bigint, length: number) => Uint8Array | undefined {
  const loads = image.segments.filter((s) => s.type === PT_LOAD);
  return (paddr, length) => {
    const seg = loads.find((s) =>
      paddr >= s.paddr && paddr + BigInt(length) <= s.paddr + BigInt(s.memsz)
    );
    if (!seg) return undefined;
    const out = new Uint8Array(length);
    const rel = Number(paddr - seg.paddr);
    const inFile = Math.max(0, Math.min(length, seg.filesz - rel));
    if (inFile > 0) {
      out.set(
        image.bytes.subarray(seg.offset + rel, seg.offset + rel + inFile),
      );
    }
    return out;
  };
}
