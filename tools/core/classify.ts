/**
 * What a kernel run amounts to, decided from facts only: how the machine
 * ended (QEMU's exit), its stderr, the TAP report and whether a deadline
 * passed. Pure, so every case is testable without QEMU.
 *
 * Every verdict has a kind (what happened) and a category (whose problem it
 * is, for reports): build, infrastructure (QEMU could not run), boot (no TAP
 * ever came, or no test in it), crash (panic, triple fault, results missing,
 * a stream that breaks the protocol), hang (a deadline passed with the
 * kernel running), assertion (a test said not ok).
 */

import { DEBUG_EXIT, qemuExitStatus } from "../../linker/layout.ts";
import { printable } from "./printable.ts";
import {
  type BailOut,
  type Diagnostic,
  type TapReport,
  type TestResult,
  testStatus,
} from "./tap.ts";

/** The kinds of outcome. Only `pass` is a success. */
export type ClassificationKind =
  | "pass"
  | "assertion-failure"
  | "panic"
  | "triple-fault"
  | "hang"
  | "boot-timeout"
  | "no-tap"
  | "incomplete"
  | "malformed"
  | "no-tests"
  | "qemu-failed"
  | "build-failure";

/** The failure categories of reports (JSON, JUnit, console). */
export type Category =
  | "pass"
  | "build"
  | "infrastructure"
  | "boot"
  | "crash"
  | "hang"
  | "assertion";

/** Every category, in the order reports list them. */
export const CATEGORIES: readonly Category[] = [
  "pass",
  "build",
  "infrastructure",
  "boot",
  "crash",
  "hang",
  "assertion",
];

/** How the machine ended. */
export type ExitInfo =
  | { kind: "exited"; status: number }
  | { kind: "signaled"; signal: string }
  | { kind: "spawn-error"; code: string | null; message: string }
  /** No exit status: a target that reports none, or a saved log. */
  | { kind: "none" };

/** The runner's deadlines, by name. */
export type DeadlineName = "boot" | "silence" | "run";

/** What each deadline measures, for messages. */
export const DEADLINE_MEANING: Readonly<Record<DeadlineName, string>> = {
  boot: "from start to the first TAP line",
  silence: "without a TAP line",
  run: "for the whole run",
};

/** A deadline that passed: the runner stopped the machine. */
export interface TimeoutInfo {
  deadline: DeadlineName;
  ms: number;
}

/** The facts {@link classify} decides from. */
export interface ClassifyInput {
  exit: ExitInfo;
  stderr: string;
  report: TapReport;
  /** A `TAP version` / `KTAP version` marker appeared on the serial port. */
  tapSeen: boolean;
  /** Bytes received on the serial port. */
  serialBytes: number;
  /** The start of the serial output (shown when no TAP appeared). */
  firstBytes: string;
  /** Set when the runner killed QEMU. */
  timeout: TimeoutInfo | null;
}

/** The verdict on a run. */
export interface Classification {
  kind: ClassificationKind;
  /** Whose problem it is (see the module comment). */
  category: Category;
  /** True only for `pass`. */
  ok: boolean;
  /** One line for a human, naming the test when known. */
  message: string;
  /** The test concerned (running, or first failed), as `suite.test`. */
  test: string | null;
  /** Supporting lines: the YAML diagnostic, the exception dump, stderr. */
  details: string[];
  /** The first failure's diagnostic (assertion failures). */
  diagnostic: Diagnostic | null;
  /** The bail out (panics). */
  bailOut: BailOut | null;
}

/** QEMU's exit status when the kernel wrote DEBUG_EXIT.pass. */
export const PASS_STATUS = qemuExitStatus(DEBUG_EXIT.pass);
/** QEMU's exit status when the kernel wrote DEBUG_EXIT.fail. */
export const FAIL_STATUS = qemuExitStatus(DEBUG_EXIT.fail);
/** QEMU's exit status when the kernel wrote DEBUG_EXIT.panic. */
export const PANIC_STATUS = qemuExitStatus(DEBUG_EXIT.panic);

const MAX_DETAIL_LINES = 40;

/** The category of a kind of outcome. */
export function categoryOf(kind: ClassificationKind): Category {
  switch (kind) {
    case "pass":
      return "pass";
    case "build-failure":
      return "build";
    case "qemu-failed":
      return "infrastructure";
    case "no-tap":
    case "boot-timeout":
    case "no-tests":
      return "boot";
    case "panic":
    case "triple-fault":
    case "incomplete":
    case "malformed":
      return "crash";
    case "hang":
      return "hang";
    case "assertion-failure":
      return "assertion";
  }
}

