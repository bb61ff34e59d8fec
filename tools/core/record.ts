/**
 * The report of kernel runs: one schema for the JSON report, the JUnit
 * report, the console and the Deno tests that present kernel tests (which
 * read it back from JSON). A run is one configuration booted once or, with
 * retries, several times; its record keeps every attempt, and a test that
 * passed only on a later attempt is `flaky`, never a plain pass.
 */
import type {
  Category,
  Classification,
  ClassificationKind,
  ExitInfo,
  TimeoutInfo,
} from "./classify.ts";
import type { Frame } from "./crash.ts";
import { type Diagnostic, isFailure, type TestResult, type TestStatus, testStatus } from "./tap.ts";

/** Identifies the JSON report format; bumped on incompatible changes. */
export const REPORT_SCHEMA = "ouroboros-kernel-report/1";

/** A test's status in one attempt: its TAP status, or what stopped the run while it ran. */
export type AttemptStatus = TestStatus | "crash" | "hang";

/** A test's final status: flaky if it failed (or stopped the run) and later passed. */
export type FinalStatus = TestStatus | "flaky";

/** One kernel test of a run. */
export interface TestRecord {
  suite: string;
  name: string;
  /** `suite.name`. */
  fullName: string;
  status: FinalStatus;
  /** The SKIP/TODO/XFAIL/TIMEOUT/ERROR reason or KTAP note, if any. */
  reason: string | null;
  /** The YAML diagnostic of the last failed attempt (or what its KUnit message says). */
  diagnostic: Diagnostic | null;
  /**
   * What the kernel printed before the result line (KUnit's `EXPECTATION
   * FAILED at …`, `Expected …`), for a failure of the last failed attempt;
   * empty otherwise.
   */
  log: string[];
  /** The status in each attempt that reached the test, in order. */
  attempts: AttemptStatus[];
  /**
   * Wall time from its `# RUN` line to its result line as they reached the
   * host, in the last attempt (null without a `# RUN` line).
   */
  durationMs: number | null;
}

/** One suite of a run, as the last attempt reported it. */
export interface SuiteRecord {
  name: string;
  /** Results the suite's plan promised (null: no plan). */
  planned: number | null;
  /** All promised results arrived. */
  complete: boolean;
  tests: TestRecord[];
  /** Tests its plans promised that never reported (kunit_tool counts them as crashed). */
  notRun: number;
  /** Which, by number: `4-6 of 6`, `param_test: 3 of 3`. */
  notRunRanges: string[];
}

/** A crash in source terms. */
export interface CrashRecord {
  /** The `Bail out!` reason. */
  reason: string;
  /** The kernel's dump with each address annotated with its function and file:line. */
  dump: string[];
  /** The RIP and backtrace, resolved (empty if the ELF could not be read). */
  frames: Frame[];
}

/** One boot of a run. */
export interface AttemptRecord {
  /** 1 for the first boot. */
  attempt: number;
  kind: ClassificationKind;
  category: Category;
  message: string;
  /** The test concerned (running at a crash or hang, or first failed). */
  test: string | null;
  details: string[];
  crash: CrashRecord | null;
  /** The deadline that passed, if one did. */
  deadline: TimeoutInfo | null;
  exit: ExitInfo;
  /** The raw serial log. */
  log: string | null;
  durationMs: number;
}

/** One configuration's run (a unit of sharding may make several runs of one configuration). */
export interface RunRecord {
  /** Unique in the report: the configuration, with `#part` when its tests needed several boots. */
  id: string;
  /** How tests of this run are named: `kernel[q35]` (`kernel` when only the default ran). */
  label: string;
  /** The configuration's name. */
  config: string;
  target: { kind: string; description: string; command: string[] };
  /** The kernel command line. */
  cmdline: string;
  /** pass; fail; flaky: failed, then passed on a retry. */
  status: "pass" | "fail" | "flaky";
  /** The last attempt's verdict. */
  kind: ClassificationKind;
  category: Category;
  message: string;
  test: string | null;
  details: string[];
  crash: CrashRecord | null;
  deadline: TimeoutInfo | null;
  /** The last attempt's log. */
  log: string | null;
  /** All attempts together. */
  durationMs: number;
  attempts: AttemptRecord[];
  suites: SuiteRecord[];
  /** Suites the top-level plan promised that never started (last attempt). */
  suitesNotRun: number;
}

/**
 * A check of the whole run, outside any kernel test: the boot page tables
 * before anything boots (category build), a filter that selects something
 * (category assertion).
 */
