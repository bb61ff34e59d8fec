/**
 * The kernel report as one self-contained HTML page (`deno task test` writes
 * build/reports/index.html, and `--html FILE`): the matrix of suites ×
 * configurations, each failure with its diagnostic and the serial log lines
 * around it, and the run's times. No external resource of any kind (styles
 * and the little script are inline), so it opens offline and from a CI
 * artifact. Reads the kernel report (core/record.ts) and the serial logs it
 * names; the page is a pure function of those ({@link renderReportHtml}).
 */
import { readFile, writeFile } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import type { Category } from "../core/classify.ts";
import {
  bucketOf,
  type KernelReport,
  runEntry,
  type RunRecord,
  type SuiteRecord,
  type TestRecord,
} from "../core/record.ts";

/** Lines of serial log shown before and after the lines a failure concerns. */
export const CONTEXT_LINES = 6;
/** At most this many lines of log in one excerpt. */
const MAX_EXCERPT = 60;

/** A serial log by the path the report gives (relative to the repository root). */
export type LogReader = (path: string) => string | null;

/**
 * A suite as some writers of the report give it: with the number of its
 * tests that never ran (optional: older reports have no such field).
 */
type SuiteWithNotRun = SuiteRecord & { notRun?: number };

/** One cell of the matrix: a suite on one run. */
export interface Cell {
  passed: number;
  /** Failed tests by category (a failed test point is an assertion; the test running at a crash, a crash). */
  failed: Partial<Record<Category, number>>;
  skipped: number;
  flaky: number;
  /** Tests that never ran (null: some did not, how many is unknown). */
  notRun: number | null;
  /** The run never reached the suite at all. */
  absent: boolean;
}

