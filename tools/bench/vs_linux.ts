/**
 * `deno task bench --vs-linux`'s hooks in tools/bench.ts: start Linux's run
 * (linux.ts), then pair its figures with ours (compare.ts), print the
 * side-by-side table and give what results.json adds.
 */
import {
  checkCalibration,
  compare,
  type CompareRow,
  formatCompare,
  type LinuxRun,
  TARGET_RATIO,
} from "./compare.ts";
import { type LinuxKernel, runLinuxBench } from "./linux.ts";

/** What results.json holds besides our rows. */
export interface LinuxSide {
  linux: { version: string; calibration: LinuxRun["calibration"]; samples: LinuxRun["samples"] };
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
): LinuxSide {
  console.log(`\nLinux ${l.kernel.version} (${l.kernel.vmlinuz}), serial log ${l.log}`);
  console.log(checkCalibration(l.run.calibration));
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
    linux: {
      version: l.kernel.version,
      calibration: l.run.calibration,
      samples: l.run.samples,
    },
    comparison: rows,
  };
}
