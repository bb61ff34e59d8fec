/**
 * ASSERT only checks; MUST does. A kernel built with -DOUROBOROS_NO_ASSERT
 * has every ASSERT compiled out (its condition is never evaluated), so an
 * operation someone put inside an ASSERT vanishes from that build, and the
 * kernel tests, run on it, fail. The normal build keeps its assertions.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { build } from "../tools/build/build.ts";
import { BUILD_DIR, LOG_DIR, ROOT } from "../tools/paths.ts";
import { runKernel } from "../tools/run/run.ts";
import { builtKernel } from "./support.ts";

/** The image's bytes as text, to look for panic messages' format strings. */
async function imageText(elf: string): Promise<string> {
  return new TextDecoder("latin1").decode(await Deno.readFile(elf));
}

Deno.test("kernel: with assertions compiled out, every kernel test still passes", async () => {
  const normal = await imageText((await builtKernel()).elf);
  assert.ok(normal.includes("assertion failed: "), "the normal build checks its assertions");
  assert.ok(normal.includes("operation failed: "), "the normal build has MUST");
  const { elf } = await build({
    root: ROOT,
    outDir: join(BUILD_DIR, "no-assert"),
    extraCFlags: ["-DOUROBOROS_NO_ASSERT"],
  });
  const text = await imageText(elf);
  assert.ok(!text.includes("assertion failed: "), "-DOUROBOROS_NO_ASSERT removes every ASSERT");
  assert.ok(text.includes("operation failed: "), "MUST stays in every build");
  const r = await runKernel({ kernel: elf, logFile: join(LOG_DIR, "kernel-no-assert.log") });
  assert.ok(r.classification.ok, `no-assert kernel: ${r.classification.message}`);
  assert.match(r.classification.message, /^pass: [1-9]\d* passed/);
});
