/**
 * Ingestion of the kernel's TAP 14 stream through tap-parser.
 *
 * Lines are fed one at a time as they arrive from the serial port. KTAP v1
 * is first rewritten as TAP 14 (ktap.ts). tap-parser does the parsing; this
 * module turns its events into typed events and a typed report, and adds
 * what TAP does not know about: the kernel's `# RUN suite.test` lines, which
 * say which test is running, and KTAP's XFAIL, TIMEOUT and ERROR directives,
 * which tap-parser leaves in the description.
 *
 * Two behaviours of tap-parser shape the code below:
 * - A test point is only emitted when the next TAP line arrives (it may still
 *   get a YAML block), and comments seen meanwhile are queued behind it. So
 *   event order is not stream order across nesting levels, and the bail-out
 *   dump is collected from the lines themselves.
 * - An unindented `Bail out!` silently drops a subtest's pending test point
 *   (and its queued comments) when that subtest has no counted result yet.
 *   Before such a line, and before a `# RUN` line (which by the contract
 *   follows a finished test), the pending result is flushed with
 *   `emitResult()`.
 */

import { lineTypes, Parser, type Result } from "tap-parser";
import { KtapNormalizer } from "./ktap.ts";

/** A test's YAML diagnostic block, with the fields the kernel writes pulled out as text. */
export interface Diagnostic {
  /** What went wrong, e.g. the failed expression. */
  message?: string;
  /** Source location, `file:line`. */
  at?: string;
  /** The expected value. */
  expected?: string;
  /** The actual value. */
  actual?: string;
  /** Every field of the block as tap-parser's YAML reader returned it. */
  fields: Readonly<Record<string, unknown>>;
}

/** One test point. */
export interface TestResult {
  /** Suite (subtest) name; "" for a top-level test point. */
  suite: string;
  /** The test point's description. */
  name: string;
  /** `suite.name`, as in the kernel's `# RUN` lines (just `name` at top level). */
  fullName: string;
  /** The test point number (0 if the line had none). */
  id: number;
  /** `ok` (true) or `not ok` (false). */
  ok: boolean;
  /** The `# SKIP` reason ("" if none given), or null if not skipped. */
  skip: string | null;
  /** The `# TODO` reason ("" if none given), or null if not a todo. */
  todo: string | null;
  /** A KTAP directive tap-parser does not know (XFAIL, TIMEOUT, ERROR), or null. */
  directive: KtapDirective | null;
  /** Text after `#` that is not a known directive (KTAP diagnostic data), or after the directive. */
  note: string | null;
  /** The YAML diagnostic block, if any. */
  diagnostic: Diagnostic | null;
}

/** Directives of KTAP that TAP 14 does not have. */
export type KtapDirective = "xfail" | "timeout" | "error";

/** What a test point amounts to. */
export type TestStatus = "pass" | "fail" | "skip" | "todo" | "xfail" | "timeout" | "error";

/**
 * The status of a test point. TODO and XFAIL never fail (an expected failure
 * is not one); TIMEOUT and ERROR always do, even on an `ok` line.
 */
export function testStatus(t: TestResult): TestStatus {
  if (t.directive === "timeout" || t.directive === "error") return t.directive;
  if (t.todo !== null) return "todo";
  if (t.directive === "xfail") return "xfail";
  if (t.skip !== null) return "skip";
  return t.ok ? "pass" : "fail";
}

/** True for the statuses that fail a run. */
export function isFailure(status: TestStatus): boolean {
  return status === "fail" || status === "timeout" || status === "error";
}

/** A plan line `start..end`. */
export interface PlanInfo {
  start: number;
  end: number;
  /** The comment after `#` on the plan line ("" if none). */
  comment: string;
  /** How many results the plan promises. */
  count: number;
}

/** A suite: a TAP subtest and its closing test point. */
export interface SuiteReport {
  name: string;
  /** False for a top-level test point with no subtest body. */
  hasSubtest: boolean;
  /** The subtest's plan, once seen. */
  plan: PlanInfo | null;
  /** The subtest's results, in order. */
  tests: TestResult[];
  /** The closing test point at the top level (null while the suite runs). */
  result: TestResult | null;
  /** The subtest's results match its plan. */
  planComplete: boolean;
}

