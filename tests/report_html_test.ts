/**
 * The HTML test report: its matrix and excerpts on a made-up report (pure),
 * and, in a real browser, the page of real kernel runs with a failed test
 * (selftest=fail), a crash (selftest=panic) and skips (the ordinary run):
 * headless Chromium loads it, its script runs, and what a person sees is
 * checked; a screenshot is kept in build/reports/.
 */
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ROOT } from "../tools/paths.ts";
import { openInChromium } from "../tools/report/browser.ts";
import {
  cellOf,
  findings,
  renderReportHtml,
  runExcerpt,
  testExcerpt,
  writeReportHtml,
} from "../tools/report/html.ts";
import { DEFAULT_CONFIG, getConfig } from "../tools/run/configs.ts";
import { runMatrix } from "../tools/run/matrix.ts";
import {
  type KernelReport,
  REPORT_SCHEMA,
  type RunRecord,
  summarize,
  type TestRecord,
} from "../tools/core/record.ts";
import { builtKernel, handedOverReport } from "./support.ts";

const REPORT_DIR = join(ROOT, "build/reports");

function test(suite: string, name: string, status: TestRecord["status"]): TestRecord {
  return {
    suite,
    name,
    fullName: `${suite}.${name}`,
    status,
    reason: status === "skip" ? "no QMP" : null,
    diagnostic: status === "fail"
      ? { message: "a < <b>", expected: "1", actual: "2", at: "x.c:3", fields: {} }
      : null,
    attempts: [
      status === "flaky" ? "fail" : status,
      ...(status === "flaky" ? ["pass" as const] : []),
    ],
    log: [],
    durationMs: 1,
  };
}

function run(id: string, over: Partial<RunRecord>): RunRecord {
  return {
    id,
    label: `kernel[${id}]`,
    config: id,
    target: { kind: "qemu", description: "qemu", command: [] },
    cmdline: "",
    status: "pass",
    kind: "pass",
    category: "pass",
    message: "pass",
    test: null,
    details: [],
    crash: null,
    deadline: null,
    log: null,
    durationMs: 100,
    attempts: [],
    suites: [],
    ...over,
    suitesNotRun: over.suitesNotRun ?? 0,
  };
}

function report(runs: RunRecord[]): KernelReport {
  return summarize({
    schema: REPORT_SCHEMA,
    createdAt: "2026-11-30T06:00:00.000Z",
    durationMs: 1234,
    kernel: "build/kernel.elf",
    build: null,
    checks: [],
    selection: {
      configs: runs.map((r) => r.config),
      filter: null,
      shard: null,
      retries: 0,
      deadlines: { bootMs: 1, silenceMs: 1, runMs: 1 },
    },
    runs,
  });
}

const made = report([
  run("a", {
    suites: [
      {
        name: "mm",
        planned: 3,
        complete: true,
        tests: [test("mm", "x", "pass"), test("mm", "y", "skip"), test("mm", "z", "flaky")],
        notRun: 0,
        notRunRanges: [],
      },
      {
        name: "pmm",
        planned: 1,
        complete: true,
        tests: [test("pmm", "alloc", "fail")],
        notRun: 0,
        notRunRanges: [],
      },
    ],
    status: "fail",
    kind: "assertion-failure",
    category: "assertion",
  }),
  run("b", {
    // The report counts mm.y (running at the crash) and mm.z as not run.
    suites: [{
      name: "mm",
      planned: 3,
      complete: false,
      tests: [test("mm", "x", "pass")],
      notRun: 2,
      notRunRanges: ["2-3 of 3"],
    }],
    status: "fail",
    kind: "panic",
    category: "crash",
    message: "panic: boom",
    test: "mm.y",
  }),
]);

Deno.test("html report: a cell counts pass, failure by category, skip, flaky and not run", () => {
  const [a, b] = made.runs;
  assert.deepEqual(cellOf(a, "mm"), {
    passed: 1,
    failed: {},
    skipped: 1,
    flaky: 1,
    notRun: 0,
    absent: false,
  });
  // The test running at the crash is the crash; the one after it never ran.
  assert.deepEqual(cellOf(b, "mm"), {
    passed: 1,
    failed: { crash: 1 },
    skipped: 0,
    flaky: 0,
    notRun: 1,
    absent: false,
  });
  assert.equal(cellOf(b, "pmm").absent, true);
  // A report that counts the tests that never ran says so itself.
  const counted = { ...b, suites: [{ ...b.suites[0], notRun: 7 }] };
  assert.equal(cellOf(counted, "mm").notRun, 6, "the report's count less the test that crashed");
  assert.deepEqual(
    findings(made).map((f) => [f.run.id, f.kind, f.category, f.title]),
    [
      ["a", "flaky", "pass", "mm.z"],
      ["a", "test", "assertion", "pmm.alloc"],
      ["b", "run", "crash", "mm.y"],
    ],
  );
});

