/**
 * The kernel's own tests, as Deno tests. Under `deno task test` the runner
 * has already built the kernel, checked its boot page tables with the
 * host-side walker and made the selected runs; its report
 * (OUROBOROS_KERNEL_REPORT) is presented here. Run on its own (`deno test
 * tests/kernel_test.ts`), this file does the same itself: build, check, and
 * boot the default configuration once. Each run's serial log is also held
 * against QEMU: the LAPIC timer rate the kernel calibrated must be QEMU's.
 */
import { join } from "node:path";
import { ROOT } from "../tools/paths.ts";
import { DEFAULT_CONFIG, getConfig } from "../tools/run/configs.ts";
import { registerReport } from "../tools/app/deno_steps.ts";
import { runKernelTests } from "../tools/run/matrix.ts";
import type { KernelReport, RunRecord } from "../tools/core/record.ts";
import { handedOverReport } from "./support.ts";

const root = Deno.env.get("OUROBOROS_ROOT") ?? ROOT;

/** Silence after which a kernel run is declared hung (ms); OUROBOROS_SILENCE_MS overrides. */
const SILENCE_MS = Number(Deno.env.get("OUROBOROS_SILENCE_MS") ?? 10_000);

async function report(): Promise<KernelReport> {
  const handed = await handedOverReport();
  if (handed !== null) return handed;
  return runKernelTests({
    root,
    outDir: Deno.env.get("OUROBOROS_BUILD_DIR"),
    configs: [getConfig(DEFAULT_CONFIG)],
    filter: null,
    shard: null,
    retries: 0,
    deadlines: { silenceMs: SILENCE_MS },
  });
}

/** Our kernel's boot line with the calibrated LAPIC timer rate (kernel/arch/x86_64/timer.c). */
const LAPIC_PREFIX = "# timer: LAPIC timer ";
const LAPIC_LINE = /^# timer: LAPIC timer (\d+) Hz \(divided by (\d+)\)/;

/** How far the calibrated rate may lie from QEMU's (PIT reads, TCG jitter: 62.493-62.505 MHz seen). */
const LAPIC_TOLERANCE = 0.01;

/** The run's serial log, or null without one (a replayed run, a removed file). */
function serialLog(run: RunRecord): string | null {
  if (run.log === null) return null;
  try {
    // Read now: a later boot into the same log directory would replace the file.
    return Deno.readTextFileSync(join(root, run.log));
  } catch {
    return null;
  }
}

/**
 * The kernel's clocks, against a reference outside the guest. The timer
 * test compares the LAPIC timer with the TSC clock, so both wrong by one
 * factor (a calibration error) pass it. Under TCG without icount QEMU's
 * APIC timer counts 1 GHz of virtual-clock nanoseconds through the divide,
 * so the rate the kernel calibrated against the PIT must be 1e9 / divide.
 * KVM's APIC runs on the host's bus clock, and icount warps the virtual
 * clock: those runs are skipped, saying so. A log without the line (another
 * kernel, or a boot that died before its timer: the run says why) has no
 * such test, so the counts stay the kernel report's.
 */
function registerLapicRate(run: RunRecord): void {
  const line = serialLog(run)?.split("\n").map((l) => l.replace(/\r$/, "")).find((l) =>
    l.startsWith(LAPIC_PREFIX)
  );
  if (line === undefined) return;
  const name = `${run.label}: the calibrated LAPIC timer rate is QEMU's (1 GHz / divide, +-1 %)`;
  const command = run.target.command;
  const accel = command.includes("-accel") ? command[command.indexOf("-accel") + 1] : "unknown";
  let skip: string | null = null;
  if (run.target.kind !== "qemu") skip = `not a QEMU run (${run.target.kind})`;
  else if (accel !== "tcg") skip = `accelerator ${accel}, not TCG: the APIC runs on the host`;
  else if (command.includes("-icount")) skip = "-icount warps QEMU's virtual clock";
  if (skip !== null) {
    Deno.test({ name: `${name} [skipped: ${skip}]`, ignore: true, fn: () => {} });
    return;
  }
  Deno.test(name, () => {
    const m = LAPIC_LINE.exec(line);
    if (m === null) {
      throw new Error(`${run.log}: '${line}' is not '${LAPIC_PREFIX}N Hz (divided by D)'`);
    }
    const hz = Number(m[1]), divide = Number(m[2]);
    const expected = 1e9 / divide;
    const off = hz / expected - 1;
    if (Math.abs(off) > LAPIC_TOLERANCE) {
      throw new Error(
        `${run.log}: LAPIC timer calibrated at ${hz} Hz with divide ${divide}; ` +
          `QEMU's APIC timer runs at ${expected} Hz (${(off * 100).toFixed(2)} % off)`,
      );
    }
  });
}

const kernelReport = await report();
registerReport(kernelReport);
for (const run of kernelReport.runs) registerLapicRate(run);
