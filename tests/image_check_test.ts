import assert from "node:assert/strict";
import { deriveLayout, pteFlag, tableIndex } from "../linker/layout.ts";
import { type ElfImage, parseElf, PT_LOAD, symbolValue } from "../tools/core/elf.ts";
import { checkBootTables } from "../tools/core/image_check.ts";
import { builtKernel } from "./support.ts";

const layout = deriveLayout();

async function freshImage(): Promise<ElfImage> {
  const { elf } = await builtKernel();
  return parseElf(await Deno.readFile(elf));
}

/** File offset of the 8-byte entry `index` of the table at physical `table`. */
function entryOffset(image: ElfImage, table: bigint, index: number): number {
  const pa = table + BigInt(index * 8);
  const seg = image.segments.find((s) =>
    s.type === PT_LOAD && pa >= s.paddr && pa < s.paddr + BigInt(s.filesz)
  );
  if (!seg) throw new Error("table not in the file");
  return seg.offset + Number(pa - seg.paddr);
}

/** Rewrite one entry of a table, given by the chain of indices from the PML4. */
function patch(image: ElfImage, path: number[], edit: (e: bigint) => bigint): void {
  const v = new DataView(image.bytes.buffer, image.bytes.byteOffset);
  let table = symbolValue(image, "boot_pml4_phys");
  for (let i = 0; i < path.length; i++) {
    const off = entryOffset(image, table, path[i]);
    const e = v.getBigUint64(off, true);
    if (i === path.length - 1) v.setBigUint64(off, edit(e), true);
    table = e & 0x000f_ffff_ffff_f000n;
  }
}

const pathOf = (va: bigint) => [4, 3, 2, 1].map((l) => tableIndex(va, l));

Deno.test("image check: the built kernel's boot tables are exactly as promised", async () => {
  assert.deepEqual(checkBootTables(await freshImage(), layout), []);
});

Deno.test("image check: a writable text page is caught", async () => {
  const image = await freshImage();
  patch(image, pathOf(symbolValue(image, "__text_start")), (e) => e | pteFlag("W"));
  assert.match(checkBootTables(image, layout).join("\n"), /text page 0x[0-9a-f]+ is writable/);
});

Deno.test("image check: an executable data page and a non-executable text page are caught", async () => {
  const image = await freshImage();
  patch(image, pathOf(symbolValue(image, "__data_start")), (e) => e & ~pteFlag("NX"));
  patch(image, pathOf(symbolValue(image, "__text_start")), (e) => e | pteFlag("NX"));
  const problems = checkBootTables(image, layout).join("\n");
  assert.match(problems, /data page 0x[0-9a-f]+ is executable/);
  assert.match(problems, /text page 0x[0-9a-f]+ is not executable/);
});

Deno.test("image check: a page mapped to the wrong frame is caught", async () => {
  const image = await freshImage();
  patch(image, pathOf(symbolValue(image, "__data_start")), (e) => e + 0x1000n);
  assert.match(checkBootTables(image, layout).join("\n"), /data page .* maps to/);
});

Deno.test("image check: the G bit on the self-map entry is caught", async () => {
  const image = await freshImage();
  patch(image, [layout.recursiveSlot], (e) => e | pteFlag("G"));
  assert.match(checkBootTables(image, layout).join("\n"), /self-map entry has the G bit/);
});

Deno.test("image check: a mapped guard page and an extra mapping are caught", async () => {
  const image = await freshImage();
  const guard = symbolValue(image, "__stack_guard");
  patch(
    image,
    pathOf(guard),
    () => (guard - layout.kernelVirtOffset) | pteFlag("P") | pteFlag("W"),
  );
  patch(image, pathOf(layout.earlyWindowBase), () => 0x200000n | pteFlag("P"));
  const problems = checkBootTables(image, layout).join("\n");
  assert.match(problems, /stack guard page .* is mapped/);
  assert.match(problems, /unexpected mapping 0xffffffffbfe00000 -> 0x200000/);
});

Deno.test("image check: a broken self-map is caught", async () => {
  const image = await freshImage();
  patch(image, [layout.recursiveSlot], () => 0n);
  assert.match(checkBootTables(image, layout).join("\n"), /does not yield the PML4/);
});
