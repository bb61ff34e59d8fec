import assert from "node:assert/strict";
import { SerialStream } from "../tools/core/serial.ts";
import { type TapEvent, TapIngest, type TapReport } from "../tools/core/tap.ts";

const FIXTURES = new URL("./fixtures/tap/", import.meta.url);

interface Ingested {
  report: TapReport;
  events: TapEvent[];
}

/** Feed bytes through the serial pipeline into TapIngest, as the runner does. */
function ingest(bytes: Uint8Array | string, chunkSize = 16): Ingested {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  const events: TapEvent[] = [];
  const tap = new TapIngest((e) => events.push(e));
  const serial = new SerialStream({ onTapLine: (l) => tap.push(l) });
  for (let i = 0; i < data.length; i += chunkSize) {
    serial.push(data.subarray(i, i + chunkSize));
  }
  serial.end();
  return { report: tap.end(), events };
}

function fixture(name: string, chunkSize?: number): Ingested {
  return ingest(Deno.readFileSync(new URL(name, FIXTURES)), chunkSize);
}

/** "start:x" / "result:x" / "suite:x" / "bail" in event order. */
function timeline(events: TapEvent[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    if (e.type === "test-start") out.push(`start:${e.fullName}`);
    else if (e.type === "test-result") out.push(`result:${e.result.fullName}`);
    else if (e.type === "suite-result") out.push(`suite:${e.suite.name}`);
    else if (e.type === "bail-out") out.push("bail");
  }
  return out;
}

Deno.test("tap: a passing run is complete, all ok, with the skip reason", () => {
  const { report } = fixture("pass.tap");
  assert.equal(report.version, 14);
  assert.deepEqual(report.plan, { start: 1, end: 2, comment: "", count: 2 });
  assert.equal(report.planComplete, true);
  assert.deepEqual(report.suites.map((s) => s.name), ["layout", "exceptions"]);
  assert.deepEqual(report.suites.map((s) => s.result?.ok), [true, true]);
  assert.deepEqual(report.suites.map((s) => s.plan?.count), [3, 1]);
  assert.deepEqual(report.counts, {
    suites: 2,
    tests: 4,
    pass: 3,
    fail: 0,
    skip: 1,
    todo: 0,
    notRun: 0,
  });
  assert.deepEqual(report.failures, []);
  assert.equal(report.bailOut, null);
  assert.equal(report.running, null);
  const skipped = report.suites[0].tests[2];
  assert.equal(skipped.fullName, "layout.skipped");
  assert.equal(skipped.skip, "needs 1 GiB pages");
  assert.equal(skipped.todo, null);
});

Deno.test("tap: a failure carries the kernel's YAML diagnostic", () => {
  const { report } = fixture("fail-yaml.tap");
  assert.equal(report.planComplete, true);
  assert.equal(report.failures.length, 1);
  const f = report.failures[0];
  assert.equal(f.fullName, "layout.selfmap");
  assert.equal(f.ok, false);
  assert.equal(f.id, 2);
  assert.equal(f.diagnostic?.message, "pml4_via_selfmap == cr3_frame");
  assert.equal(f.diagnostic?.expected, "0x0000000000101000");
  assert.equal(f.diagnostic?.actual, "0x0000000000000000");
  assert.equal(f.diagnostic?.at, "kernel/tests/selfmap.c:42");
  assert.deepEqual(Object.keys(f.diagnostic?.fields ?? {}).sort(), [
    "actual",
    "at",
    "expected",
    "message",
  ]);
  // The suite's closing point says ok; the failure inside still counts.
  assert.equal(report.suites[0].result?.ok, true);
  assert.equal(report.counts.fail, 1);
});

Deno.test("tap: unquoted YAML values stay text (0x101000 is an address, not 1052672)", () => {
  const { report } = ingest(
    "TAP version 14\n1..1\nnot ok 1 - x\n  ---\n  actual: 0x101000\n  expected: 'it''s'\n" +
      '  message: "a\\tb \\x1b[31m"\n  ...\n',
  );
  const d = report.failures[0].diagnostic;
  assert.equal(d?.actual, "0x101000");
  assert.equal(d?.fields.actual, "0x101000");
  assert.equal(d?.expected, "it's");
  // Decoded, then escaped: no escape sequence reaches a terminal.
  assert.equal(d?.message, "a\tb \\x1b[31m");
});

Deno.test("tap: a crash mid-suite leaves the plan unfinished and names the running test", () => {
  const { report } = fixture("crash-mid-suite.tap");
  assert.equal(report.planComplete, false);
  assert.equal(report.running, "layout.selfmap");
  assert.equal(report.lastResult, "layout.constants");
  assert.equal(report.suites.length, 1);
  assert.deepEqual(report.suites[0].tests.map((t) => t.fullName), [
    "layout.constants",
  ]);
  assert.equal(report.suites[0].result, null);
  assert.equal(report.suites[0].planComplete, false);
  assert.deepEqual(report.failures, []);
});

Deno.test("tap: results are out as soon as the next # RUN arrives (no end() needed)", () => {
  const events: TapEvent[] = [];
  const tap = new TapIngest((e) => events.push(e));
  for (
    const l of [
      "TAP version 14",
      "1..1",
      "# Subtest: layout",
      "    1..2",
      "    # RUN layout.constants",
      "    ok 1 - constants",
      "    # RUN layout.selfmap",
    ]
  ) tap.push(l);
  assert.deepEqual(timeline(events), [
    "start:layout.constants",
    "result:layout.constants",
    "start:layout.selfmap",
  ]);
  const snapshot = tap.report();
  assert.equal(snapshot.running, "layout.selfmap");
  assert.equal(snapshot.ended, false);
});

