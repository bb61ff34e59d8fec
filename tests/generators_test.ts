import assert from "node:assert/strict";
import { execa } from "execa";
import { join } from "node:path";
import { layoutConstants, renderCHeader, renderNasmInclude } from "../linker/constants.ts";
import { DEFAULT_LAYOUT_CONFIG, deriveLayout } from "../linker/layout.ts";
import { renderLinkerScript } from "../linker/linker_script.ts";
import { parseElf, PT_LOAD, PT_NOTE, symbolValue } from "../tools/core/elf.ts";
import { LOG_DIR, ROOT } from "../tools/paths.ts";
import { runKernel } from "../tools/run/run.ts";
import { builtKernel, cachedBuild, tempDir } from "./support.ts";

const layout = deriveLayout();

Deno.test("generators: output is byte-identical on rerun", () => {
  assert.equal(renderCHeader(layout), renderCHeader(deriveLayout()));
  assert.equal(renderNasmInclude(layout), renderNasmInclude(deriveLayout()));
  assert.equal(renderLinkerScript(layout), renderLinkerScript(deriveLayout()));
});

Deno.test("generators: gcc reads the C header's constants as the layout defines them", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await Deno.writeTextFile(join(dir, "layout.h"), renderCHeader(layout));
    const ks = layoutConstants(layout);
    const body = ks.map((k) =>
      `  printf("%s %llx\\n", "${k.name}", (unsigned long long)(${k.name}));`
    );
    await Deno.writeTextFile(
      join(dir, "main.c"),
      `#include <stdio.h>\n#include "layout.h"\nint main(void) {\n${
        body.join("\n")
      }\n  return 0;\n}\n`,
    );
    await execa("gcc", ["-Wall", "-Werror", "-o", join(dir, "dump"), join(dir, "main.c")]);
    const { stdout } = await execa(join(dir, "dump"));
    const seen = new Map(
      stdout.split("\n").map((l) => l.split(" ")).map(([n, v]) => [n, BigInt("0x" + v)]),
    );
    for (const k of ks) assert.equal(seen.get(k.name), k.value, k.name);
    assert.equal(seen.get("SELFMAP_PML4"), 0xffff_ff7f_bfdf_e000n);
    assert.equal(seen.get("PTE_NX"), 1n << 63n);
  } finally {
    await cleanup();
  }
});

Deno.test("generators: nasm reads the NASM include's constants as the layout defines them", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await Deno.writeTextFile(join(dir, "layout.inc"), renderNasmInclude(layout));
    const ks = layoutConstants(layout);
    const src = `%include "layout.inc"\n` + ks.map((k) => `dq ${k.name}`).join("\n") + "\n";
    await Deno.writeTextFile(join(dir, "t.asm"), src);
    await execa("nasm", ["-f", "bin", `-I${dir}/`, "-o", join(dir, "t.bin"), join(dir, "t.asm")]);
    const bin = await Deno.readFile(join(dir, "t.bin"));
    const v = new DataView(bin.buffer);
    ks.forEach((k, i) => assert.equal(v.getBigUint64(i * 8, true), k.value, k.name));
  } finally {
    await cleanup();
  }
});

