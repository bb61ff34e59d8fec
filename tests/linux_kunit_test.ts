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
import { assertSameAsKunitParse, kunitVerdicts } from "./kunit_compare.ts";
import { BUILD_DIR, ROOT } from "../tools/paths.ts";

const requested = linuxKunitRequested();

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
        await Deno.mkdir(join(BUILD_DIR, "reports"), { recursive: true });
        const append = ["console=ttyS0", "kunit_shutdown=reboot"];
        if (c.glob !== null) append.push(`kunit.filter_glob=${c.glob}`);
        const r = await run(Deno.execPath(), [
          "run",
          "-A",
          "tools/test.ts",
          "--kernel-only",
          // An i440FX PC, as kunit.py's x86_64 QEMU configuration: Debian's 6.1 hangs on
          // microvm after "tsc: Unable to calibrate against PIT" (no PIT/HPET reference there).
          "--config",
          "pc",
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
        const reportFile = join(BUILD_DIR, "reports", `linux-kunit-${c.name}.json`);
        const report = JSON.parse(await Deno.readTextFile(reportFile)) as KernelReport;
        assert.equal(report.summary.ok, c.ok, `${r.stdout}\n${r.stderr}`);
        assert.equal(r.code, c.ok ? 0 : 1);
        const log = join(BUILD_DIR, "logs", `linux-kunit-${c.name}`, "kernel-pc.log");
        const json = join(BUILD_DIR, "reports", `linux-kunit-${c.name}-kunit.json`);
        const counts = await assertSameAsKunitParse(kunitPy, log, report, json);
        const theirs = kunitVerdicts(JSON.parse(await Deno.readTextFile(json)));
        assert.ok(counts.total > 10, `only ${counts.total} tests ran`);
        if (!c.ok) assert.equal(theirs.get("example.example_ouroboros_fail_test"), "FAIL");
        console.error(`linux-kunit ${c.name}: ${JSON.stringify(counts)} (kunit.py parse = ours)`);
      });
    }
  },
});
