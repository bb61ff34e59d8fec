/**
 * KTAP and TAP as real kernels print them (issue 10, section 2): the shapes
 * of kunit_tool's test data, written as our own logs, read through the
 * whole pipeline (serial.ts, tap.ts, classify.ts, and for the reports
 * `deno task parse`'s parseLog, record.ts, junit.ts, console.ts).
 */
import assert from "node:assert/strict";
import { type Classification, classify } from "../tools/core/classify.ts";
import { toJunit } from "../tools/core/junit.ts";
import { printable } from "../tools/core/printable.ts";
import { summaryLine } from "../tools/core/record.ts";
import { SerialStream } from "../tools/core/serial.ts";
import { TapIngest, type TapReport, testStatus } from "../tools/core/tap.ts";
import { readYamlBlock } from "../tools/core/yaml_diag.ts";
import { ConsoleReporter } from "../tools/app/console.ts";
import { parseLog } from "../tools/app/parse.ts";
import { bytesSource } from "../tools/machines/log_target.ts";
import { DEBUG_EXIT, qemuExitStatus } from "../linker/layout.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const PASS = qemuExitStatus(DEBUG_EXIT.pass);

function read(name: string): string {
  return Deno.readTextFileSync(new URL(name, FIXTURES));
}

/** Characters encoded at a time by {@link serialChunks}. */
const BATCH_CHARS = 64 * 1024;
const isHighSurrogate = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLowSurrogate = (c: number) => c >= 0xdc00 && c <= 0xdfff;

/**
 * Hands on the UTF-8 bytes of `text` (an array: its lines joined by `\n`) in chunks
 * of exactly `chunk` bytes but the last, a multi-byte character split where
 * a chunk ends, as a serial port delivers them. Encoded a batch at a time
 * into fresh chunks: no copy of a text of megabytes is made, in UTF-16 or in
 * UTF-8 (each costs as much as the parsing it feeds).
 */
function serialChunks(
  text: string | readonly string[],
  chunk: number,
  push: (bytes: Uint8Array) => void,
): void {
  const encoder = new TextEncoder();
  let out = new Uint8Array(chunk);
  let used = 0;
  let batch = "";
  function flush(): void {
    const bytes = encoder.encode(batch);
    batch = "";
    for (let i = 0; i < bytes.length;) {
      const n = Math.min(chunk - used, bytes.length - i);
      out.set(bytes.subarray(i, i + n), used);
      used += n;
      i += n;
      if (used === chunk) {
        push(out);
        out = new Uint8Array(chunk);
        used = 0;
      }
    }
  }
  const lines = typeof text === "string" ? [text] : text;
  for (let l = 0; l < lines.length; l++) {
    const s = lines[l];
    if (l > 0) batch += "\n";
    for (let i = 0; i < s.length;) {
      let end = Math.min(s.length, i + Math.max(1, BATCH_CHARS - batch.length));
      // Never between the two halves of a surrogate pair: each half alone encodes as U+FFFD.
      if (
        end < s.length && isHighSurrogate(s.charCodeAt(end - 1)) &&
        isLowSurrogate(s.charCodeAt(end))
      ) {
        end++;
      }
      batch += i === 0 && end === s.length ? s : s.slice(i, end);
      i = end;
      if (batch.length >= BATCH_CHARS) flush();
    }
  }
  flush();
  if (used > 0) push(out.subarray(0, used));
}

/** Serial text (or its lines) → report, in chunks of `chunk` bytes, as the runner reads it. */
function ingest(
  text: string | readonly string[],
  chunk = 4096,
): { report: TapReport; tapSeen: boolean; bytes: number } {
  const tap = new TapIngest();
  const serial = new SerialStream({ onTapLine: (l) => tap.push(l) }, false);
  serialChunks(text, chunk, (bytes) => serial.push(bytes));
  serial.end();
  return { report: tap.end(), tapSeen: serial.tapStarted, bytes: serial.byteCount };
}

/** The verdict on serial text: from a saved log (no exit status) or with QEMU's status. */
function verdict(text: string, status: number | null = null): Classification {
  const { report, tapSeen, bytes } = ingest(text);
  return classify({
    exit: status === null ? { kind: "none" } : { kind: "exited", status },
    stderr: "",
    report,
    tapSeen,
    serialBytes: bytes,
    firstBytes: text.slice(0, 200),
    timeout: null,
  });
}