export interface CheckRecord {
  name: string;
  ok: boolean;
  /** The category of its failure. */
  category: Category;
  details: string[];
}

/** The test counts, as the summary line prints them. */
export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
  /** Passed only on a retry: not counted as passed. */
  flaky: number;
  /** Planned tests (and planned suites) that never reported (absent: none). */
  notRun?: number;
}

/** What was asked for. */
export interface Selection {
  configs: string[];
  filter: string | null;
  shard: { index: number; count: number } | null;
  retries: number;
  deadlines: { bootMs: number; silenceMs: number; runMs: number };
}

/** The whole report. */
export interface KernelReport {
  schema: typeof REPORT_SCHEMA;
  createdAt: string;
  durationMs: number;
  /** The kernel ELF, or null if it did not build. */
  kernel: string | null;
  /** Null if the kernel built. */
  build: { message: string; details: string[] } | null;
  checks: CheckRecord[];
  selection: Selection;
  runs: RunRecord[];
  summary: Counts & {
    /** Runs per category of their final attempt (flaky runs count as pass). */
    categories: Partial<Record<Category, number>>;
    ok: boolean;
  };
}

/** An attempt's verdict and results, as the merge needs them. */
export interface AttemptInput {
  classification: Classification;
  suites: {
    name: string;
    planned: number | null;
    complete: boolean;
    tests: TestResult[];
    notRun?: number;
    notRunRanges?: string[];
  }[];
  /** Suites the top-level plan promised that never started. */
  suitesNotRun?: number;
  crash: CrashRecord | null;
  deadline: TimeoutInfo | null;
  exit: ExitInfo;
  log: string | null;
  durationMs: number;
  /** Per test, by full name: see {@link TestRecord.durationMs}. */
  testDurations?: Readonly<Record<string, number>>;
}

function attemptRecord(a: AttemptInput, n: number): AttemptRecord {
  const c = a.classification;
  return {
    attempt: n,
    kind: c.kind,
    category: c.category,
    message: c.message,
    test: c.test,
    details: a.crash?.dump ?? c.details,
    crash: a.crash,
    deadline: a.deadline,
    exit: a.exit,
    log: a.log,
    durationMs: a.durationMs,
  };
}

function reasonOf(t: TestResult): string | null {
  return t.skip ?? t.todo ?? t.note;
}

/** An attempt's results by full name, for looking tests up across attempts. */
function indexAttempt(a: AttemptInput): Map<string, TestResult> {
  const byName = new Map<string, TestResult>();
  for (const s of a.suites) for (const t of s.tests) byName.set(t.fullName, t);
  return byName;
}

/** The status a test had in an attempt, or null if the attempt never reached it. */
function statusIn(
  a: AttemptInput,
  index: Map<string, TestResult>,
  fullName: string,
): AttemptStatus | null {
  const t = index.get(fullName);
  if (t !== undefined) return testStatus(t);
  if (a.classification.test === fullName) {
    if (a.classification.category === "crash") return "crash";
    if (a.classification.category === "hang") return "hang";
  }
  return null;
}

/**
 * Fold the attempts of a run into its record. The last attempt decides the
 * run and the suites; a test whose last status is not a failure but that
 * failed, crashed or hung in an earlier attempt is flaky (its diagnostic is
 * the last failure's).
 */
