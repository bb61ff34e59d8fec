import assert from "node:assert/strict";
import { DEBUG_EXIT, qemuExitStatus } from "../linker/layout.ts";
import {
  buildFailure,
  classify,
  type ClassifyInput,
  type ExitInfo,
  type TimeoutInfo,
} from "../tools/core/classify.ts";
import { SerialStream } from "../tools/core/serial.ts";
import { TapIngest } from "../tools/core/tap.ts";

const FIXTURES = new URL("./fixtures/tap/", import.meta.url);
const PASS = qemuExitStatus(DEBUG_EXIT.pass);
const FAIL = qemuExitStatus(DEBUG_EXIT.fail);
const PANIC = qemuExitStatus(DEBUG_EXIT.panic);

interface Facts {
  exit: ExitInfo | number;
  stderr?: string;
  timeout?: TimeoutInfo;
}

/** The classifier's input for a serial capture, parsed as the runner parses it. */
function input(serialText: Uint8Array | string, facts: Facts): ClassifyInput {
  const bytes = typeof serialText === "string" ? new TextEncoder().encode(serialText) : serialText;
  const tap = new TapIngest();
  const serial = new SerialStream({ onTapLine: (l) => tap.push(l) });
  serial.push(bytes);
  serial.end();
  return {
    exit: typeof facts.exit === "number" ? { kind: "exited", status: facts.exit } : facts.exit,
    stderr: facts.stderr ?? "",
    report: tap.end(),
    tapSeen: serial.tapStarted,
    serialBytes: serial.byteCount,
    firstBytes: serial.raw.slice(0, 200),
    timeout: facts.timeout ?? null,
  };
}

function fixture(name: string, facts: Facts): ClassifyInput {
  return input(Deno.readFileSync(new URL(name, FIXTURES)), facts);
}

Deno.test("classify: complete, all ok, pass status → pass", () => {
  const c = classify(fixture("pass.tap", { exit: PASS }));
  assert.equal(c.kind, "pass");
  assert.equal(c.ok, true);
  assert.match(c.message, /3 passed, 1 skipped/);
});

Deno.test("classify: skip and todo still pass", () => {
  const c = classify(fixture("skip-todo.tap", { exit: PASS }));
  assert.equal(c.kind, "pass");
});

Deno.test("classify: noise before TAP and \\r\\n line ends still pass", () => {
  assert.equal(classify(fixture("firmware-noise.tap", { exit: PASS })).kind, "pass");
  assert.equal(classify(fixture("crlf.tap", { exit: PASS })).kind, "pass");
});

Deno.test("classify: status 0 is never success, even with a complete all-ok plan", () => {
  const c = classify(fixture("pass.tap", { exit: 0 }));
  assert.equal(c.kind, "triple-fault");
  assert.equal(c.ok, false);
  assert.match(c.message, /after the plan completed/);
});

Deno.test("classify: complete all-ok run with the fail status is a failure, saying so", () => {
  const c = classify(fixture("pass.tap", { exit: FAIL }));
  assert.equal(c.kind, "assertion-failure");
  assert.equal(c.ok, false);
  assert.match(c.message, /every result is ok, but QEMU exited 35.*instead of 33/);
});

Deno.test("classify: complete all-ok run with an odd status and a QEMU error → qemu-failed", () => {
  const c = classify(
    fixture("pass.tap", { exit: 1, stderr: "qemu-system-x86_64: some error" }),
  );
  assert.equal(c.kind, "qemu-failed");
  assert.match(c.message, /QEMU exited 1 instead of 33/);
});

Deno.test("classify: a not ok carries the diagnostic and names the test", () => {
  const c = classify(fixture("fail-yaml.tap", { exit: FAIL }));
  assert.equal(c.kind, "assertion-failure");
  assert.equal(c.test, "layout.selfmap");
  assert.equal(c.diagnostic?.message, "pml4_via_selfmap == cr3_frame");
  assert.equal(
    c.message,
    "1 failed: layout.selfmap: pml4_via_selfmap == cr3_frame " +
      "(expected 0x0000000000101000, actual 0x0000000000000000) " +
      "at kernel/tests/selfmap.c:42",
  );
  assert.ok(c.details.includes("at: kernel/tests/selfmap.c:42"));
});