Deno.test("html report: the page is self-contained and escapes what the kernel printed", () => {
  const html = renderReportHtml(made, () => null);
  assert.doesNotMatch(html, /<link|src=|https?:\/\/|@import|url\(/);
  assert.match(html, /a &#60; &#60;b&#62;/);
  assert.doesNotMatch(html, /a < <b>/);
  assert.match(html, /1 crash/);
  assert.match(html, /1 not run/);
  assert.match(html, /No serial log was kept/);
});

Deno.test("html report: a run that never booted and a build that failed are shown, not lost", () => {
  const noBoot = run("pc", {
    status: "fail",
    kind: "boot-timeout",
    category: "boot",
    message: "no TAP line within 30 s",
    deadline: { deadline: "boot", ms: 30_000 },
  });
  const page = renderReportHtml(report([made.runs[0], noBoot]), () => null);
  assert.match(page, /<span class="n fail boot">boot: no suite ran<\/span>/);
  assert.match(page, /<span class="badge crash">boot<\/span> <code>boot-timeout<\/code>/);
  assert.match(page, /Deadline passed: <b>boot<\/b> \(30\.00 s\)/);
  // A kernel that did not build: the failure above everything, and no matrix.
  const broken = renderReportHtml(
    { ...report([]), build: { message: "cc failed: main.c", details: ["main.c:1: error: <x>"] } },
    () => null,
  );
  assert.match(broken, /<span class="badge crash">build<\/span> cc failed: main\.c/);
  assert.match(broken, /main\.c:1: error: &#60;x&#62;/);
  assert.match(broken, /No kernel run\./);
});

Deno.test("html report: excerpts show the lines around a failed test and a crash", () => {
  const log = [
    ...Array.from({ length: 20 }, (_, i) => `# boot ${i}`),
    "# Subtest: pmm",
    "    1..1",
    "    # RUN pmm.alloc",
    "    not ok 1 - alloc",
    "      ---",
    '      message: "a < b"',
    "      ...",
    "not ok 1 - pmm",
    ...Array.from({ length: 20 }, (_, i) => `# after ${i}`),
  ].join("\n");
  const ex = testExcerpt(log, made.runs[0].suites[1].tests[0])!;
  assert.equal(ex.first, 23 - 6);
  assert.deepEqual(ex.marks.map((m) => ex.lines[m].trim()), [
    "# RUN pmm.alloc",
    "not ok 1 - alloc",
  ]);
  assert.ok(ex.lines.includes("      ..."));
  assert.equal(ex.lines[ex.lines.length - 1], "# after 4");
  const crash = ["x", "# Subtest: mm", "    # RUN mm.y", "# panic: boom", "Bail out! panic: boom"]
    .join("\n");
  const cx = runExcerpt(crash, made.runs[1])!;
  assert.deepEqual(cx.marks.map((m) => cx.lines[m]), [
    "    # RUN mm.y",
    "# panic: boom",
    "Bail out! panic: boom",
  ]);
  assert.equal(testExcerpt("nothing here", made.runs[0].suites[1].tests[0]), null);
});

/**
 * The ordinary run of the kernel phase of `deno task test` (its report is
 * handed over in OUROBOROS_KERNEL_REPORT), if that phase ran the default
 * configuration with every test: a real run of this kernel, already made.
 */
async function handedOverRun(elf: string): Promise<RunRecord | null> {
  const r = await handedOverReport();
  if (r === null) return null;
  const s = r.selection;
  if (r.build !== null || s.filter !== null || s.shard !== null || r.kernel !== elf) return null;
  return r.runs.find((x) => x.config === DEFAULT_CONFIG && x.cmdline === "") ?? null;
}

/** The default run, a failed assertion and a panic, booted for real. */
async function realReport(): Promise<KernelReport> {
  const { elf } = await builtKernel();
  const ordinary = await handedOverRun(elf);
  const boot = async (name: string, extraCmdline?: string) => {
    const [r] = await runMatrix({
      elf,
      root: ROOT,
      configs: [getConfig(DEFAULT_CONFIG)],
      filter: null,
      shard: null,
      retries: 0,
      deadlines: { silenceMs: 20_000 },
      logDir: join(ROOT, "build/logs"),
      logPrefix: `report-html-${name}`,
      extraCmdline,
    });
    return { ...r, id: name, label: `kernel[${name}]` };
  };
  const runs = await Promise.all([
    ordinary === null ? boot("microvm") : { ...ordinary, id: "microvm", label: "kernel[microvm]" },
    boot("selftest-fail", "selftest=fail"),
    boot("selftest-panic", "selftest=panic"),
  ]);
  return summarize({
    schema: REPORT_SCHEMA,
    createdAt: new Date().toISOString(),
    durationMs: runs.reduce((s, r) => Math.max(s, r.durationMs), 0),
    kernel: elf,
    build: null,
    checks: [],
    selection: {
      configs: [DEFAULT_CONFIG],
      filter: null,
      shard: null,
      retries: 0,
      deadlines: { bootMs: 30_000, silenceMs: 20_000, runMs: 600_000 },
    },
    runs,
  });
}

/** The visible text of an element in a DOM dump: tags out, entities in, blanks folded. */
function text(html: string): string {
  return html.replace(/<script[\s\S]*?<\/script>/g, "").replace(/<style[\s\S]*?<\/style>/g, "")
    .replace(/<[^>]*>/g, " ").replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
    .replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&amp;/g, "&")
    .replace(/\s+/g, " ");
}

/** The `<tag ...>...</tag>` element whose opening tag matches `open`. */
function element(dom: string, open: RegExp): string {
  const m = open.exec(dom);
  assert.ok(m, `no element ${open}`);
  const tag = /^<(\w+)/.exec(m[0])![1];
  const end = dom.indexOf(`</${tag}>`, m.index);
  return dom.slice(m.index, end);
}

Deno.test("html report: headless Chromium shows a failure, a crash and skips of real runs", async () => {
  const r = await realReport();
  assert.equal(r.runs[1].category, "assertion");
  assert.equal(r.runs[2].category, "crash");
  const dir = join(REPORT_DIR, "html-test");
  await mkdir(dir, { recursive: true });
  const page = join(dir, "index.html");
  await writeReportHtml(r, ROOT, [page]);
  const screenshot = join(REPORT_DIR, "report-screenshot.png");
  const dom = await openInChromium({ file: page, dumpDom: true, screenshot, size: [1400, 1500] });

  // The page's script ran in the browser.
  assert.match(dom, /<body[^>]*data-ready="1"/);
  assert.match(dom, /show only suites with problems \(\d+ all-green hidden\)/);
  const { passed, failed, skipped } = r.summary;
  assert.match(
    text(element(dom, /<header>/)),
    new RegExp(`Kernel tests FAIL ${passed} passed ${failed} failed ${skipped} skipped `),
  );
  assert.ok(skipped > 0, "the ordinary run skips the oracle's tests");

  // The matrix: the selftest suite failed on one run and crashed on the other; the ordinary run
  // has skips; a suite outside a run that ended is "—", one a crashed run never reached "not run".
  const selftestRow = text(element(dom, /<tr[^>]*><th class="suite">selftest<\/th>/));
  assert.match(selftestRow, /selftest — 1 failed 1 crash/);
  const rows = [...dom.matchAll(/<tr[^>]*><th class="suite">[\s\S]*?<\/tr>/g)].map((m) =>
    text(m[0])
  );
  assert.ok(
    rows.some((row) => /\d+ passed \d+ skipped — not run/.test(row)),
    rows.join("\n"),
  );

  // The failure with its diagnostic and serial log lines, the crash with its symbolized frames.
  const failures = text(dom.slice(dom.indexOf('id="failures"'), dom.indexOf("<h2>Times")));
  assert.match(failures, /Failures \(2\)/);
  assert.match(failures, /failed selftest\.fail on kernel\[selftest-fail\]/);
  assert.match(
    failures,
    /message answer == 54 expected 0x0000000000000036 actual 0x000000000000002a at kernel\/ktest\/selftest\.c:\d+/,
  );
  assert.match(failures, /serial log build\/logs\/report-html-selftest-fail-microvm\.log, lines/);
  assert.match(failures, /\d+ # RUN selftest\.fail \d+ not ok 1 - fail/);
  assert.match(
    failures,
    /crash selftest\.panic on kernel\[selftest-panic\] panic while running selftest\.panic: panic: selftest: deliberate panic/,
  );
  assert.match(failures, /\[0\] 0xffffffff[0-9a-f]{8} \w+ kernel\/\S+\.c:\d+/);
  assert.match(failures, /\d+ Bail out! panic: selftest: deliberate panic/);

  // The times of every run.
  const times = text(element(dom, /<table class="runs">/));
  for (const name of ["microvm", "selftest-fail", "selftest-panic"]) {
    assert.match(times, new RegExp(`kernel\\[${name}\\] [\\d.]+ (ms|s) 1`));
  }
  const png = await Deno.readFile(screenshot);
  assert.deepEqual([...png.slice(1, 4)], [0x50, 0x4e, 0x47]);
  await writeFile(join(dir, "dom.html"), dom);
});