/** A failure or flaky result worth a section of its own. */
export interface Finding {
  run: RunRecord;
  kind: "test" | "run" | "flaky";
  title: string;
  category: Category;
  test: TestRecord | null;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function ms(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "–";
  if (n < 1) return `${n.toFixed(2)} ms`;
  if (n < 1000) return `${n.toFixed(0)} ms`;
  if (n < 60_000) return `${(n / 1000).toFixed(2)} s`;
  return `${Math.floor(n / 60_000)} min ${((n % 60_000) / 1000).toFixed(0)} s`;
}

/** Every suite name of the report, in the order runs first show them. */
export function suiteNames(report: KernelReport): string[] {
  const names: string[] = [];
  for (const run of report.runs) {
    for (const s of run.suites) if (!names.includes(s.name)) names.push(s.name);
  }
  return names;
}

/** The test a run stopped in (crash or hang), if it belongs to `suite`. */
function stoppedIn(run: RunRecord, suite: string): boolean {
  if (run.test === null || (run.category !== "crash" && run.category !== "hang")) return false;
  return run.test === suite || run.test.startsWith(`${suite}.`);
}

/** What a run says about one suite. */
export function cellOf(run: RunRecord, suiteName: string): Cell {
  const cell: Cell = { passed: 0, failed: {}, skipped: 0, flaky: 0, notRun: 0, absent: false };
  const suite = run.suites.find((s) => s.name === suiteName) as SuiteWithNotRun | undefined;
  if (suite === undefined) {
    cell.absent = true;
    cell.notRun = null;
    return cell;
  }
  for (const t of suite.tests) {
    const b = bucketOf(t.status);
    if (b === "failed") cell.failed.assertion = (cell.failed.assertion ?? 0) + 1;
    else cell[b]++;
  }
  let stopped = 0;
  if (stoppedIn(run, suiteName) && !suite.tests.some((t) => t.fullName === run.test)) {
    cell.failed[run.category] = (cell.failed[run.category] ?? 0) + 1;
    stopped = 1;
  }
  // The report's own count when it has one (it includes the test a crash stopped in).
  let missing: number | null;
  if (typeof suite.notRun === "number" && (suite.notRun > 0 || suite.complete)) {
    missing = suite.notRun;
  } else if (suite.complete) missing = 0;
  else missing = suite.planned === null ? null : Math.max(0, suite.planned - suite.tests.length);
  cell.notRun = missing === null ? null : Math.max(0, missing - stopped);
  return cell;
}

/** What a run's failure is about: the test it stopped in, else what happened. */
function runTitle(run: RunRecord): string {
  return run.test ?? run.kind;
}

/** The failures and flaky results of a report, run by run. */
export function findings(report: KernelReport): Finding[] {
  const out: Finding[] = [];
  for (const run of report.runs) {
    for (const s of run.suites) {
      for (const t of s.tests) {
        if (bucketOf(t.status) === "failed") {
          out.push({ run, kind: "test", title: t.fullName, category: "assertion", test: t });
        } else if (t.status === "flaky") {
          out.push({ run, kind: "flaky", title: t.fullName, category: "pass", test: t });
        }
      }
    }
    const extra = runEntry(run);
    if (extra === "failed" || (run.status === "fail" && run.category !== "assertion")) {
      out.push({ run, kind: "run", title: runTitle(run), category: run.category, test: null });
    } else if (extra === "flaky") {
      out.push({ run, kind: "flaky", title: runTitle(run), category: run.category, test: null });
    }
  }
  return out;
}

/** The lines of a log an excerpt shows, and which of them to highlight. */
export interface Excerpt {
  /** 1-based number of the first line. */
  first: number;
  lines: string[];
  /** Indexes into `lines` to highlight. */
  marks: number[];
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function cut(lines: string[], from: number, to: number, marks: number[]): Excerpt {
  let a = Math.max(0, from);
  let b = Math.min(lines.length, to);
  if (b - a > MAX_EXCERPT) {
    // Keep the end, where the failure is.
    const last = marks.length ? Math.max(...marks) : b - 1;
    b = Math.min(b, last + CONTEXT_LINES + 1);
    a = Math.max(a, b - MAX_EXCERPT);
  }
  return {
    first: a + 1,
    lines: lines.slice(a, b),
    marks: marks.filter((m) => m >= a && m < b).map((m) => m - a),
  };
}

/**
 * The log lines around a failed test: from its `# RUN` line (or its suite's
 * start) through its `not ok` line and YAML block, with context; null when
 * the log does not show the test.
 */
export function testExcerpt(log: string, t: TestRecord): Excerpt | null {
  const lines = log.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1].trim() === "") lines.pop();
  const run = lines.findIndex((l) => l.trim() === `# RUN ${t.fullName}`);
  const suiteStart = lines.findIndex((l) =>
    new RegExp(`#\\s*Subtest:\\s*${escapeRe(t.suite)}\\s*$`).test(l)
  );
  const from = run >= 0 ? run : suiteStart >= 0 ? suiteStart : 0;
  const result = new RegExp(
    `^\\s*(?:\\[[\\s\\d.]+\\]\\s*)?(?:not )?ok\\s+\\d+\\s+(?:-\\s+)?${escapeRe(t.name)}(?:\\s|$)`,
  );
  let at = -1;
  for (let i = from; i < lines.length; i++) {
    if (result.test(lines[i])) {
      at = i;
      break;
    }
  }
  if (at < 0) {
    if (run < 0) return null;
    return cut(lines, run - CONTEXT_LINES, run + CONTEXT_LINES + 1, [run]);
  }
  let end = at + 1;
  if (lines[end]?.trim() === "---") {
    while (end < lines.length && lines[end].trim() !== "...") end++;
    end++;
  }
  const marks = [at];
  if (run >= 0 && run < at) marks.unshift(run);
  return cut(lines, Math.min(from, at) - CONTEXT_LINES, end + CONTEXT_LINES, marks);
}

/**
 * The log lines around the end of a run that failed without a failed test
 * point (a crash, a hang, a bail-out): up to its `Bail out!` or last line,
 * and the running test's `# RUN` line highlighted.
 */
