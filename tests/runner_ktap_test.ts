/**
 * KTAP v1 read through the same pipeline as the kernel's TAP 14: prefix
 * stripping (serial.ts), the reader (tap.ts), then the verdict without an
 * exit status (classify.ts); and the KTAP → TAP 14 rewriter (ktap.ts) the
 * npm library offers. Fixtures are hand-written
 * in the shapes of Documentation/dev-tools/ktap.rst and kunit's output.
 */
import assert from "node:assert/strict";
import { classify } from "../tools/core/classify.ts";
import { KtapNormalizer } from "../tools/core/ktap.ts";
import { prefixPattern, SerialStream } from "../tools/core/serial.ts";
import { TapIngest, type TapReport, testStatus } from "../tools/core/tap.ts";

const KTAP = new URL("./fixtures/ktap/", import.meta.url);

function ingest(text: string, chunk = 13): { report: TapReport; tapSeen: boolean; raw: string } {
  const tap = new TapIngest();
  const serial = new SerialStream({ onTapLine: (l) => tap.push(l) });
  const bytes = new TextEncoder().encode(text);
  for (let i = 0; i < bytes.length; i += chunk) serial.push(bytes.subarray(i, i + chunk));
  serial.end();
  return { report: tap.end(), tapSeen: serial.tapStarted, raw: serial.raw };
}

function fixture(name: string) {
  return ingest(Deno.readTextFileSync(new URL(name, KTAP)));
}

/** The verdict on a saved log: no exit status, the TAP stream decides. */
function verdict(name: string) {
  const { report, tapSeen, raw } = fixture(name);
  return classify({
    exit: { kind: "none" },
    stderr: "",
    report,
    tapSeen,
    serialBytes: raw.length,
    firstBytes: raw.slice(0, 200),
    timeout: null,
  });
}

function normalize(lines: string[]): string[] {
  const out: string[] = [];
  const n = new KtapNormalizer((l) => out.push(l));
  for (const l of lines) n.push(l);
  n.end();
  return out;
}

Deno.test("ktap: printk timestamps before the version line are stripped from every line", () => {
  const { report } = fixture("kunit-pass.ktap");
  assert.equal(report.ktap, true);
  assert.equal(report.planComplete, true);
  assert.deepEqual(report.suites.map((s) => s.name), ["example", "list-kunit-test"]);
  assert.deepEqual(report.suites[0].tests.map((t) => [t.name, testStatus(t), t.skip]), [
    ["example_simple_test", "pass", null],
    ["example_skip_test", "skip", "this test should be skipped"],
    ["example_mark_skipped_test", "skip", "this test should be skipped"],
  ]);
  assert.deepEqual(report.counts, {
    suites: 2,
    tests: 5,
    pass: 3,
    fail: 0,
    skip: 2,
    todo: 0,
    notRun: 0,
  });
  assert.equal(verdict("kunit-pass.ktap").kind, "pass");
});

Deno.test("ktap: a prefix pattern matches later timestamps, not the TAP's own indentation", () => {
  const p = prefixPattern("[    0.410126] ");
  assert.equal("[   12.000001]     ok 1 x".replace(p, ""), "    ok 1 x");
  assert.equal("[10000.5] ok".replace(p, ""), "ok");
  assert.equal("no prefix here".replace(p, ""), "no prefix here");
  const levelled = prefixPattern("<6>[   12.000001] ");
  assert.equal("<4>[   12.5]   not ok 3 t".replace(levelled, ""), "  not ok 3 t");
});

