/**
 * The report and what is made of it: retries and flaky tests, results per
 * configuration, the JSON and JUnit forms, the console, and the promise
 * that the runner's summary line counts exactly what `deno test` counts of
 * the Deno tests presenting the same report. Outcomes are replayed from
 * saved logs through a log target (the runner cannot tell it from a
 * machine), except where QEMU itself is the point.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT } from "../tools/paths.ts";
import { getConfig, type MachineConfig } from "../tools/run/configs.ts";
import { consoleMode, ConsoleReporter } from "../tools/app/console.ts";
import { toJunit } from "../tools/core/junit.ts";
import { bytesSource, LogTarget } from "../tools/machines/log_target.ts";
import { type MatrixOptions, runMatrix } from "../tools/run/matrix.ts";
import type { Target } from "../tools/machines/target.ts";
import {
  countReport,
  type KernelReport,
  REPORT_SCHEMA,
  runEntry,
  type RunRecord,
  summarize,
  summaryLine,
} from "../tools/core/record.ts";
import { countJunit } from "../tools/test.ts";
import { builtKernel, tempDir } from "./support.ts";

const TAP = new URL("./fixtures/tap/", import.meta.url);
/** The replayed runs' logs: this process's, removed when it ends. */
const LOG_DIR = Deno.makeTempDirSync({ prefix: "ouroboros-report-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(LOG_DIR, { recursive: true }));
const tap = (name: string) => Deno.readFileSync(new URL(name, TAP));

/** A target that replays the given logs, one per boot, the last one again after the end. */
function replay(...logs: string[]): LogTarget {
  let boot = 0;
  return new LogTarget(() => {
    const name = logs[Math.min(boot++, logs.length - 1)];
    return bytesSource(tap(name), 7)();
  }, `replay of ${logs.join(", ")}`);
}

/** A machine that prints `log`, then nothing, ever. */
function stuckAfter(log: string): LogTarget {
  return new LogTarget(async function* () {
    yield tap(log);
    await new Promise(() => {});
  }, `${log}, then silence`);
}

/** A lab machine whose console cannot be reached. */
const unreachable: Target = {
  kind: "lab",
  description: "a lab machine on ttyUSB9",
  reportsExit: false,
  start() {
    throw new Error("cannot open /dev/ttyUSB9: no such device");
  },
};

function matrix(
  targets: Record<string, () => Target>,
  extra: Partial<MatrixOptions> = {},
): Promise<RunRecord[]> {
  const configs = Object.keys(targets).map(getConfig);
  const made = new Map<string, Target>();
  return runMatrix({
    elf: "/nonexistent.elf",
    root: ROOT,
    configs,
    filter: null,
    shard: null,
    retries: 0,
    deadlines: {},
    logDir: LOG_DIR,
    logPrefix: crypto.randomUUID(),
    targetOf: (c: MachineConfig) => {
      if (!made.has(c.name)) made.set(c.name, targets[c.name]());
      return made.get(c.name)!;
    },
    ...extra,
  });
}

function report(runs: RunRecord[], build: KernelReport["build"] = null): KernelReport {
  return summarize({
    schema: REPORT_SCHEMA,
    createdAt: new Date(0).toISOString(),
    durationMs: 1,
    kernel: build === null ? "build/kernel.elf" : null,
    build,
    checks: build === null ? [{ name: "a check", ok: true, category: "build", details: [] }] : [],
    selection: {
      configs: [...new Set(runs.map((r) => r.config))],
      filter: null,
      shard: null,
      retries: 0,
      deadlines: { bootMs: 1, silenceMs: 1, runMs: 1 },
    },
    runs,
  });
}

Deno.test("retries: a test that crashed the run, then passed, is flaky, never a plain pass", async () => {
  const [r] = await matrix({ microvm: () => replay("crash-mid-suite.tap", "pass.tap") }, {
    retries: 2,
  });
  assert.equal(r.status, "flaky");
  assert.equal(r.attempts.length, 2, "no third boot after a pass");
  assert.deepEqual(r.attempts.map((a) => a.category), ["crash", "pass"]);
  const byName = new Map(r.suites.flatMap((s) => s.tests).map((t) => [t.fullName, t]));
  assert.equal(byName.get("layout.selfmap")?.status, "flaky");
  assert.deepEqual(byName.get("layout.selfmap")?.attempts, ["crash", "pass"]);
  assert.equal(byName.get("layout.constants")?.status, "pass");
  const counts = countReport(report([r]));
  assert.deepEqual(counts, { passed: 3, failed: 0, skipped: 1, flaky: 1, notRun: 0 });
  assert.equal(summaryLine(counts), "tests: 3 passed, 0 failed, 1 skipped, 1 flaky");
  assert.match(toJunit(report([r])), /<flakyFailure type="crash" message="attempt 1: crash"/);
});

Deno.test("retries: a run that failed to boot, then passed, is flaky as a run", async () => {
  const [r] = await matrix({ microvm: () => replay("garbage.tap", "pass.tap") }, { retries: 1 });
  assert.equal(r.status, "flaky");
  assert.equal(r.suites.flatMap((s) => s.tests).some((t) => t.status === "flaky"), false);
  assert.equal(runEntry(r), "flaky");
  assert.equal(countReport(report([r])).flaky, 1);
});

Deno.test("targets: a machine with no exit status ends its run with its TAP stream", async () => {
  // A lab machine stays up, silent, after its last line: the stream's end ends the run.
  const started = performance.now();
  const [pass] = await matrix({ microvm: () => stuckAfter("pass.tap") }, {
    deadlines: { silenceMs: 20_000 },
  });
  assert.equal(pass.status, "pass", pass.message);
  assert.equal(pass.deadline, null);
  assert.ok(performance.now() - started < 5_000);
  const [bail] = await matrix({ microvm: () => stuckAfter("bail-out.tap") }, {
    deadlines: { silenceMs: 20_000 },
  });
  assert.equal(bail.kind, "panic");
});

Deno.test("retries: without --retries a failure is not re-run", async () => {
  const [r] = await matrix({ microvm: () => replay("fail-yaml.tap", "pass.tap") });
  assert.equal(r.status, "fail");
  assert.equal(r.attempts.length, 1);
});

Deno.test("retries (QEMU): failing every time is a failure, every attempt kept with its log", async () => {
  const { elf } = await builtKernel();
  const prefix = `retry-${crypto.randomUUID()}`;
  const logDir = join(ROOT, "build/logs");
  const [r] = await runMatrix({
    elf,
    root: ROOT,
    configs: [getConfig("microvm")],
    filter: null,
    shard: null,
    retries: 2,
    deadlines: {},
    logDir,
    logPrefix: prefix,
    extraCmdline: "selftest=fail",
  });
  try {
    assert.equal(r.status, "fail");
    assert.equal(r.attempts.length, 3);
    assert.deepEqual(r.suites[0].tests[0].attempts, ["fail", "fail", "fail"]);
    assert.equal(r.suites[0].tests[0].status, "fail");
    // Timed on the host from its # RUN line to its result.
    const ms = r.suites[0].tests[0].durationMs;
    assert.ok(ms !== null && ms >= 0 && ms < r.durationMs, `${ms} ms`);
    assert.match(
      toJunit(report([r])),
      /<testcase name="fail" classname="kernel\.selftest" time="\d+\.\d{3}">/,
    );
    assert.deepEqual(r.attempts.map((a) => a.log), [
      `build/logs/${prefix}-microvm.log`,
      `build/logs/${prefix}-microvm-attempt2.log`,
      `build/logs/${prefix}-microvm-attempt3.log`,
    ]);
    for (const a of r.attempts) assert.match(await Deno.readTextFile(join(ROOT, a.log!)), /not ok/);
  } finally {
    for (const a of r.attempts) await Deno.remove(join(ROOT, a.log!)).catch(() => {});
  }
});

Deno.test("configurations: a test failing only on q35 is reported as q35's", async () => {
  const lines: string[] = [];
  const runs = await matrix({
    microvm: () => replay("pass.tap"),
    q35: () => replay("fail-yaml.tap"),
    pc: () => replay("pass.tap"),
  }, { observer: new ConsoleReporter("plain", (t) => lines.push(t)) });
  assert.deepEqual(runs.map((r) => [r.label, r.status]), [
    ["kernel[microvm]", "pass"],
    ["kernel[q35]", "fail"],
    ["kernel[pc]", "pass"],
  ]);
  const out = lines.join("");
  assert.match(out, /FAIL {2}kernel\[q35\] {2}1 failed: layout\.selfmap/);
  assert.match(out, /ok {4}kernel\[pc\]/);
  const junit = toJunit(report(runs));
  assert.match(junit, /<testsuite name="kernel\[q35\]\/layout" tests="3" failures="1"/);
  assert.match(junit, /<testsuite name="kernel\[microvm\]\/layout" tests="3" failures="0"/);
});

Deno.test("json: one schema separates build, infrastructure, boot, crash, hang, assertion", async () => {
  const runs = await matrix({
    microvm: () => replay("pass.tap"),
    pc: () => replay("garbage.tap"),
    q35: () => replay("bail-out.tap"),
    max: () => replay("fail-yaml.tap"),
    smp2: () => stuckAfter("crash-mid-suite.tap"),
    haswell: () => unreachable,
  }, { deadlines: { silenceMs: 200 } });
  const r = report(runs);
  assert.equal(r.schema, REPORT_SCHEMA);
  assert.deepEqual(r.summary.categories, {
    pass: 1,
    boot: 1,
    crash: 1,
    assertion: 1,
    hang: 1,
    infrastructure: 1,
  });
  const hang = runs.find((x) => x.config === "smp2")!;
  assert.equal(hang.test, "layout.selfmap");
  assert.deepEqual(hang.deadline, { deadline: "silence", ms: 200 });
  const lab = runs.find((x) => x.config === "haswell")!;
  assert.match(lab.message, /the machine could not be started: cannot open \/dev\/ttyUSB9/);
  assert.equal(r.summary.ok, false);
  const back = JSON.parse(JSON.stringify(r)) as KernelReport;
  assert.deepEqual(back, r);
  const junit = toJunit(r);
  assert.match(junit, /<error type="boot" message="no &quot;TAP version&quot;/);
  assert.match(junit, /<error type="crash" message="panic while running layout\.selfmap/);
  assert.match(junit, /<failure type="assertion" message="pml4_via_selfmap == cr3_frame"/);
  const broken = report([], { message: "build failure in kernel/x.c", details: ["x.c:1: error"] });
  assert.match(toJunit(broken), /<error type="build" message="build failure in kernel\/x\.c"/);
  assert.deepEqual(broken.summary.categories, {});
  assert.equal(broken.summary.failed, 1);
});

Deno.test("junit: every element opened is closed, text is escaped", async () => {
  const runs = await matrix({
    microvm: () => replay("bail-out.tap"),
    q35: () => replay("pass.tap"),
  });
  const xml = toJunit(report(runs));
  for (const tag of ["testsuites", "testsuite", "testcase", "properties"]) {
    const open = xml.match(new RegExp(`<${tag}[ >]`, "g"))?.length ?? 0;
    const close = xml.match(new RegExp(`</${tag}>`, "g"))?.length ?? 0;
    assert.equal(open, close, tag);
  }
  assert.doesNotMatch(xml.replace(/<[^>]*>/g, ""), /[<>]/);
});

Deno.test("counting: the runner's summary equals deno test's count of the same report", async () => {
  const runs = await matrix({
    microvm: () => replay("pass.tap"),
    pc: () => replay("bail-out.tap"),
    q35: () => replay("fail-yaml.tap"),
    max: () => replay("crash-mid-suite.tap", "pass.tap"),
    qemu64: () => replay("garbage.tap", "skip-todo.tap"),
    haswell: () => replay("garbage.tap"),
  }, { retries: 1 });
  const r = report(runs);
  const [dir, cleanup] = await tempDir();
  try {
    const json = join(dir, "kernel.json");
    const xml = join(dir, "deno.xml");
    await Deno.writeTextFile(json, JSON.stringify(r));
    const out = await new Deno.Command(Deno.execPath(), {
      // Type-checked by `deno task check` and the whole run, not again here.
      args: ["test", "-A", "--no-check", `--junit-path=${xml}`, "tests/kernel_test.ts"],
      cwd: ROOT,
      env: { OUROBOROS_KERNEL_REPORT: json, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 1, "the report has failures: deno test fails");
    const text = new TextDecoder().decode(out.stdout);
    assert.match(text, /kernel\[q35\]\/layout \.\.\. selfmap => /);
    assert.match(text, /kernel\[haswell\]: no-tap => /);
    assert.match(text, /kernel\[max\]\/layout \.\.\./);
    const { passed, failed, skipped, flaky, notRun } = r.summary;
    assert.ok(
      passed && failed && skipped && flaky && notRun,
      `every bucket used: ${summaryLine(r.summary)}`,
    );
    assert.deepEqual(countJunit(await Deno.readTextFile(xml)), {
      passed,
      failed,
      skipped,
      flaky,
      notRun,
    });
  } finally {
    await cleanup();
  }
});

Deno.test("console: CI or no terminal gets plain lines, a terminal a live line", () => {
  const env = (ci?: string) => (n: string) => (n === "CI" ? ci : undefined);
  assert.equal(consoleMode(true, env()), "tty");
  assert.equal(consoleMode(true, env("true")), "plain");
  assert.equal(consoleMode(true, env("false")), "tty");
  assert.equal(consoleMode(false, env()), "plain");
});

Deno.test("console: the live line is redrawn in place and cleared before lasting lines", async () => {
  const tty: string[] = [];
  const plain: string[] = [];
  for (const [mode, sink] of [["tty", tty], ["plain", plain]] as const) {
    await matrix({ microvm: () => replay("pass.tap"), q35: () => replay("bail-out.tap") }, {
      observer: new ConsoleReporter(mode, (t) => sink.push(t), () => 80),
      jobs: 1,
    });
  }
  const t = tty.join("");
  const redraw = "\r\x1b[2K";
  assert.ok(t.includes(`${redraw}kernel 0/2 runs done │ kernel[microvm] `), JSON.stringify(t));
  const uncolored = ["\x1b[32m", "\x1b[31m", "\x1b[0m"].reduce((x, c) => x.split(c).join(""), t);
  assert.ok(uncolored.includes(`${redraw}ok    kernel[microvm]`), JSON.stringify(t));
  assert.ok(tty.every((s) => s.length <= 80 + 8 || s.endsWith("\n")), "status fits the width");
  const p = plain.join("");
  assert.ok(!p.includes("\r") && !p.includes("\x1b"), "plain lines only");
  assert.match(p, /^kernel\[microvm\]: started on replay of pass\.tap$/m);
  assert.match(p, /^FAIL {2}kernel\[q35\] {2}panic while running layout\.selfmap/m);
  assert.match(p, /^ {6}# RIP 0xffffffff80101234/m);
});
