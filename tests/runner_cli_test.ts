/**
 * The runner's commands as a user types them: `deno task test` with runner
 * options (the real kernel under QEMU), `deno task test --list`, and
 * `deno task parse` on saved logs, live output included.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { execa } from "execa";
import { ROOT } from "../tools/paths.ts";
import { CONFIGS } from "../tools/run/configs.ts";
import { parseDuration, parseRunnerArgs, UsageError, userPath } from "../tools/app/options.ts";
import {
  countReport,
  type KernelReport,
  REPORT_SCHEMA,
  summaryLine,
} from "../tools/core/record.ts";
import { selectsKernelTests } from "../tools/test.ts";
import { main as parseMain } from "../tools/app/parse.ts";
import { captured } from "./in_process.ts";
import { tempDir } from "./support.ts";

const FIXTURES = join(ROOT, "tests/fixtures");

/** Run a toolchain script as `deno task` does, its reports and logs in `dir`. */
function tool(script: string, args: string[], dir: string, input?: string) {
  return execa(Deno.execPath(), ["run", "-A", join(ROOT, script), ...args], {
    cwd: ROOT,
    env: {
      NO_COLOR: "1",
      CI: "true",
      INIT_CWD: dir,
      OUROBOROS_REPORT_DIR: join(dir, "reports"),
      OUROBOROS_LOG_DIR: join(dir, "logs"),
    },
    reject: false,
    input,
  });
}

/**
 * `deno task parse ARGS` in this process (tools/app/parse.ts's main, as the
 * command runs it). The tests below still run the command as a process for
 * exit 0, exit 1, a usage mistake, a missing file and stdin.
 */
const parseInProcess = (args: string[]) => captured(() => parseMain(args));

// ------------------------------------------------------------------ options

Deno.test("options: runner options are taken, test files and all after -- go to deno test", () => {
  const { args, rest } = parseRunnerArgs([
    "--config=q35,pc",
    "--filter",
    "pmm.*",
    "--retries",
    "2",
    "--shard",
    "2/3",
    "--silence-timeout",
    "500ms",
    "tests/kernel_test.ts",
    "--",
    "--fail-fast",
    "--filter",
    "kernel/",
  ]);
  assert.deepEqual(args.configs.map((c) => c.name), ["q35", "pc"]);
  assert.equal(args.filter, "pmm.*");
  assert.equal(args.retries, 2);
  assert.deepEqual(args.shard, { index: 2, count: 3 });
  assert.deepEqual(args.deadlines, { bootMs: undefined, silenceMs: 500, runMs: undefined });
  assert.deepEqual(rest, ["tests/kernel_test.ts", "--fail-fast", "--filter", "kernel/"]);
  assert.equal(parseRunnerArgs(["--config", "all"]).args.configs.length, CONFIGS.length);
});

Deno.test("options: mistakes are refused with the reason", () => {
  const bad: [string[], RegExp][] = [
    [["--config", "nope"], /unknown configuration 'nope'/],
    [["--retries", "x"], /--retries takes a whole number/],
    [["--jobs", "0"], /--jobs takes a whole number ≥ 1/],
    [["--shard", "3/2"], /--shard 3\/2/],
    [["--boot-timeout", "soon"], /not a duration/],
    [["--filter", "a.* b.*"], /cannot contain blanks/],
    [["--json"], /--json needs a value/],
  ];
  for (const [argv, why] of bad) assert.throws(() => parseRunnerArgs(argv), why, argv.join(" "));
  assert.throws(() => parseRunnerArgs(["--retries", "-1"]), UsageError);
});

Deno.test("options: durations and paths", () => {
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("20s"), 20_000);
  assert.equal(parseDuration("1.5"), 1_500);
  assert.equal(parseDuration("2m"), 120_000);
  assert.throws(() => parseDuration("0s"), /positive/);
  Deno.env.set("INIT_CWD", "/somewhere");
  try {
    assert.equal(userPath("out.json"), "/somewhere/out.json");
    assert.equal(userPath("/abs.json"), "/abs.json");
  } finally {
    Deno.env.delete("INIT_CWD");
  }
});

Deno.test("options: the kernel runs when deno test's selection includes kernel_test.ts", () => {
  assert.equal(selectsKernelTests([]), true);
  assert.equal(selectsKernelTests(["--fail-fast"]), true);
  assert.equal(selectsKernelTests(["tests/"]), true);
  assert.equal(selectsKernelTests(["./tests/kernel_test.ts"]), true);
  assert.equal(selectsKernelTests(["tests/layout_test.ts"]), false);
});

// ----------------------------------------------------------- deno task test

