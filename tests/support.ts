/** Shared helpers for the toolchain's tests. */
import { build, type BuildResult } from "../tools/build/build.ts";
import { join } from "node:path";
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

/** The smallest kernel tree that links: the real boot code and a `main.c` (by default, a kmain that spins). */
export async function smallKernel(
  dir: string,
  mainC = "void kmain(void) { for (;;) { } }\n",
): Promise<void> {
  await Deno.mkdir(join(dir, "kernel/arch/x86_64"), { recursive: true });
  await Deno.mkdir(join(dir, "kernel/include"), { recursive: true });
  await Deno.copyFile(
    join(ROOT, "kernel/arch/x86_64/boot.asm"),
    join(dir, "kernel/arch/x86_64/boot.asm"),
  );
  await Deno.writeTextFile(join(dir, "kernel/main.c"), mainC);
}