export function runExcerpt(log: string, run: RunRecord): Excerpt | null {
  const lines = log.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1].trim() === "") lines.pop();
  if (lines.length === 0) return null;
  const bail = lines.findIndex((l) => /Bail out!/.test(l));
  const end = bail >= 0 ? bail : lines.length - 1;
  const marks = [end];
  if (run.test !== null) {
    const r = lines.findIndex((l) => l.trim() === `# RUN ${run.test}`);
    if (r >= 0 && r < end) marks.unshift(r);
  }
  const panic = lines.findIndex((l) => /#\s*panic:|EXCEPTION|triple fault/i.test(l));
  if (panic >= 0 && panic < end && !marks.includes(panic)) marks.splice(marks.length - 1, 0, panic);
  const from = Math.min(...marks) - CONTEXT_LINES;
  return cut(lines, from, end + CONTEXT_LINES + 1, marks);
}

/** Reads logs relative to `root` (absolute paths as they are); null when unreadable. */
export async function logReader(root: string, report: KernelReport): Promise<LogReader> {
  const texts = new Map<string, string | null>();
  const paths = new Set<string>();
  for (const run of report.runs) {
    if (run.log !== null) paths.add(run.log);
    for (const a of run.attempts) if (a.log !== null) paths.add(a.log);
  }
  await Promise.all([...paths].map(async (p) => {
    try {
      texts.set(p, await readFile(isAbsolute(p) ? p : join(root, p), "utf8"));
    } catch {
      texts.set(p, null);
    }
  }));
  return (p) => texts.get(p) ?? null;
}

const STATUS_WORD: Record<string, string> = {
  pass: "passed",
  fail: "failed",
  flaky: "flaky",
};

function cellHtml(cell: Cell, run: RunRecord): string {
  if (cell.absent) {
    if (run.status !== "fail" || run.category === "assertion") {
      return `<td class="cell none" title="not part of this run (it ended normally)">—</td>`;
    }
    return `<td class="cell notrun" title="the run stopped (${
      esc(run.category)
    }) before this suite">not run</td>`;
  }
  const parts: string[] = [];
  const failures = Object.entries(cell.failed) as [Category, number][];
  let cls = "pass";
  for (const [cat, n] of failures) {
    parts.push(`<span class="n fail ${cat}">${n} ${cat === "assertion" ? "failed" : cat}</span>`);
  }
  if (cell.flaky) parts.push(`<span class="n flaky">${cell.flaky} flaky</span>`);
  if (cell.passed) parts.push(`<span class="n pass">${cell.passed} passed</span>`);
  if (cell.skipped) parts.push(`<span class="n skip">${cell.skipped} skipped</span>`);
  if (cell.notRun !== 0) {
    parts.push(
      `<span class="n notrun">${cell.notRun === null ? "some" : cell.notRun} not run</span>`,
    );
  }
  if (failures.length) cls = failures.some(([c]) => c !== "assertion") ? "crash" : "fail";
  else if (cell.notRun !== 0) cls = "incomplete";
  else if (cell.flaky) cls = "flaky";
  else if (cell.passed === 0 && cell.skipped > 0) cls = "skip";
  return `<td class="cell ${cls}">${parts.join("") || '<span class="n">empty</span>'}</td>`;
}