Deno.test("classify: a not ok with the pass status is still a failure", () => {
  const c = classify(fixture("fail-yaml.tap", { exit: PASS }));
  assert.equal(c.kind, "assertion-failure");
  assert.match(c.message, /QEMU exited 33 \(DEBUG_EXIT.pass\), not 35/);
});

Deno.test("classify: crash mid-suite with status 0 → triple fault naming the test", () => {
  const c = classify(fixture("crash-mid-suite.tap", { exit: 0 }));
  assert.equal(c.kind, "triple-fault");
  assert.equal(c.test, "layout.selfmap");
  assert.match(c.message, /while running layout\.selfmap/);
});

Deno.test("classify: fewer results than the plan is never a pass", () => {
  for (const status of [PASS, FAIL, 1]) {
    const c = classify(fixture("crash-mid-suite.tap", { exit: status }));
    assert.equal(c.kind, "incomplete", `status ${status}`);
    assert.equal(c.test, "layout.selfmap");
    assert.match(
      c.message,
      /suite layout reported 1 test, 2 not run \(2-3 of 3\) and has no result line; 1 planned suite never started \(plan 1\.\.2\)/,
    );
  }
  const c = classify(fixture("crash-mid-suite.tap", { exit: PASS }));
  assert.match(c.message, /the kernel reported pass, but results are missing/);
});

Deno.test("classify: without a top-level plan, a clean end decides", () => {
  // The kernel chose its exit status and every suite it started is complete.
  assert.equal(classify(fixture("missing-plan.tap", { exit: PASS })).kind, "pass");
  // A saved log: nothing says more suites were not due, unless the kernel said it ended.
  const c = classify(fixture("missing-plan.tap", { exit: { kind: "none" } }));
  assert.equal(c.kind, "incomplete");
  assert.match(c.message, /no top-level plan \(1\.\.N\) and no end line from the kernel/);
  const text = Deno.readTextFileSync(new URL("missing-plan.tap", FIXTURES));
  for (const end of ["reboot: System halted", "reboot: Power down"]) {
    assert.equal(classify(input(`${text}${end}\n`, { exit: { kind: "none" } })).kind, "pass");
  }
  // Not when a suite is still open, whatever the end.
  const open = text.replace("ok 1 - layout\n", "");
  assert.equal(classify(input(`${open}reboot: Power down\n`, { exit: PASS })).kind, "incomplete");
});

Deno.test("classify: silence deadline → hang naming the deadline and the running test", () => {
  const timeout: TimeoutInfo = { deadline: "silence", ms: 5000 };
  const c = classify(fixture("crash-mid-suite.tap", { exit: 0, timeout }));
  assert.equal(c.kind, "hang");
  assert.equal(c.category, "hang");
  assert.equal(c.test, "layout.selfmap");
  assert.equal(
    c.message,
    "hang: the silence deadline (5000 ms without a TAP line) passed while running layout.selfmap",
  );
});

Deno.test("classify: run deadline after TAP started → hang naming it", () => {
  const timeout: TimeoutInfo = { deadline: "run", ms: 800 };
  const c = classify(fixture("crash-mid-suite.tap", { exit: 0, timeout }));
  assert.equal(c.kind, "hang");
  assert.match(c.message, /the run deadline \(800 ms for the whole run\) passed while running/);
});

Deno.test("classify: a deadline before any TAP line → no boot, quoting the output", () => {
  for (const deadline of ["boot", "run"] as const) {
    const timeout: TimeoutInfo = { deadline, ms: 60000 };
    const c = classify(
      input("booting...", { exit: { kind: "signaled", signal: "SIGKILL" }, timeout }),
    );
    assert.equal(c.kind, "boot-timeout");
    assert.equal(c.category, "boot");
    assert.match(c.message, new RegExp(`no boot: the ${deadline} deadline \\(60000 ms`));
    assert.match(c.message, /before the first TAP line/);
    assert.deepEqual(c.details, ['first bytes: "booting..."']);
  }
});

