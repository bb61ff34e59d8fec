/**
 * Linux's KUnit through the runner (opt-in: OUROBOROS_LINUX_KUNIT=1, CI's
 * `linux-kunit` job): Linux built from Debian's linux-source-6.1 by its own
 * `kunit.py build --arch=x86_64` with tests/fixtures/linux-kunit's
 * kunitconfig and a patch that adds a failing test
 * (tools/build/linux_kunit.ts; cached outside the repository), then run
 * with `deno task test --image bzImage --append ...` as kunit.py runs it
 * (`console=ttyS0 kunit_shutdown=reboot`, `kunit.filter_glob`), twice:
 * - passing: the suites matching `*-test` (the failing test is elsewhere);
 * - failing: every suite, the patched example suite's failure included.
 * Each time, the runner's verdict, per-test statuses and counts must equal
 * `kunit.py parse`'s on the very serial log the runner saved.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildLinuxKunit, KUNIT_FIXTURES } from "../tools/build/linux_kunit.ts";
import { LINUX_KUNIT_NOT_REQUESTED, linuxKunitRequested } from "../tools/app/requested.ts";
import type { KernelReport } from "../tools/core/record.ts";
import { BUILD_DIR, ROOT } from "../tools/paths.ts";

const requested = linuxKunitRequested();

interface KunitGroup {
  name: string;
  sub_groups: KunitGroup[];
  test_cases: { name: string; status: string }[];
}

/** kunit.py's JSON as `suite.test` → PASS/FAIL/SKIP/ERROR (leaves named after their parent). */
function kunitVerdicts(group: KunitGroup, prefix = ""): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of group.test_cases) out.set(`${prefix}${c.name}`, c.status);
  for (const g of group.sub_groups) {
    for (const [k, v] of kunitVerdicts(g, `${prefix}${g.name}.`)) out.set(k, v);
  }
  return out;
}

const STATUS: Record<string, string> = { pass: "PASS", fail: "FAIL", skip: "SKIP", error: "ERROR" };

function ourVerdicts(report: KernelReport): Map<string, string> {
  const out = new Map<string, string>();
  for (const run of report.runs) {
    for (const s of run.suites) {
      for (const t of s.tests) out.set(t.fullName, STATUS[t.status] ?? t.status.toUpperCase());
    }
  }
  return out;
}

/** kunit.py's "Ran N tests: passed: X, failed: Y, ..." counts. */
function kunitCounts(stdout: string): Record<string, number> {
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

async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const t0 = performance.now();
  const out = await new Deno.Command(cmd, { args, env, cwd: ROOT, stdin: "null" }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: out.code,
    stdout: text(out.stdout),
    stderr: text(out.stderr),
    ms: performance.now() - t0,
  };
}

Deno.test({
  name: requested
    ? "Linux KUnit through --image: verdicts and counts equal kunit.py parse's, pass and fail"
    : `Linux KUnit through --image [skipped: ${LINUX_KUNIT_NOT_REQUESTED}]`,
  ignore: !requested,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const built = await buildLinuxKunit({ ...KUNIT_FIXTURES, log: (l) => console.error(l) });
    console.error(
      `linux-kunit: ${built.cached ? "cached" : "built"} ${built.image} ` +
        `(build ${(built.buildMs / 1000).toFixed(0)} s)`,
    );
    const kunitPy = join(built.source, "tools/testing/kunit/kunit.py");
    const cases = [
      { name: "passing", glob: "*-test", ok: true },
      { name: "failing", glob: null, ok: false },
    ];
    for (const c of cases) {
      await t.step(`${c.name} run`, async () => {
        // Under build/: CI keeps build/logs and build/reports as artifacts.
        const dir = join(BUILD_DIR, "linux-kunit", c.name);
        await Deno.remove(dir, { recursive: true }).catch(() => {});
        await Deno.mkdir(dir, { recursive: true });
        const append = ["console=ttyS0", "kunit_shutdown=reboot"];
        if (c.glob !== null) append.push(`kunit.filter_glob=${c.glob}`);
        const r = await run(Deno.execPath(), [
          "run",
          "-A",
          "tools/test.ts",
          "--kernel-only",
          "--image",
          built.image,
          "--append",
          append.join(" "),
          "--boot-timeout",
          "3m",
          "--silence-timeout",
          "2m",
          "--json",
          join(BUILD_DIR, "reports", `linux-kunit-${c.name}.json`),
        ], {
          OUROBOROS_LOG_DIR: join(BUILD_DIR, "logs", `linux-kunit-${c.name}`),
          OUROBOROS_REPORT_DIR: join(BUILD_DIR, "reports", `linux-kunit-${c.name}`),
        });
        console.error(
          `linux-kunit ${c.name}: runner ${(r.ms / 1000).toFixed(1)} s, exit ${r.code}`,
        );
        const report = JSON.parse(
          await Deno.readTextFile(join(dir, "report.json")),
        ) as KernelReport;
        assert.equal(report.summary.ok, c.ok, `${r.stdout}\n${r.stderr}`);
        assert.equal(r.code, c.ok ? 0 : 1);
        const log = join(BUILD_DIR, "logs", `linux-kunit-${c.name}`, "kernel-microvm.log");
        // --json takes its file after '=' (its value is optional); kunit.py chdirs: absolute paths.
        const k = await run("python3", [
          kunitPy,
          "parse",
          `--json=${join(dir, "kunit.json")}`,
          log,
        ]);
        assert.equal(k.code, c.ok ? 0 : 1, `kunit.py parse exit:\n${k.stdout}${k.stderr}`);
        const theirs = kunitVerdicts(JSON.parse(await Deno.readTextFile(join(dir, "kunit.json"))));
        const ours = ourVerdicts(report);
        assert.deepEqual(
          [...ours].sort(),
          [...theirs].sort(),
          "per-test verdicts differ from kunit.py parse's",
        );
        const counts = kunitCounts(k.stdout);
        const s = report.summary;
        assert.deepEqual(
          { passed: s.passed, failed: s.failed, skipped: s.skipped },
          {
            passed: counts.passed ?? 0,
            failed: (counts.failed ?? 0) + (counts.crashed ?? 0),
            skipped: counts.skipped ?? 0,
          },
        );
        assert.ok(counts.total > 10, `only ${counts.total} tests ran`);
        if (!c.ok) assert.equal(theirs.get("example.example_ouroboros_fail_test"), "FAIL");
        console.error(`linux-kunit ${c.name}: ${JSON.stringify(counts)} (kunit.py parse = ours)`);
      });
    }
  },
});
