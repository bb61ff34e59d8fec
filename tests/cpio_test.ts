import assert from "node:assert/strict";
import { execa } from "execa";
import { join } from "node:path";
import { CPIO_HEADER_SIZE, CpioError, writeCpio } from "../tools/core/cpio.ts";
import { ensureToolGroups } from "../tools/host/toolcheck.ts";
import { tempDir } from "./support.ts";

/** Bytes of every value, so padding and binary data both show. */
function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
}

const FILES = [
  { name: "bin/hello", data: bytes(4097, 1) },
  { name: "tests/basic", data: bytes(1, 2) },
  { name: "tests/deep/er/two", data: bytes(2, 3), perm: 0o644 },
  { name: "three", data: bytes(3, 4) },
  { name: "empty", data: new Uint8Array(0) },
  { name: "five", data: bytes(5, 5) },
];

Deno.test("cpio: the system cpio lists the archive and extracts identical bytes", async () => {
  await ensureToolGroups(["cpio"]);
  const [dir, cleanup] = await tempDir();
  try {
    const archive = join(dir, "initrd.cpio");
    await Deno.writeFile(archive, writeCpio(FILES));
    const list = await execa("cpio", ["-t", "--quiet"], { inputFile: archive });
    assert.deepEqual(list.stdout.split("\n"), [
      "bin",
      "bin/hello",
      "tests",
      "tests/basic",
      "tests/deep",
      "tests/deep/er",
      "tests/deep/er/two",
      "three",
      "empty",
      "five",
    ]);
    const out = join(dir, "out");
    await Deno.mkdir(out);
    await execa("cpio", ["-i", "-d", "--quiet", "--no-absolute-filenames"], {
      inputFile: archive,
      cwd: out,
    });
    for (const f of FILES) {
      assert.deepEqual(await Deno.readFile(join(out, f.name)), f.data, f.name);
      const mode = (await Deno.stat(join(out, f.name))).mode! & 0o777;
      assert.equal(mode, f.perm ?? 0o755, `${f.name} mode`);
    }
    // GNU cpio verifies the format it reads: ask it to name it.
    const verbose = await execa("cpio", ["-t", "-v"], { inputFile: archive, all: true });
    assert.match(String(verbose.all), /-rwxr-xr-x +1 root +root +4097 .* bin\/hello/);
  } finally {
    await cleanup();
  }
});

Deno.test("cpio: the layout is newc with 4-byte alignment, a trailer and 512-byte padding", () => {
  const a = writeCpio([{ name: "x", data: bytes(3, 0) }]);
  const text = new TextDecoder("latin1").decode(a);
  assert.ok(text.startsWith("070701"));
  assert.equal(a.length % 512, 0);
  // Header 110 + "x\0" = 112 (aligned), data 3 + 1 pad, then the trailer header.
  assert.equal(text.slice(CPIO_HEADER_SIZE, CPIO_HEADER_SIZE + 2), "x\0");
  assert.equal(text.slice(116, 122), "070701");
  assert.equal(text.slice(116 + CPIO_HEADER_SIZE, 116 + CPIO_HEADER_SIZE + 11), "TRAILER!!!\0");
  assert.deepEqual(writeCpio(FILES), writeCpio(FILES), "deterministic");
});

Deno.test("cpio: names an archive cannot hold are refused", () => {
  for (const name of ["", "/abs", "a/../b", "./a", "a//b", "dir/", "TRAILER!!!"]) {
    assert.throws(() => writeCpio([{ name, data: new Uint8Array(1) }]), CpioError, name);
  }
  assert.throws(
    () =>
      writeCpio([{ name: "a", data: new Uint8Array(1) }, { name: "a", data: new Uint8Array(1) }]),
    /given twice/,
  );
});
