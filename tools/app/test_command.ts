/**
 * `deno task test [runner options] [test files] [-- deno test options]`: checks the
 * system tools, runs the kernel tests (run/matrix.ts: every selected
 * configuration, in parallel, with a live console), writes the kernel report,
 * then runs every Deno test with `deno test` (the toolchain's tests, and
 * tests/kernel_test.ts, which presents the kernel report as Deno tests), and
 * ends with one line: `tests: N passed, N failed, N skipped`, counted from
 * deno test's JUnit report.
 *
 * Runner options are in the command table (command_table.ts; `--help`). With
 * `--kernel-only` no Deno test runs and the line is counted from the kernel
 * report, the same way.
 */
import { join } from "node:path";
import { BUILD_DIR, ROOT } from "../paths.ts";
import {
  checkForeign,
  foreignSourceOf,
  kernelTestOptions,
  listCommand,
  prepareTestRun,
} from "./commands.ts";
import { loadProject, type ProjectImage } from "./project.ts";
import { ConsoleReporter } from "./console.ts";
import { FLAKY_MARK, notRunCount } from "./deno_steps.ts";
import { toJunit } from "../core/junit.ts";
import { ensureToolGroups } from "../host/toolcheck.ts";
import { removeDeadLeftovers } from "../host/leftovers.ts";
import { writeReportHtml } from "../report/html.ts";
import { runKernelTests } from "../run/matrix.ts";
import { parseRunnerArgs, type RunnerArgs, TEST_SILENCE_MS, userPath } from "./options.ts";
import { type Counts, type KernelReport, summaryLine } from "../core/record.ts";
import { lastJunit, namedTestPaths, testFiles, testJobs, writeTestGroups } from "./test_groups.ts";

export { summaryLine, TEST_SILENCE_MS };
export type { Counts };

interface Case {
  name: string;
  classname: string;
  failure?: string;
  skipped: boolean;
}

const STEP_FAILED = /^\d+ test steps? failed/;

/**
 * Count a Deno JUnit report. Deno lists a test with steps as a test case of
 * its own next to one case per step ("parent > step"): such a parent is only
 * a container and is counted only if it failed for a reason of its own. A
 * passing case whose name ends in the flaky mark counts as flaky.
 */
export function countJunit(xml: string): Counts {
  const cases: Case[] = [];
  const re =
    /<testcase\s+name="([^"]*)"\s+classname="([^"]*)"[^>]*?(?:\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const body = m[3] ?? "";
    const failure = /<failure\s+message="([^"]*)"/.exec(body)?.[1] ??
      (/<(failure|error)\b/.test(body) ? "" : undefined);
    cases.push({ name: m[1], classname: m[2], failure, skipped: /<skipped\b/.test(body) });
  }
  const counts: Counts = { passed: 0, failed: 0, skipped: 0, flaky: 0, notRun: 0 };
  const parents = new Set<string>();
  for (const c of cases) {
    const i = c.name.lastIndexOf(" &gt; ");
    if (i > 0) parents.add(`${c.classname}\n${c.name.slice(0, i)}`);
  }
  for (const c of cases) {
    const isParent = parents.has(`${c.classname}\n${c.name}`);
    if (isParent && (c.failure === undefined || STEP_FAILED.test(c.failure))) continue;
    if (c.failure !== undefined) counts.failed++;
    else if (c.skipped && notRunCount(c.name) > 0) {
      counts.notRun = (counts.notRun ?? 0) + notRunCount(c.name);
    } else if (c.skipped) counts.skipped++;
    else if (c.name.endsWith(FLAKY_MARK)) counts.flaky++;
    else counts.passed++;
  }
  return counts;
}

/**
 * The directories in use: the kernel tree and its build (OUROBOROS_ROOT,
 * OUROBOROS_BUILD_DIR: the e2e tests point them at broken kernels), reports
 * and serial logs (OUROBOROS_REPORT_DIR, OUROBOROS_LOG_DIR: tests that run
 * this command keep the real run's files intact).
 */