Deno.test("ktap: nesting by version lines at 2 spaces, subtests named by their closing line", () => {
  // The spec's example: no `# Subtest:` headers, three levels.
  const { report } = fixture("spec-nested.ktap");
  assert.equal(report.planComplete, true);
  assert.deepEqual(report.suites.map((s) => [s.name, s.planComplete]), [["main_test", true]]);
  // The leaves are the tests, at every depth (as kunit_tool counts them).
  assert.deepEqual(report.suites[0].tests.map((t) => [t.fullName, testStatus(t)]), [
    ["main_test.example_test_1.test_1", "pass"],
    ["main_test.example_test_2.test_1", "skip"],
    ["main_test.example_test_2.test_2", "pass"],
    ["main_test.example_test_3.test_1", "pass"],
    ["main_test.example_test_3.test_2", "fail"],
    ["main_test.example_test_3.test_3", "skip"],
  ]);
  assert.deepEqual(report.counts, {
    suites: 1,
    tests: 6,
    pass: 3,
    fail: 1,
    skip: 2,
    todo: 0,
    notRun: 0,
  });
  // The failure keeps what was printed before it.
  assert.deepEqual(report.failures[0].log, ["# test_2: FAIL"]);
  const c = verdict("spec-nested.ktap");
  assert.equal(c.kind, "assertion-failure");
  assert.equal(c.test, "main_test.example_test_3.test_2");
});

Deno.test("ktap: the rewrite gives TAP 14: headers at the parent's level, 4 spaces a level", () => {
  assert.deepEqual(
    normalize([
      "KTAP version 1",
      "1..1",
      "  KTAP version 1",
      "  1..2",
      "    KTAP version 1",
      "    # Subtest: inner",
      "    1..1",
      "    ok 1 leaf",
      "  ok 1 inner",
      "  ok 2 plain",
      "ok 1 outer",
    ]),
    [
      "TAP version 14",
      "1..1",
      "# Subtest: outer",
      "    1..2",
      "    # Subtest: inner",
      "        1..1",
      "        ok 1 leaf",
      "    ok 1 inner",
      "    ok 2 plain",
      "ok 1 outer",
    ],
  );
});

Deno.test("ktap: a TAP 14 stream passes through untouched", () => {
  const lines = ["TAP version 14", "1..1", "# Subtest: s", "    1..1", "    ok 1 - t", "ok 1 - s"];
  assert.deepEqual(normalize(lines), lines);
});

Deno.test("ktap: unknown lines at any indentation neither open nor close a level", () => {
  const { report } = ingest(
    [
      "KTAP version 1",
      "1..1",
      "  KTAP version 1",
      "  # Subtest: s",
      "  1..2",
      "  ok 1 a",
      "random kernel message at column 0",
      "        and one indented deeply",
      "  ok 2 b",
      "ok 1 s",
      "",
    ].join("\n"),
  );
  assert.equal(report.planComplete, true);
  assert.deepEqual(report.suites[0].tests.map((t) => t.fullName), ["s.a", "s.b"]);
});

Deno.test("ktap: XFAIL, TIMEOUT, ERROR, TODO, SKIP and diagnostic data", () => {
  const { report } = fixture("directives.ktap");
  assert.equal(report.planComplete, true);
  const byName = new Map(report.suites[0].tests.map((t) => [t.name, t]));
  const status = (n: string) => testStatus(byName.get(n)!);
  assert.equal(status("plain"), "pass");
  assert.equal(status("skipped"), "skip");
  // In KTAP, as kunit_tool reads it, a not ok stays a failure whatever TODO or XFAIL says.
  assert.equal(status("known_broken"), "fail");
  assert.equal(byName.get("known_broken")!.note, "TODO fix the allocator first");
  assert.equal(status("expected_failure"), "fail");
  assert.equal(byName.get("expected_failure")!.note, "XFAIL errata 123");
  assert.equal(status("too_slow"), "timeout");
  assert.equal(byName.get("too_slow")!.note, "30 seconds");
  assert.equal(status("broken_setup"), "error");
  assert.equal(status("check_return_code"), "pass");
  assert.equal(byName.get("check_return_code")!.note, "rcode=0");
  // not ok TODO and not ok XFAIL fail in KTAP; TIMEOUT and ERROR fail even on ok.
  assert.deepEqual(report.failures.map((f) => f.fullName), [
    "directives.known_broken",
    "directives.expected_failure",
    "directives.too_slow",
    "directives.broken_setup",
    "directives",
  ]);
  const c = verdict("directives.ktap");
  assert.equal(c.kind, "assertion-failure");
  assert.equal(c.category, "crash", "an ERROR is a crash, worse than a TIMEOUT's hang");
  assert.match(c.message, /^4 failed: directives\.known_broken/);
});