Deno.test("cli (QEMU): --kernel-only on two configurations, JSON and JUnit reports", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const r = await tool("tools/test.ts", [
      "--kernel-only",
      "--config",
      "microvm,q35",
      "--filter",
      "ktest.glob_*",
      "--json",
      "report.json",
      "--junit",
      "report.xml",
    ], dir);
    assert.equal(r.exitCode, 0, r.all ?? r.stdout + r.stderr);
    // 5 tests on each configuration, the boot-table check, the filter check.
    assert.match(r.stdout, /^tests: 12 passed, 0 failed, 0 skipped$/m);
    assert.match(r.stdout, /^kernel\[q35\]: started on qemu q35, 128M, /m, "plain lines in CI");
    assert.match(r.stdout, /^ok {4}kernel\[q35\] {2}5 passed/m);
    assert.ok(!r.stdout.includes("\r") && !r.stdout.includes("\x1b"), "no live line");
    const report = JSON.parse(await Deno.readTextFile(join(dir, "report.json"))) as KernelReport;
    assert.equal(report.schema, REPORT_SCHEMA);
    assert.deepEqual(report.selection.configs, ["microvm", "q35"]);
    assert.equal(report.selection.filter, "ktest.glob_*");
    assert.deepEqual(report.runs.map((x) => x.cmdline), Array(2).fill("ktest.filter=ktest.glob_*"));
    assert.ok(report.runs.every((x) => x.log?.endsWith(`kernel-${x.config}.log`)));
    const xml = await Deno.readTextFile(join(dir, "report.xml"));
    assert.match(xml, /<testsuite name="kernel\[microvm\]\/ktest" tests="5"/);
    assert.match(xml, /<testsuite name="kernel\[q35\]\/ktest" tests="5"/);
    // The copy deno test reads is gone; the last report stays.
    assert.ok(await Deno.stat(join(dir, "reports/kernel.json")));
  } finally {
    await cleanup();
  }
});

Deno.test("cli (QEMU): a filter that selects nothing fails, saying so", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const r = await tool("tools/test.ts", ["--kernel-only", "--filter", "nosuch.*"], dir);
    assert.equal(r.exitCode, 1);
    assert.match(
      r.stdout,
      /FAIL {2}kernel: --filter 'nosuch\.\*' selects kernel tests {2}\(assertion\)/,
    );
    // The run itself says `1..0` is no test at all; the check says why.
    assert.match(r.stdout, /FAIL {2}kernel {2}the plan is 1\.\.0: no test at all/);
    assert.match(r.stdout, /^tests: 1 passed, 2 failed, 0 skipped$/m);
  } finally {
    await cleanup();
  }
});

Deno.test("cli (QEMU): --list asks the kernel, --shard splits what it says", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const all = await tool("tools/test.ts", ["--list", "--filter", "ktest.glob_*"], dir);
    assert.equal(all.exitCode, 0, all.stderr);
    assert.deepEqual(all.stdout.trim().split("\n"), [
      "ktest.glob_exact",
      "ktest.glob_star",
      "ktest.glob_question",
      "ktest.glob_empty",
      "ktest.glob_list",
    ]);
    assert.match(all.stderr, /5 kernel tests \(listed by the kernel\)/);
    const shard = await tool(
      "tools/test.ts",
      ["--list", "--filter", "ktest.glob_*", "--config", "pc,q35", "--shard", "2/3"],
      dir,
    );
    assert.equal(shard.exitCode, 0, shard.stderr);
    // 10 units (5 tests × 2 configurations) in 3 shards of 3, 3, 4: the second is [3, 6).
    assert.deepEqual(shard.stdout.trim().split("\n"), [
      "kernel[pc] ktest.glob_empty",
      "kernel[pc] ktest.glob_list",
      "kernel[q35] ktest.glob_exact",
    ]);
    assert.match(shard.stderr, /3 kernel tests in shard 2\/3/);
  } finally {
    await cleanup();
  }
});

// ---------------------------------------------------------- deno task parse

Deno.test("parse: a saved log gives the live run's summary line and exit status", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const pass = await tool("tools/app/parse.ts", [join(FIXTURES, "tap/pass.tap")], dir);
    assert.equal(pass.exitCode, 0);
    assert.match(pass.stdout, /^tests: 3 passed, 0 failed, 1 skipped$/m);
    // KTAP goes the same way as TAP, in this process (the process's exit 0 is proven above).
    const ktap = await parseInProcess([join(FIXTURES, "ktap/kunit-pass.ktap")]);
    assert.equal(ktap.exitCode, 0, ktap.stdout + ktap.stderr);
    assert.match(ktap.stdout, /^tests: 3 passed, 0 failed, 2 skipped$/m);
    // A failure, in this process (the process's exit 1: the crash below).
    const fail = await parseInProcess([join(FIXTURES, "ktap/yaml.ktap")]);
    assert.equal(fail.exitCode, 1, fail.stdout + fail.stderr);
    assert.match(fail.stdout, /^tests: 1 passed, 1 failed, 0 skipped$/m);
    assert.match(fail.stdout, /expected: 0x0000000000000000/);
  } finally {
    await cleanup();
  }
});