function dirs(): { root: string; outDir?: string; reportDir: string; logDir: string } {
  const root = Deno.env.get("OUROBOROS_ROOT") ?? ROOT;
  const outDir = Deno.env.get("OUROBOROS_BUILD_DIR");
  const buildDir = outDir ?? (root === ROOT ? BUILD_DIR : join(root, "build"));
  return {
    root,
    outDir,
    reportDir: Deno.env.get("OUROBOROS_REPORT_DIR") ?? join(buildDir, "reports"),
    logDir: Deno.env.get("OUROBOROS_LOG_DIR") ?? join(buildDir, "logs"),
  };
}

/** The Deno test file that presents the kernel report. */
const KERNEL_TESTS = "tests/kernel_test.ts";

/**
 * True if the `deno test` arguments leave `file` in: no files named, or one
 * of them is it or a directory holding it.
 */
export function selectsTestFile(denoArgs: readonly string[], file: string): boolean {
  const files = namedTestPaths(denoArgs);
  if (files.length === 0) return true;
  return files.some((f) => {
    const p = f.replace(/^\.\//, "").replace(/\/$/, "");
    return p === "" || p === "." || p === "tests" || p === file;
  });
}

/** True if the `deno test` arguments leave tests/kernel_test.ts in. */
export function selectsKernelTests(denoArgs: readonly string[]): boolean {
  return selectsTestFile(denoArgs, KERNEL_TESTS);
}

/**
 * Write the kernel report: reports/kernel.json (the last run's, which the
 * next run reads for its estimates), the files asked for, the HTML page;
 * and, when Deno tests run, the copy handed over to them (`handoff`, this
 * run's own: tests/kernel_test.ts reads it). With --kernel-only no test
 * reads a handoff: none is written (it would only be left behind).
 */
async function writeReports(
  report: KernelReport,
  args: RunnerArgs,
  handoff: string | null,
  reportDir: string,
  root: string,
) {
  const json = JSON.stringify(report, null, 2) + "\n";
  const last = join(reportDir, "kernel.json");
  // Whole or not at all: kernel_test.ts may be waiting for it (OUROBOROS_KERNEL_REPORT_PENDING).
  const first = handoff ?? last;
  // Written under a name of this run's own: two runs sharing the directory never rename each
  // other's half-written file (the handoff's name is this run's already).
  const part = handoff !== null ? `${handoff}.part` : `${last}.${Deno.pid}.part`;
  await Deno.writeTextFile(part, json);
  await Deno.rename(part, first);
  if (handoff !== null) await Deno.copyFile(handoff, last);
  if (args.json !== null) await Deno.writeTextFile(args.json, json);
  if (args.junit !== null) await Deno.writeTextFile(args.junit, toJunit(report));
  const index = join(reportDir, "index.html");
  await writeReportHtml(report, root, args.html === null ? [index] : [index, args.html]);
  console.log(`report: ${args.html ?? index}`);
}

/** A `deno test` run under way. */
interface DenoTestRun {
  /** Its exit status and JUnit counts (null: it wrote no report). */
  done: Promise<{ code: number; counts: Counts | null }>;
  /** Stop it (the kernel phase it waits for could not make a report). */
  abort(): void;
}

/**
 * Copy `from` to `to`, holding what arrives in memory until `hold` settles
 * (so the child never blocks on a full pipe meanwhile).
 */
async function relay(
  from: ReadableStream<Uint8Array>,
  to: WritableStream<Uint8Array>,
  hold: Promise<unknown>,
): Promise<void> {
  const buffer = new TransformStream<Uint8Array, Uint8Array>(
    undefined,
    new CountQueuingStrategy({ highWaterMark: Number.MAX_SAFE_INTEGER }),
  );
  const filling = from.pipeTo(buffer.writable);
  await hold.catch(() => {});
  await Promise.all([filling, buffer.readable.pipeTo(to, { preventClose: true })]);
}

/**
 * Type-check `files` with `deno check`; resolves to its output if they do
 * not check, null if they do. The group modules are written anew for every
 * run, in a directory of the run's own, and Deno keys its cache of checked
 * code by the modules it was asked to check: checked through them, every run
 * would check the whole toolchain again (about 8 s of CPU time). Checked by
 * their own, unchanging paths, a run with nothing changed finds them in the
 * cache, and what is checked is the same code.
 */
async function typeCheck(files: readonly string[]): Promise<string | null> {
  const { success, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["check", ...files],
    cwd: ROOT,
    stdin: "null",
  }).output();
  if (success) return null;
  const text = new TextDecoder();
  return text.decode(stdout) + text.decode(stderr);
}