function matrixHtml(report: KernelReport): string {
  const names = suiteNames(report);
  if (report.runs.length === 0) return `<p class="empty">No kernel run.</p>`;
  const head = report.runs.map((r) =>
    `<th class="run ${r.status}" title="${esc(r.target.description)}"><div>${esc(r.label)}</div>` +
    `<div class="sub">${esc(r.config)}${r.id !== r.config ? ` · ${esc(r.id)}` : ""}</div>` +
    `<div class="sub verdict ${r.category}">${esc(STATUS_WORD[r.status] ?? r.status)}${
      r.status === "fail" ? `: ${esc(r.category)}` : ""
    }</div></th>`
  ).join("");
  const rows = names.map((name) =>
    `<tr><th class="suite">${esc(name)}</th>${
      report.runs.map((r) => cellHtml(cellOf(r, name), r)).join("")
    }</tr>`
  );
  if (report.runs.some((r) => (r.suitesNotRun ?? 0) > 0)) {
    rows.push(
      `<tr><th class="suite"><i>suites never started</i></th>${
        report.runs.map((r) =>
          (r.suitesNotRun ?? 0) > 0
            ? `<td class="cell notrun"><span class="n notrun">${r.suitesNotRun} suite${
              r.suitesNotRun === 1 ? "" : "s"
            } not run</span></td>`
            : `<td class="cell none">—</td>`
        ).join("")
      }</tr>`,
    );
  }
  const noSuites = report.runs.filter((r) => r.suites.length === 0);
  if (names.length === 0 || noSuites.length > 0) {
    rows.push(
      `<tr><th class="suite"><i>run</i></th>${
        report.runs.map((r) =>
          r.suites.length === 0
            ? `<td class="cell ${
              r.status === "fail" ? "crash" : "skip"
            }"><span class="n fail ${r.category}">${
              esc(r.status === "fail" ? `${r.category}: no suite ran` : "no suite")
            }</span></td>`
            : `<td class="cell"></td>`
        ).join("")
      }</tr>`,
    );
  }
  return `<table class="matrix"><thead><tr><th class="corner">suite \\ configuration</th>${head}</tr></thead><tbody>${
    rows.join("")
  }</tbody></table>`;
}

function excerptHtml(ex: Excerpt | null, path: string | null): string {
  if (ex === null) {
    return `<p class="nolog">${
      path === null
        ? "No serial log was kept."
        : `The serial log ${esc(path)} could not be read or does not show this test.`
    }</p>`;
  }
  const width = String(ex.first + ex.lines.length).length;
  const body = ex.lines.map((l, i) =>
    `<span class="line${ex.marks.includes(i) ? " mark" : ""}"><span class="ln">${
      String(ex.first + i).padStart(width)
    }</span>${esc(l)}</span>`
  ).join("");
  return `<div class="logname">serial log ${esc(path ?? "")}, lines ${ex.first}–${
    ex.first + ex.lines.length - 1
  }</div><pre class="log">${body}</pre>`;
}

function diagnosticHtml(t: TestRecord): string {
  const d = t.diagnostic;
  const rows: string[] = [];
  if (d !== null) {
    const shown = new Set(["message", "at", "expected", "actual"]);
    if (d.message !== undefined) rows.push(["message", d.message].join("\0"));
    if (d.expected !== undefined) rows.push(["expected", d.expected].join("\0"));
    if (d.actual !== undefined) rows.push(["actual", d.actual].join("\0"));
    if (d.at !== undefined) rows.push(["at", d.at].join("\0"));
    for (const [k, v] of Object.entries(d.fields ?? {})) {
      if (!shown.has(k)) rows.push([k, typeof v === "string" ? v : JSON.stringify(v)].join("\0"));
    }
  }
  if (t.reason) rows.push(["reason", t.reason].join("\0"));
  if (rows.length === 0) return `<p class="nolog">The test gave no diagnostic.</p>`;
  return `<table class="diag">${
    rows.map((r) => {
      const [k, v] = r.split("\0");
      return `<tr><th>${esc(k)}</th><td><code>${esc(v)}</code></td></tr>`;
    }).join("")
  }</table>`;
}

