/**
 * Test helper: a runner report and `kunit.py parse` (Linux's kunit_tool) on
 * the same serial log, as comparable verdicts (`suite.test` → PASS, FAIL,
 * SKIP, ERROR) and counts.
 */
import assert from "node:assert/strict";
import type { KernelReport } from "../tools/core/record.ts";

interface KunitGroup {
  name: string;
  sub_groups: KunitGroup[];
  test_cases: { name: string; status: string }[];
}

/** kunit.py's JSON as `suite.test` → PASS/FAIL/SKIP/ERROR (leaves named after their parent). */
export function kunitVerdicts(group: KunitGroup, prefix = ""): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of group.test_cases) out.set(`${prefix}${c.name}`, c.status);
  for (const g of group.sub_groups) {
    for (const [k, v] of kunitVerdicts(g, `${prefix}${g.name}.`)) out.set(k, v);
  }
  return out;
}

const STATUS: Record<string, string> = { pass: "PASS", fail: "FAIL", skip: "SKIP", error: "ERROR" };

/** A runner report's tests in the same terms. */
export function ourVerdicts(report: KernelReport): Map<string, string> {
  const out = new Map<string, string>();
  for (const run of report.runs) {
    for (const s of run.suites) {
      for (const t of s.tests) out.set(t.fullName, STATUS[t.status] ?? t.status.toUpperCase());
    }
  }
  return out;
}

/** kunit.py's "Ran N tests: passed: X, failed: Y, ..." counts. */
export function kunitCounts(stdout: string): Record<string, number> {
  // deno-lint-ignore no-control-regex
  const plain = stdout.replace(/\x1b\[[0-9;]*m/g, "");
  const m = /Ran (\d+) tests?: ([^\n]*)/.exec(plain);
  assert.ok(m, `no summary in kunit.py parse's output:\n${plain}`);
  const counts: Record<string, number> = { total: Number(m[1]) };
  for (const part of m[2].split(",")) {
    const [k, v] = part.trim().split(/:\s*/);
    counts[k] = Number(v);
  }
  return counts;
}

let interpreter: Promise<string> | undefined;

/**
 * The Python interpreter `python3` on PATH runs, asked once per test process.
 * `python3` may be a version manager's shim (pyenv's starts ~10 bash
 * processes, ~0.6 CPU-s, before Python itself, every time); later calls go
 * to the interpreter it chose. `python3` itself if it cannot say.
 */
function python(): Promise<string> {
  interpreter ??= new Deno.Command("python3", {
    args: ["-c", "import sys; print(sys.executable)"],
    stdin: "null",
  }).output().then(
    (out) => {
      const path = new TextDecoder().decode(out.stdout).trim();
      return out.code === 0 && path.startsWith("/") ? path : "python3";
    },
    () => "python3",
  );
  return interpreter;
}

/**
 * Run `kunit.py parse` on `log` (absolute: kunit.py changes directory) and
 * assert that its exit status, per-test verdicts and counts equal the
 * report's. Returns kunit.py's counts.
 */
export async function assertSameAsKunitParse(
  kunitPy: string,
  log: string,
  report: KernelReport,
  json: string,
): Promise<Record<string, number>> {
  const out = await new Deno.Command(await python(), {
    // --json takes its file after '=' (its value is optional).
    args: [kunitPy, "parse", `--json=${json}`, log],
    stdin: "null",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, report.summary.ok ? 0 : 1, `kunit.py parse's exit:\n${stdout}${stderr}`);
  const theirs = kunitVerdicts(JSON.parse(await Deno.readTextFile(json)));
  assert.deepEqual(
    [...ourVerdicts(report)].sort(),
    [...theirs].sort(),
    "per-test verdicts differ from kunit.py parse's",
  );
  const counts = kunitCounts(stdout);
  const s = report.summary;
  assert.deepEqual(
    { passed: s.passed, failed: s.failed, skipped: s.skipped },
    {
      passed: counts.passed ?? 0,
      failed: (counts.failed ?? 0) + (counts.crashed ?? 0),
      skipped: counts.skipped ?? 0,
    },
    "counts differ from kunit.py parse's",
  );
  return counts;
}
