/** Shared helpers for the toolchain's tests. */
import { build, type BuildResult } from "../tools/build.ts";
import { ROOT } from "../tools/paths.ts";

let built: Promise<BuildResult> | undefined;

/** The project's kernel, built once per test process (incrementally). */
export function builtKernel(): Promise<BuildResult> {
  built ??= build({ root: ROOT });
  return built;
}

/** A fresh temporary directory, removed by the returned cleanup. */
export async function tempDir(prefix = "ouroboros-test-"): Promise<[string, () => Promise<void>]> {
  const dir = await Deno.makeTempDir({ prefix });
  return [dir, () => Deno.remove(dir, { recursive: true })];
}