export function mergeAttempts(
  head: Pick<RunRecord, "id" | "label" | "config" | "target" | "cmdline">,
  inputs: AttemptInput[],
): RunRecord {
  if (inputs.length === 0) throw new Error(`run ${head.id}: no attempts`);
  const attempts = inputs.map((a, i) => attemptRecord(a, i + 1));
  const last = inputs[inputs.length - 1];
  const lastRecord = attempts[attempts.length - 1];
  const earlier = inputs.slice(0, -1).map((a) => ({ a, index: indexAttempt(a) }));
  let anyFlaky = false;
  const suites: SuiteRecord[] = last.suites.map((s) => ({
    name: s.name,
    planned: s.planned,
    complete: s.complete,
    notRun: s.notRun ?? 0,
    notRunRanges: s.notRunRanges ?? [],
    tests: s.tests.map((t): TestRecord => {
      const final = testStatus(t);
      const before = earlier.map(({ a, index }) => ({
        status: statusIn(a, index, t.fullName),
        result: index.get(t.fullName),
      })).filter((x) => x.status !== null);
      const failedBefore = before.filter((b) =>
        b.status === "crash" || b.status === "hang" || isFailure(b.status as TestStatus)
      );
      const flaky = !isFailure(final) && failedBefore.length > 0;
      const lastFailed = isFailure(final) ? t : failedBefore.findLast((b) => b.result)?.result;
      anyFlaky ||= flaky;
      return {
        suite: t.suite,
        name: t.name,
        fullName: t.fullName,
        status: flaky ? "flaky" : final,
        reason: reasonOf(t),
        diagnostic: t.diagnostic ?? failedBefore.findLast((b) => b.result)?.result?.diagnostic ??
          null,
        log: lastFailed?.log ?? [],
        attempts: [...before.map((b) => b.status!), final],
        durationMs: last.testDurations?.[t.fullName] ?? null,
      };
    }),
  }));
  const passed = last.classification.ok;
  return {
    ...head,
    status: passed ? (inputs.length > 1 || anyFlaky ? "flaky" : "pass") : "fail",
    kind: lastRecord.kind,
    category: lastRecord.category,
    message: lastRecord.message,
    test: lastRecord.test,
    details: lastRecord.details,
    crash: lastRecord.crash,
    deadline: lastRecord.deadline,
    log: lastRecord.log,
    durationMs: inputs.reduce((sum, a) => sum + a.durationMs, 0),
    attempts,
    suites,
    suitesNotRun: last.suitesNotRun ?? 0,
  };
}

/** The counted outcome of one test (the summary line's buckets). */
export function bucketOf(status: FinalStatus): keyof Counts {
  if (status === "flaky") return "flaky";
  if (isFailure(status)) return "failed";
  if (status === "pass") return "passed";
  return "skipped";
}

/** What a run adds beyond its tests: one failure, one flaky entry, or nothing. */
export function runEntry(run: RunRecord): "failed" | "flaky" | null {
  const tests = run.suites.flatMap((s) => s.tests);
  if (run.status === "fail") {
    const testsSayIt = run.kind === "assertion-failure" &&
      tests.some((t) => bucketOf(t.status) === "failed");
    return testsSayIt ? null : "failed";
  }
  if (run.status === "flaky" && !tests.some((t) => t.status === "flaky")) return "flaky";
  return null;
}

/**
 * Count a report the way the Deno tests that present it count (deno_steps.ts):
 * each kernel test once; the tests a suite's plans promised that never
 * reported as not run (planned suites that never started: one each); a
 * suite otherwise incomplete (no result line, more results than planned)
 * once more as failed; a
 * run that failed without a failed test to show for it (a crash, a hang, no
 * boot) once more as failed; a build failure or a failed check once.
 */
export function countReport(report: Omit<KernelReport, "summary">): Counts {
  const c: Counts = { passed: 0, failed: 0, skipped: 0, flaky: 0, notRun: 0 };
  if (report.build !== null) c.failed++;
  for (const check of report.checks) c[check.ok ? "passed" : "failed"]++;
  for (const run of report.runs) {
    for (const suite of run.suites) {
      for (const t of suite.tests) c[bucketOf(t.status)]++;
      // Short of its plan: the tests that never reported; otherwise (no result line, extra
      // results) the suite fails once.
      if (suite.notRun > 0) c.notRun = (c.notRun ?? 0) + suite.notRun;
      else if (!suite.complete) c.failed++;
    }
    c.notRun = (c.notRun ?? 0) + (run.suitesNotRun ?? 0);
    const extra = runEntry(run);
    if (extra !== null) c[extra]++;
  }
  return c;
}

/** Fill in the summary of a report. */
export function summarize(report: Omit<KernelReport, "summary">): KernelReport {
  const counts = countReport(report);
  const categories: Partial<Record<Category, number>> = {};
  for (const run of report.runs) categories[run.category] = (categories[run.category] ?? 0) + 1;
  const ok = counts.failed === 0 && report.build === null &&
    report.runs.every((r) => r.status !== "fail");
  return { ...report, summary: { ...counts, categories, ok } };
}

/**
 * The closing line: `tests: N passed, N failed, N skipped`, then `, N flaky`
 * and `, N not run` when there are any.
 */
export function summaryLine(c: Counts): string {
  const flaky = c.flaky > 0 ? `, ${c.flaky} flaky` : "";
  const notRun = (c.notRun ?? 0) > 0 ? `, ${c.notRun} not run` : "";
  return `tests: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped${flaky}${notRun}`;
}