/** What `deno task parse` prints, reports and counts for `text`. */
async function parsed(text: string) {
  const out: string[] = [];
  const report = await parseLog(bytesSource(text, 7), "test.log", {
    observer: new ConsoleReporter("plain", (t) => void out.push(t), () => 100),
  });
  return {
    report,
    console: out.join(""),
    junit: toJunit(report),
    line: summaryLine(report.summary),
  };
}

/** KTAP with a suite `name` of `results` lines (`ok 1 t1` …) at 4 spaces. */
function suite(n: number, name: string, results: string[], plan = results.length): string[] {
  return [
    "    KTAP version 1",
    `    # Subtest: ${name}`,
    `    1..${plan}`,
    ...results.map((r) => `    ${r}`),
    `ok ${n} ${name}`,
  ];
}

// A control character but a tab or a line end (ours).
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

Deno.test("real: KUnit's failure messages before `not ok` belong to that failure", async () => {
  const text = read("ktap/kunit-expectation.ktap");
  const { report } = ingest(text);
  // kunit.py parse on this log: "Ran 5 tests: passed: 3, failed: 2".
  assert.equal(report.counts.pass, 3);
  assert.equal(report.counts.fail, 2);
  const [twice, size] = report.failures;
  assert.equal(twice.fullName, "mm-frames.frames_free_twice");
  assert.deepEqual(twice.log, [
    "# frames_free_twice: EXPECTATION FAILED at mm/frames_test.c:57",
    "Expected freed == 1, but",
    "freed == 2 (0x2)",
  ]);
  assert.equal(twice.diagnostic?.at, "mm/frames_test.c:57");
  assert.equal(twice.diagnostic?.message, "Expected freed == 1, but freed == 2 (0x2)");
  // A parameter of a parameterised test, two levels down.
  assert.equal(size.fullName, "mm-frames.frames_sizes.2097152");
  assert.equal(size.diagnostic?.at, "mm/frames_test.c:80");
  // A passing test keeps no log.
  assert.deepEqual(report.suites[0].tests[0].log, []);

  const p = await parsed(text);
  assert.equal(p.line, "tests: 3 passed, 2 failed, 0 skipped");
  assert.match(p.console, /not ok mm-frames\.frames_free_twice\n/);
  assert.match(p.console, /\| Expected freed == 1, but\n {8}\| freed == 2 \(0x2\)\n/);
  assert.match(p.junit, /<failure type="assertion" message="Expected freed == 1, but freed/);
  assert.match(p.junit, /# frames_free_twice: EXPECTATION FAILED at mm\/frames_test\.c:57\n/);
  const json = JSON.parse(JSON.stringify(p.report));
  const record = json.runs[0].suites[0].tests[1];
  assert.equal(record.fullName, "mm-frames.frames_free_twice");
  assert.equal(record.log[1], "Expected freed == 1, but");
});

Deno.test("real: TAP 14 subtests by a tab, by 4 spaces, and results deeper than their plan", () => {
  const { report } = ingest(read("tap/indented.tap"));
  assert.equal(report.planComplete, true);
  assert.deepEqual(report.problems, []);
  assert.deepEqual(report.suites.flatMap((s) => s.tests.map((t) => t.fullName)), [
    "tabs.a",
    "tabs.nested.leaf",
    "spaces.deeper_than_plan",
    "spaces.also_deeper",
    "four.x",
  ]);
  assert.equal(verdict(read("tap/indented.tap"), PASS).kind, "pass");
});

Deno.test("real: lines with a one-space or any other prefix are read like the rest", () => {
  const text = read("tap/indented.tap");
  for (const prefix of [" ", "<6>", "[   12.345678] ", "ttyS0: "]) {
    const prefixed = text.split("\n").map((l) => (l === "" ? l : prefix + l)).join("\n");
    const { report } = ingest(`firmware noise\n${prefixed}`);
    assert.equal(report.counts.pass, 5, `prefix '${prefix}'`);
    assert.equal(report.planComplete, true, `prefix '${prefix}'`);
  }
});

Deno.test("real: KTAP without a top-level plan is complete when the kernel ended cleanly", () => {
  const text = read("ktap/no-top-plan.ktap");
  // kunit.py parse: "Ran 3 tests: passed: 3". A saved log that just stops could be cut short.
  const cut = verdict(text);
  assert.equal(cut.kind, "incomplete");
  assert.match(cut.message, /no top-level plan \(1\.\.N\) and no end line from the kernel/);
  assert.equal(verdict(`${text}reboot: System halted\n`).kind, "pass");
  assert.equal(verdict(`${text}[    3.1] reboot: Restarting system\n`).kind, "pass");
  // The kernel's own exit status is a clean end too.
  assert.equal(verdict(text, PASS).kind, "pass");
  // A suite left open is never complete, whatever the end.
  const open = text.replace("ok 2 irq\n", "");
  assert.equal(verdict(`${open}reboot: Power down\n`).kind, "incomplete");
  assert.equal(verdict(open, PASS).kind, "incomplete");
  // A panic after every test: the end, but not a clean one (more suites may have been due).
  const c = verdict(`${text}Kernel panic - not syncing: VFS: Unable to mount root fs\n`);
  assert.equal(c.kind, "incomplete");
});

Deno.test("real: a failure at any depth fails the run, whatever its parents say", () => {
  const lines = ["KTAP version 1", "1..1"];
  const depth = 6;
  for (let d = 1; d <= depth; d++) {
    lines.push(`${"  ".repeat(d)}KTAP version 1`, `${"  ".repeat(d)}# Subtest: l${d}`);
    lines.push(`${"  ".repeat(d)}1..${d === depth ? 2 : 1}`);
  }
  lines.push(`${"  ".repeat(depth)}ok 1 fine`, `${"  ".repeat(depth)}not ok 2 deep_failure`);
  for (let d = depth; d >= 1; d--) lines.push(`${"  ".repeat(d - 1)}ok 1 l${d}`);
  const text = lines.join("\n") + "\n";
  const { report } = ingest(text);
  assert.deepEqual(report.failures.map((f) => f.fullName), ["l1.l2.l3.l4.l5.l6.deep_failure"]);
  const c = verdict(text, PASS);
  assert.equal(c.kind, "assertion-failure");
  assert.equal(c.test, "l1.l2.l3.l4.l5.l6.deep_failure");
  // And a parent's own `not ok` fails the run even when its tests passed.
  const parentSays = text.replace("not ok 2 deep_failure", "ok 2 deep_failure").replace(
    "    ok 1 l3",
    "    not ok 1 l3",
  );
  assert.equal(verdict(parentSays, PASS).kind, "assertion-failure");
});

Deno.test("real: never a pass for a stream that is not a complete, passing run", () => {
  const s = (body: string[]) => ["KTAP version 1", "1..1", ...body].join("\n") + "\n";
  const cases: [string, string, string, RegExp][] = [
    ["a version line with nothing after it", "KTAP version 1\n", "no-tests", /no test at all/],
    [
      "a version line followed by garbage",
      "KTAP version 1\n\x00\x00garbage\nmore garbage\n",
      "no-tests",
      /no test at all: the KTAP version line came, then no plan and no result/,
    ],
    [
      "a version line followed by a panic",
      "KTAP version 1\nKernel panic - not syncing: Attempted to kill init!\n",
      "panic",
      /panic before any test started: Kernel panic - not syncing: Attempted to kill init!/,
    ],
    ["1..0", "TAP version 14\n1..0\n", "no-tests", /the plan is 1\.\.0: no test at all/],
    [
      "every test skipped (kunit_tool fails it too)",
      s(suite(1, "s", ["ok 1 a # SKIP no hardware", "ok 2 b # SKIP no hardware"])),
      "no-tests",
      /every test was skipped \(2\): nothing was tested/,
    ],
    [
      "no test at all (a suite without tests)",
      s(["    KTAP version 1", "    # Subtest: empty", "    1..0", "ok 1 empty"]),
      "no-tests",
      /no test at all: 1 suite reported, none with a test in it/,
    ],
    [
      "a duplicate test number",
      s(suite(1, "s", ["ok 1 a", "ok 1 b"])),
      "malformed",
      /broken TAP: duplicate test number 1 in s/,
    ],
    [
      "an out-of-range test number",
      s(suite(1, "s", ["ok 1 a", "ok 3 b"])),
      "malformed",
      /broken TAP: test number 3 in s is out of its plan 1\.\.2/,
    ],
    [
      "two different plans",
      s([
        "    KTAP version 1",
        "    # Subtest: s",
        "    1..2",
        "    1..3",
        "    ok 1 a",
        "    ok 2 b",
        "ok 1 s",
      ]),
      "malformed",
      /broken TAP: two plans in s: 1\.\.2, then 1\.\.3/,
    ],
  ];
  for (const [what, text, kind, message] of cases) {
    for (const status of [null, PASS]) {
      const c = verdict(text, status);
      assert.equal(c.kind, kind, `${what} (${status ?? "saved log"}): ${c.message}`);
      assert.equal(c.ok, false, what);
      assert.match(c.message, message, what);
    }
  }
});

Deno.test("real: more results than planned says so in a developer's words", () => {
  const text = ["TAP version 14", "1..1", "# Subtest: s", "    1..3"].concat(
    [1, 2, 3, 4, 5, 6].map((i) => `    ok ${i} - t${i}`),
    ["ok 1 - s"],
  ).join("\n");
  const c = verdict(text, PASS);
  assert.equal(c.kind, "malformed");
  assert.match(c.message, /more results than planned in s: plan 1\.\.3/);
  assert.doesNotMatch(c.message, /\d+ of \d+ suites finished/);
});

Deno.test("real: planned tests that never reported are counted per suite and listed", async () => {
  const text = [
    "KTAP version 1",
    "1..3",
    ...suite(1, "a", ["ok 1 x", "ok 2 y"]),
    "    KTAP version 1",
    "    # Subtest: b",
    "    1..3",
    "    ok 1 z",
    "",
  ].join("\n");
  const p = await parsed(text);
  // kunit.py counts the two missing tests of b and the suite never started as crashed.
  assert.equal(p.line, "tests: 3 passed, 1 failed, 0 skipped, 3 not run");
  const run = p.report.runs[0];
  assert.deepEqual(run.suites.map((s) => [s.name, s.notRun, s.notRunRanges]), [
    ["a", 0, []],
    ["b", 2, ["2-3 of 3"]],
  ]);
  assert.equal(run.suitesNotRun, 1);
  assert.match(p.console, /not run: b: 2 \(2-3 of 3\)/);
  assert.match(p.console, /not run: 1 planned suites never started/);
  assert.match(p.console, /suite b reported 1 test, 2 not run \(2-3 of 3\) and has no result line/);
  assert.match(p.junit, /<testcase name="2 not run: 2-3 of 3" classname="kernel\.b"><skipped /);
  // Without the suite that never started: the summary line of the issue.
  const two = text.replace("1..3\n", "1..2\n");
  assert.equal((await parsed(two)).line, "tests: 3 passed, 1 failed, 0 skipped, 2 not run");
});

Deno.test("real: names and diagnostics from the serial line reach no terminal unescaped", async () => {
  const text = [
    "KTAP version 1",
    "1..1",
    ...suite(1, "evil\x1b]0;owned\x07", [
      "# \x1b[2J\x9b31m cleared your screen",
      "not ok 1 bad\x1b[31mname",
      "  ---",
      '  message: "\\e[5m blink \\x9b"',
      "  ...",
    ], 1),
  ].join("\n");
  const p = await parsed(text);
  assert.doesNotMatch(p.console, CONTROL);
  assert.doesNotMatch(p.junit, CONTROL);
  assert.doesNotMatch(JSON.stringify(p.report), /\\u001b|\\u009b/);
  const t = p.report.runs[0].suites[0].tests[0];
  assert.equal(t.fullName, "evil\\x1b]0;owned\\x07.bad\\x1b[31mname");
  assert.equal(t.diagnostic?.message, "\\x1b[5m blink \\x9b");
  assert.equal(printable("tab\tstays"), "tab\tstays");
});

Deno.test("real: nesting 2,000 deep, named or not, closed or cut", () => {
  const n = 2000;
  for (const named of [true, false]) {
    const lines = ["KTAP version 1", "1..1"];
    for (let d = 1; d <= n; d++) {
      lines.push(`${"  ".repeat(d)}KTAP version 1`);
      if (named) lines.push(`${"  ".repeat(d)}# Subtest: l${d}`);
      lines.push(`${"  ".repeat(d)}1..1`);
    }
    lines.push(`${"  ".repeat(n + 1)}not ok 1 leaf`);
    const closing = Array.from({ length: n }, (_, i) => `${"  ".repeat(n - 1 - i)}ok 1 l${n - i}`);
    const { report } = ingest([...lines, ...closing]);
    assert.equal(report.counts.tests, 1);
    assert.equal(report.failures[0].name.split(".").length, n);
    assert.equal(report.failures[0].fullName.endsWith(`l${n}.leaf`), true);
    assert.equal(report.planComplete, true);
    // Cut in the middle: every open level ends, nothing throws.
    const cut = ingest([...lines, ...closing.slice(0, n / 2)]).report;
    assert.equal(cut.planComplete, false);
    assert.equal(cut.counts.tests, 1);
  }
});

Deno.test("real: a 10 MB line is cut, not kept", () => {
  const big = "x".repeat(10 * 1024 * 1024);
  const text = [
    "KTAP version 1",
    "1..1",
    ...suite(1, "s", [`# ${big}`, "ok 1 a", `not ok 2 b_${big}`], 2),
  ].join("\n");
  const { report } = ingest(text, 64 * 1024);
  const [b] = report.failures;
  assert.ok(b.name.length < 70_000, `name of ${b.name.length} characters`);
  assert.match(b.name, /^b_x+ \[line cut: \d{8} characters\]$/);
  assert.ok(b.log.join("").length < 70_000);
  assert.equal(report.counts.tests, 2);
  assert.equal(report.planComplete, true);
});

Deno.test("real: 200,000 results", () => {
  const lines = ["KTAP version 1", "1..200"];
  for (let s = 1; s <= 200; s++) {
    lines.push("    KTAP version 1", `    # Subtest: s${s}`, "    1..1000");
    for (let t = 1; t <= 1000; t++) lines.push(`    ok ${t} t${t}`);
    lines.push(`ok ${s} s${s}`);
  }
  const { report } = ingest([...lines, ""], 64 * 1024);
  assert.equal(report.counts.tests, 200_000);
  assert.equal(report.counts.pass, 200_000);
  assert.equal(report.planComplete, true);
  assert.deepEqual(report.problems, []);
});

Deno.test("real: a diagnostic block reads as text fields, whatever is in it", () => {
  assert.deepEqual(
    readYamlBlock([
      '  message: "a \\"quoted\\" \\\\ value"',
      "  at: kernel/x.c:1 # a comment",
      "  expected: |",
      "    two",
      "    lines",
      "  not a field",
    ]),
    {
      message: 'a "quoted" \\ value',
      at: "kernel/x.c:1",
      expected: "two\nlines",
      "line 6": "not a field",
    },
  );
});

Deno.test("real: statuses of KTAP directives at depth stay what they say", () => {
  const { report } = ingest(read("ktap/spec-nested.ktap"));
  assert.deepEqual(report.suites[0].tests.map(testStatus), [
    "pass",
    "skip",
    "pass",
    "pass",
    "fail",
    "skip",
  ]);
});

Deno.test("launcher: tools/deno runs the pinned Deno (ci/deno-version) without npx when cached", async () => {
  const root = new URL("../", import.meta.url).pathname;
  const pinned = (await Deno.readTextFile(`${root}ci/deno-version`)).trim();
  const out = await new Deno.Command(`${root}tools/deno`, { args: ["--version"] }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(
    new TextDecoder().decode(out.stdout),
    new RegExp(`^deno ${pinned.replace(/\./g, "\\.")} `),
  );
});

Deno.test("ktap: not ok with TODO or XFAIL fails a KTAP log (as kunit_tool); TAP 14 keeps TODO", () => {
  for (const directive of ["TODO known broken", "XFAIL expected"]) {
    const ktap = ["KTAP version 1", "1..1", "not ok 1 t # " + directive, ""].join("\n");
    const v = verdict(ktap, PASS);
    assert.equal(v.kind, "assertion-failure", `${directive}: ${v.kind} ${v.message}`);
  }
  const tap = ["TAP version 14", "1..2", "ok 1 a", "not ok 2 b # TODO known broken", ""].join("\n");
  assert.equal(verdict(tap, PASS).kind, "pass");
});