Deno.test("classify: Bail out! → panic with reason and dump", () => {
  const c = classify(fixture("bail-out.tap", { exit: PANIC }));
  assert.equal(c.kind, "panic");
  assert.equal(c.test, "layout.selfmap");
  assert.equal(
    c.message,
    "panic while running layout.selfmap: page fault in kernel mode at 0xffffffff80101234",
  );
  assert.equal(c.bailOut?.dump.length, 3);
  assert.deepEqual(c.details, c.bailOut?.dump);
});

Deno.test("classify: Bail out! wins over status 0 and says the status was wrong", () => {
  const c = classify(fixture("bail-out.tap", { exit: 0 }));
  assert.equal(c.kind, "panic");
  assert.match(c.message, /QEMU exited 0 \(reset\), not 37/);
});

Deno.test("classify: panic status without Bail out! → panic", () => {
  const c = classify(fixture("crash-mid-suite.tap", { exit: PANIC }));
  assert.equal(c.kind, "panic");
  assert.equal(c.test, "layout.selfmap");
  assert.match(c.message, /without a Bail out! line/);
});

Deno.test("classify: garbage without TAP → no-tap quoting the first bytes", () => {
  const c = classify(fixture("garbage.tap", { exit: FAIL }));
  assert.equal(c.kind, "no-tap");
  assert.match(
    c.message,
    /no "TAP version" line in 69 bytes of serial output; first bytes: "SeaBIOS/,
  );
});

Deno.test("classify: no output at all and no stderr → no-tap", () => {
  const c = classify(input("", { exit: PASS }));
  assert.equal(c.kind, "no-tap");
  assert.match(c.message, /no serial output at all/);
});

Deno.test("classify: bad -machine (exit 1, stderr, no output) → qemu-failed with stderr", () => {
  const stderr = "qemu-system-x86_64: unsupported machine type\n" +
    "Use -machine help to list supported machines\n";
  const c = classify(input("", { exit: 1, stderr }));
  assert.equal(c.kind, "qemu-failed");
  assert.match(c.message, /QEMU failed \(exit 1\): qemu-system-x86_64: unsupported machine type/);
  assert.deepEqual(c.details, [
    "stderr: qemu-system-x86_64: unsupported machine type",
    "stderr: Use -machine help to list supported machines",
  ]);
});

Deno.test("classify: spawn ENOENT → qemu-failed", () => {
  const exit: ExitInfo = {
    kind: "spawn-error",
    code: "ENOENT",
    message: "spawn /nope/qemu ENOENT",
  };
  const c = classify(input("", { exit }));
  assert.equal(c.kind, "qemu-failed");
  assert.equal(c.message, "QEMU binary not found: spawn /nope/qemu ENOENT");
});

Deno.test("classify: QEMU terminated by someone else's signal is not a triple fault", () => {
  const stderr = "qemu-system-x86_64: terminating on signal 15 from pid 42 (kill)";
  const c = classify(fixture("crash-mid-suite.tap", { exit: 0, stderr }));
  assert.equal(c.kind, "qemu-failed");
  assert.equal(c.test, "layout.selfmap");
  const killed = classify(
    fixture("crash-mid-suite.tap", { exit: { kind: "signaled", signal: "SIGKILL" } }),
  );
  assert.equal(killed.kind, "qemu-failed");
  assert.match(killed.message, /killed by SIGKILL while running layout\.selfmap/);
});

Deno.test("classify: the kernel's own statuses with no output are not qemu-failed", () => {
  const c = classify(input("", { exit: PANIC, stderr: "warning: something" }));
  assert.equal(c.kind, "panic");
});

Deno.test("classify: buildFailure makes a build-failure verdict with the output's tail", () => {
  const c = buildFailure("nasm exited 1", "a\n\nboot.asm:3: error: x\n");
  assert.equal(c.kind, "build-failure");
  assert.equal(c.ok, false);
  assert.equal(c.message, "build failed: nasm exited 1");
  assert.deepEqual(c.details, ["a", "boot.asm:3: error: x"]);
});
