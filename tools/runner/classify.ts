/**
 * What a kernel run amounts to, decided from facts only: QEMU's exit, its
 * stderr, the TAP report and whether the runner timed out. Pure, so every
 * case is testable without QEMU.
 */

import { DEBUG_EXIT, qemuExitStatus } from "../../linker/layout.ts";
import type { BailOut, Diagnostic, TapReport, TestResult } from "./tap.ts";

/** The kinds of outcome. Only `pass` is a success. */
export type ClassificationKind =
  | "pass"
  | "assertion-failure"
  | "panic"
  | "triple-fault"
  | "hang"
  | "no-tap"
  | "incomplete"
  | "qemu-failed"
  | "build-failure";

/** How the QEMU process ended. */
export type ExitInfo =
  | { kind: "exited"; status: number }
  | { kind: "signaled"; signal: string }
  | { kind: "spawn-error"; code: string | null; message: string };

/** Why the runner stopped QEMU itself. */
export interface TimeoutInfo {
  /** `silence`: no serial output for `ms`; `overall`: the run took longer than `ms`. */
  kind: "silence" | "overall";
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

function make(
  kind: ClassificationKind,
  message: string,
  extra: Partial<Omit<Classification, "kind" | "ok" | "message">> = {},
): Classification {
  return {
    kind,
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

function progress(report: TapReport): string {
  const plan = report.plan;
  if (plan === null) return "no top-level plan was seen";
  const closed = report.suites.filter((s) => s.result !== null).length;
  const parts = [`${closed} of ${plan.count} suites finished`];
  for (const s of report.suites) {
    if (s.hasSubtest && !s.planComplete) {
      const promised = s.plan === null ? "no plan" : `plan ${s.plan.count}`;
      parts.push(`${s.name}: ${s.tests.length} results, ${promised}`);
    }
  }
  return parts.join("; ");
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
  if (d?.message !== undefined) text += `: ${d.message}`;
  if (d?.expected !== undefined || d?.actual !== undefined) {
    text += ` (expected ${d?.expected ?? "?"}, actual ${d?.actual ?? "?"})`;
  }
  if (d?.at !== undefined) text += ` at ${d.at}`;
  return text;
}

function firstBytesText(input: ClassifyInput): string {
  return JSON.stringify(input.firstBytes);
}

/**
 * Decide what a run amounts to. Rules, in order:
 * spawn error → qemu-failed; runner timeout → hang; killed by a signal (or
 * QEMU reporting it was terminated by one) → qemu-failed; non-zero exit with
 * an error on stderr and no serial output → qemu-failed; `Bail out!` or the
 * panic status → panic; status 0 → triple-fault (never a success); no TAP
 * marker → no-tap; results short of the plan → incomplete; a `not ok` →
 * assertion-failure; the pass status → pass; anything else → a failure
 * saying which status came instead of the pass status.
 */
export function classify(input: ClassifyInput): Classification {
  const { exit, report } = input;
  const stderr = input.stderr.trim();
  const stderrLines = tail(stderr).map((l) => `stderr: ${l}`);
  const running = report.running;

  if (exit.kind === "spawn-error") {
    const what = exit.code === "ENOENT" ? "QEMU binary not found" : "QEMU could not be started";
    return make("qemu-failed", `${what}: ${exit.message}`, {
      details: stderrLines,
    });
  }

  if (input.timeout !== null) {
    const t = input.timeout;
    const why = t.kind === "silence"
      ? `no serial output for ${t.ms} ms`
      : `run exceeded the overall timeout of ${t.ms} ms`;
    const context = input.tapSeen ? where(report) : "before any TAP output";
    return make("hang", `hang: ${why} ${context}`, {
      test: running,
      details: input.tapSeen ? [] : [`first bytes: ${firstBytesText(input)}`],
    });
  }

  if (exit.kind === "signaled") {
    return make(
      "qemu-failed",
      `QEMU was killed by ${exit.signal} ${where(report)}`,
      { test: running, details: stderrLines },
    );
  }

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
    const b = report.bailOut;
    let message = `panic ${where(report)}: ${b.reason || "(no reason)"}`;
    if (status !== PANIC_STATUS) {
      message += ` (QEMU exited ${statusName(status)}, not ${statusName(PANIC_STATUS)})`;
    }
    return make("panic", message, {
      test: running,
      details: [...b.dump, ...stderrLines],
      bailOut: b,
    });
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

  if (!report.planComplete) {
    let message = `incomplete: ${progress(report)}; stopped ${where(report)} (QEMU exited ${
      statusName(status)
    })`;
    if (status === PASS_STATUS) {
      message += "; the kernel reported pass, but results are missing";
    }
    return make("incomplete", message, {
      test: running,
      details: stderrLines,
    });
  }

  if (report.failures.length > 0) {
    const first = report.failures[0];
    const n = report.failures.length;
    let message = `${n} failed: ${describeFailure(first)}`;
    if (status !== FAIL_STATUS) {
      message += ` (QEMU exited ${statusName(status)}, not ${statusName(FAIL_STATUS)})`;
    }
    return make("assertion-failure", message, {
      test: first.fullName,
      details: [
        ...report.failures.map((f) => `not ok: ${f.fullName}`),
        ...diagnosticLines(first.diagnostic),
      ],
      diagnostic: first.diagnostic,
    });
  }

  if (status === PASS_STATUS) {
    const c = report.counts;
    return make(
      "pass",
      `pass: ${c.pass} passed, ${c.skip} skipped, ${c.todo} todo in ${c.suites} suites`,
    );
  }

  const message = `every result is ok, but QEMU exited ${statusName(status)} instead of ${
    statusName(PASS_STATUS)
  }: the kernel did not report success`;
  return make(stderr !== "" ? "qemu-failed" : "assertion-failure", message, {
    details: stderrLines,
  });
}