function runFailureHtml(run: RunRecord): string {
  const parts: string[] = [];
  parts.push(`<p class="message">${esc(run.message)}</p>`);
  if (run.deadline !== null) {
    parts.push(
      `<p>Deadline passed: <b>${esc(run.deadline.deadline)}</b> (${ms(run.deadline.ms)})</p>`,
    );
  }
  if (run.crash !== null && run.crash.frames.length > 0) {
    const frames = run.crash.frames.map((f) => {
      const loc = f.locations.map((l) =>
        `${esc(l.function)}${
          l.file !== null
            ? ` <span class="at">${esc(l.file)}${l.line !== null ? `:${l.line}` : ""}</span>`
            : ""
        }`
      ).join(" ← inlined in ");
      return `<tr><td>${f.index === null ? "RIP" : `[${f.index}]`}</td><td><code>${
        esc(f.address)
      }</code></td><td>${loc || "?"}</td></tr>`;
    }).join("");
    parts.push(
      `<table class="frames"><thead><tr><th></th><th>address</th><th>function</th></tr></thead><tbody>${frames}</tbody></table>`,
    );
  } else if (run.details.length > 0) {
    parts.push(`<pre class="details">${esc(run.details.join("\n"))}</pre>`);
  }
  return parts.join("");
}

function findingHtml(f: Finding, read: LogReader, n: number): string {
  const log = f.run.log === null ? null : read(f.run.log);
  let body: string;
  let ex: Excerpt | null = null;
  if (f.test !== null) {
    body = diagnosticHtml(f.test);
    if ((f.test.log ?? []).length > 0) {
      body += `<div class="logname">what the kernel printed with it</div><pre class="details">${
        esc(f.test.log.join("\n"))
      }</pre>`;
    }
    if (f.test.attempts.length > 1) {
      body += `<p>Attempts: ${
        f.test.attempts.map((a) => `<span class="att ${a}">${esc(a)}</span>`).join(" → ")
      }</p>`;
    }
    if (log !== null) ex = testExcerpt(log, f.test);
  } else {
    body = runFailureHtml(f.run);
    if (log !== null) ex = runExcerpt(log, f.run);
  }
  const badge = f.kind === "flaky" ? "flaky" : f.category === "assertion" ? "failed" : f.category;
  const cls = f.kind === "flaky" ? "flaky" : f.category === "assertion" ? "fail" : "crash";
  return `<section class="finding ${cls}" id="finding-${n}"><h3><span class="badge ${cls}">${
    esc(badge)
  }</span> ` +
    `<code>${esc(f.title)}</code> <span class="where">on ${esc(f.run.label)}</span></h3>${body}${
      excerptHtml(ex, f.run.log)
    }</section>`;
}

function timesHtml(report: KernelReport): string {
  const max = Math.max(1, ...report.runs.map((r) => r.durationMs));
  const rows = report.runs.map((r) =>
    `<tr><th>${esc(r.label)}</th><td class="num">${
      ms(r.durationMs)
    }</td><td class="num">${r.attempts.length}</td>` +
    `<td class="barcell"><div class="bar ${r.status}" style="width:${
      (100 * r.durationMs / max).toFixed(1)
    }%"></div></td></tr>`
  ).join("");
  const tests = report.runs.flatMap((r) =>
    r.suites.flatMap((s) => s.tests.map((t) => ({ run: r, t })))
  ).filter((x) => x.t.durationMs !== null)
    .sort((a, b) => b.t.durationMs! - a.t.durationMs!).slice(0, 10);
  const slow = tests.map(({ run, t }) =>
    `<tr><td><code>${esc(t.fullName)}</code></td><td>${esc(run.label)}</td><td class="num">${
      ms(t.durationMs)
    }</td></tr>`
  ).join("");
  return `<div class="times"><table class="runs"><thead><tr><th>run</th><th>time</th><th>boots</th><th></th></tr></thead><tbody>${rows}</tbody></table>` +
    (slow
      ? `<table class="slow"><thead><tr><th>slowest tests</th><th>run</th><th>time</th></tr></thead><tbody>${slow}</tbody></table>`
      : "") +
    `</div>`;
}

