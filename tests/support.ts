/** Shared helpers for the toolchain's tests. */
import { build, type BuildResult } from "../tools/build.ts";
import { ROOT } from "../tools/paths.ts";

let built: Promise<BuildResult> | undefined;

/**
 * The kernel under test, built once per test process (incrementally): this
 * repository's, or the tree at OUROBOROS_ROOT built into OUROBOROS_BUILD_DIR
 * (how the end-to-end tests point the suite at a kernel of their own).
 */
export function builtKernel(): Promise<BuildResult> {
  const root = Deno.env.get("OUROBOROS_ROOT") ?? ROOT;
  const outDir = Deno.env.get("OUROBOROS_BUILD_DIR");
  built ??= build({ root, outDir });
  return built;
}

/** A fresh temporary directory, removed by the returned cleanup. */
export async function tempDir(prefix = "ouroboros-test-"): Promise<[string, () => Promise<void>]> {
  const dir = await Deno.makeTempDir({ prefix });
  return [dir, () => Deno.remove(dir, { recursive: true })];
}
