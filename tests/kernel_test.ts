/**
 * The kernel's own tests: build (incrementally), check the boot tables with
 * the host-side walker, and only then boot the kernel and report each kernel
 * test as a Deno test step.
 */
import { join } from "node:path";
import { BuildError } from "../tools/build.ts";
import { parseElf } from "../tools/elf.ts";
import { checkBootTables } from "../tools/image_check.ts";
import { LOG_DIR } from "../tools/paths.ts";
import { kernelError, registerKernelRun } from "../tools/runner/deno_steps.ts";
import { runKernel } from "../tools/runner/run.ts";
import { builtKernel } from "./support.ts";

/** Silence after which a kernel run is declared hung (ms); OUROBOROS_SILENCE_MS overrides. */
const SILENCE_MS = Number(Deno.env.get("OUROBOROS_SILENCE_MS") ?? 10_000);

const built = await builtKernel().then((r) => r, (e) => e as Error);
if (built instanceof Error) {
  const text = built instanceof BuildError
    ? `build failure in ${built.file}\n${built.output}`
    : `build failure: ${built.message}`;
  Deno.test("kernel: build", () => {
    throw kernelError(text);
  });
} else {
  const problems = checkBootTables(parseElf(await Deno.readFile(built.elf)), built.layout);
  Deno.test("kernel: boot page tables match the layout (host-side walker)", () => {
    if (problems.length) throw kernelError(problems.join("\n"));
  });
  if (problems.length === 0) {
    const run = await runKernel({
      kernel: built.elf,
      logFile: join(LOG_DIR, "kernel.log"),
      silenceTimeoutMs: SILENCE_MS,
    });
    registerKernelRun(run);
  }
}
