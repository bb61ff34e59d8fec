/**
 * Reading of the kernel's TAP 14 or KTAP v1 stream, line by line as it
 * arrives from the serial port, into typed events and a typed report.
 *
 * One reader for both, written for what real kernels print
 * (Documentation/dev-tools/ktap.rst, kunit_tool's parser and test data):
 * - nesting is read from the structure first: a `KTAP version` or
 *   `TAP version` line, or a `# Subtest: name` header, opens a level; a
 *   level ends with the result line that closes it (its plan met, or its
 *   name given again); indentation (a tab, 2 or 4 spaces a level, results
 *   deeper than their plan) only decides where a line belongs when it says
 *   more than the structure: a result less indented than a level's own
 *   lines closes it, one as indented stays inside (an extra result);
 * - everything that is not TAP (kernel messages, `# name: EXPECTATION
 *   FAILED at file:line`, `Expected …`) belongs to the next result or level
 *   as its log, which a failure keeps (console, JSON, JUnit);
 * - the kernel's own `# RUN suite.test` lines say which test is running;
 * - a `Bail out!` or a `Kernel panic - not syncing:` before the stream is
 *   complete is a panic; `reboot: System halted` / `Power down` /
 *   `Restarting system` is the kernel's clean end, after which nothing is read;
 * - KTAP's XFAIL, TIMEOUT and ERROR directives next to TAP's SKIP and TODO;
 * - YAML diagnostic blocks (`---` … `...`) after a result (yaml_diag.ts).
 *
 * Tests are the leaves: a result whose level had subtests only counts its
 * subtests (as kunit_tool does), so a failure at any depth is counted and a
 * parameterised test counts its parameters. What breaks the protocol
 * (duplicate or out-of-range numbers, two plans, more results than planned)
 * is collected in `problems`, which never let a run pass.
 *
 * Cost: linear in the input, no recursion (nesting of any depth), memory
 * for the results kept and the open levels only: a passing test keeps no
 * log, a log keeps its last {@link MAX_LOG_CHARS} characters, a line its
 * first {@link MAX_LINE_CHARS}. Text from the kernel is stored with control
 * characters escaped (printable.ts).
 */

import { cutLine, MAX_LINE_CHARS, printable } from "./printable.ts";
import { readYamlBlock } from "./yaml_diag.ts";

/** Characters of log kept before one result (the last ones). */
export const MAX_LOG_CHARS = 16 * 1024;
/** Lines of log kept before one result. */
const MAX_LOG_LINES = 200;
/** Lines of one YAML block. */
const MAX_YAML_LINES = 200;
/** Comment lines kept in the report. */
const MAX_COMMENTS = 1000;
/** Problems kept in the report (the count goes on). */
const MAX_PROBLEMS = 50;
/** Columns a tab stands for when measuring indentation. */
const TAB_COLUMNS = 8;
const SPACE = 0x20;
const TAB = 0x09;

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
  /** Every field of the block, as text. */
  fields: Readonly<Record<string, unknown>>;
}

