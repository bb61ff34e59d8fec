/**
 * The ELF reader's symbol names (tools/core/elf.ts), against the string
 * table read name by name here: the same names for the real kernel, and a
 * name that is not ASCII decoded as UTF-8.
 */
import assert from "node:assert/strict";
import { parseElf } from "../tools/core/elf.ts";
import { builtKernel } from "./support.ts";

const SHT_SYMTAB = 2;

/** Each symbol's name read by itself: the bytes at its offset in the string table up to a NUL. */
function namesByHand(bytes: Uint8Array): string[] {
  return nameOffsets(bytes).map((start) =>
    new TextDecoder().decode(bytes.subarray(start, bytes.indexOf(0, start)))
  );
}

/** The file offset of each symbol's name, in the order of the symbol tables. */
function nameOffsets(bytes: Uint8Array): number[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(v.getBigUint64(40, true));
  const shentsize = v.getUint16(58, true);
  const shnum = v.getUint16(60, true);
  const header = (i: number) => shoff + i * shentsize;
  const offsets: number[] = [];
  for (let i = 0; i < shnum; i++) {
    if (v.getUint32(header(i) + 4, true) !== SHT_SYMTAB) continue;
    const offset = Number(v.getBigUint64(header(i) + 24, true));
    const size = Number(v.getBigUint64(header(i) + 32, true));
    const strtab = Number(v.getBigUint64(header(v.getUint32(header(i) + 40, true)) + 24, true));
    for (let o = offset; o + 24 <= offset + size; o += 24) {
      offsets.push(strtab + v.getUint32(o, true));
    }
  }
  return offsets;
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
