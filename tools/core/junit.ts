/**
 * The JUnit XML form of a kernel report (record.ts), for CI systems. One
 * `<testsuite>` per kernel suite of each run (`kernel[q35]/pmm`), one
 * `<testcase>` per kernel test. The report's categories are the `type` of
 * each `<failure>` (a test said not ok: assertion; a KTAP TIMEOUT: hang) or
 * `<error>` (the run itself went wrong: build, infrastructure, boot, crash,
 * hang), which a run adds as a test case named after the verdict. A flaky
 * test passes with a `<flakyFailure>` per failed attempt (the Maven
 * Surefire convention that Jenkins and GitLab read) and a `status=flaky`
 * property. A failure's body holds its diagnostic and what the kernel
 * printed before its result line. Planned tests that never reported are one
 * skipped case per suite, named by their numbers (`2 not run: 4-5 of 5`).
 */
import type { Category } from "./classify.ts";
import {
  type KernelReport,
  runEntry,
  type RunRecord,
  type SuiteRecord,
  type TestRecord,
} from "./record.ts";

/** Escape text for XML attributes and content (and drop characters XML cannot hold). */
export function xmlEscape(text: string): string {
  return text
    // deno-lint-ignore no-control-regex
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f]/g, "\uFFFD")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
}

interface Case {
  name: string;
  classname: string;
  /** Duration, when known. */
  ms?: number | null;
  body: string;
  failed: boolean;
  error: boolean;
  skipped: boolean;
}

function element(
  tag: "failure" | "error" | "flakyFailure",
  type: Category,
  message: string,
  details: string[],
): string {
  return `<${tag} type="${type}" message="${xmlEscape(message)}">${
    xmlEscape(details.join("\n"))
  }</${tag}>`;
}

/** A failed test's diagnostic fields, then what the kernel printed before its result. */
function diagnosticLines(t: TestRecord): string[] {
  const d = t.diagnostic;
  const fields = d === null
    ? []
    : Object.entries(d.fields).map(([k, v]) =>
      `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`
    );
  const log = t.log ?? [];
  return log.length > 0 ? [...fields, ...(fields.length > 0 ? [""] : []), ...log] : fields;
}

/** Planned tests of a suite that never reported: one skipped case naming them. */
function notRunCase(run: RunRecord, s: SuiteRecord): Case[] {
  if ((s.notRun ?? 0) === 0) return [];
  const which = (s.notRunRanges ?? []).join(", ");
  return [{
    name: `${s.notRun} not run: ${which}`,
    classname: `${run.label}.${s.name}`,
    body: `<skipped message="${
      xmlEscape(`not run: the kernel never reported tests ${which} (${run.message})`)
    }"/>`,
    failed: false,
    error: false,
    skipped: true,
  }];
}

function testCase(run: RunRecord, t: TestRecord): Case {
  const base = { name: t.name, classname: `${run.label}.${t.suite}`, ms: t.durationMs };
  const why = t.diagnostic?.message ?? t.reason ?? "not ok";
  switch (t.status) {
    case "pass":
      return { ...base, body: "", failed: false, error: false, skipped: false };
    case "fail":
    case "timeout":
      return {
        ...base,
        body: element(
          "failure",
          t.status === "fail" ? "assertion" : "hang",
          why,
          diagnosticLines(t),
        ),
        failed: true,
        error: false,
        skipped: false,
      };
    case "error":
      return {
        ...base,
        body: element("error", "crash", why, diagnosticLines(t)),
        failed: false,
        error: true,
        skipped: false,
      };
    case "flaky": {
      const failures = t.attempts.slice(0, -1).map((s, i) =>
        s === "pass" || s === "skip" ? "" : element(
          "flakyFailure",
          s === "crash" ? "crash" : s === "hang" ? "hang" : "assertion",
          `attempt ${i + 1}: ${s}`,
          diagnosticLines(t),
        )
      ).join("");
      return {
        ...base,
        body: `<properties><property name="status" value="flaky"/></properties>${failures}`,
        failed: false,
        error: false,
        skipped: false,
      };
    }
    default:
      return {
        ...base,
        body: `<skipped message="${xmlEscape(`${t.status}${t.reason ? `: ${t.reason}` : ""}`)}"/>`,
        failed: false,
        error: false,
        skipped: true,
      };
  }
}