function make(
  kind: ClassificationKind,
  message: string,
  extra: Partial<Omit<Classification, "kind" | "ok" | "message">> = {},
): Classification {
  return {
    kind,
    category: extra.category ?? categoryOf(kind),
    ok: kind === "pass",
    message,
    test: extra.test ?? null,
    details: extra.details ?? [],
    diagnostic: extra.diagnostic ?? null,
    bailOut: extra.bailOut ?? null,
  };
}

/** A `build-failure` verdict, for the build step. */
export function buildFailure(
  message: string,
  output = "",
): Classification {
  return make("build-failure", `build failed: ${message}`, {
    details: tail(output),
  });
}

function tail(text: string): string[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  return lines.slice(-MAX_DETAIL_LINES);
}

function statusName(status: number): string {
  switch (status) {
    case PASS_STATUS:
      return `${status} (DEBUG_EXIT.pass)`;
    case FAIL_STATUS:
      return `${status} (DEBUG_EXIT.fail)`;
    case PANIC_STATUS:
      return `${status} (DEBUG_EXIT.panic)`;
    case 0:
      return "0 (reset)";
    default:
      return String(status);
  }
}

/** "while running X" / "after X" / "before any test started". */
function where(report: TapReport): string {
  if (report.running !== null) return `while running ${report.running}`;
  if (report.lastResult !== null) return `after ${report.lastResult}`;
  return "before any test started";
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** What is missing, in the stream's own terms: suites, tests, result lines. */
function progress(report: TapReport): string {
  const parts: string[] = [];
  for (const s of report.suites) {
    if (!s.hasSubtest || s.planComplete) continue;
    const name = s.name === "" ? "an unnamed suite" : `suite ${s.name}`;
    const reported = plural(s.tests.length, "test");
    const missing = s.notRun > 0 ? `, ${s.notRun} not run (${s.notRunRanges.join(", ")})` : "";
    const end = s.result === null ? " and has no result line" : "";
    parts.push(`${name} reported ${reported}${missing}${end}`);
  }
  if (report.suitesNotRun > 0) {
    parts.push(
      `${plural(report.suitesNotRun, "planned suite")} never started (plan 1..${report.plan!.end})`,
    );
  }
  if (report.plan === null) {
    parts.push(
      report.kernelEnd === null
        ? "no top-level plan (1..N) and no end line from the kernel, so more suites may have been due"
        : `no top-level plan (1..N), and the kernel ended with "${report.kernelEnd.line}"`,
    );
  }
  return parts.length > 0 ? parts.join("; ") : "results are missing";
}

/**
 * Every result the stream promised is in: its top-level plan is met or,
 * without one, every suite it started is complete and the kernel ended
 * cleanly (`kernelEnded`: an exit status of its own, or a shutdown line).
 */
function streamComplete(report: TapReport, kernelEnded: boolean): boolean {
  if (report.planComplete) return true;
  return report.plan === null && report.startedComplete && report.suites.length > 0 &&
    (kernelEnded || report.kernelEnd?.clean === true);
}

/**
 * A stream that tested nothing: a version line and nothing, `1..0`, empty
 * suites, or every test skipped (kunit_tool fails that too).
 */
function noTests(report: TapReport): boolean {
  const c = report.counts;
  if ((c.tests > 0 && c.skip < c.tests) || report.bailOut !== null) return false;
  return report.plan === null ? report.suites.every((s) => s.result !== null) : report.planComplete;
}

function noTestsVerdict(report: TapReport, suffix: string, details: string[]): Classification {
  const what = report.counts.tests > 0
    ? `every test was skipped (${report.counts.tests}): nothing was tested`
    : report.plan !== null && report.plan.count === 0
    ? `the plan is ${report.plan.start}..${report.plan.end}: no test at all`
    : report.suites.length === 0
    ? `no test at all: the ${report.ktap ? "KTAP" : "TAP"} version line came, then ${
      report.plan === null ? "no plan and " : ""
    }no result`
    : `no test at all: ${plural(report.suites.length, "suite")} reported, none with a test in it`;
  return make("no-tests", `${what}${suffix}`, { details });
}

function malformedVerdict(report: TapReport, suffix: string, details: string[]): Classification {
  const [first] = report.problems;
  const more = report.problems.length > 1 ? ` (and ${report.problems.length - 1} more)` : "";
  return make("malformed", `broken TAP: ${first}${more}${suffix}`, {
    test: report.running,
    details: [...report.problems, ...details],
  });
}

function diagnosticLines(d: Diagnostic | null): string[] {
  if (d === null) return [];
  return Object.entries(d.fields).map(([k, v]) =>
    `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`
  );
}

function describeFailure(t: TestResult): string {
  const d = t.diagnostic;
  let text = t.fullName;
  if (t.directive !== null) text += ` (${t.directive.toUpperCase()}${t.note ? ` ${t.note}` : ""})`;
  if (d?.message !== undefined) text += `: ${d.message}`;
  if (d?.expected !== undefined || d?.actual !== undefined) {
    text += ` (expected ${d?.expected ?? "?"}, actual ${d?.actual ?? "?"})`;
  }
  if (d?.at !== undefined) text += ` at ${d.at}`;
  return text;
}

function firstBytesText(input: ClassifyInput): string {
  // JSON escapes C0 controls; printable() the C1 ones (an 8-bit CSI is one).
  return printable(JSON.stringify(input.firstBytes));
}

/** "the silence deadline (10000 ms without a TAP line)". */
export function deadlineText(t: TimeoutInfo): string {
  return `the ${t.deadline} deadline (${t.ms} ms ${DEADLINE_MEANING[t.deadline]})`;
}

/** The category of a run whose every result is in: the worst failed test's. */
function failureCategory(failures: TestResult[]): Category {
  const statuses = failures.map(testStatus);
  if (statuses.includes("error")) return "crash";
  if (statuses.includes("timeout")) return "hang";
  return "assertion";
}

function assertionFailure(report: TapReport, suffix: string): Classification {
  const first = report.failures[0];
  // Tests, not the suites that fail with them (a suite's own not ok counts when alone).
  const n = report.counts.fail || report.failures.length;
  return make("assertion-failure", `${n} failed: ${describeFailure(first)}${suffix}`, {
    category: failureCategory(report.failures),
    test: first.fullName,
    details: [
      ...report.failures.map((f) => `not ok: ${f.fullName}`),
      ...diagnosticLines(first.diagnostic),
    ],
    diagnostic: first.diagnostic,
  });
}

function panicVerdict(report: TapReport, b: BailOut, suffix: string, stderrLines: string[]) {
  return make("panic", `panic ${where(report)}: ${b.reason || "(no reason)"}${suffix}`, {
    test: report.running,
    details: [...b.dump, ...stderrLines],
    bailOut: b,
  });
}

function passMessage(report: TapReport): string {
  const c = report.counts;
  return `pass: ${c.pass} passed, ${c.skip} skipped, ${c.todo} todo in ${c.suites} suites`;
}

/**
 * A run with no exit status (a saved log, a machine that cannot report one):
 * decided from the TAP stream alone. Results missing against the plan are a
 * crash: the stream stopped before the kernel finished.
 */
function classifyWithoutExit(input: ClassifyInput, stderrLines: string[]): Classification {
  const { report } = input;
  if (report.bailOut !== null) return panicVerdict(report, report.bailOut, "", stderrLines);
  if (!input.tapSeen) {
    const what = input.serialBytes === 0
      ? "no output at all"
      : `no "TAP version" or "KTAP version" line in ${input.serialBytes} bytes; first bytes: ${
        firstBytesText(input)
      }`;
    return make("no-tap", what, { details: stderrLines });
  }
  if (noTests(report) && report.problems.length === 0) {
    return noTestsVerdict(report, "", stderrLines);
  }
  if (!streamComplete(report, false)) {
    return make("incomplete", `crash: the log ends ${where(report)}; ${progress(report)}`, {
      test: report.running,
      details: [...report.problems, ...stderrLines],
    });
  }
  if (report.problems.length > 0) return malformedVerdict(report, "", stderrLines);
  if (report.failures.length > 0) return assertionFailure(report, "");
  return make("pass", passMessage(report));
}

/**
 * Decide what a run amounts to. Rules, in order:
 * spawn error → qemu-failed; a deadline passed → hang (boot-timeout if no
 * TAP line had come); killed by a signal (or QEMU reporting it was
 * terminated by one) → qemu-failed; non-zero exit with an error on stderr
 * and no serial output → qemu-failed; no exit status at all → decided from
 * the TAP stream alone (see classifyWithoutExit); `Bail out!` or the panic
 * status → panic; status 0 → triple-fault (never a success); no TAP marker →
 * no-tap; results short of the plan → incomplete; a `not ok` →
 * assertion-failure; the pass status → pass; anything else → a failure
 * saying which status came instead of the pass status.
 */
export function classify(input: ClassifyInput): Classification {
  const { exit, report } = input;
  const stderr = input.stderr.trim();
  const stderrLines = tail(stderr).map((l) => `stderr: ${l}`);
  const running = report.running;

  if (exit.kind === "spawn-error") {
    const what = exit.code === "ENOENT"
      ? "QEMU binary not found"
      : exit.code === null
      ? "the machine could not be started"
      : "QEMU could not be started";
    return make("qemu-failed", `${what}: ${exit.message}`, {
      details: stderrLines,
    });
  }

  if (input.timeout !== null) {
    const passed = `${deadlineText(input.timeout)} passed`;
    if (!input.tapSeen) {
      return make("boot-timeout", `no boot: ${passed} before the first TAP line`, {
        details: [`first bytes: ${firstBytesText(input)}`, ...stderrLines],
      });
    }
    return make("hang", `hang: ${passed} ${where(report)}`, { test: running });
  }

  if (exit.kind === "signaled") {
    return make(
      "qemu-failed",
      `QEMU was killed by ${exit.signal} ${where(report)}`,
      { test: running, details: stderrLines },
    );
  }

  if (exit.kind === "none") return classifyWithoutExit(input, stderrLines);

  const status = exit.status;
  if (status === 0 && /terminating on signal/.test(stderr)) {
    return make(
      "qemu-failed",
      `QEMU was terminated by a signal ${where(report)}: ${stderr}`,
      { test: running, details: stderrLines },
    );
  }

  const debugExitStatus = status === PASS_STATUS || status === FAIL_STATUS ||
    status === PANIC_STATUS;
  if (
    status !== 0 && !debugExitStatus && input.serialBytes === 0 &&
    stderr !== ""
  ) {
    return make(
      "qemu-failed",
      `QEMU failed (exit ${status}): ${tail(stderr)[0] ?? ""}`,
      { details: stderrLines },
    );
  }

  if (report.bailOut !== null) {
    const suffix = status !== PANIC_STATUS
      ? ` (QEMU exited ${statusName(status)}, not ${statusName(PANIC_STATUS)})`
      : "";
    return panicVerdict(report, report.bailOut, suffix, stderrLines);
  }

  if (status === PANIC_STATUS) {
    return make(
      "panic",
      `panic ${where(report)}: the kernel wrote DEBUG_EXIT.panic without a Bail out! line`,
      { test: running, details: stderrLines },
    );
  }

  if (status === 0) {
    const context = !input.tapSeen
      ? "before any TAP output"
      : report.planComplete
      ? "after the plan completed, instead of writing DEBUG_EXIT"
      : where(report);
    return make(
      "triple-fault",
      `triple fault (QEMU reset, exit 0 under -no-reboot) ${context}`,
      {
        test: running,
        details: input.tapSeen ? [] : [`first bytes: ${firstBytesText(input)}`],
      },
    );
  }

  if (!input.tapSeen) {
    const what = input.serialBytes === 0
      ? "no serial output at all"
      : `no "TAP version" line in ${input.serialBytes} bytes of serial output; first bytes: ${
        firstBytesText(input)
      }`;
    return make("no-tap", `${what} (QEMU exited ${statusName(status)})`, {
      details: stderrLines,
    });
  }

  const exited = ` (QEMU exited ${statusName(status)})`;
  if (noTests(report) && report.problems.length === 0) {
    return noTestsVerdict(report, exited, stderrLines);
  }
  // The kernel chose its exit status: it ended on purpose, which a plan-less stream needs.
  const chosen = status === PASS_STATUS || status === FAIL_STATUS;
  if (!streamComplete(report, chosen)) {
    let message = `incomplete: ${progress(report)}; stopped ${where(report)} (QEMU exited ${
      statusName(status)
    })`;
    if (status === PASS_STATUS) {
      message += "; the kernel reported pass, but results are missing";
    }
    return make("incomplete", message, {
      test: running,
      details: [...report.problems, ...stderrLines],
    });
  }

  if (report.problems.length > 0) return malformedVerdict(report, exited, stderrLines);

  if (report.failures.length > 0) {
    const suffix = status !== FAIL_STATUS
      ? ` (QEMU exited ${statusName(status)}, not ${statusName(FAIL_STATUS)})`
      : "";
    return assertionFailure(report, suffix);
  }

  if (status === PASS_STATUS) return make("pass", passMessage(report));

  const message = `every result is ok, but QEMU exited ${statusName(status)} instead of ${
    statusName(PASS_STATUS)
  }: the kernel did not report success`;
  return make(stderr !== "" ? "qemu-failed" : "assertion-failure", message, {
    details: stderrLines,
  });
}
