/**
 * Each failure class, made to happen for real by the kernel's selftest
 * switches, must be classified as such and name the test that was running.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { LOG_DIR } from "../tools/paths.ts";
import { runKernel, type RunResult } from "../tools/runner/run.ts";
import { builtKernel } from "./support.ts";

/** Short enough to keep the suite fast, long enough for a TCG boot on a busy machine. */
const HANG_SILENCE_MS = 1_500;

async function selftest(name: string, silenceTimeoutMs = 20_000): Promise<RunResult> {
  const { elf } = await builtKernel();
  return runKernel({
    kernel: elf,
    append: `selftest=${name}`,
    logFile: join(LOG_DIR, `selftest-${name}.log`),
    silenceTimeoutMs,
  });
}

// Boot them all at once: each run is mostly QEMU start-up and waiting.
const runs = new Map<string, Promise<RunResult>>();
for (const name of ["triple-fault", "panic", "fault", "fail", "garbage", "stack-overflow"]) {
  runs.set(name, selftest(name));
}
runs.set("hang", selftest("hang", HANG_SILENCE_MS));
const get = (name: string) => runs.get(name)!;

Deno.test("selftest: a triple fault is reported as such, naming the test", async () => {
  const r = await get("triple-fault");
  assert.equal(r.classification.kind, "triple-fault", r.classification.message);
  assert.deepEqual(r.exit, { kind: "exited", status: 0 });
  assert.equal(r.classification.test, "selftest.triple-fault");
});

Deno.test("selftest: a hang is detected by silence, QEMU is killed, the test is named", async () => {
  const r = await get("hang");
  assert.equal(r.classification.kind, "hang", r.classification.message);
  assert.equal(r.timeout?.deadline, "silence");
  assert.equal(r.classification.test, "selftest.hang");
});

Deno.test("selftest: a panic is a Bail out with the kernel's reason and backtrace", async () => {
  const r = await get("panic");
  assert.equal(r.classification.kind, "panic", r.classification.message);
  assert.match(r.classification.bailOut?.reason ?? "", /deliberate panic/);
  assert.ok(
    r.classification.bailOut?.dump.some((l) => /0xffffffff8/.test(l)),
    "backtrace addresses",
  );
  assert.equal(r.classification.test, "selftest.panic");
});

Deno.test("selftest: an unexpected page fault is a panic with the exception dump", async () => {
  const r = await get("fault");
  assert.equal(r.classification.kind, "panic", r.classification.message);
  assert.match(r.classification.bailOut?.reason ?? "", /#PF/);
  const dump = r.classification.bailOut?.dump.join("\n") ?? "";
  assert.match(dump, /CR2/i);
  assert.match(dump, /RIP/i);
});

Deno.test("selftest: a stack overflow into the guard page is caught on the #DF stack", async () => {
  const r = await get("stack-overflow");
  assert.equal(r.classification.kind, "panic", r.classification.message);
  assert.match(r.classification.bailOut?.reason ?? "", /#DF|stack overflow/);
});

Deno.test("selftest: a failed assertion carries expected, actual and file:line", async () => {
  const r = await get("fail");
  assert.equal(r.classification.kind, "assertion-failure", r.classification.message);
  assert.equal(r.classification.test, "selftest.fail");
  const d = r.classification.diagnostic;
  assert.equal(d?.expected, "0x0000000000000036");
  assert.equal(d?.actual, "0x000000000000002a");
  assert.match(d?.at ?? "", /^kernel\/ktest\/selftest\.c:\d+$/);
});

Deno.test("selftest: garbage instead of TAP is reported as no TAP, even with the pass status", async () => {
  const r = await get("garbage");
  assert.equal(r.classification.kind, "no-tap", r.classification.message);
  assert.deepEqual(r.exit, { kind: "exited", status: 33 });
});