function fullLogsHtml(report: KernelReport, read: LogReader): string {
  const failed = report.runs.filter((r) => r.status !== "pass");
  if (failed.length === 0) return "";
  return `<h2>Serial logs of failed and flaky runs</h2>` + failed.map((r) => {
    const text = r.log === null ? null : read(r.log);
    return `<details class="fulllog"><summary>${esc(r.label)} — ${
      esc(r.log ?? "no log")
    }</summary>${
      text === null ? `<p class="nolog">Not available.</p>` : `<pre class="log">${esc(text)}</pre>`
    }</details>`;
  }).join("");
}

const STYLE = `
:root{--pass:#1a7f37;--pass-bg:#dafbe1;--fail:#cf222e;--fail-bg:#ffebe9;--crash:#8250df;--crash-bg:#fbefff;
--flaky:#9a6700;--flaky-bg:#fff8c5;--skip:#57606a;--skip-bg:#f0f2f4;--notrun:#6e7781;--line:#d0d7de;--fg:#1f2328}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);margin:0;background:#f6f8fa}
header{padding:18px 28px;background:#fff;border-bottom:1px solid var(--line);display:flex;flex-wrap:wrap;gap:12px 32px;align-items:center}
header h1{font-size:20px;margin:0}
header .verdict{font-size:15px;font-weight:600;padding:4px 12px;border-radius:6px}
header .verdict.ok{background:var(--pass-bg);color:var(--pass)}
header .verdict.bad{background:var(--fail-bg);color:var(--fail)}
.counts{display:flex;gap:10px;flex-wrap:wrap}
.count{padding:3px 10px;border-radius:12px;font-weight:600;font-size:13px}
.count.passed{background:var(--pass-bg);color:var(--pass)}.count.failed{background:var(--fail-bg);color:var(--fail)}
.count.skipped,.count.zero,.count.notrun{background:var(--skip-bg);color:var(--skip)}.count.flaky{background:var(--flaky-bg);color:var(--flaky)}
.meta{color:#57606a;font-size:13px}
main{padding:8px 28px 40px}
h2{font-size:16px;margin:26px 0 10px}
table{border-collapse:collapse}
.matrix{background:#fff;border:1px solid var(--line)}
.matrix th,.matrix td{border:1px solid var(--line);padding:6px 10px;vertical-align:top}
.matrix th.suite{text-align:left;font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-weight:500;background:#fafbfc}
.matrix th.run{min-width:150px;text-align:left;background:#fafbfc}
.matrix th.corner{color:#57606a;font-weight:400;font-size:12px;text-align:left}
.matrix .sub{font-weight:400;font-size:12px;color:#57606a}
.matrix .verdict.pass{color:var(--pass)}.matrix th.fail .verdict{color:var(--fail);font-weight:600}
.matrix th.flaky .verdict{color:var(--flaky);font-weight:600}
td.cell .n{display:block;font-size:12.5px;white-space:nowrap}
td.cell.pass{background:var(--pass-bg)}td.cell.fail{background:var(--fail-bg)}td.cell.crash{background:var(--crash-bg)}
td.cell.flaky{background:var(--flaky-bg)}td.cell.skip{background:var(--skip-bg)}
td.cell.notrun,td.cell.incomplete{background:repeating-linear-gradient(135deg,#fff 0 6px,#eef0f2 6px 12px)}
td.cell.notrun{color:var(--notrun);font-style:italic}
td.cell.none{color:#8c959f;text-align:center;background:#fff}
td.cell.none{color:#8c959f;text-align:center;background:#fff}
.n.pass{color:var(--pass)}.n.fail{color:var(--fail);font-weight:600}.n.fail.crash,.n.fail.hang,.n.fail.boot,.n.fail.infrastructure,.n.fail.build{color:var(--crash)}
.n.skip{color:var(--skip)}.n.flaky{color:var(--flaky);font-weight:600}.n.notrun{color:var(--notrun);font-style:italic}
.legend{font-size:12px;color:#57606a;margin:6px 0 0}
.legend span{display:inline-block;padding:0 8px;margin-right:6px;border-radius:3px}
.finding{background:#fff;border:1px solid var(--line);border-left:5px solid var(--fail);border-radius:6px;padding:10px 16px;margin:12px 0}
.finding.crash{border-left-color:var(--crash)}.finding.flaky{border-left-color:var(--flaky)}
.finding h3{font-size:14.5px;margin:2px 0 8px}
.finding .where{font-weight:400;color:#57606a}
.badge{display:inline-block;color:#fff;border-radius:4px;padding:0 7px;font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.badge.fail{background:var(--fail)}.badge.crash{background:var(--crash)}.badge.flaky{background:var(--flaky)}
.diag th{text-align:right;color:#57606a;font-weight:500;padding:1px 10px 1px 0;vertical-align:top}
.diag td code{white-space:pre-wrap}
.frames td,.frames th{padding:1px 10px 1px 0;text-align:left;font-size:13px}.frames .at{color:#57606a}
.message{font-weight:600}
code,pre{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,monospace;font-size:12.5px}
pre.log{background:#0d1117;color:#c9d1d9;padding:8px 0;border-radius:6px;overflow-x:auto;margin:4px 0}
pre.log .line{display:block;padding:0 12px}
pre.log .line.mark{background:#5a1e1e;color:#fff}
pre.log .ln{color:#6e7681;margin-right:14px;user-select:none}
.logname{font-size:12px;color:#57606a;margin-top:10px}
pre.details{background:#f6f8fa;padding:8px;border-radius:6px}
.nolog{color:#57606a;font-style:italic}
.times{display:flex;gap:40px;flex-wrap:wrap;align-items:flex-start}
.times table{background:#fff;border:1px solid var(--line)}
.times th,.times td{padding:4px 10px;border-bottom:1px solid #eaeef2;text-align:left}
.times td.num{text-align:right;font-variant-numeric:tabular-nums}
.barcell{width:220px}.bar{height:10px;border-radius:3px;background:var(--pass)}
.bar.fail{background:var(--fail)}.bar.flaky{background:var(--flaky)}
.att.pass{color:var(--pass)}.att.fail,.att.crash,.att.hang{color:var(--fail)}
details.fulllog{background:#fff;border:1px solid var(--line);border-radius:6px;margin:6px 0;padding:6px 12px}
details.fulllog summary{cursor:pointer;font-family:ui-monospace,"DejaVu Sans Mono",monospace}
.filter{font-size:13px;margin-left:auto}
body.failures-only .matrix tbody tr.allpass{display:none}
.checks li.bad{color:var(--fail)}
`;

