/**
 * The runner's console output. On a terminal: one live progress line at
 * the bottom (which runs are going, the test each one is in), redrawn in
 * place, with a permanent line per finished run above it. In CI (CI=true)
 * or when the output is not a terminal: plain lines only, a line when a run
 * starts and when it ends, so logs read top to bottom.
 *
 * Failures are printed in full either way: the verdict, the symbolized crash
 * dump or the failed tests' diagnostics, and the serial log's path.
 */
import process from "node:process";
import type { Classification } from "../core/classify.ts";
import type { KernelReport, RunRecord, TestRecord } from "../core/record.ts";
import type { TapEvent } from "../core/tap.ts";
import type { JobInfo, RunObserver } from "../run/observer.ts";

export { type JobInfo, type RunObserver, silentObserver } from "../run/observer.ts";

/** `tty`: live progress line; `plain`: lines only. */
export type ConsoleMode = "tty" | "plain";

/** tty only on a terminal outside CI (`CI` set to anything but false/0). */
export function consoleMode(
  isTerminal: boolean = process.stdout.isTTY === true,
  env: (name: string) => string | undefined = (n) => process.env[n],
): ConsoleMode {
  const ci = env("CI");
  const inCi = ci !== undefined && ci !== "" && ci !== "false" && ci !== "0";
  return isTerminal && !inCi ? "tty" : "plain";
}

interface Live {
  job: JobInfo;
  attempt: number;
  done: number;
  running: string | null;
}

const REDRAW_MS = 80;

function color(code: number, on: boolean) {
  return (text: string) => (on ? `\x1b[${code}m${text}\x1b[0m` : text);
}

/** Seconds with one decimal. */
function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function testCounts(run: RunRecord): string {
  const tests = run.suites.flatMap((s) => s.tests);
  const n = (pred: (t: TestRecord) => boolean) => tests.filter(pred).length;
  const parts = [`${n((t) => t.status === "pass")} passed`];
  const failed = n((t) => ["fail", "timeout", "error"].includes(t.status));
  const skipped = n((t) => ["skip", "todo", "xfail"].includes(t.status));
  const flaky = n((t) => t.status === "flaky");
  const notRun = run.suites.reduce((sum, s) => sum + (s.notRun ?? 0), run.suitesNotRun ?? 0);
  if (failed) parts.push(`${failed} failed`);
  if (skipped) parts.push(`${skipped} skipped`);
  if (flaky) parts.push(`${flaky} flaky`);
  if (notRun) parts.push(`${notRun} not run`);
  return parts.join(", ");
}

/**
 * The lines a failed test contributes: its name, its diagnostic, then what
 * the kernel printed before its result line (KUnit's failure message).
 */
