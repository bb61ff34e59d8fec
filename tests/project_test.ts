/**
 * The project file (tools/app/project.ts) and how the npm CLI finds it
 * (tools/npm/cli.ts): keys, the layout and machine files, the project
 * root, the search upwards from a subdirectory.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_LAYOUT_CONFIG, deriveLayout } from "../linker/layout.ts";
import { splitProjectOption } from "../tools/npm/cli.ts";
import {
  checkKernelSources,
  findProject,
  layoutToJson,
  loadProject,
  parseConfigsJson,
  parseLayoutJson,
  parseProjectFile,
  PROJECT_FILE,
  ProjectError,
} from "../tools/app/project.ts";
import { CONFIGS, selectConfigs } from "../tools/run/configs.ts";
import { tempDir } from "./support.ts";

Deno.test("project: a layout file fills the defaults and takes addresses as strings", () => {
  const c = parseLayoutJson({ recursiveSlot: 300, kernelVirtOffset: "0xffff_ffff_c000_0000" });
  assert.equal(c.recursiveSlot, 300);
  assert.equal(c.kernelVirtOffset, 0xffff_ffff_c000_0000n);
  assert.equal(c.kernelPhysBase, DEFAULT_LAYOUT_CONFIG.kernelPhysBase);
  assert.equal(parseLayoutJson({ kernelPhysBase: 2097152 }).kernelPhysBase, 0x20_0000n);
  assert.deepEqual(parseLayoutJson(layoutToJson(DEFAULT_LAYOUT_CONFIG)), DEFAULT_LAYOUT_CONFIG);
  assert.equal(deriveLayout(c).recursiveSlot, 300);
});

Deno.test("project: a layout file with an unknown or mistyped field is refused by name", () => {
  assert.throws(() => parseLayoutJson({ recursiveSlott: 300 }), /unknown field 'recursiveSlott'/);
  assert.throws(() => parseLayoutJson({ recursiveSlot: "300" }), /'recursiveSlot' must be an int/);
  assert.throws(() => parseLayoutJson({ kernelPhysBase: "1 MiB" }), /must be an address/);
  assert.throws(() => parseLayoutJson({ kernelPhysBase: 2 ** 60 }), /must be an address/);
  assert.throws(() => parseLayoutJson([]), ProjectError);
});

Deno.test("project: a machine table is checked and replaces the toolchain's", () => {
  const table = parseConfigsJson([
    { name: "small", description: "d", machine: "microvm", memory: "64M", smp: 2 },
    { name: "big", description: "d", machine: "q35", memory: "1G", cpu: "max" },
  ]);
  // Without microvm in the table, the first entry is the default.
  assert.deepEqual(selectConfigs(undefined, table).map((c) => c.name), ["small"]);
  assert.deepEqual(selectConfigs("all", table).map((c) => c.name), ["small", "big"]);
  assert.throws(() => selectConfigs("pc", table), /unknown configuration 'pc' \(known: small, big/);
  assert.equal(selectConfigs(undefined)[0], CONFIGS.find((c) => c.name === "microvm"));
  const one = { description: "d", machine: "pc", memory: "64M" };
  assert.throws(() => parseConfigsJson([]), /non-empty/);
  assert.throws(() => parseConfigsJson([{ ...one, name: "all" }]), /reserved/);
  assert.throws(() => parseConfigsJson([{ ...one, name: "a,b" }]), /comma/);
  assert.throws(() => parseConfigsJson([{ ...one, name: "x" }, { ...one, name: "x" }]), /twice/);
  assert.throws(() => parseConfigsJson([{ name: "x", machine: "pc" }]), /'description'/);
  assert.throws(() => parseConfigsJson([{ ...one, name: "x", smp: 0 }]), /'smp'/);
});

Deno.test("project: a project file has four optional path keys", () => {
  assert.deepEqual(parseProjectFile({ kernel: "src/kernel" }), { kernel: "src/kernel" });
  assert.throws(() => parseProjectFile({ kernel_dir: "k" }), /unknown key 'kernel_dir'/);
  assert.throws(() => parseProjectFile({ build: 3 }), /'build' must be a path/);
});

Deno.test("project: paths are relative to the file; the root holds the kernel", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await Deno.mkdir(join(dir, "repo/src/kernel"), { recursive: true });
    await Deno.mkdir(join(dir, "repo/sub/deeper"), { recursive: true });
    await Deno.mkdir(join(dir, "elsewhere/kernel"), { recursive: true });
    const file = join(dir, "repo", PROJECT_FILE);
    await Deno.writeTextFile(
      file,
      JSON.stringify({ kernel: "src/kernel", build: "out", layout: "layout.json" }),
    );
    await Deno.writeTextFile(join(dir, "repo/layout.json"), JSON.stringify({ heapSlot: 386 }));
    const p = await loadProject(file);
    assert.equal(p.root, join(dir, "repo"));
    assert.equal(p.kernelDir, "src/kernel");
    assert.equal(p.buildDir, join(dir, "repo/out"));
    assert.equal(p.layout.heapSlot, 386);
    assert.equal(p.configs, CONFIGS);
    await checkKernelSources(p);

    // Found from a subdirectory.
    const found = await findProject(join(dir, "repo/sub/deeper"));
    assert.equal(found.file, file);

    // Kernel sources outside the file's directory: the root is theirs.
    const other = join(dir, "repo/sub", PROJECT_FILE);
    await Deno.writeTextFile(other, JSON.stringify({ kernel: "../../elsewhere/kernel" }));
    const outside = await loadProject(other);
    assert.equal(outside.root, join(dir, "elsewhere"));
    assert.equal(outside.kernelDir, "kernel");
    assert.equal(outside.buildDir, join(dir, "repo/sub/build"));

    // No file: the defaults for the directory, and a clear error if it has no kernel.
    const none = await findProject(join(dir, "elsewhere"));
    assert.equal(none.file, null);
    assert.equal(none.kernelDir, "kernel");
    await checkKernelSources(none);
    const empty = await loadProject(null, join(dir, "repo/sub/deeper"));
    await assert.rejects(checkKernelSources(empty), /kernel sources not found: .*no ouroboros/);
    await Deno.writeTextFile(file, "{ kernel: ");
    await assert.rejects(loadProject(file), /is not JSON/);
  } finally {
    await cleanup();
  }
});

Deno.test("project: --project is taken from anywhere before --", () => {
  assert.deepEqual(splitProjectOption(["test", "--project", "p.json", "--filter", "x"]), {
    file: "p.json",
    rest: ["test", "--filter", "x"],
  });
  assert.deepEqual(splitProjectOption(["--project=q.json", "build"]), {
    file: "q.json",
    rest: ["build"],
  });
  assert.deepEqual(splitProjectOption(["start", "--", "--project"]).rest, [
    "start",
    "--",
    "--project",
  ]);
  assert.throws(() => splitProjectOption(["--project"]), /needs a file/);
});
