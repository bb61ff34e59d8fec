/**
 * A project file naming a kernel of its own (app/project.ts: `buildCommand`,
 * `image`, `append`, `initrd`) and how the test commands take it
 * (app/commands.ts, foreignSourceOf): keys checked, paths resolved against
 * the file, the command line's `--image`, `--append`, `--initrd` first.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkKernelSources, loadProject, parseProjectFile } from "../tools/app/project.ts";
import { foreignSourceOf } from "../tools/app/commands.ts";
import { UsageError } from "../tools/app/options.ts";
import { tempDir } from "./support.ts";

Deno.test("project file: image keys are checked", () => {
  const ok = { buildCommand: "cargo build", image: "target/k.elf", append: "", initrd: "r.cpio" };
  assert.deepEqual(parseProjectFile(ok), ok);
  assert.throws(() => parseProjectFile({ buildCommand: "make" }), /'buildCommand' needs 'image'/);
  assert.throws(() => parseProjectFile({ append: "x" }), /'append' needs 'image'/);
  assert.throws(() => parseProjectFile({ image: "k", kernel: "src" }), /'kernel' is for a kernel/);
  assert.throws(() => parseProjectFile({ image: "k", layout: "l.json" }), /'layout' is for/);
  assert.throws(() => parseProjectFile({ image: "k", buildCommand: " " }), /non-empty string/);
  assert.throws(() => parseProjectFile({ image: "k", append: 3 }), /'append' must be a string/);
  assert.throws(() => parseProjectFile({ image: "" }), /'image' must be a path/);
  assert.throws(() => parseProjectFile({ imag: "k" }), /unknown key 'imag' .*image/);
});

Deno.test("project file: the image, its command and initrd resolved against the file", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const file = join(dir, "ouroboros.config.json");
    await Deno.writeTextFile(
      file,
      JSON.stringify({ buildCommand: "make", image: "out/k.elf", append: "a=1", initrd: "i.cpio" }),
    );
    const p = await loadProject(file);
    assert.deepEqual(p.image, {
      image: join(dir, "out/k.elf"),
      buildCommand: "make",
      cwd: dir,
      append: "a=1",
      initrd: join(dir, "i.cpio"),
    });
    await checkKernelSources(p); // no kernel/ directory needed: the image is built otherwise

    const none = { image: null, append: null, initrd: null, filter: null, list: false };
    assert.deepEqual(foreignSourceOf(none, p.image), {
      image: join(dir, "out/k.elf"),
      append: "a=1",
      initrd: join(dir, "i.cpio"),
      build: { command: "make", cwd: dir },
    });
    const over = foreignSourceOf({ ...none, append: "b=2", initrd: "/x" }, p.image);
    assert.equal(over?.append, "b=2");
    assert.equal(over?.initrd, "/x");
    const given = foreignSourceOf({ ...none, image: "/k.bz" }, p.image);
    assert.deepEqual(given, { image: "/k.bz", append: "", initrd: null });
    assert.throws(() => foreignSourceOf({ ...none, filter: "x" }, p.image), UsageError);
    assert.throws(() => foreignSourceOf({ ...none, append: "x" }, null), /--append applies/);
    assert.equal(foreignSourceOf(none, null), undefined);
  } finally {
    await cleanup();
  }
});