/** One test point. */
export interface TestResult {
  /** Suite (top-level subtest) name; "" for a top-level test point. */
  suite: string;
  /** The test's name within its suite: `test`, or `test.param` for deeper levels. */
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
  /** A KTAP directive TAP does not have (XFAIL, TIMEOUT, ERROR), or null. */
  directive: KtapDirective | null;
  /** Text after `#` that is not a known directive (KTAP diagnostic data), or after the directive. */
  note: string | null;
  /** The YAML diagnostic block, or what a KUnit failure message says; null if none. */
  diagnostic: Diagnostic | null;
  /** The lines printed before the result (failures only; empty otherwise). */
  log: string[];
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

/** A suite: a top-level subtest and its closing test point. */
export interface SuiteReport {
  name: string;
  /** False for a top-level test point with no subtest body. */
  hasSubtest: boolean;
  /** The subtest's plan, once seen. */
  plan: PlanInfo | null;
  /** The suite's tests (the leaves below it), in order. */
  tests: TestResult[];
  /** The closing test point at the top level (null while the suite runs). */
  result: TestResult | null;
  /** Closed, and every plan in it met: nothing missing, nothing extra. */
  planComplete: boolean;
  /** Tests its plans (at any depth) promised that never reported. */
  notRun: number;
  /** Which: `4-6 of 6`, `param_test: 3 of 3` (at most a few ranges). */
  notRunRanges: string[];
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
  /** Planned tests that never reported (and planned suites that never started). */
  notRun: number;
}

/** A `Bail out!` (or a kernel panic) and the lines just before it (the exception dump). */
export interface BailOut {
  reason: string;
  dump: string[];
}

/** Everything learnt from a TAP stream. */
export interface TapReport {
  /** From `TAP version N` / `KTAP version N`; null if no version line came. */
  version: number | null;
  /** The top-level plan (one entry per suite). */
  plan: PlanInfo | null;
  suites: SuiteReport[];
  counts: TapCounts;
  /** Every failure: tests, then levels' own `not ok` (suites included), in stream order. */
  failures: TestResult[];
  bailOut: BailOut | null;
  /** {@link startedComplete} and a top-level plan met. */
  planComplete: boolean;
  /**
   * Every level that was opened was closed, every plan met, no bail out,
   * and the top-level plan, if there is one, met: nothing is missing as
   * far as the stream said.
   */
  startedComplete: boolean;
  /** Planned suites (top-level entries) that never reported. */
  suitesNotRun: number;
  /** What breaks the protocol, in words (never a pass when not empty). */
  problems: string[];
  /** The kernel's end line after the stream (`reboot: System halted`…), if one came. */
  kernelEnd: { line: string; clean: boolean } | null;
  /** Comment lines, without indentation (not the `# Subtest` headers); the first ones. */
  comments: string[];
  /** The last test announced by `# RUN` that has no result. */
  running: string | null;
  /** The last test that produced a result. */
  lastResult: string | null;
  /** True once the stream ended. */
  ended: boolean;
  /** True if the stream was KTAP (a `KTAP version` line). */
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

const VERSION = /^(K?)TAP version (\d+)\s*$/;
const PLAN = /^(\d+)\.\.(\d+)\s*(?:#\s*(.*))?$/;
const RESULT = /^(not ok|ok)(?:\s+(.*))?$/;
const SUBTEST = /^# Subtest(?::\s*(.*))?$/;
const RUN_LINE = /^# RUN (\S+)\s*$/;
const BAIL_OUT = /^bail out!\s*(.*)$/i;
/** Linux's panic line, also after a prefix the stream's first line did not have. */
const PANIC = /(?:^|[\s\]>])(Kernel panic - not syncing:.*)$/;
/** Lines a kernel prints when it shuts down on purpose (also after such a prefix). */
const CLEAN_END = /(?:^|[\s\]>])(reboot: (?:System halted|Power down|Restarting system)\b.*)$/;
/** KUnit's failure message: `# test: EXPECTATION FAILED at lib/x.c:42`. */
const KUNIT_FAILED = /^#?\s*(?:[^:]+:\s*)?(?:EXPECTATION|ASSERTION) FAILED at (\S+)/;
const EMPTY_LOG: string[] = [];

/** Number of results a plan line promises. */
export function planCount(start: number, end: number): number {
  return Math.max(0, end - start + 1);
}

function indentOf(line: string): number {
  let n = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === SPACE) n++;
    else if (c === TAB) n += TAB_COLUMNS - (n % TAB_COLUMNS);
    else break;
  }
  return n;
}

/** Lines before a result, the last ones kept. */
class LogBuffer {
  lines: string[] = [];
  #chars = 0;
  dropped = 0;

