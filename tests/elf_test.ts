/**
 * The ELF reader's symbol names (tools/core/elf.ts), against the string
 * table read name by name here: the same names for the real kernel, and a
 * name that is not ASCII decoded as UTF-8.
 */
import assert from "node:assert/strict";
import { ElfError, parseElf } from "../tools/core/elf.ts";
import { builtKernel } from "./support.ts";

const SHT_SYMTAB = 2;

/** Each symbol's name read by itself: the bytes at its offset in the string table up to a NUL. */
function namesByHand(bytes: Uint8Array): string[] {
  return nameOffsets(bytes).map((start) =>
    new TextDecoder().decode(bytes.subarray(start, bytes.indexOf(0, start)))
  );
}

/** The symbol tables' offsets and sizes, and the file offset of each one's string table's header. */
function symbolTables(bytes: Uint8Array): { offset: number; size: number; strtabHeader: number }[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(v.getBigUint64(40, true));
  const shentsize = v.getUint16(58, true);
  const header = (i: number) => shoff + i * shentsize;
  const tables = [];
  for (let i = 0; i < v.getUint16(60, true); i++) {
    if (v.getUint32(header(i) + 4, true) !== SHT_SYMTAB) continue;
    tables.push({
      offset: Number(v.getBigUint64(header(i) + 24, true)),
      size: Number(v.getBigUint64(header(i) + 32, true)),
      strtabHeader: header(v.getUint32(header(i) + 40, true)),
    });
  }
  return tables;
}

/** The file offset of each symbol's name, in the order of the symbol tables. */
function nameOffsets(bytes: Uint8Array): number[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return symbolTables(bytes).flatMap(({ offset, size, strtabHeader }) => {
    const strtab = Number(v.getBigUint64(strtabHeader + 24, true));
    const offsets: number[] = [];
    for (let o = offset; o + 24 <= offset + size; o += 24) {
      offsets.push(strtab + v.getUint32(o, true));
    }
    return offsets;
  });
}

Deno.test("elf: every symbol's name is the string table's, read name by name", async () => {
  const bytes = await Deno.readFile((await builtKernel()).elf);
  const names = parseElf(bytes).symbols.map((s) => s.name);
  assert.ok(names.length > 100, `${names.length} symbols`);
  assert.ok(names.includes("kmain"));
  assert.deepEqual(names, namesByHand(bytes));
});

Deno.test("elf: a name that is not ASCII is decoded as UTF-8", async () => {
  const bytes = await Deno.readFile((await builtKernel()).elf);
  const image = parseElf(bytes);
  const i = image.symbols.findIndex((s) => s.name === "kmain");
  // "km" becomes "é" (two bytes in UTF-8): the symbol is then named "éain".
  const at = nameOffsets(bytes)[i];
  const copy = bytes.slice();
  copy.set([0xc3, 0xa9], at);
  const names = parseElf(copy).symbols.map((s) => s.name);
  assert.equal(names[i], "éain");
  assert.deepEqual(names, namesByHand(copy));
});

/** The file offset of the header of the string table the (first) symbol table names. */
function strtabHeader(bytes: Uint8Array): number {
  const first = symbolTables(bytes)[0];
  if (first === undefined) throw new Error("no symbol table");
  return first.strtabHeader;
}

Deno.test("elf: a string table that does not end in NUL, or is cut short, is read name by name", async () => {
  const bytes = await Deno.readFile((await builtKernel()).elf);
  const header = strtabHeader(bytes);
  const size = (b: Uint8Array) => new DataView(b.buffer).getBigUint64(header + 32, true);
  const setSize = (b: Uint8Array, s: bigint) =>
    new DataView(b.buffer).setBigUint64(header + 32, s, true);
  const offset = Number(new DataView(bytes.buffer).getBigUint64(header + 24, true));
  const end = offset + Number(size(bytes));
  assert.equal(bytes[end - 1], 0, "the built table ends in NUL");
  // The last name's NUL overwritten: that name runs on past the table, as read by hand.
  const noNul = bytes.slice();
  noNul[end - 1] = 0x78;
  const last = nameOffsets(noNul).reduce((a, b) => Math.max(a, b));
  const names = parseElf(noNul).symbols.map((s) => s.name);
  assert.deepEqual(names, namesByHand(noNul));
  assert.ok(names.some((n) => n.endsWith("x")), "the last name");
  assert.equal(noNul.indexOf(0, last) >= end, true);
  // Cut short inside the last name, and past the end of the file: the same names as by hand.
  for (const cut of [size(bytes) - 2n, BigInt(bytes.length)]) {
    const copy = bytes.slice();
    setSize(copy, cut);
    assert.deepEqual(parseElf(copy).symbols.map((s) => s.name), namesByHand(copy), `size ${cut}`);
  }
});

