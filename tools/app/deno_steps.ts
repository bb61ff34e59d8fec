/**
 * Presents a kernel report (record.ts) as Deno tests, so `deno test`
 * filters and reporters (console, JUnit) work on kernel tests: one test per
 * kernel suite of each run, named `<label>/<suite>` (`kernel/layout`, or
 * `kernel[q35]/layout` when several configurations ran), with one step per
 * kernel test. A run that did not end cleanly adds one failing test naming
 * the class and the running test; a build failure and the pre-boot checks
 * are tests of their own.
 *
 * Counting is the same as {@link countReport}'s: a flaky test is a passing
 * step whose name ends in {@link FLAKY_MARK} (app/test_command.ts counts those as
 * flaky, not passed).
 */
import { runFailureLines } from "./console.ts";
import {
  bucketOf,
  type KernelReport,
  runEntry,
  type RunRecord,
  type TestRecord,
} from "../core/record.ts";

/** Appended to the name of a test that passed only on a retry. */
export const FLAKY_MARK = " [flaky]";
/**
 * Ends the name of an ignored test or step that stands for planned tests
 * that never reported; their number comes before `not run: `
 * (`2 not run: 4-5 of 5 [not run]`).
 */
export const NOT_RUN_MARK = " [not run]";

/** How many tests a not-run test or step stands for (0 if `name` is not one). */
export function notRunCount(name: string): number {
  if (!name.endsWith(NOT_RUN_MARK)) return 0;
  const m = /(\d+) not run: /.exec(name.slice(Math.max(0, name.lastIndexOf(" not run: ") - 24)));
  return m === null ? 0 : Number(m[1]);
}

/** The failure text of a kernel test: its YAML diagnostic, readably. */
export function describeFailure(t: TestRecord): string {
  const d = t.diagnostic;
  const lines = [`kernel test ${t.fullName} failed${t.status !== "fail" ? ` (${t.status})` : ""}`];
  if (t.reason) lines.push(`  reason:   ${t.reason}`);
  if (d?.message) lines.push(`  message:  ${d.message}`);
  if (d?.expected !== undefined) lines.push(`  expected: ${d.expected}`);
  if (d?.actual !== undefined) lines.push(`  actual:   ${d.actual}`);
  if (d?.at) lines.push(`  at:       ${d.at}`);
  const log = t.log ?? [];
  if (log.length > 0) lines.push("  log:", ...log.map((l) => `    ${l}`));
  return lines.join("\n");
}

/**
 * An Error whose stack is just its text (the TS stack says nothing about the
 * kernel). Its message is the first line: Deno prints the message, then
 * whatever of the stack is not the message, so a multi-line message would
 * be printed twice.
 */
export function kernelError(text: string): Error {
  const e = new Error(text.split("\n", 1)[0]);
  e.stack = text;
  return e;
}

function registerRun(run: RunRecord): void {
  for (const suite of run.suites) {
    Deno.test(`${run.label}/${suite.name}`, async (t) => {
      for (const test of suite.tests) {
        const bucket = bucketOf(test.status);
        await t.step({
          name: test.name + (test.status === "flaky" ? FLAKY_MARK : ""),
          ignore: bucket === "skipped",
          fn: () => {
            if (bucket === "failed") throw kernelError(describeFailure(test));
          },
        });
      }
      if (suite.notRun > 0) {
        await t.step({
          name: `${suite.notRun} not run: ${suite.notRunRanges.join(", ")}${NOT_RUN_MARK}`,
          ignore: true,
          fn: () => {},
        });
      } else if (!suite.complete) {
        throw kernelError(
          `suite ${suite.name}: ${suite.tests.length} of ${
            suite.planned ?? "?"
          } planned results (${run.message})`,
        );
      }
    });
  }
  if ((run.suitesNotRun ?? 0) > 0) {
    Deno.test({
      name:
        `${run.label}: ${run.suitesNotRun} not run: planned suites never started${NOT_RUN_MARK}`,
      ignore: true,
      fn: () => {},
    });
  }
  const entry = runEntry(run);
  if (entry === "failed") {
    Deno.test(`${run.label}: ${run.kind}${run.test ? ` in ${run.test}` : ""}`, () => {
      throw kernelError([run.message, ...runFailureLines(run)].join("\n"));
    });
  } else if (entry === "flaky") {
    const why = run.attempts.slice(0, -1).map((a) => `attempt ${a.attempt}: ${a.message}`);
    Deno.test(`${run.label}: passed on attempt ${run.attempts.length}${FLAKY_MARK}`, () => {
      console.log(why.join("\n"));
    });
  }
}

/** Register the Deno tests of a kernel report. */
export function registerReport(report: KernelReport): void {
  if (report.build !== null) {
    const build = report.build;
    Deno.test("kernel: build", () => {
      throw kernelError([build.message, ...build.details].join("\n"));
    });
  }
  for (const check of report.checks) {
    Deno.test(`kernel: ${check.name}`, () => {
      if (!check.ok) throw kernelError(check.details.join("\n"));
    });
  }
  for (const run of report.runs) registerRun(run);
}