  push(line: string): void {
    this.lines.push(line);
    this.#chars += line.length;
    while (
      this.lines.length > 1 && (this.#chars > MAX_LOG_CHARS || this.lines.length > MAX_LOG_LINES)
    ) {
      this.#chars -= this.lines.shift()!.length;
      this.dropped++;
    }
  }

  /** The lines, with a note of what was dropped first. */
  take(): string[] {
    const out = this.dropped > 0
      ? [`(${this.dropped} earlier lines not kept)`, ...this.lines]
      : this.lines;
    this.lines = [];
    this.#chars = 0;
    this.dropped = 0;
    return out;
  }
}

/** One open nesting level (the root is the whole stream). */
interface Level {
  parent: Level | null;
  depth: number;
  name: string;
  named: boolean;
  /** Indentation of the line that opened it. */
  openIndent: number;
  /** Smallest indentation of its own plan and result lines (null before any). */
  minIndent: number | null;
  plan: PlanInfo | null;
  /** Results seen at this level. */
  count: number;
  /** Opened by a version line and nothing else yet (a `# Subtest:` names it). */
  fresh: boolean;
  /** The log before its header (and its first lines). */
  log: string[];
  /** The depth-1 ancestor's suite (its own at depth 1; null for the root). */
  suite: SuiteReport | null;
  /** Leaves waiting for this level's name (it is the outermost unnamed one). */
  deferred: Leaf[] | null;
  /**
   * The outermost level from the suite down to this one that has no name
   * yet (null: all named). Fixed while the level is open: an ancestor is
   * only named at its header or by its closing line.
   */
  waitFor: Level | null;
  /** Opened by a `# Subtest:` header and nothing else yet (a version line joins it). */
  headerOnly: boolean;
  /** Its names below the suite, joined with "." (once asked for). */
  path: string | null;
  /** More results than planned was already said. */
  overfull: boolean;
}

/** A leaf result waiting for its ancestors' names. */
interface Leaf {
  result: TestResult;
  parent: Level;
  rawName: string;
}

/** A result line, read. */
interface ResultLine {
  ok: boolean;
  id: number | null;
  name: string;
  skip: string | null;
  todo: string | null;
  directive: KtapDirective | null;
  note: string | null;
}

/** `ok 3 - name # SKIP reason` → its parts. */
export function readResultLine(body: string): ResultLine | null {
  const m = RESULT.exec(body);
  if (m === null) return null;
  let rest = m[2] ?? "";
  let id: number | null = null;
  const num = /^(\d+)(?:\s+|$)/.exec(rest);
  if (num !== null) {
    id = Number(num[1]);
    rest = rest.slice(num[0].length);
  }
  if (rest === "-" || rest.startsWith("- ")) rest = rest.slice(1).trimStart();
  const out: ResultLine = {
    ok: m[1] === "ok",
    id,
    name: rest.trim(),
    skip: null,
    todo: null,
    directive: null,
    note: null,
  };
  const hash = rest.startsWith("#") ? 0 : rest.search(/\s#/);
  if (hash < 0) return out;
  out.name = rest.slice(0, hash).trim();
  const after = rest.slice(hash).replace(/^\s*#\s*/, "");
  const d = /^(SKIP\w*|TODO|XFAIL|TIMEOUT|ERROR)\b\s*(.*)$/i.exec(after);
  if (d === null) {
    out.note = after;
    return out;
  }
  const word = d[1].toUpperCase();
  if (word.startsWith("SKIP")) out.skip = d[2];
  else if (word === "TODO") out.todo = d[2];
  else {
    out.directive = word.toLowerCase() as KtapDirective;
    out.note = d[2];
  }
  return out;
}

/**
 * KTAP results read as kunit_tool reads them: only SKIP changes a verdict, so
 * a `not ok` stays a failure whatever TODO or XFAIL says (the directive is
 * kept as its note). TAP 14 logs keep TAP's meaning of TODO.
 */
function ktapVerdict(r: ResultLine): ResultLine {
  if (r.ok) return r;
  if (r.todo !== null) return { ...r, todo: null, note: `TODO ${r.todo}`.trim() };
  if (r.directive === "xfail") {
    return { ...r, directive: null, note: `XFAIL ${r.note ?? ""}`.trim() };
  }
  return r;
}

function fieldText(fields: Record<string, string>, key: string): string | undefined {
  return Object.hasOwn(fields, key) ? fields[key] : undefined;
}

function yamlDiagnostic(lines: string[]): Diagnostic {
  const fields = readYamlBlock(lines);
  for (const k of Object.keys(fields)) fields[k] = printable(fields[k]);
  const d: Diagnostic = { fields };
  const message = fieldText(fields, "message");
  const at = fieldText(fields, "at");
  const expected = fieldText(fields, "expected");
  const actual = fieldText(fields, "actual");
  if (message !== undefined) d.message = message;
  if (at !== undefined) d.at = at;
  if (expected !== undefined) d.expected = expected;
  if (actual !== undefined) d.actual = actual;
  return d;
}

/**
 * What KUnit's failure message says (`# t: EXPECTATION FAILED at f.c:42`,
 * then `Expected a == b, but` and the values): `at` and the message.
 */
export function logDiagnostic(log: readonly string[]): Diagnostic | null {
  for (let i = 0; i < log.length; i++) {
    const m = KUNIT_FAILED.exec(log[i].trim());
    if (m === null) continue;
    const rest = log.slice(i + 1, i + 4).map((l) => l.trim().replace(/^#\s*/, "")).filter((l) =>
      l !== "" && !KUNIT_FAILED.test(l)
    );
    const d: Diagnostic = { at: m[1], fields: { at: m[1] } };
    if (rest.length > 0) {
      d.message = rest.join(" ");
      d.fields = { message: d.message, at: m[1] };
    }
    return d;
  }
  return null;
}

/**
 * Reads TAP lines as they arrive and keeps a typed report. Use
 * {@link TapIngest.push} for each line (without its terminator) and
 * {@link TapIngest.end} when the stream ends.
 */
export class TapIngest {
  readonly #onEvent: (event: TapEvent) => void;
  readonly #root: Level = TapIngest.#level(null, 0, "", true, 0, null);
  #top: Level = this.#root;
  readonly #suites: SuiteReport[] = [];
  readonly #failures: TestResult[] = [];
  readonly #nodeFailures: TestResult[] = [];
  readonly #comments: string[] = [];
  readonly #problems: string[] = [];
  #problemCount = 0;
  #version: number | null = null;
  #ktap = false;
  #lines = 0;
  #bailOut: BailOut | null = null;
  #kernelEnd: { line: string; clean: boolean } | null = null;
  #running: string | null = null;
  #lastResult: string | null = null;
  /** Non-TAP lines since the last TAP line, for the next result or level. */
  readonly #log = new LogBuffer();
  /** Comment lines since the last TAP or `# RUN` line: a bail out's dump. */
  #recentComments: string[] = [];
  /** The last result, until the line after it (a YAML block may follow). */
  #pending: { leaf: Leaf | null; result: TestResult; indent: number } | null = null;
  #yaml: { indent: number; lines: string[] } | null = null;
  /** Set after a bail out or the kernel's end: later lines are not read. */
  #stopped = false;
  #ended = false;
  #counts: TapCounts = { suites: 0, tests: 0, pass: 0, fail: 0, skip: 0, todo: 0, notRun: 0 };
  #openLevels = 0;

  /** Create a reader; `onEvent` sees each event as soon as it is known. */
  constructor(onEvent: (event: TapEvent) => void = () => {}) {
    this.#onEvent = onEvent;
  }

  static #level(
    parent: Level | null,
    indent: number,
    name: string,
    named: boolean,
    depth: number,
    suite: SuiteReport | null,
  ): Level {
    return {
      parent,
      depth,
      name,
      named,
      openIndent: indent,
      minIndent: null,
      plan: null,
      count: 0,
      fresh: false,
      log: EMPTY_LOG,
      suite,
      deferred: null,
      waitFor: null,
      headerOnly: false,
      path: null,
      overfull: false,
    };
  }

  /** Feed one line (without its line terminator). */
  push(line: string): void {
    if (this.#ended) throw new Error("TapIngest: push after end");
    if (this.#stopped) return;
    // Lines from a LineSplitter are cut already (and say so); others are cut here.
    let text = line.length > MAX_LINE_CHARS + 64 ? cutLine(line, line.length) : line;
    text = printable(text.includes("\r") ? text.replace(/\r/g, "") : text);
    this.#lines++;
    if (this.#lines === 1) {
      const v = VERSION.exec(text.trim());
      if (v !== null) {
        this.#version = Number(v[2]);
        this.#ktap = v[1] === "K";
        this.#root.minIndent = indentOf(text);
        return;
      }
    }
    this.#line(text);
  }

  #line(text: string): void {
    const indent = indentOf(text);
    const body = text.trim();
    if (this.#yaml !== null) {
      if (indent >= this.#yaml.indent || body === "") {
        if (body === "...") return this.#endYaml();
        this.#yaml.lines.push(text.slice(Math.min(indent, this.#yaml.indent)));
        if (this.#yaml.lines.length > MAX_YAML_LINES) this.#endYaml();
        return;
      }
      this.#endYaml();
    }
    if (body === "---" && this.#pending !== null && this.#yaml === null) {
      this.#yaml = { indent, lines: [] };
      return;
    }
    this.#flushPending();
    const bail = BAIL_OUT.exec(body);
    if (bail !== null) return this.#bail(bail[1], this.#recentComments);
    const panic = PANIC.exec(body);
    if (panic !== null) return this.#panic(panic[1]);
    const end = CLEAN_END.exec(body);
    if (end !== null) {
      this.#kernelEnd = { line: end[1], clean: true };
      this.#stopped = true;
      return;
    }
    const version = VERSION.exec(body);
    if (version !== null) {
      if (this.#version === null) {
        this.#version = Number(version[2]);
        this.#ktap = version[1] === "K";
      }
      return this.#versionLine(indent);
    }
    const subtest = SUBTEST.exec(body);
    if (subtest !== null) return this.#subtestHeader(indent, (subtest[1] ?? "").trim());
    const plan = PLAN.exec(body);
    if (plan !== null) return this.#planLine(indent, plan);
    const result = readResultLine(body);
    if (result !== null) return this.#resultLine(indent, this.#ktap ? ktapVerdict(result) : result);
    this.#other(body);
  }

  /** A comment or a line that is not TAP: the log of what comes next. */
  #other(body: string): void {
    if (body === "") return;
    const run = RUN_LINE.exec(body);
    if (run !== null) {
      this.#log.take();
      this.#recentComments = [];
      if (this.#comments.length < MAX_COMMENTS) this.#comments.push(body);
      this.#onEvent({ type: "comment", suite: this.#top.suite?.name ?? null, text: body });
      return this.#testStart(run[1]);
    }
    this.#log.push(body);
    if (body.startsWith("#")) {
      this.#recentComments.push(body);
      if (this.#recentComments.length > MAX_LOG_LINES) this.#recentComments.shift();
      if (this.#comments.length < MAX_COMMENTS) this.#comments.push(body);
      this.#onEvent({ type: "comment", suite: this.#top.suite?.name ?? null, text: body });
    }
  }

  #problem(text: string): void {
    this.#problemCount++;
    if (this.#problems.length < MAX_PROBLEMS) this.#problems.push(text);
  }

  /** How a level is named in messages. */
  #where(level: Level): string {
    if (level.depth === 0) return "the top level";
    const path = this.#path(level);
    const suite = level.suite?.name ?? "";
    const full = level.depth === 1 ? suite : [suite, path].filter((x) => x !== "").join(".");
    return full === "" ? `an unnamed subtest at depth ${level.depth}` : full;
  }

  /** The indentation a level's own lines have, as far as known. */
  #base(level: Level): number {
    return level.minIndent ?? level.openIndent;
  }

  /** Indentation tells this level's lines from its parent's. */
  #indented(level: Level): boolean {
    return level.parent !== null && level.minIndent !== null &&
      level.minIndent > this.#base(level.parent);
  }

  /**
   * Levels the line at `indent` is outside of end without their result
   * line (`orEqual`: a line as indented as the level's own lines is outside
   * too: a version line, which is indented deeper than its parent's lines).
   */
  #closeOutside(indent: number, orEqual: boolean): void {
    while (this.#top.parent !== null) {
      const l = this.#top;
      if (!this.#indented(l)) return;
      const min = l.minIndent!;
      if (indent > min || (indent === min && !orEqual)) return;
      this.#endLevel(true);
    }
  }

  #open(indent: number, name: string, named: boolean): Level {
    const parent = this.#top;
    const depth = parent.depth + 1;
    let suite = parent.suite;
    if (depth === 1) {
      suite = {
        name,
        hasSubtest: true,
        plan: null,
        tests: [],
        result: null,
        planComplete: false,
        notRun: 0,
        notRunRanges: [],
      };
      this.#suites.push(suite);
    }
    const level = TapIngest.#level(parent, indent, name, named, depth, suite);
    level.waitFor = (depth >= 2 ? parent.waitFor : null) ?? (named ? null : level);
    const log = this.#log.take();
    if (log.length > 0) level.log = log;
    this.#recentComments = [];
    this.#top = level;
    this.#openLevels++;
    if (depth === 1) this.#onEvent({ type: "suite-start", suite: name });
    return level;
  }

  #versionLine(indent: number): void {
    const top = this.#top;
    if (top.headerOnly && indent >= top.openIndent) {
      // TAP 14: `# Subtest: name`, then the subtest's own version line.
      top.headerOnly = false;
      top.minIndent = indent;
      return;
    }
    this.#closeOutside(indent, true);
    const level = this.#open(indent, "", false);
    level.minIndent = indent;
    level.fresh = true;
  }

  #subtestHeader(indent: number, name: string): void {
    const top = this.#top;
    if (top.fresh && !top.named) {
      top.fresh = false;
      this.#name(top, name);
      return;
    }
    this.#closeOutside(indent, false);
    this.#open(indent, name, true).headerOnly = true;
  }

  #name(level: Level, name: string): void {
    level.name = name;
    level.named = true;
    if (level.waitFor === level) level.waitFor = level.depth >= 2 ? level.parent!.waitFor : null;
    if (level.depth === 1 && level.suite !== null) level.suite.name = name;
  }