Deno.test("tap: event order is start, result, ... for every test", () => {
  const { events } = fixture("fail-yaml.tap", 3);
  assert.deepEqual(timeline(events), [
    "start:layout.constants",
    "result:layout.constants",
    "start:layout.selfmap",
    "result:layout.selfmap",
    "start:layout.skipped",
    "result:layout.skipped",
    "suite:layout",
    "start:exceptions.int3",
    "result:exceptions.int3",
    "suite:exceptions",
  ]);
  const plans = events.filter((e) => e.type === "plan");
  assert.deepEqual(plans.map((e) => [e.suite, e.plan.count]), [
    [null, 2],
    ["layout", 3],
    ["exceptions", 1],
  ]);
});

Deno.test("tap: firmware noise with \\r before TAP changes nothing", () => {
  assert.deepEqual(fixture("firmware-noise.tap", 7).report, fixture("pass.tap").report);
});

Deno.test("tap: \\r\\n line ends change nothing", () => {
  assert.deepEqual(fixture("crlf.tap", 5).report, fixture("pass.tap").report);
});

Deno.test("tap: a missing top-level plan is never complete", () => {
  const { report } = fixture("missing-plan.tap");
  assert.equal(report.plan, null);
  assert.equal(report.planComplete, false);
  assert.equal(report.suites[0].result?.ok, true);
  assert.deepEqual(report.failures, []);
});

Deno.test("tap: bail out keeps the reason, the dump, and the result before it", () => {
  const { report, events } = fixture("bail-out.tap");
  assert.deepEqual(report.bailOut, {
    reason: "page fault in kernel mode at 0xffffffff80101234",
    dump: [
      "# EXCEPTION #PF (vector 14) error code 0x0000000000000002",
      "# RIP 0xffffffff80101234 CR2 0x0000000000000000",
      "# RAX 0x0000000000000000 RBX 0x0000000000101000",
    ],
  });
  assert.equal(report.running, "layout.selfmap");
  assert.equal(report.planComplete, false);
  // The result before an unindented Bail out! is kept (a reader that holds
  // a result back for its YAML block could lose it there).
  assert.deepEqual(report.suites[0].tests.map((t) => [t.fullName, t.ok]), [
    ["layout.constants", true],
  ]);
  assert.equal(timeline(events).at(-1), "bail");
  assert.deepEqual(report.comments, [
    "# RUN layout.constants",
    "# RUN layout.selfmap",
    "# EXCEPTION #PF (vector 14) error code 0x0000000000000002",
    "# RIP 0xffffffff80101234 CR2 0x0000000000000000",
    "# RAX 0x0000000000000000 RBX 0x0000000000101000",
  ]);
});

Deno.test("tap: the dump is the comments after the last # RUN, indented or not", () => {
  const { report } = ingest(
    [
      "TAP version 14",
      "1..1",
      "# Subtest: exceptions",
      "    1..2",
      "    # note before the test",
      "    # RUN exceptions.gp",
      "    # vector 13",
      "    some non-TAP noise",
      "# RIP 0x1234",
      "Bail out! #GP",
      "ok 1 - exceptions",
      "",
    ].join("\n"),
  );
  assert.deepEqual(report.bailOut, {
    reason: "#GP",
    dump: ["# vector 13", "# RIP 0x1234"],
  });
  assert.equal(report.running, "exceptions.gp");
  // Nothing after Bail out! counts.
  assert.equal(report.suites[0].result, null);
});

Deno.test("tap: skip and todo are not failures; todo reason kept", () => {
  const { report } = fixture("skip-todo.tap");
  assert.equal(report.planComplete, true);
  assert.deepEqual(report.failures, []);
  assert.deepEqual(report.counts, {
    suites: 1,
    tests: 3,
    pass: 1,
    fail: 0,
    skip: 1,
    todo: 1,
    notRun: 0,
  });
  const [, smp, preempt] = report.suites[0].tests;
  assert.equal(smp.skip, "single CPU");
  assert.equal(preempt.ok, false);
  assert.equal(preempt.todo, "timer not wired yet");
  assert.equal(preempt.diagnostic?.message, "preempted == true");
});

Deno.test("tap: top-level test points without subtests count as tests", () => {
  const { report } = ingest("TAP version 14\n1..2\nok 1 - a\nnot ok 2 - b\n");
  assert.equal(report.planComplete, true);
  assert.deepEqual(report.suites.map((s) => [s.name, s.hasSubtest]), [
    ["a", false],
    ["b", false],
  ]);
  assert.deepEqual(report.failures.map((f) => f.fullName), ["b"]);
  assert.equal(report.counts.tests, 2);
});

Deno.test("tap: more results than the plan is a problem of the stream", () => {
  const { report } = ingest(
    "TAP version 14\n1..1\n# Subtest: s\n    1..1\n    ok 1 - a\n    ok 2 - b\nok 1 - s\n",
  );
  // Indentation keeps b inside s: an extra result, not s's closing line.
  assert.equal(report.suites[0].tests.length, 2);
  assert.deepEqual(report.problems, ["more results than planned in s: plan 1..1"]);
  assert.equal(report.suites[0].notRun, 0);
});

Deno.test("tap: a not ok suite point is a failure even if its tests passed", () => {
  const { report } = ingest(
    "TAP version 14\n1..1\n# Subtest: s\n    1..1\n    ok 1 - a\nnot ok 1 - s\n",
  );
  assert.deepEqual(report.failures.map((f) => [f.suite, f.name]), [["", "s"]]);
});