Deno.test("generators: the linked image follows the linker script", async () => {
  const { elf } = await builtKernel();
  const image = parseElf(await Deno.readFile(elf));
  const sym = (n: string) => symbolValue(image, n);
  const order = [
    "__text_start",
    "__text_end",
    "__rodata_start",
    "__rodata_end",
    "__data_start",
    "__data_end",
    "__bss_start",
    "__bss_end",
    "__stack_guard",
    "__stack_bottom",
    "__stack_top",
    "__image_end",
  ];
  for (let i = 0; i + 1 < order.length; i++) {
    assert.ok(sym(order[i]) <= sym(order[i + 1]), `${order[i]} <= ${order[i + 1]}`);
  }
  for (const n of order) assert.equal(sym(n) % 4096n, 0n, `${n} is page-aligned`);
  assert.equal(sym("__stack_bottom") - sym("__stack_guard"), 4096n);
  assert.equal(sym("__stack_top") - sym("__stack_bottom"), BigInt(layout.kernelStackPages) * 4096n);
  assert.equal(sym("__boot_start"), layout.kernelPhysBase);
  // Higher-half segments load at virtual minus the offset; the boot segment at its own address.
  for (const s of image.segments.filter((s) => s.type === PT_LOAD)) {
    const want = s.vaddr >= layout.kernelVirtOffset ? s.vaddr - layout.kernelVirtOffset : s.vaddr;
    assert.equal(s.paddr, want);
  }
  // Text is not writable, data is not executable (ELF p_flags: 1 X, 2 W, 4 R).
  const text = image.segments.find((s) => s.vaddr === sym("__text_start"))!;
  assert.equal(text.flags, 5);
  // Multiboot2 header: in the first 32 KiB, 8-aligned, checksum sums to 0.
  const v = new DataView(image.bytes.buffer);
  let found = -1;
  for (let o = 0; o < 32768; o += 8) {
    if (v.getUint32(o, true) === 0xe85250d6) found = o;
    if (found >= 0) break;
  }
  assert.ok(found >= 0, "multiboot2 header in the first 32 KiB");
  const sum = [0, 4, 8, 12].reduce((a, o) => (a + v.getUint32(found + o, true)) >>> 0, 0);
  assert.equal(sum, 0, "multiboot2 checksum");
  // PVH note: type 18, name "Xen", descriptor = the 32-bit PVH entry.
  const note = image.segments.find((s) => s.type === PT_NOTE)!;
  assert.equal(v.getUint32(note.offset + 8, true), 18);
  assert.equal(
    new TextDecoder().decode(image.bytes.subarray(note.offset + 12, note.offset + 15)),
    "Xen",
  );
  assert.equal(BigInt(v.getUint32(note.offset + 16, true)), sym("boot_entry_pvh"));
  assert.equal(image.entry, sym("boot_entry_mb2"));
});

// The clean builds are made once per content of the tree (support.ts cachedBuild).
Deno.test("generators: a clean build is byte-identical to the incremental one", async () => {
  const ra = await builtKernel();
  const rb = await cachedBuild("clean-build");
  const dir = rb.dir;
  // Debug info records output paths: compare what is loaded.
  const ia = parseElf(await Deno.readFile(ra.elf));
  const ib = parseElf(await Deno.readFile(rb.elf));
  assert.deepEqual(ia.segments, ib.segments);
  for (const s of ia.segments) {
    const end = s.offset + s.filesz;
    assert.deepEqual(ia.bytes.subarray(s.offset, end), ib.bytes.subarray(s.offset, end));
  }
  assert.equal(
    await Deno.readTextFile(join(ROOT, "build", "gen", "boot_tables.asm")),
    await Deno.readTextFile(join(dir, "gen", "boot_tables.asm")),
  );
});

Deno.test("generators: with another recursive slot the tables check out and the kernel passes", async () => {
  const { checkBootTables } = await import("../tools/core/image_check.ts");
  const config = { ...DEFAULT_LAYOUT_CONFIG, recursiveSlot: 300 };
  const r = await cachedBuild("slot300", { layout: config });
  const dir = r.dir;
  const image = parseElf(await Deno.readFile(r.elf));
  assert.deepEqual(checkBootTables(image, deriveLayout(config)), []);
  const header = await Deno.readTextFile(join(dir, "gen", "layout.h"));
  assert.match(header, /#define RECURSIVE_SLOT 0x12cULL/);
  // The kernel takes every self-map address from the header: it must pass as it is.
  const run = await runKernel({ kernel: r.elf, logFile: join(LOG_DIR, "kernel-slot300.log") });
  assert.equal(run.classification.kind, "pass", run.classification.message);
  assert.ok(run.report.counts.pass > 0);
});