function failedTestLines(t: TestRecord): string[] {
  const d = t.diagnostic;
  const directive = t.status === "fail" ? "" : t.status.toUpperCase();
  const comment = [directive, t.reason ?? ""].filter((x) => x !== "").join(" ");
  const lines = [`not ok ${t.fullName}${comment ? ` # ${comment}` : ""}`];
  if (d?.message) lines.push(`  message:  ${d.message}`);
  if (d?.expected !== undefined) lines.push(`  expected: ${d.expected}`);
  if (d?.actual !== undefined) lines.push(`  actual:   ${d.actual}`);
  if (d?.at) lines.push(`  at:       ${d.at}`);
  for (const l of t.log ?? []) lines.push(`  | ${l}`);
  return lines;
}

/** A line per suite with tests that never reported, and one for suites never started. */
function notRunLines(run: RunRecord): string[] {
  const lines = run.suites.filter((s) => (s.notRun ?? 0) > 0).map((s) =>
    `not run: ${s.name === "" ? "(unnamed suite)" : s.name}: ${s.notRun} (${
      (s.notRunRanges ?? []).join(", ")
    })`
  );
  if ((run.suitesNotRun ?? 0) > 0) {
    lines.push(`not run: ${run.suitesNotRun} planned suites never started`);
  }
  return lines;
}

/** The lines that explain a run's failure (also used by the Deno test presentation). */
export function runFailureLines(run: RunRecord): string[] {
  const lines: string[] = [];
  const failed = run.suites.flatMap((s) => s.tests).filter((t) =>
    ["fail", "timeout", "error"].includes(t.status)
  );
  for (const t of failed) lines.push(...failedTestLines(t));
  lines.push(...notRunLines(run));
  if (run.kind !== "assertion-failure" || failed.length === 0) lines.push(...run.details);
  if (run.log !== null) lines.push(`serial log: ${run.log}`);
  return lines;
}

/** Writes runner progress to the console. */
export class ConsoleReporter implements RunObserver {
  readonly #mode: ConsoleMode;
  readonly #write: (text: string) => void;
  readonly #columns: () => number;
  readonly #live = new Map<string, Live>();
  readonly #green;
  readonly #red;
  readonly #yellow;
  #total = 0;
  #finished = 0;
  #statusShown = false;
  #lastDraw = 0;

  /** A reporter writing with `write` (default: stdout). */
  constructor(
    mode: ConsoleMode = consoleMode(),
    // Writes to a terminal, a file or a pipe are synchronous on Linux (Node and Deno alike).
    write: (text: string) => void = (t) => void process.stdout.write(t),
    columns: () => number = () => process.stdout.columns ?? 100,
  ) {
    this.#mode = mode;
    this.#write = write;
    this.#columns = columns;
    const colors = mode === "tty" && process.env.NO_COLOR === undefined;
    this.#green = color(32, colors);
    this.#red = color(31, colors);
    this.#yellow = color(33, colors);
  }

  start(jobs: readonly JobInfo[]): void {
    this.#total = jobs.length;
  }

  attemptStart(job: JobInfo, attempt: number): void {
    this.#live.set(job.id, { job, attempt, done: 0, running: null });
    if (this.#mode === "plain") {
      const again = attempt > 1 ? ` (attempt ${attempt})` : "";
      this.#line(`${job.label}: started${again} on ${job.description}`);
    } else this.#draw(true);
  }

  event(job: JobInfo, event: TapEvent): void {
    const live = this.#live.get(job.id);
    if (live === undefined) return;
    if (event.type === "test-start") live.running = event.fullName;
    else if (event.type === "test-result") {
      live.done++;
      if (live.running === event.result.fullName) live.running = null;
    }
    if (this.#mode === "tty") this.#draw(false);
  }

  attemptEnd(job: JobInfo, attempt: number, c: Classification, retry: boolean): void {
    if (!retry) return;
    this.#line(this.#yellow(`retry ${job.label} after attempt ${attempt}: ${c.message}`));
  }

  runEnd(job: JobInfo, run: RunRecord): void {
    this.#live.delete(job.id);
    this.#finished++;
    const time = secs(run.durationMs);
    if (run.status === "pass") {
      this.#line(`${this.#green("ok")}    ${run.label}  ${testCounts(run)}  (${time})`);
    } else if (run.status === "flaky") {
      const flaky = run.suites.flatMap((s) => s.tests).filter((t) => t.status === "flaky");
      const names = flaky.length ? `; flaky: ${flaky.map((t) => t.fullName).join(", ")}` : "";
      this.#line(
        `${this.#yellow("FLAKY")} ${run.label}  passed on attempt ${run.attempts.length}${names}` +
          `  (${time})`,
      );
      for (const a of run.attempts.slice(0, -1)) {
        this.#line(`      attempt ${a.attempt}: ${a.message}`);
      }
    } else {
      this.#line(`${this.#red("FAIL")}  ${run.label}  ${run.message}  (${run.category}, ${time})`);
      for (const l of runFailureLines(run)) this.#line(`      ${l}`);
    }
    if (this.#mode === "tty") this.#draw(true);
  }

  end(report: KernelReport): void {
    this.#clearStatus();
    if (report.build !== null) {
      this.#line(`${this.#red("FAIL")}  kernel: ${report.build.message}  (build)`);
      for (const l of report.build.details) this.#line(`      ${l}`);
    }
    for (const check of report.checks.filter((c) => !c.ok)) {
      this.#line(`${this.#red("FAIL")}  kernel: ${check.name}  (${check.category})`);
      for (const l of check.details) this.#line(`      ${l}`);
    }
  }

  /** A permanent line, above the progress line. */
  #line(text: string): void {
    this.#clearStatus();
    this.#write(text + "\n");
  }

  #clearStatus(): void {
    if (this.#statusShown) {
      this.#write("\r\x1b[2K");
      this.#statusShown = false;
    }
  }

  #draw(force: boolean): void {
    const now = performance.now();
    if (!force && now - this.#lastDraw < REDRAW_MS) return;
    this.#lastDraw = now;
    const parts = [`kernel ${this.#finished}/${this.#total} runs done`];
    for (const live of this.#live.values()) {
      const attempt = live.attempt > 1 ? ` #${live.attempt}` : "";
      parts.push(
        `${live.job.label}${attempt} ${live.done} done${live.running ? ` ${live.running}` : ""}`,
      );
    }
    let text = parts.join(" │ ");
    const width = Math.max(20, this.#columns() - 1);
    if (text.length > width) text = text.slice(0, width - 1) + "…";
    this.#write(`\r\x1b[2K${text}`);
    this.#statusShown = true;
  }
}