/** Marks rows whose cells all passed, and wires the "failures only" switch (the page works without it). */
const SCRIPT = `
(function(){
  var rows=document.querySelectorAll('.matrix tbody tr');
  var hidden=0;
  rows.forEach(function(tr){
    var cells=tr.querySelectorAll('td.cell');
    var ok=cells.length>0&&Array.prototype.every.call(cells,function(td){return td.classList.contains('pass')||td.classList.contains('skip')||td.classList.contains('none');});
    if(ok){tr.classList.add('allpass');hidden++;}
  });
  var box=document.getElementById('failures-only');
  var label=document.getElementById('failures-only-label');
  if(box){box.disabled=false;label.textContent='show only suites with problems ('+hidden+' all-green hidden)';
    box.addEventListener('change',function(){document.body.classList.toggle('failures-only',box.checked);});}
  document.body.setAttribute('data-ready','1');
})();
`;

function countsHtml(report: KernelReport): string {
  const s = report.summary;
  const item = (cls: string, n: number, word: string) =>
    `<span class="count ${n === 0 ? "zero" : cls}">${n} ${word}</span>`;
  return `<div class="counts">${item("passed", s.passed, "passed")}${
    item("failed", s.failed, "failed")
  }${item("skipped", s.skipped, "skipped")}${s.flaky > 0 ? item("flaky", s.flaky, "flaky") : ""}${
    (s.notRun ?? 0) > 0 ? item("notrun", s.notRun!, "not run") : ""
  }</div>`;
}

