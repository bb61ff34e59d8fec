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

/**
 * The boot line giving the calibrated LAPIC timer rate and its divide
 * (kernel/arch/x86_64/timer.c).
 */
const LAPIC_LINE = /^# timer: LAPIC timer (\d+) Hz \(divided by (\d+)\)/m;

/** How far the calibrated rate may lie from QEMU's (PIT reads, TCG jitter: 62.493-62.505 MHz seen). */
const LAPIC_TOLERANCE = 0.01;

/**
 * The kernel's clocks, against a reference outside the guest. The timer
 * test compares the LAPIC timer with the TSC clock, so both wrong by one
 * factor (a calibration error) pass it. Under TCG without icount QEMU's
 * APIC timer counts 1 GHz of virtual-clock nanoseconds through the divide,
 * so the rate the kernel calibrated against the PIT must be 1e9 / divide.
 * KVM's APIC runs on the host's bus clock, and icount warps the virtual
 * clock: those runs are skipped, saying so.
 */
function registerLapicRate(run: RunRecord): void {
  const name = `${run.label}: the calibrated LAPIC timer rate is QEMU's (1 GHz / divide, +-1 %)`;
  const command = run.target.command;
  const accel = command[command.indexOf("-accel") + 1];
  let skip: string | null = null;
  if (run.target.kind !== "qemu") skip = `not a QEMU run (${run.target.kind})`;
  else if (accel !== "tcg") {
    skip = `accelerator ${accel ?? "unknown"}, not TCG: the APIC runs on the host`;
  } else if (command.includes("-icount")) skip = "-icount warps QEMU's virtual clock";
  else if (run.log === null) skip = "no serial log";
  if (skip !== null || run.log === null) {
    Deno.test({ name: `${name} [skipped: ${skip}]`, ignore: true, fn: () => {} });
    return;
  }
  // Read now: a later boot into the same build directory would replace the file.
  const logPath = join(root, run.log);
  const log = Deno.readTextFileSync(logPath);
  Deno.test(name, () => {
    const m = LAPIC_LINE.exec(log.replaceAll("\r", ""));
    if (m === null) {
      throw new Error(`${logPath}: no '# timer: LAPIC timer N Hz (divided by D)' line`);
    }
    const hz = Number(m[1]), divide = Number(m[2]);
    const expected = 1e9 / divide;
    const off = hz / expected - 1;
    if (Math.abs(off) > LAPIC_TOLERANCE) {
      throw new Error(
        `${logPath}: LAPIC timer calibrated at ${hz} Hz with divide ${divide}; ` +
          `QEMU's APIC timer runs at ${expected} Hz (${(off * 100).toFixed(2)} % off)`,
      );
    }
  });
}

const kernelReport = await report();
registerReport(kernelReport);
for (const run of kernelReport.runs) registerLapicRate(run);
