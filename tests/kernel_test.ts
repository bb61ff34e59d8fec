/**
 * The kernel's own tests, as Deno tests. Under `deno task test` the runner
 * has already built the kernel, checked its boot page tables with the
 * host-side walker and made the selected runs; its report
 * (OUROBOROS_KERNEL_REPORT) is presented here. Run on its own (`deno test
 * tests/kernel_test.ts`), this file does the same itself: build, check, and
 * boot the default configuration once.
 */
import { ROOT } from "../tools/paths.ts";
import { DEFAULT_CONFIG, getConfig } from "../tools/run/configs.ts";
import { registerReport } from "../tools/app/deno_steps.ts";
import { runKernelTests } from "../tools/run/matrix.ts";
import type { KernelReport } from "../tools/core/record.ts";
import { handedOverReport } from "./support.ts";

/** Silence after which a kernel run is declared hung (ms); OUROBOROS_SILENCE_MS overrides. */
const SILENCE_MS = Number(Deno.env.get("OUROBOROS_SILENCE_MS") ?? 10_000);

async function report(): Promise<KernelReport> {
  const handed = await handedOverReport();
  if (handed !== null) return handed;
  return runKernelTests({
    root: Deno.env.get("OUROBOROS_ROOT") ?? ROOT,
    outDir: Deno.env.get("OUROBOROS_BUILD_DIR"),
    configs: [getConfig(DEFAULT_CONFIG)],
    filter: null,
    shard: null,
    retries: 0,
    deadlines: { silenceMs: SILENCE_MS },
  });
}

registerReport(await report());
