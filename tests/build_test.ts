import assert from "node:assert/strict";
import { join } from "node:path";
import { build, BuildError } from "../tools/build/build.ts";
import { ROOT } from "../tools/paths.ts";
import { builtKernel, smallKernel, tempDir } from "./support.ts";

Deno.test("build: a second build with nothing changed compiles and links nothing", async () => {
  await builtKernel();
  const again = await build({ root: ROOT });
  assert.deepEqual(again.compiled, []);
  assert.equal(again.linked, false);
});

Deno.test("build: a changed header recompiles what includes it, and only that", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await smallKernel(dir);
    await Deno.writeTextFile(join(dir, "kernel/include/probe_dep.h"), "#define PROBE 1\n");
    await Deno.writeTextFile(
      join(dir, "kernel/probe_dep.c"),
      '#include "probe_dep.h"\nint probe_value(void) { return PROBE; }\n',
    );
    await build({ root: dir });
    await Deno.writeTextFile(join(dir, "kernel/include/probe_dep.h"), "#define PROBE 2\n");
    const r = await build({ root: dir });
    assert.deepEqual(r.compiled, ["kernel/probe_dep.c"]);
    assert.ok(r.linked);
  } finally {
    await cleanup();
  }
});

Deno.test("build: a compiler error names the file and shows the compiler's own output", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await smallKernel(dir);
    await Deno.writeTextFile(
      join(dir, "kernel/broken.c"),
      "int broken(void) { return missing_symbol; }\n",
    );
    const e = await build({ root: dir }).then(() => undefined, (x) => x);
    assert.ok(e instanceof BuildError, String(e));
    assert.equal(e.file, "kernel/broken.c");
    assert.match(e.output, /^kernel\/broken\.c:1:\d+: error: .missing_symbol. undeclared/m);
  } finally {
    await cleanup();
  }
});
