/**
 * What the report keeps of one attempt of a run (core/record.ts's
 * AttemptInput): its verdict, its results by suite, its crash symbolized.
 * Apart from the matrix (run/matrix.ts) so that reading a saved log
 * (`deno task parse`) loads neither the build nor the machine table.
 */
import { dirname, join, relative } from "node:path";
import type { Classification } from "../core/classify.ts";
import type { AttemptInput, CrashRecord } from "../core/record.ts";
import {
  annotateDump,
  crashAddresses,
  symbolizeCrash,
  symbolizeUserKills,
} from "../host/symbolize.ts";
import type { RunResult } from "./run.ts";

/** The crash of a run in source terms (null if it did not bail out). */
async function crashRecord(
  c: Classification,
  elf: string,
  root: string,
): Promise<CrashRecord | null> {
  if (c.bailOut === null) return null;
  const addresses = crashAddresses(c.bailOut.dump, c.bailOut.reason);
  try {
    const frames = await symbolizeCrash(addresses, elf, { root });
    return {
      reason: c.bailOut.reason,
      dump: annotateDump(c.details, frames),
      frames,
    };
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return {
      reason: c.bailOut.reason,
      dump: [...c.details, `(not symbolized: ${why})`],
      frames: [],
    };
  }
}

/**
 * What the report keeps of one run: verdict, results by suite (a top-level
 * test point without a subtest is a suite of one), the crash symbolized
 * against `elf` (not symbolized when null), the log relative to `root`.
 */
export async function attemptInput(
  r: RunResult,
  elf: string | null,
  root: string,
): Promise<AttemptInput> {
  const c = r.classification;
  const crash = elf !== null
    ? await crashRecord(c, elf, root)
    : c.bailOut === null
    ? null
    : { reason: c.bailOut.reason, dump: c.details, frames: [] };
  const suites = r.report.suites.map((s) => ({
    name: s.name,
    planned: s.hasSubtest ? s.plan?.count ?? null : null,
    complete: s.planComplete,
    tests: s.hasSubtest ? s.tests : (s.result ? [s.result] : []),
    notRun: s.notRun,
    notRunRanges: s.notRunRanges,
  }));
  // A killed user test program: its rip in its own source (build/user/tests/X.elf).
  if (elf !== null) {
    await symbolizeUserKills(suites, (x) => join(dirname(elf), "user", "tests", `${x}.elf`), {
      root,
    }).catch(() => {});
  }
  return {
    classification: c,
    suites,
    suitesNotRun: r.report.suitesNotRun,
    crash,
    deadline: r.timeout,
    exit: r.exit,
    log: r.logFile === null ? null : relative(root, r.logFile),
    durationMs: r.durationMs,
  };
}