Deno.test("parse: a crash in the middle of a log is a crash and fails, from a file or stdin", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const path = join(FIXTURES, "ktap/crash-mid-suite.ktap");
    const fromFile = await tool("tools/app/parse.ts", [path, "--json", "crash.json"], dir);
    assert.equal(fromFile.exitCode, 1);
    assert.match(
      fromFile.stdout,
      /FAIL {2}kernel {2}panic after second\.second_a: Kernel panic - not syncing: Fatal exception/,
    );
    assert.match(fromFile.stdout, /not run: second: 2 \(2-3 of 3\)/);
    // The crash is one failure; the tests it kept from running are counted apart.
    assert.match(fromFile.stdout, /^tests: 2 passed, 1 failed, 0 skipped, 2 not run$/m);
    const report = JSON.parse(await Deno.readTextFile(join(dir, "crash.json"))) as KernelReport;
    assert.equal(report.runs[0].category, "crash");
    assert.equal(report.runs[0].suites[1].notRun, 2);
    assert.deepEqual(report.runs[0].suites[1].notRunRanges, ["2-3 of 3"]);
    assert.equal(report.summary.notRun, 2);
    const fromStdin = await tool("tools/app/parse.ts", ["-"], dir, await Deno.readTextFile(path));
    assert.equal(fromStdin.exitCode, 1);
    // The same lines but the log's name and the time taken (a loaded machine varies).
    const untimed = (text: string) => text.replace(/\d+\.\d s\)/g, "T s)");
    assert.equal(untimed(fromStdin.stdout), untimed(fromFile.stdout.replace(path, "stdin")));
  } finally {
    await cleanup();
  }
});

Deno.test("parse: usage mistakes exit 2", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    // No log named: the same usage path as two, in this process (the process's exit 2 below).
    const none = await parseInProcess([]);
    assert.equal(none.exitCode, 2);
    assert.match(none.stderr, /usage: deno task parse/);
    const two = await tool("tools/app/parse.ts", ["a", "b"], dir);
    assert.equal(two.exitCode, 2);
    assert.match(two.stderr, /unexpected argument 'b'/);
    const missing = await tool("tools/app/parse.ts", ["no-such.log"], dir);
    assert.equal(missing.exitCode, 2);
    assert.match(missing.stderr, /No such file/);
  } finally {
    await cleanup();
  }
});

Deno.test("parse (QEMU): the log of a live run parses to the same results and line", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const live = await tool("tools/test.ts", [
      "--kernel-only",
      "--filter",
      "ktest.*,layout.*",
      "--json",
      "live.json",
    ], dir);
    assert.equal(live.exitCode, 0, live.stdout + live.stderr);
    const liveReport = JSON.parse(await Deno.readTextFile(join(dir, "live.json"))) as KernelReport;
    const log = join(ROOT, liveReport.runs[0].log!);
    // Parsed in this process (deno task parse as a process: the saved-log tests above).
    const parsed = await parseInProcess([log, "--json", join(dir, "parsed.json")]);
    assert.equal(parsed.exitCode, 0, parsed.stdout);
    const parsedReport = JSON.parse(
      await Deno.readTextFile(join(dir, "parsed.json")),
    ) as KernelReport;
    // The same results; only the live run timed its tests as they ran.
    const untimed = (r: KernelReport) =>
      r.runs[0].suites.map((x) => ({
        ...x,
        tests: x.tests.map((t) => ({ ...t, durationMs: null })),
      }));
    assert.deepEqual(untimed(parsedReport), untimed(liveReport));
    // A log has no pre-boot checks: without them, the live run counts the same.
    const liveRuns = summaryLine(countReport({ ...liveReport, checks: [] }));
    assert.match(parsed.stdout, new RegExp(`^${liveRuns.replace(/[()]/g, "\\$&")}$`, "m"));
  } finally {
    await cleanup();
  }
});

// ---------------------------------------------------------- deno task start

Deno.test("start (QEMU): --config picks the machine the kernel boots on", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const r = await tool("tools/cli.ts", [
      "start",
      "--config",
      "q35",
      "ktest.filter=layout.constants",
    ], dir);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stderr, /start: qemu q35, 128M, /);
    assert.match(r.stdout, /command line 'ktest\.filter=layout\.constants'/);
    assert.match(r.stdout, /^ok 1 - layout$/m);
    const bad = await tool("tools/cli.ts", ["start", "--config", "nope"], dir);
    assert.equal(bad.exitCode, 1);
    assert.match(bad.stderr, /unknown configuration 'nope'/);
  } finally {
    await cleanup();
  }
});