/** Result counts over all tests (suites' closing test points not counted). */
export interface TapCounts {
  suites: number;
  tests: number;
  /** ok, neither skip nor todo. */
  pass: number;
  /** not ok, not todo. */
  fail: number;
  skip: number;
  /** TODO and XFAIL: known or expected failures. */
  todo: number;
}

/** A `Bail out!` and the comment lines just before it (the exception dump). */
export interface BailOut {
  reason: string;
  dump: string[];
}

/** Everything learnt from a TAP stream. */
export interface TapReport {
  /** From `TAP version N`; null if tap-parser saw no version line. */
  version: number | null;
  /** The top-level plan (one entry per suite). */
  plan: PlanInfo | null;
  suites: SuiteReport[];
  counts: TapCounts;
  /** Every `not ok` that is not a todo: tests, then suites' closing points, in stream order. */
  failures: TestResult[];
  bailOut: BailOut | null;
  /** Top-level plan and every suite's plan fully satisfied, and no bail out. */
  planComplete: boolean;
  /** Comment lines, without indentation (not the `# Subtest` headers). */
  comments: string[];
  /** The last test announced by `# RUN` that has no result. */
  running: string | null;
  /** The last test that produced a result. */
  lastResult: string | null;
  /** True once the stream ended. */
  ended: boolean;
  /** True if the stream was KTAP (rewritten as TAP 14 before parsing). */
  ktap: boolean;
}

/** What {@link TapIngest} reports while lines arrive. */
export type TapEvent =
  | { type: "plan"; suite: string | null; plan: PlanInfo }
  | { type: "suite-start"; suite: string }
  | { type: "test-start"; suite: string; name: string; fullName: string }
  | { type: "test-result"; result: TestResult }
  | { type: "suite-result"; suite: SuiteReport }
  | { type: "bail-out"; bailOut: BailOut }
  | { type: "comment"; suite: string | null; text: string };

/** `# RUN suite.test`, as printed before each test. */
const RUN_LINE = /^# RUN (\S+)\s*$/;
/** A comment tap-parser adds itself when a parser ends short of its plan. */
const SYNTHETIC_COMMENT = /^# test count\(\d+\) != plan\((?:\d+|null)\)$/;

/**
 * A suite has all its results: as many as its plan promised, or, for a
 * subtest without a plan (KTAP allows one), it was closed by its test point.
 */
function suiteComplete(s: SuiteReport): boolean {
  if (!s.hasSubtest) return true;
  return s.plan !== null ? s.tests.length === s.plan.count : s.result !== null;
}

/** Number of results a plan line promises. */
export function planCount(start: number, end: number): number {
  return Math.max(0, end - start + 1);
}

function diagText(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null) return JSON.stringify(value);
  return String(value);
}

function toDiagnostic(diag: unknown): Diagnostic | null {
  if (diag === null || diag === undefined) return null;
  const fields: Record<string, unknown> = typeof diag === "object" && !Array.isArray(diag)
    ? { ...(diag as Record<string, unknown>) }
    : { value: diag };
  const out: Diagnostic = { fields };
  const message = diagText(fields.message);
  const at = diagText(fields.at);
  const expected = diagText(fields.expected);
  const actual = diagText(fields.actual);
  if (message !== undefined) out.message = message;
  if (at !== undefined) out.at = at;
  if (expected !== undefined) out.expected = expected;
  if (actual !== undefined) out.actual = actual;
  return out;
}

function directive(value: boolean | string): string | null {
  if (value === false) return null;
  return value === true ? "" : value;
}