Deno.test("ktap: a TIMEOUT alone makes the run a hang", () => {
  const { report, tapSeen, raw } = ingest(
    "KTAP version 1\n1..1\n  KTAP version 1\n  # Subtest: s\n  1..1\n" +
      "  not ok 1 slow # TIMEOUT 5 seconds\nnot ok 1 s\n",
  );
  const c = classify({
    exit: { kind: "none" },
    stderr: "",
    report,
    tapSeen,
    serialBytes: raw.length,
    firstBytes: "",
    timeout: null,
  });
  assert.equal(c.category, "hang");
  assert.equal(c.test, "s.slow");
});

Deno.test("ktap: YAML blocks keep their place under their test point", () => {
  const { report } = fixture("yaml.ktap");
  const failed = report.failures[0];
  assert.equal(failed.fullName, "alloc.alloc_all");
  assert.equal(failed.diagnostic?.message, "pages_free() == 0");
  assert.equal(failed.diagnostic?.expected, "0x0000000000000000");
  assert.equal(failed.diagnostic?.actual, "0x0000000000000003");
  assert.equal(failed.diagnostic?.at, "kernel/tests/test_pmm.c:88");
});

Deno.test("ktap: a kernel panic mid-suite is a panic after the last result, with its oops", () => {
  const { report } = fixture("crash-mid-suite.ktap");
  assert.equal(report.planComplete, false);
  assert.equal(report.lastResult, "second.second_a");
  assert.deepEqual(report.failures, []);
  assert.equal(report.suites[1].notRun, 2);
  assert.deepEqual(report.suites[1].notRunRanges, ["2-3 of 3"]);
  const c = verdict("crash-mid-suite.ktap");
  assert.equal(c.kind, "panic");
  assert.equal(c.category, "crash");
  assert.match(c.message, /panic after second\.second_a: Kernel panic - not syncing: Fatal/);
  assert.match(c.details[0], /BUG: kernel NULL pointer dereference/);
});

Deno.test("ktap: a log that stops mid-suite is a crash, never a pass, in a developer's words", () => {
  const text = Deno.readTextFileSync(new URL("crash-mid-suite.ktap", KTAP));
  const { report, tapSeen, raw } = ingest(text.slice(0, text.indexOf("[    1.000020]")));
  const c = classify({
    exit: { kind: "none" },
    stderr: "",
    report,
    tapSeen,
    serialBytes: raw.length,
    firstBytes: "",
    timeout: null,
  });
  assert.equal(c.kind, "incomplete");
  assert.equal(c.category, "crash");
  assert.equal(
    c.message,
    "crash: the log ends after second.second_a; suite second reported 1 test, " +
      "2 not run (2-3 of 3) and has no result line",
  );
});

Deno.test("ktap: a subtest whose closing line never comes is still reported, unnamed", () => {
  const { report } = ingest("KTAP version 1\n1..1\n  KTAP version 1\n  1..2\n  ok 1 a\n");
  assert.equal(report.planComplete, false);
  assert.equal(report.suites.length, 1);
  assert.deepEqual(report.suites[0].tests.map((t) => [t.name, t.ok]), [["a", true]]);
});

Deno.test("ktap: a subtest without a plan is complete once closed", () => {
  const { report } = ingest(
    "KTAP version 1\n1..1\n  KTAP version 1\n  # Subtest: s\n  ok 1 a\n  ok 2 b\nok 1 s\n",
  );
  assert.equal(report.suites[0].plan, null);
  assert.equal(report.suites[0].planComplete, true);
  assert.equal(report.planComplete, true);
});