/**
 * Start `deno test` (every test file, in groups, unless `rest` names some).
 * With `pending`, the kernel phase is still running: the tests start now
 * (OUROBOROS_KERNEL_REPORT_PENDING tells kernel_test.ts to wait for the
 * report at `handoff`), and their output is held until `pending` settles,
 * so the kernel phase's lines come first, as they did when it ran first.
 */
function startDenoTest(
  rest: string[],
  reportDir: string,
  handoff: string | null,
  pending: Promise<unknown> | null,
): DenoTestRun {
  const junit = join(reportDir, `deno-test-${Deno.pid}.xml`);
  const env: Record<string, string> = {};
  if (handoff !== null) env.OUROBOROS_KERNEL_REPORT = handoff;
  if (pending !== null) env.OUROBOROS_KERNEL_REPORT_PENDING = "1";
  // Every test file (none named): a few modules that import them (test_groups.ts), in a
  // directory of this run's own (a test may run this command inside it).
  const all = namedTestPaths(rest).length === 0;
  const groupDir = join(BUILD_DIR, "test-groups", String(Deno.pid));
  let child: Deno.ChildProcess | null = null;
  let aborted = false;
  const done = (async () => {
    if (all) {
      const failed = await typeCheck(await testFiles(join(ROOT, "tests")));
      if (failed !== null) {
        await pending?.catch(() => {});
        console.error(`${failed}error: the Deno tests do not type-check`);
        return { code: 1, counts: null };
      }
    }
    const groups = all
      ? await writeTestGroups(
        ROOT,
        join(ROOT, "tests"),
        groupDir,
        testJobs(),
        await lastJunit(reportDir),
        // It waits for the kernel phase before it can name its tests: alone, it holds up none.
        pending === null ? [] : [KERNEL_TESTS],
      )
      : [];
    // One job per module: the kernel tests' module mostly waits.
    if (all) env.DENO_JOBS = String(groups.length);
    const output = pending === null ? "inherit" : "piped";
    const started = new Deno.Command(Deno.execPath(), {
      args: [
        "test",
        "-A",
        "--parallel",
        `--junit-path=${junit}`,
        // Checked above, by the files' own paths.
        ...(all ? ["--no-check"] : []),
        ...rest,
        ...groups,
      ],
      cwd: ROOT,
      stdin: "null",
      stdout: output,
      stderr: output,
      env,
    }).spawn();
    child = started;
    if (aborted) started.kill();
    const relayed = pending === null ? Promise.resolve() : Promise.all([
      relay(started.stdout, Deno.stdout.writable, pending),
      relay(started.stderr, Deno.stderr.writable, pending),
    ]);
    const { code } = await started.status.finally(() =>
      all ? Deno.remove(groupDir, { recursive: true }).catch(() => {}) : undefined
    );
    await relayed;
    try {
      const xml = await Deno.readTextFile(junit);
      await Deno.rename(junit, join(reportDir, "deno-test.xml"));
      return { code, counts: countJunit(xml) };
    } catch {
      console.error(`error: deno test exited with ${code} and wrote no report`);
      return { code: code || 1, counts: null };
    }
  })();
  return {
    done,
    abort() {
      aborted = true;
      try {
        child?.kill();
      } catch {
        // It has ended already.
      }
    },
  };
}

/**
 * The image of the project OUROBOROS_PROJECT names, if it names one with an
 * image (a kernel built by a build of its own); this repository's kernel
 * otherwise.
 */
async function projectImage(): Promise<ProjectImage | null> {
  const file = Deno.env.get("OUROBOROS_PROJECT");
  if (file === undefined || file === "") return null;
  return (await loadProject(userPath(file))).image;
}

