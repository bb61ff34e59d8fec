import assert from "node:assert/strict";
import { deriveLayout, pteFlag, tableIndex } from "../linker/layout.ts";
import {
  type ElfImage,
  parseElf,
  physicalReader,
  PT_LOAD,
  symbolValue,
} from "../tools/core/elf.ts";
import { checkBootTables, withoutNxReader } from "../tools/core/image_check.ts";
import {
  enumerateMappings,
  type PhysReader,
  translate,
  WalkError,
} from "../tools/core/pagewalk.ts";
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

Deno.test("image check: without NX (bit 63 stripped as boot.asm does) every page maps, executable", async () => {
  const image = await freshImage();
  assert.deepEqual(checkBootTables(image, layout, { nxe: false }), []);
  // Not stripped, the same tables fault with RSVD on a CPU without NX: the strip is needed.
  const cr3 = symbolValue(image, "boot_pml4_phys");
  assert.throws(
    () => enumerateMappings(physicalReader(image), cr3, { nxe: false }),
    /sets bit 63 \(NX\), a reserved bit with EFER.NXE off/,
  );
});

Deno.test("page walker: bit 63 is NX with EFER.NXE on, a reserved bit with it off", () => {
  // One 4 KiB page at VA 0: PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000 -> 0x5000.
  const P = pteFlag("P"), W = pteFlag("W"), NX = pteFlag("NX");
  const entries = new Map<bigint, bigint>([
    [0x1000n, 0x2000n | P | W],
    [0x2000n, 0x3000n | P | W],
    [0x3000n, 0x4000n | P | W],
    [0x4000n, 0x5000n | P | W | NX],
  ]);
  const read: PhysReader = (paddr, length) => {
    const out = new Uint8Array(length);
    const v = new DataView(out.buffer);
    for (let off = 0; off < length; off += 8) {
      v.setBigUint64(off, entries.get(paddr + BigInt(off)) ?? 0n, true);
    }
    return out;
  };
  const [page] = enumerateMappings(read, 0x1000n);
  assert.equal(page.pa, 0x5000n);
  assert.equal(page.noExecute, true);
  assert.equal(translate(read, 0x1000n, 0x123n)?.paddr, 0x5123n);
  assert.throws(
    () => enumerateMappings(read, 0x1000n, { nxe: false }),
    /PT entry 0 sets bit 63 \(NX\), a reserved bit with EFER.NXE off/,
  );
  assert.throws(() => translate(read, 0x1000n, 0x123n, { nxe: false }), WalkError);
  entries.set(0x4000n, 0x5000n | P | W);
  assert.equal(enumerateMappings(read, 0x1000n, { nxe: false })[0].noExecute, false);
});

Deno.test("page walker: a reader that gives a table short is a WalkError, whichever entry is read", () => {
  // A PML4 at 0x1000 whose first entry is present; the reader gives 16 bytes of each table.
  const P = pteFlag("P"), W = pteFlag("W");
  const short: PhysReader = (paddr, length) => {
    const out = new Uint8Array(Math.min(16, length));
    if (paddr === 0x1000n) new DataView(out.buffer).setBigUint64(0, 0x2000n | P | W, true);
    return out;
  };
  const msg = /short read at table address 0x1000: 16 of 4096 bytes/;
  // Entry 0 lies inside the short read: without the check it was read as if whole.
  assert.throws(() => translate(short, 0x1000n, 0x123n), msg);
  assert.throws(() => translate(short, 0x1000n, 0xffff_8000_0000_0000n), msg);
  assert.throws(() => enumerateMappings(short, 0x1000n), msg);
  assert.throws(() => translate(short, 0x1000n, 0x123n), WalkError);
});

/**
 * An image of one loaded segment at physical 0x1000 (0x100 bytes, every
 * byte 0xff) whose tables run from `from` to `to`.
 */
function tablesImage(from: bigint, to: bigint): ElfImage {
  const sym = (name: string, value: bigint) => ({
    name,
    value,
    size: 0,
    type: 0,
    bind: 0,
    section: 0,
  });
  return {
    entry: 0n,
    machine: 62,
    segments: [{
      type: PT_LOAD,
      flags: 6,
      offset: 0,
      vaddr: 0x1000n,
      paddr: 0x1000n,
      filesz: 0x100,
      memsz: 0x100,
    }],
    sections: [],
    symbols: [sym("boot_pml4_phys", from), sym("boot_tables_end_phys", to)],
    bytes: new Uint8Array(0x100).fill(0xff),
  };
}

Deno.test("image check: without NX, the reader strips bit 63 of the whole aligned entries in [boot_pml4_phys, boot_tables_end_phys) only, whatever their alignment", () => {
  // The model: an 8-aligned entry wholly in the read loses bit 63 when it starts in
  // [from, to); nothing else changes, and a read at an unaligned address is as loaded.
  const expected = (from: bigint, to: bigint, paddr: bigint, length: number) => {
    const out = new Uint8Array(length).fill(0xff);
    if (paddr % 8n !== 0n) return out;
    for (let off = 0; off + 8 <= length; off += 8) {
      const a = paddr + BigInt(off);
      if (a >= from && a < to) out[off + 7] = 0x7f;
    }
    return out;
  };
  const ends = [0x1000n, 0x1003n, 0x1004n, 0x1008n, 0x1040n, 0x1044n, 0x103fn, 0x1048n];
  let cases = 0;
  for (const from of ends) {
    for (const to of ends.filter((t) => t > from)) {
      const read = withoutNxReader(tablesImage(from, to));
      for (let p = 0x1000n; p < 0x1060n; p += 4n) {
        for (const length of [8, 12, 16, 20, 64, 0x48]) {
          const got = read(p, length);
          assert.deepEqual(
            got,
            expected(from, to, p, length),
            `[${from}, ${to}) read ${p}+${length}`,
          );
          cases++;
        }
      }
    }
  }
  assert.ok(cases > 1000, `${cases} cases`);
  // The two edges by hand: an entry that starts before an unaligned end is stripped, one
  // that starts before an unaligned start is not.
  const read = withoutNxReader(tablesImage(0x1004n, 0x1014n));
  assert.deepEqual(
    [...read(0x1000n, 0x20)!].filter((_, i) => i % 8 === 7),
    [0xff, 0x7f, 0x7f, 0xff],
  );
  assert.equal(read(0x2000n, 8), undefined);
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