Deno.test("elf: a symbol table that links to no section, the null section, a section that is no string table, or a string table outside the file is an ElfError", async () => {
  const bytes = await Deno.readFile((await builtKernel()).elf);
  const v = new DataView(bytes.buffer);
  const shoff = Number(v.getBigUint64(40, true));
  const shentsize = v.getUint16(58, true);
  const count = v.getUint16(60, true);
  let symtab = -1;
  for (let i = 0; i < count && symtab < 0; i++) {
    if (v.getUint32(shoff + i * shentsize + 4, true) === SHT_SYMTAB) symtab = shoff + i * shentsize;
  }
  assert.ok(symtab >= 0, "the kernel has a symbol table");
  for (const size of [null, 0n]) {
    const copy = bytes.slice();
    const c = new DataView(copy.buffer);
    c.setUint32(symtab + 40, count + 100, true); // sh_link: past the last section
    if (size !== null) c.setBigUint64(symtab + 32, size, true);
    assert.throws(
      () => parseElf(copy),
      (e) => e instanceof ElfError && /links to no string table/.test(e.message),
      `size ${size}`,
    );
  }
  // sh_link 0 (the null section), a link to a section that is no string table (.text), and a
  // string table lying past the end of the file: each would give garbage names.
  let text = -1;
  for (let i = 0; i < count && text < 0; i++) {
    const type = v.getUint32(shoff + i * shentsize + 4, true);
    const flags = v.getBigUint64(shoff + i * shentsize + 8, true);
    if (type === 1 && (flags & 4n) !== 0n) text = i; // SHT_PROGBITS, SHF_EXECINSTR
  }
  assert.ok(text > 0, "the kernel has code");
  const strtab = v.getUint32(symtab + 40, true);
  const broken: [string, (c: DataView) => void, RegExp][] = [
    ["sh_link 0", (c) => c.setUint32(symtab + 40, 0, true), /links to no string table/],
    ["a link to .text", (c) => c.setUint32(symtab + 40, text, true), /not a string table/],
    [
      "a string table past the end",
      (c) => c.setBigUint64(shoff + strtab * shentsize + 24, BigInt(bytes.length + 16), true),
      /string table lies outside the file/,
    ],
  ];
  for (const [what, breakIt, message] of broken) {
    const copy = bytes.slice();
    breakIt(new DataView(copy.buffer));
    assert.throws(
      () => parseElf(copy),
      (e) => e instanceof ElfError && message.test(e.message),
      what,
    );
  }
  // An empty string table at the very end of the file (an empty symbol table's): nothing is read
  // from it, so the file is read, with no symbols.
  const empty = bytes.slice();
  const e = new DataView(empty.buffer);
  e.setBigUint64(shoff + strtab * shentsize + 24, BigInt(bytes.length), true);
  e.setBigUint64(shoff + strtab * shentsize + 32, 0n, true);
  e.setBigUint64(symtab + 32, 0n, true);
  assert.deepEqual(parseElf(empty).symbols, []);
  // But an empty string table past the end for a symbol table that has symbols: their names
  // would all be "" (review: 1612 symbols, none named).
  const unnamed = bytes.slice();
  const u = new DataView(unnamed.buffer);
  u.setBigUint64(shoff + strtab * shentsize + 24, BigInt(bytes.length + 1_000_000), true);
  u.setBigUint64(shoff + strtab * shentsize + 32, 0n, true);
  assert.throws(
    () => parseElf(unnamed),
    (e) => e instanceof ElfError && /string table lies outside the file/.test(e.message),
  );
});
