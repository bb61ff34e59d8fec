/**
 * `deno task bench --vs-linux`'s hooks in tools/bench.ts: start Linux's run
 * (run.ts), then pair its figures with ours (compare.ts), print the
 * side-by-side table and give what results.json adds.
 */
import {
  checkCalibration,
  compare,
  type CompareRow,
  formatCompare,
  type LinuxRun,
  parseOurCalibration,
  TARGET_RATIO,
} from "../compare.ts";
import { type LinuxKernel, runLinuxBench } from "./run.ts";

/**
 * Linux's figures as rows of the same shape as ours (results.json's `ours`),
 * named by the op of ours they pair with, so a chart or a ratio keyed by
 * op, page size and region finds both sides; `linux_op` keeps Linux's name.
 */
export interface LinuxFigure {
  op: string;
  linux_op: string;
  page_size: number;
  region_bytes: number;
  instructions_per_page: number;
}

/** What results.json holds besides our rows. */
export interface LinuxSide {
  linux: LinuxFigure[];
  linux_kernel: {
    version: string;
    calibration: LinuxRun["calibration"];
    samples: LinuxRun["samples"];
  };
  comparison: CompareRow[];
}

/** Start Linux's side; errors surface when it is awaited. */
export function startLinux(
  outDir: string,
): Promise<{ kernel: LinuxKernel; run: LinuxRun; log: string }> {
  return runLinuxBench({ outDir });
}

/** Check the calibration, print the table, and return results.json's Linux part. */
export function finishLinux(
  l: { kernel: LinuxKernel; run: LinuxRun; log: string },
  ours: readonly { op: string; region_bytes: number; instructions_per_page: number }[],
  ourLog: readonly string[],
): LinuxSide {
  console.log(`\nLinux ${l.kernel.version} (${l.kernel.vmlinuz}), serial log ${l.log}`);
  console.log(checkCalibration(l.run.calibration));
  const mine = parseOurCalibration(ourLog);
  if (mine === null) throw new Error("our bench printed no calibration line (bin/bench)");
  console.log(checkCalibration({ ...mine, monotonic_ns: 0 }, 0.02, "ours"));
  const rows = compare(ours, l.run.samples);
  console.log(formatCompare(rows));
  const measured = rows.filter((r) => r.ratio !== null);
  const met = measured.filter((r) => (r.ratio ?? Infinity) <= TARGET_RATIO).length;
  console.log(
    `target ours/Linux <= ${TARGET_RATIO}: met by ${met} of ${measured.length} rows` +
      (rows.length > measured.length
        ? `; ${rows.length - measured.length} not available on our side`
        : ""),
  );
  return {
    linux: rows.map((r) => ({
      op: r.ours_op,
      linux_op: r.op,
      page_size: r.page_size,
      region_bytes: r.region_bytes,
      instructions_per_page: r.linux,
    })),
    linux_kernel: {
      version: l.kernel.version,
      calibration: l.run.calibration,
      samples: l.run.samples,
    },
    comparison: rows,
  };
}