function buildAndChecksHtml(report: KernelReport): string {
  const parts: string[] = [];
  if (report.build !== null) {
    parts.push(
      `<section class="finding crash"><h3><span class="badge crash">build</span> ${
        esc(report.build.message)
      }</h3><pre class="details">${esc(report.build.details.join("\n"))}</pre></section>`,
    );
  }
  if (report.checks.length > 0) {
    parts.push(
      `<h2>Checks before boot</h2><ul class="checks">${
        report.checks.map((c) =>
          `<li class="${c.ok ? "ok" : "bad"}">${c.ok ? "✓" : "✗"} ${esc(c.name)}${
            c.ok
              ? ""
              : ` (${esc(c.category)})<pre class="details">${esc(c.details.join("\n"))}</pre>`
          }</li>`
        ).join("")
      }</ul>`,
    );
  }
  return parts.join("");
}

/** The page. `read` gives the serial logs the report names. */
export function renderReportHtml(report: KernelReport, read: LogReader): string {
  const found = findings(report);
  const s = report.summary;
  const sel = report.selection;
  const selection = [
    `configurations: ${sel.configs.join(", ") || "–"}`,
    sel.filter !== null ? `filter: ${sel.filter}` : null,
    sel.shard !== null ? `shard ${sel.shard.index}/${sel.shard.count}` : null,
    sel.retries > 0 ? `retries: ${sel.retries}` : null,
  ].filter((x) => x !== null).join(" · ");
  const failing = found.filter((f) => f.kind !== "flaky");
  const flaky = found.filter((f) => f.kind === "flaky");
  const legend = `<p class="legend">Each cell: a suite on one configuration. ` +
    `<span style="background:var(--pass-bg)">all passed</span><span style="background:var(--fail-bg)">a test failed</span>` +
    `<span style="background:var(--crash-bg)">crash, hang or no boot</span><span style="background:var(--flaky-bg)">flaky</span>` +
    `<span style="background:var(--skip-bg)">skipped</span><span style="background:repeating-linear-gradient(135deg,#fff 0 6px,#eef0f2 6px 12px)">not run</span>— not part of that run</p>`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Kernel tests: ${
    s.ok ? "pass" : "FAIL"
  } — ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped</title>
<style>${STYLE}</style></head>
<body>
<header><h1>Kernel tests</h1><span class="verdict ${s.ok ? "ok" : "bad"}">${
    s.ok ? "PASS" : "FAIL"
  }</span>${countsHtml(report)}
<span class="meta">${
    esc(new Date(report.createdAt).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC"))
  } · total ${ms(report.durationMs)} · ${report.runs.length} run${
    report.runs.length === 1 ? "" : "s"
  } · ${esc(selection)}${report.kernel !== null ? ` · kernel ${esc(report.kernel)}` : ""}</span>
<label class="filter"><input type="checkbox" id="failures-only" disabled> <span id="failures-only-label">show only suites with problems</span></label></header>
<main>
${buildAndChecksHtml(report)}
<h2>Suites × configurations</h2>
${matrixHtml(report)}
${legend}
<h2 id="failures">Failures (${failing.length})</h2>
${
    failing.length === 0
      ? `<p class="nolog">None.</p>`
      : failing.map((f, i) => findingHtml(f, read, i)).join("\n")
  }
${
    flaky.length > 0
      ? `<h2>Flaky (${flaky.length})</h2>${
        flaky.map((f, i) => findingHtml(f, read, failing.length + i)).join("\n")
      }`
      : ""
  }
<h2>Times</h2>
${timesHtml(report)}
${fullLogsHtml(report, read)}
</main>
<script>${SCRIPT}</script>
</body></html>
`;
}

/** Render `report` with its logs (paths relative to `root`) and write it to each file. */
export async function writeReportHtml(
  report: KernelReport,
  root: string,
  files: readonly string[],
): Promise<void> {
  const html = renderReportHtml(report, await logReader(root, report));
  for (const f of files) await writeFile(f, html);
}
