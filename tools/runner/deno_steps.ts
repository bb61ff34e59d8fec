/**
 * Presents a kernel run as Deno tests: one test per kernel suite, named
 * `kernel/<suite>`, with one step per kernel test, so `deno test` filters
 * and reporters (console, JUnit) work on kernel tests. A run that did not
 * end cleanly (panic, triple fault, hang, no TAP, incomplete, QEMU failure)
 * adds one failing test that names the class and the running test.
 */
import type { RunResult } from "./run.ts";
import type { TestResult } from "./tap.ts";

/** The failure text of a kernel test: its YAML diagnostic, readably. */
export function describeFailure(t: TestResult): string {
  const d = t.diagnostic;
  const lines = [`kernel test ${t.fullName} failed`];
  if (d?.message) lines.push(`  message:  ${d.message}`);
  if (d?.expected !== undefined) lines.push(`  expected: ${d.expected}`);
  if (d?.actual !== undefined) lines.push(`  actual:   ${d.actual}`);
  if (d?.at) lines.push(`  at:       ${d.at}`);
  return lines.join("\n");
}

/** An Error whose stack is just its message (the TS stack says nothing about the kernel). */
export function kernelError(message: string): Error {
  const e = new Error(message);
  e.stack = message;
  return e;
}

/** Register the Deno tests for a finished kernel run. `prefix` names the run. */
export function registerKernelRun(run: RunResult, prefix = "kernel"): void {
  for (const suite of run.report.suites) {
    Deno.test(`${prefix}/${suite.name}`, async (t) => {
      for (const test of suite.tests) {
        const skipped = test.skip !== null || test.todo !== null;
        await t.step({
          name: test.name,
          ignore: skipped,
          fn: () => {
            if (!test.ok) throw kernelError(describeFailure(test));
          },
        });
      }
      if (suite.plan && suite.tests.length < suite.plan.count) {
        throw kernelError(
          `suite ${suite.name}: ${suite.tests.length} of ${suite.plan.count} planned results (${run.classification.message})`,
        );
      }
    });
  }
  const c = run.classification;
  if (c.kind !== "pass" && c.kind !== "assertion-failure") {
    const log = run.logFile ? `\nserial log: ${run.logFile}` : "";
    Deno.test(`${prefix}: ${c.kind}${c.test ? ` in ${c.test}` : ""}`, () => {
      throw kernelError([c.message, ...c.details].join("\n") + log);
    });
  }
}