  #planLine(indent: number, m: RegExpExecArray): void {
    this.#closeOutside(indent, false);
    const plan: PlanInfo = {
      start: Number(m[1]),
      end: Number(m[2]),
      comment: m[3] ?? "",
      count: planCount(Number(m[1]), Number(m[2])),
    };
    let level = this.#top;
    const deeper = level.minIndent !== null && indent > this.#base(level);
    if (level.plan !== null || (level.count > 0 && deeper)) {
      if (deeper) {
        // A plan indented deeper than its level's lines: a subtest without a header.
        level = this.#open(indent, "", false);
      } else {
        if (plan.count !== level.plan!.count || plan.start !== level.plan!.start) {
          this.#problem(
            `two plans in ${this.#where(level)}: ${level.plan!.start}..${level.plan!.end}, then ${
              m[1]
            }..${m[2]}`,
          );
        }
        return;
      }
    }
    level.fresh = false;
    level.headerOnly = false;
    level.plan = plan;
    level.minIndent = Math.min(level.minIndent ?? indent, indent);
    if (level.depth === 1 && level.suite !== null) level.suite.plan = plan;
    if (level.depth <= 1) {
      this.#onEvent({ type: "plan", suite: level.suite?.name ?? null, plan });
    }
  }

  #resultLine(indent: number, r: ResultLine): void {
    let closing = false;
    // Less indented than a level's lines: its closing line, or its parent's.
    while (this.#top.parent !== null) {
      const top = this.#top;
      if (!this.#indented(top) || indent >= top.minIndent!) break;
      const parent = top.parent!;
      if (parent.parent === null || !this.#indented(parent) || indent >= parent.minIndent!) {
        closing = true;
        break;
      }
      this.#endLevel(true);
    }
    const top = this.#top;
    if (top.parent !== null && !closing) {
      const inside = this.#indented(top) && indent >= top.minIndent!;
      if (!inside) {
        if (top.plan !== null) closing = top.count >= top.plan.count;
        else closing = top.named && r.name === top.name;
      }
    }
    if (closing) {
      const level = this.#top;
      this.#top = level.parent!;
      this.#openLevels--;
      this.#closeLevel(level, indent, r);
    } else {
      this.#leafResult(indent, r);
    }
  }

  /** The number of a result at `level` (its count already raised). */
  #checkNumber(level: Level, id: number | null): void {
    if (id === null || id === level.count) return;
    const where = this.#where(level);
    if (id < level.count) {
      this.#problem(`duplicate test number ${id} in ${where} (result ${level.count} said ${id})`);
    } else if (level.plan !== null && id > level.plan.end) {
      this.#problem(
        `test number ${id} in ${where} is out of its plan ${level.plan.start}..${level.plan.end}`,
      );
    } else {
      this.#problem(`test number ${id} in ${where} where ${level.count} was expected`);
    }
  }

  /** Count a result at the top level of the stack, and say so when it is more than planned. */
  #countAt(level: Level, indent: number, id: number | null): void {
    level.count++;
    level.fresh = false;
    level.headerOnly = false;
    if (level.depth > 0 || level.minIndent === null) {
      level.minIndent = Math.min(level.minIndent ?? indent, indent);
    }
    this.#checkNumber(level, id);
    if (level.plan !== null && level.count > level.plan.count && !level.overfull) {
      level.overfull = true;
      this.#problem(
        `more results than planned in ${
          this.#where(level)
        }: plan ${level.plan.start}..${level.plan.end}`,
      );
    }
  }

  #makeResult(r: ResultLine, log: string[]): TestResult {
    const result: TestResult = {
      suite: "",
      name: r.name,
      fullName: r.name,
      id: r.id ?? 0,
      ok: r.ok,
      skip: r.skip,
      todo: r.todo,
      directive: r.directive,
      note: r.note,
      diagnostic: null,
      log: EMPTY_LOG,
    };
    if (isFailure(testStatus(result))) {
      result.log = log;
      result.diagnostic = logDiagnostic(log);
    }
    return result;
  }

  /** A result that is not a level's closing line: a test of its own. */
  #leafResult(indent: number, r: ResultLine): void {
    const parent = this.#top;
    this.#countAt(parent, indent, r.id);
    const result = this.#makeResult(r, this.#log.take());
    this.#recentComments = [];
    if (parent.depth === 0) {
      // A top-level test point without a subtest: a suite of one test.
      const suite: SuiteReport = {
        name: r.name,
        hasSubtest: false,
        plan: null,
        tests: [],
        result,
        planComplete: true,
        notRun: 0,
        notRunRanges: [],
      };
      this.#suites.push(suite);
      this.#pending = { leaf: null, result, indent };
      return;
    }
    this.#pending = { leaf: { result, parent, rawName: r.name }, result, indent };
  }

  /** A level's closing line (`r`), or its end without one (null). */
  #closeLevel(level: Level, indent: number, r: ResultLine | null): void {
    this.#finishPlan(level);
    if (r === null) {
      this.#finishDeferred(level);
      return;
    }
    if (!level.named) this.#name(level, r.name);
    const parent = level.parent!;
    this.#countAt(parent, indent, r.id);
    const before = this.#log.take();
    const log = level.log.length > 0 ? [...level.log, ...before] : before;
    const result = this.#makeResult(r, log);
    this.#recentComments = [];
    this.#finishDeferred(level);
    if (level.count === 0) {
      // No subtests: the level is a test of its own, unless it just says ok
      // (kunit_tool: "0 tests run", counted as nothing).
      const status = testStatus(result);
      if (status !== "pass") {
        if (level.depth === 1) {
          // A suite with no tests: its result is its only test.
          this.#pending = { leaf: null, result, indent };
          this.#suiteClosed(level, result, [result]);
          return;
        }
        this.#pending = {
          leaf: { result, parent, rawName: level.name },
          result,
          indent,
        };
        return;
      }
    }
    if (isFailure(testStatus(result))) this.#nodeFailures.push(result);
    if (level.depth === 1) this.#suiteClosed(level, result, null);
    this.#pending = { leaf: null, result, indent };
  }

  #suiteClosed(level: Level, result: TestResult, tests: TestResult[] | null): void {
    const suite = level.suite!;
    result.fullName = result.name;
    suite.result = result;
    if (tests !== null) {
      for (const t of tests) {
        t.suite = suite.name;
        this.#countTest(t);
        suite.tests.push(t);
        if (isFailure(testStatus(t))) this.#failures.push(t);
      }
    }
    // More results than planned is a problem of its own (see #countAt), not a missing one.
    suite.planComplete = suite.notRun === 0;
    this.#lastResult = result.fullName;
    if (this.#running === result.fullName) this.#running = null;
    this.#onEvent({ type: "suite-result", suite: { ...suite } });
  }

  /** Tests the level's plan promised that never came. */
  #finishPlan(level: Level): void {
    if (level.plan === null || level.count >= level.plan.count || level.suite === null) return;
    const missing = level.plan.count - level.count;
    const suite = level.suite;
    suite.notRun += missing;
    this.#counts.notRun += missing;
    if (suite.notRunRanges.length < 8) {
      const from = level.plan.start + level.count;
      const range = from === level.plan.end ? `${from}` : `${from}-${level.plan.end}`;
      const path = level.depth > 1 ? `${this.#path(level) || "(unnamed)"}: ` : "";
      suite.notRunRanges.push(`${path}${range} of ${level.plan.count}`);
    }
  }

  /** `test.param` below the suite (names of depth 2 and deeper). */
  #path(level: Level): string {
    // Iterative: nesting may be thousands deep. Cached once every name above is known.
    const chain: Level[] = [];
    let l: Level = level;
    while (l.depth > 1 && l.path === null) {
      chain.push(l);
      l = l.parent!;
    }
    let path = l.depth > 1 ? l.path! : "";
    let final = true;
    for (let i = chain.length - 1; i >= 0; i--) {
      const c = chain[i];
      final &&= c.named;
      const own = c.named ? c.name : "";
      path = path === "" ? own : own === "" ? path : `${path}.${own}`;
      if (final) c.path = path;
    }
    return path;
  }

  /** A leaf's result is final (its YAML block read): name it, or wait for its levels' names. */
  #finishLeaf(leaf: Leaf): void {
    const waitFor = leaf.parent.waitFor;
    if (waitFor !== null && !waitFor.named) {
      (waitFor.deferred ??= []).push(leaf);
      return;
    }
    this.#emitLeaf(leaf);
  }

  #emitLeaf(leaf: Leaf): void {
    const { result, parent } = leaf;
    const suite = parent.suite!;
    const path = this.#path(parent);
    const name = path === ""
      ? leaf.rawName
      : leaf.rawName === ""
      ? path
      : `${path}.${leaf.rawName}`;
    result.suite = suite.name;
    result.name = name;
    result.fullName = suite.name === "" ? name : `${suite.name}.${name}`;
    suite.tests.push(result);
    this.#countTest(result);
    if (isFailure(testStatus(result))) this.#failures.push(result);
    this.#lastResult = result.fullName;
    if (this.#running === result.fullName) this.#running = null;
    this.#onEvent({ type: "test-result", result });
  }

  #finishDeferred(level: Level): void {
    const leaves = level.deferred;
    if (leaves === null) return;
    level.deferred = null;
    if (!level.named) this.#name(level, ""); // ended without a name: "" in the names below it
    for (const leaf of leaves) this.#finishLeaf(leaf);
  }

  #countTest(t: TestResult): void {
    const c = this.#counts;
    c.tests++;
    const status = testStatus(t);
    if (status === "todo" || status === "xfail") c.todo++;
    else if (status === "skip") c.skip++;
    else if (status === "pass") c.pass++;
    else c.fail++;
  }

  /** The last result is final: no YAML block (or its block ended). */
  #flushPending(): void {
    const p = this.#pending;
    if (p === null) return;
    this.#pending = null;
    if (p.leaf !== null) return this.#finishLeaf(p.leaf);
    const suite = this.#suites[this.#suites.length - 1];
    if (suite !== undefined && suite.result === p.result && !suite.hasSubtest) {
      // A top-level test point.
      this.#countTest(p.result);
      if (isFailure(testStatus(p.result))) this.#failures.push(p.result);
      this.#lastResult = p.result.fullName;
      if (this.#running === p.result.fullName) this.#running = null;
      this.#onEvent({ type: "suite-result", suite: { ...suite } });
    }
  }

  #endYaml(): void {
    const yaml = this.#yaml!;
    this.#yaml = null;
    const p = this.#pending;
    if (p !== null) p.result.diagnostic = yamlDiagnostic(yaml.lines);
    this.#flushPending();
  }

  /**
   * End a level without a closing line: the stream went on elsewhere
   * (`goesOn`, which says so as a problem when nothing else will), or stopped.
   */
  #endLevel(goesOn: boolean): void {
    const level = this.#top;
    if (goesOn && level.depth >= 2 && level.parent!.plan === null) {
      this.#problem(`${this.#where(level)} has no result line`);
    }
    this.#top = level.parent!;
    this.#openLevels--;
    this.#closeLevel(level, 0, null);
  }

  #bail(reason: string, dump: string[]): void {
    const bailOut = { reason, dump: [...dump] };
    this.#bailOut ??= bailOut;
    this.#stopped = true;
    this.#onEvent({ type: "bail-out", bailOut });
  }

  #panic(line: string): void {
    if (this.#complete() && this.#counts.tests > 0) {
      // After every test, as kunit_tool reads it: the kernel's end, not a clean one.
      this.#kernelEnd = { line, clean: false };
      this.#stopped = true;
      return;
    }
    this.#bail(line, this.#log.take());
  }

  #testStart(fullName: string): void {
    const dot = fullName.indexOf(".");
    const current = this.#top.suite?.name ?? "";
    const suite = dot > 0 ? fullName.slice(0, dot) : current;
    const name = dot > 0 ? fullName.slice(dot + 1) : fullName;
    this.#running = fullName;
    this.#onEvent({ type: "test-start", suite, name, fullName });
  }

  /** Suites started that have no result line (yet). */
  #unclosedSuites(): number {
    let n = 0;
    for (let i = this.#suites.length - 1; i >= 0 && this.#suites[i].result === null; i--) n++;
    return n;
  }

  #complete(): boolean {
    const root = this.#root;
    return this.#bailOut === null && this.#openLevels === 0 &&
      (root.plan === null || root.count === root.plan.count) &&
      this.#suites.every((s) => s.planComplete);
  }

  /** End of stream: ends open levels and returns the final report. */
  end(): TapReport {
    if (!this.#ended) {
      if (this.#yaml !== null) this.#endYaml();
      this.#flushPending();
      while (this.#top.parent !== null) this.#endLevel(false);
      this.#finishDeferred(this.#root);
      this.#ended = true;
    }
    return this.report();
  }

  /** A snapshot of the report so far. */
  report(): TapReport {
    const root = this.#root;
    // Top-level entries the plan promised that never started (a started one counts its own).
    const suitesNotRun = root.plan === null
      ? 0
      : Math.max(0, root.plan.count - root.count - this.#unclosedSuites());
    const startedComplete = this.#complete();
    const problems = [...this.#problems];
    if (this.#problemCount > this.#problems.length) {
      problems.push(`… and ${this.#problemCount - this.#problems.length} more`);
    }
    return {
      version: this.#version,
      plan: root.plan,
      suites: this.#suites.map((s) => ({ ...s, tests: [...s.tests] })),
      counts: {
        ...this.#counts,
        suites: this.#suites.length,
        notRun: this.#counts.notRun + suitesNotRun,
      },
      failures: [...this.#failures, ...this.#nodeFailures],
      bailOut: this.#bailOut,
      planComplete: startedComplete && root.plan !== null,
      startedComplete,
      suitesNotRun,
      problems,
      kernelEnd: this.#kernelEnd,
      comments: [...this.#comments],
      running: this.#running,
      lastResult: this.#lastResult,
      ended: this.#ended,
      ktap: this.#ktap,
    };
  }
}