/**
 * Remove what a run that was killed (Ctrl-C, a CI timeout) left of its own:
 * the kernel report it handed over (`reportDir/kernel-<pid>.json`) or was
 * writing (`kernel.json.<pid>.part`), its
 * JUnit file (`deno-test-<pid>.xml`) and its test groups
 * (`groupsDir/<pid>`, build/test-groups). Only a dead pid's, and only
 * entries older than LEFTOVER_AGE_MS (host/leftovers.ts): a run in another PID namespace
 * (a container sharing the directory) looks dead from here, and no run lasts
 * that long (CI stops one at 90 minutes). A pid used again since is taken
 * for alive, and its files stay.
 */
export async function removeLeftovers(reportDir: string, groupsDir: string): Promise<void> {
  const owned = [
    {
      dir: reportDir,
      re: /^(?:kernel-(\d+)\.json|deno-test-(\d+)\.xml)(?:\.part)?$|^kernel\.json\.(\d+)\.part$/,
    },
    { dir: groupsDir, re: /^(\d+)$/ },
  ];
  for (const { dir, re } of owned) {
    await removeDeadLeftovers(dir, (name) => {
      const m = re.exec(name);
      return m === null ? null : Number(m[1] ?? m[2] ?? m[3]);
    });
  }
}

/**
 * `deno task test`: its command line is read with the command table (a
 * usage error is thrown); resolves to the exit status.
 */
export async function testMain(argv: readonly string[]): Promise<number> {
  const { args, rest } = parseRunnerArgs(argv);
  const foreign = foreignSourceOf(args, await projectImage());
  const stop = await checkForeign(foreign, args.configs);
  if (stop !== null) return stop;
  const prepared = await prepareTestRun(args);
  if (typeof prepared === "number") return prepared;
  const lab = prepared.lab;
  if (args.list) return await listCommand(dirs(), args);

  const { root, outDir, reportDir, logDir } = dirs();
  await Deno.mkdir(reportDir, { recursive: true });
  await removeLeftovers(reportDir, join(BUILD_DIR, "test-groups"));
  let handoff: string | null = null;
  if (args.html !== null && !args.kernelOnly && !selectsKernelTests(rest)) {
    console.error(
      "error: --html needs the kernel tests, and these deno test arguments leave them out",
    );
    return 2;
  }
  const kernel = args.kernelOnly || selectsKernelTests(rest);
  if (kernel && !args.kernelOnly) handoff = join(reportDir, `kernel-${Deno.pid}.json`);
  const kernelTests = async () => {
    const report = await runKernelTests(
      kernelTestOptions({ root, outDir, logDir, foreign }, args, lab, new ConsoleReporter()),
    );
    await writeReports(report, args, handoff, reportDir, root);
    return report;
  };
  if (args.kernelOnly) {
    const report = await kernelTests();
    console.log(summaryLine(report.summary));
    return report.summary.ok ? 0 : 1;
  }
  if (selectsTestFile(rest, "tests/report_html_test.ts")) {
    // That test opens the HTML report in Chromium: install it here, once, rather than from
    // inside parallel tests (one apt-get at a time). If it cannot be, the test fails saying why.
    await ensureToolGroups(["browser"]).catch((e) =>
      console.error(`warning: ${e instanceof Error ? e.message : e}`)
    );
  }
  // The Deno tests start while the kernel phase runs: their own builds of the kernel wait for
  // its build (build.ts locks the output directory), kernel_test.ts waits for its report.
  const kernelPhase = kernel ? kernelTests() : null;
  const tests = startDenoTest(rest, reportDir, handoff, kernelPhase);
  try {
    await kernelPhase?.catch((e) => {
      tests.abort();
      throw e;
    });
    const { code, counts } = await tests.done;
    console.log(summaryLine(counts ?? { passed: 0, failed: 1, skipped: 0, flaky: 0 }));
    if (counts === null) return code;
    // A run that counted a failure fails, even if deno test said otherwise.
    return code !== 0 ? code : counts.failed > 0 ? 1 : 0;
  } finally {
    if (handoff !== null) await Deno.remove(handoff).catch(() => {});
  }
}