function runCase(run: RunRecord): Case | null {
  const entry = runEntry(run);
  if (entry === null) return null;
  const base = { name: `${run.kind}${run.test ? ` in ${run.test}` : ""}`, classname: run.label };
  if (entry === "flaky") {
    const failures = run.attempts.slice(0, -1).map((a) =>
      element("flakyFailure", a.category, `attempt ${a.attempt}: ${a.message}`, a.details)
    ).join("");
    return { ...base, body: failures, failed: false, error: false, skipped: false };
  }
  const details = [...run.details, ...(run.log ? [`serial log: ${run.log}`] : [])];
  const tag = run.category === "assertion" ? "failure" : "error";
  return {
    ...base,
    body: element(tag, run.category, run.message, details),
    failed: tag === "failure",
    error: tag === "error",
    skipped: false,
  };
}

function suiteXml(name: string, cases: Case[], ms: number, properties: [string, string][]): string {
  const count = (k: "failed" | "error" | "skipped") => cases.filter((c) => c[k]).length;
  const props = properties.map(([k, v]) =>
    `<property name="${xmlEscape(k)}" value="${xmlEscape(v)}"/>`
  ).join("");
  const body = cases.map((c) => {
    const time = c.ms === null || c.ms === undefined ? "" : ` time="${seconds(c.ms)}"`;
    const attrs = `name="${xmlEscape(c.name)}" classname="${xmlEscape(c.classname)}"${time}`;
    return `    <testcase ${attrs}>${c.body}</testcase>`;
  }).join("\n");
  return `  <testsuite name="${xmlEscape(name)}" tests="${cases.length}" failures="${
    count("failed")
  }" errors="${count("error")}" skipped="${count("skipped")}" time="${seconds(ms)}">\n` +
    `    <properties>${props}</properties>\n${body}\n  </testsuite>`;
}

/** The report as JUnit XML. */
export function toJunit(report: KernelReport): string {
  const suites: string[] = [];
  if (report.build !== null) {
    suites.push(suiteXml(
      "kernel: build",
      [{
        name: "build",
        classname: "kernel",
        body: element("error", "build", report.build.message, report.build.details),
        failed: false,
        error: true,
        skipped: false,
      }],
      0,
      [],
    ));
  }
  if (report.checks.length > 0) {
    suites.push(suiteXml(
      "kernel: checks",
      report.checks.map((c) => ({
        name: c.name,
        classname: "kernel",
        body: c.ok ? "" : element("failure", c.category, c.name, c.details),
        failed: !c.ok,
        error: false,
        skipped: false,
      })),
      0,
      [],
    ));
  }
  for (const run of report.runs) {
    const props: [string, string][] = [
      ["config", run.config],
      ["target", run.target.description],
      ["cmdline", run.cmdline],
      ["status", run.status],
      ["category", run.category],
      ["attempts", String(run.attempts.length)],
      ...(run.log ? [["log", run.log] as [string, string]] : []),
    ];
    for (const s of run.suites) {
      suites.push(
        suiteXml(
          `${run.label}/${s.name}`,
          [...s.tests.map((t) => testCase(run, t)), ...notRunCase(run, s)],
          0,
          props,
        ),
      );
    }
    const extra = runCase(run);
    if (extra !== null || run.suites.length === 0) {
      suites.push(suiteXml(run.label, extra ? [extra] : [], run.durationMs, props));
    }
  }
  const s = report.summary;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="ouroboros kernel tests" tests="${
    s.passed + s.failed + s.skipped + s.flaky + (s.notRun ?? 0)
  }" failures="${s.failed}" time="${seconds(report.durationMs)}">\n${
    suites.join("\n")
  }\n</testsuites>\n`;
}