/** `name # XFAIL reason` → name, directive, note (KTAP descriptions cannot contain `#`). */
function splitDescription(
  text: string,
): { name: string; directive: KtapDirective | null; note: string | null } {
  const hash = text.search(/(?:^|\s)#/);
  if (hash < 0) return { name: text, directive: null, note: null };
  const name = text.slice(0, hash).trim();
  const rest = text.slice(hash).replace(/^\s*#\s*/, "");
  const m = /^(XFAIL|TIMEOUT|ERROR)\b\s*(.*)$/i.exec(rest);
  if (m === null) return { name, directive: null, note: rest };
  return { name, directive: m[1].toLowerCase() as KtapDirective, note: m[2] };
}

function toTestResult(res: Result, suite: string): TestResult {
  const { name, directive: ktapDirective, note } = splitDescription(res.name);
  return {
    suite,
    name,
    fullName: suite === "" ? name : `${suite}.${name}`,
    id: res.id,
    ok: res.ok,
    skip: directive(res.skip),
    todo: directive(res.todo),
    directive: ktapDirective,
    note,
    diagnostic: toDiagnostic(res.diag as unknown),
  };
}

function toPlan(plan: { start: number; end: number; comment: string }): PlanInfo {
  return {
    start: plan.start,
    end: plan.end,
    comment: plan.comment ?? "",
    count: planCount(plan.start, plan.end),
  };
}

function commentText(line: string): string {
  return line.replace(/\n$/, "").trim();
}

/**
 * Feeds TAP lines to tap-parser as they arrive and keeps a typed report.
 * Use {@link TapIngest.push} for each line (without its terminator) and
 * {@link TapIngest.end} when the stream ends.
 */
export class TapIngest {
  readonly #root = new Parser();
  readonly #normalizer = new KtapNormalizer((line) => this.#write(line));
  readonly #onEvent: (event: TapEvent) => void;
  /** Active parsers, root first, deepest subtest last. */
  readonly #stack: Parser[] = [this.#root];
  readonly #suites: SuiteReport[] = [];
  readonly #comments: string[] = [];
  readonly #started: string[] = [];
  readonly #finished = new Set<string>();
  #version: number | null = null;
  #plan: PlanInfo | null = null;
  #bailOut: BailOut | null = null;
  #lastResult: string | null = null;
  /** Comment lines since the last test point, plan or `# RUN` line. */
  #recentComments: string[] = [];
  #dumpAtBailOut: string[] = [];
  #ended = false;

  /** Create an ingester; `onEvent` sees each event as soon as tap-parser emits it. */
  constructor(onEvent: (event: TapEvent) => void = () => {}) {
    this.#onEvent = onEvent;
    const root = this.#root;
    root.on("version", (v: number) => {
      this.#version = v;
    });
    root.on("plan", (p: { start: number; end: number; comment: string }) => {
      this.#plan = toPlan(p);
      this.#onEvent({ type: "plan", suite: null, plan: this.#plan });
    });
    root.on("comment", (line: string) => this.#comment(line, null));
    root.on("bailout", (reason: string | boolean) => {
      const bailOut = {
        reason: typeof reason === "string" ? reason : "",
        dump: this.#dumpAtBailOut,
      };
      this.#bailOut ??= bailOut;
      this.#onEvent({ type: "bail-out", bailOut });
    });
    root.on("child", (child: Parser) => this.#suiteStart(child));
    root.on("assert", (res: Result) => this.#topLevelResult(res));
  }

  /** Feed one line (without its line terminator). */
  push(line: string): void {
    if (this.#ended) throw new Error("TapIngest: push after end");
    this.#normalizer.push(line);
  }

  /** Feed one TAP 14 line to tap-parser, after what TAP does not know about. */
  #write(line: string): void {
    const text = line.replace(/\r/g, "");
    const body = text.trimStart();
    const run = RUN_LINE.exec(body);
    if (run !== null) {
      // By the contract a `# RUN` follows a finished test point: flush it so
      // its result is out before the next test is announced.
      this.#flushPending();
      this.#recentComments = [];
      this.#testStart(run[1]);
    } else if (lineTypes.bailout.test(body + "\n")) {
      this.#flushPending();
      this.#dumpAtBailOut = this.#recentComments;
    } else if (lineTypes.comment.test(body + "\n")) {
      if (!lineTypes.subtest.test(body + "\n")) {
        this.#recentComments.push(body);
      }
    } else if (
      lineTypes.testPoint.test(body + "\n") || lineTypes.plan.test(body + "\n")
    ) {
      this.#recentComments = [];
    }
    this.#root.write(text + "\n");
  }

  /** End of stream: flushes pending results and returns the final report. */
  end(): TapReport {
    if (!this.#ended) {
      this.#normalizer.end();
      this.#ended = true;
      this.#root.end();
    }
    return this.report();
  }

  /** A snapshot of the report so far. */
  report(): TapReport {
    const suites = this.#suites.map((s) => ({
      ...s,
      tests: [...s.tests],
      planComplete: suiteComplete(s),
    }));
    const counts: TapCounts = {
      suites: suites.length,
      tests: 0,
      pass: 0,
      fail: 0,
      skip: 0,
      todo: 0,
    };
    const testFailures: TestResult[] = [];
    const suiteFailures: TestResult[] = [];
    for (const suite of suites) {
      // A top-level test point without a subtest body is a test of its own.
      const tests = suite.hasSubtest ? suite.tests : (suite.result ? [suite.result] : []);
      for (const t of tests) {
        counts.tests++;
        const status = testStatus(t);
        if (status === "todo" || status === "xfail") counts.todo++;
        else if (status === "skip") counts.skip++;
        else if (status === "pass") counts.pass++;
        else counts.fail++;
        if (isFailure(status)) testFailures.push(t);
      }
      const r = suite.result;
      if (suite.hasSubtest && r !== null && isFailure(testStatus(r))) {
        suiteFailures.push(r);
      }
    }
    const closed = suites.filter((s) => s.result !== null).length;
    const planComplete = this.#plan !== null && this.#bailOut === null &&
      closed === this.#plan.count && suites.every((s) => s.planComplete);
    return {
      version: this.#version,
      plan: this.#plan,
      suites,
      counts,
      failures: [...testFailures, ...suiteFailures],
      bailOut: this.#bailOut,
      planComplete,
      comments: [...this.#comments],
      running: this.#running(),
      lastResult: this.#lastResult,
      ended: this.#ended,
      ktap: this.#normalizer.isKtap,
    };
  }

  #running(): string | null {
    for (let i = this.#started.length - 1; i >= 0; i--) {
      const name = this.#started[i];
      if (!this.#finished.has(name)) return name;
    }
    return null;
  }

  /** Emit the test point tap-parser holds back in the deepest active subtest. */
  #flushPending(): void {
    for (let i = this.#stack.length - 1; i >= 1; i--) {
      this.#stack[i].emitResult();
    }
  }

  #testStart(fullName: string): void {
    const dot = fullName.indexOf(".");
    const current = this.#stack.length > 1 ? this.#stack[1].name : "";
    const suite = dot > 0 ? fullName.slice(0, dot) : current;
    const name = dot > 0 ? fullName.slice(dot + 1) : fullName;
    this.#started.push(fullName);
    this.#finished.delete(fullName);
    this.#onEvent({ type: "test-start", suite, name, fullName });
  }

  #comment(line: string, suite: string | null): void {
    const text = commentText(line);
    if (lineTypes.subtest.test(text + "\n")) return;
    if (SYNTHETIC_COMMENT.test(text)) return;
    this.#comments.push(text);
    this.#onEvent({ type: "comment", suite, text });
  }

  #track(parser: Parser): void {
    this.#stack.push(parser);
    parser.on("complete", () => {
      const i = this.#stack.indexOf(parser);
      if (i > 0) this.#stack.splice(i, 1);
    });
    parser.on("child", (child: Parser) => {
      this.#track(child);
      child.on("comment", (line: string) => this.#comment(line, child.name));
    });
  }

  #suiteStart(child: Parser): void {
    const suite: SuiteReport = {
      name: child.name,
      hasSubtest: true,
      plan: null,
      tests: [],
      result: null,
      planComplete: false,
    };
    this.#suites.push(suite);
    this.#track(child);
    this.#onEvent({ type: "suite-start", suite: suite.name });
    child.on("plan", (p: { start: number; end: number; comment: string }) => {
      suite.plan = toPlan(p);
      this.#onEvent({ type: "plan", suite: suite.name, plan: suite.plan });
    });
    child.on("comment", (line: string) => this.#comment(line, suite.name));
    child.on("assert", (res: Result) => {
      const result = toTestResult(res, suite.name);
      suite.tests.push(result);
      this.#finished.add(result.fullName);
      this.#lastResult = result.fullName;
      this.#onEvent({ type: "test-result", result });
    });
  }

  #topLevelResult(res: Result): void {
    const result = toTestResult(res, "");
    let suite = res.closingTestPoint
      ? this.#suites.findLast((s) => s.hasSubtest && s.result === null)
      : undefined;
    if (suite === undefined) {
      suite = {
        name: res.name,
        hasSubtest: false,
        plan: null,
        tests: [],
        result: null,
        planComplete: true,
      };
      this.#suites.push(suite);
      this.#lastResult = result.fullName;
      this.#finished.add(result.fullName);
    }
    suite.result = result;
    // A subtest announced without a name (KTAP) is named by its closing point.
    if (suite.name === "") suite.name = result.name;
    suite.planComplete = suiteComplete(suite);
    this.#onEvent({ type: "suite-result", suite: { ...suite } });
  }
}
