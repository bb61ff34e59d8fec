/**
 * Each failure class, made to happen for real by the kernel's selftest
 * switches (or by QEMU itself), must come out of the runner as the report
 * shows it: the right kind and category, the running test named, the
 * deadline named, the crash symbolized, the serial log kept.
 */
import assert from "node:assert/strict";
import { ROOT } from "../tools/paths.ts";
import { DEFAULT_CONFIG, getConfig } from "../tools/run/configs.ts";
import { type MatrixOptions, runMatrix } from "../tools/run/matrix.ts";
import { runEntry, type RunRecord } from "../tools/core/record.ts";
import type { Deadlines } from "../tools/run/run.ts";
import { targetFor } from "../tools/run/targets.ts";
import type { Target } from "../tools/machines/target.ts";
import { builtKernel } from "./support.ts";

/**
 * Short enough to keep the suite fast, long enough for a TCG boot on a busy
 * machine: ten QEMUs start at once here, and 1.5 s was once not enough.
 */
const SHORT_MS = 3_000;
/**
 * The run deadline of the hang-run selftest. Its clock starts once the kernel
 * runs selftest.hang ({@link startedAtHang}), so it cannot race QEMU's start
 * (counted from the spawn, boots took up to 5.6 s with three test runs at
 * once on 2 cores, and a run deadline before the first TAP line is a boot failure).
 */
const RUN_MS = 1_000;
/** How long QEMU may take to reach selftest.hang before the hang-run test gives up. */
const REACH_MS = 60_000;
const LOG_DIR = `${ROOT}/build/logs`;

async function run(
  name: string,
  extra: Partial<MatrixOptions> = {},
  deadlines: Partial<Deadlines> = { silenceMs: 20_000 },
): Promise<RunRecord> {
  const { elf } = await builtKernel();
  const [record] = await runMatrix({
    elf,
    root: ROOT,
    configs: [getConfig(DEFAULT_CONFIG)],
    filter: null,
    shard: null,
    retries: 0,
    deadlines,
    logDir: LOG_DIR,
    logPrefix: name,
    ...extra,
  });
  return record;
}

const selftest = (name: string, deadlines?: Partial<Deadlines>) =>
  run(`selftest-${name}`, { extraCmdline: `selftest=${name}` }, deadlines);

/**
 * A real QEMU booting `selftest=hang`, handed to the runner only once the
 * kernel has announced selftest.hang: the run (and its clock) starts there,
 * its console output so far replayed at once. A run deadline counted from
 * QEMU's spawn raced the boot under load (no TAP yet: a boot failure, not
 * the run deadline); counted from here, only the hang can make it pass.
 */
async function startedAtHang(): Promise<Target> {
  const { elf } = await builtKernel();
  const qemu = targetFor(getConfig(DEFAULT_CONFIG));
  const cmdline = "selftest=hang";
  const early: Uint8Array[] = [];
  let forward: ((chunk: Uint8Array) => void) | null = null;
  let seen = "";
  const decoder = new TextDecoder();
  let reached = () => {};
  const atHang = new Promise<void>((resolve) => reached = resolve);
  const machine = qemu.start({ kernel: elf, cmdline }, (chunk) => {
    if (forward !== null) return forward(chunk);
    early.push(chunk);
    seen += decoder.decode(chunk, { stream: true });
    if (/# RUN selftest\.hang\s/.test(seen)) reached();
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const failed = await Promise.race([
    atHang.then(() => null),
    machine.done.then((end) => `QEMU ended (${JSON.stringify(end.exit)})`),
    new Promise<string>((resolve) => timer = setTimeout(() => resolve(`${REACH_MS} ms`), REACH_MS)),
  ]);
  clearTimeout(timer);
  if (failed !== null) {
    machine.kill();
    throw new Error(`selftest.hang never started (${failed}); console:\n${seen}`);
  }
  return {
    kind: qemu.kind,
    description: qemu.description,
    reportsExit: qemu.reportsExit,
    accel: qemu.accel,
    start(request, onSerial) {
      assert.equal(request.cmdline, cmdline, "the run boots what was started");
      for (const chunk of early) onSerial(chunk);
      forward = onSerial;
      return machine;
    },
  };
}

// Boot them all at once: each run is mostly QEMU start-up and waiting.
const runs = new Map<string, Promise<RunRecord>>();
for (
  const name of [
    "triple-fault",
    "panic",
    "fault",
    "fail",
    "garbage",
    "stack-overflow",
    "leak",
    "leak-kept",
    "kstack-overflow",
    "lock-order",
    "lock-switch",
  ]
) {
  runs.set(name, selftest(name));
}
// On two CPUs: the scheduler's lock is really taken there, and handed over across the switch.
runs.set(
  "lock-switch-block",
  run("selftest-lock-switch-block", {
    extraCmdline: "selftest=lock-switch-block",
    configs: [getConfig("smp2")],
  }),
);
// Handed over at selftest.hang too: a silence deadline counted from the boot's
// lines could pass in a stalled boot, before the hang, on a loaded host.
runs.set(
  "hang",
  startedAtHang().then((target) =>
    run("selftest-hang", { extraCmdline: "selftest=hang", targetOf: () => target }, {
      silenceMs: SHORT_MS,
    })
  ),
);
runs.set(
  "hang-run",
  startedAtHang().then((target) =>
    run("selftest-hang-run", { extraCmdline: "selftest=hang", targetOf: () => target }, {
      silenceMs: 60_000,
      runMs: RUN_MS,
    })
  ),
);
// Two CPUs: one of them is made deaf to shootdowns, or a batch is left open (counted on SMP only).
// tlb-noack's deaf CPU halts with interrupts off; the kernel waits 50 ms of guest clock for its
// acknowledgement (the selftest's own wait; production waits 5 s) and panics naming it.
for (const name of ["tlb-noack", "tlb-open"]) {
  runs.set(
    name,
    run(`selftest-${name}`, {
      extraCmdline: `selftest=${name}`,
      configs: [getConfig("smp2")],
    }, { silenceMs: 60_000 }),
  );
}
// -S: QEMU starts with the CPU stopped, so not a byte ever comes.
runs.set("no-boot", run("no-boot", { target: { extraArgs: ["-S"] } }, { bootMs: SHORT_MS }));
runs.set("no-qemu", run("no-qemu", { target: { qemu: "/nonexistent/qemu-system-x86_64" } }));
const get = (name: string) => runs.get(name)!;
/**
 * SMEP and SMAP selftests on QEMU's `max` CPU (it has both under TCG), booted
 * when their test runs: not beside the deadline tests above, whose short
 * deadlines the extra boots would crowd.
 */
const onMax = (name: string) =>
  run(`selftest-${name}`, { extraCmdline: `selftest=${name}`, configs: [getConfig("max")] });

/** The symbolized function of a frame (innermost location). */
function functionsOf(r: RunRecord): string[] {
  return (r.crash?.frames ?? []).map((f) => f.locations[0]?.function ?? "?");
}

Deno.test("selftest: a triple fault is a crash, naming the test; exit 0 is no success", async () => {
  const r = await get("triple-fault");
  assert.equal(r.kind, "triple-fault", r.message);
  assert.equal(r.category, "crash");
  assert.equal(r.status, "fail");
  assert.deepEqual(r.attempts[0].exit, { kind: "exited", status: 0 });
  assert.equal(r.test, "selftest.triple-fault");
  assert.equal(runEntry(r), "failed");
});

Deno.test("selftest: a hang is caught by the silence deadline, named with the test", async () => {
  const r = await get("hang");
  assert.equal(r.kind, "hang", r.message);
  assert.equal(r.category, "hang");
  assert.deepEqual(r.deadline, { deadline: "silence", ms: SHORT_MS });
  assert.equal(r.test, "selftest.hang");
  assert.match(
    r.message,
    new RegExp(
      `the silence deadline \\(${SHORT_MS} ms without a TAP line\\) passed while running selftest\\.hang`,
    ),
  );
});

Deno.test("selftest: the run deadline is reported by its own name", async () => {
  const r = await get("hang-run");
  assert.equal(r.category, "hang");
  assert.deepEqual(r.deadline, { deadline: "run", ms: RUN_MS });
  assert.match(
    r.message,
    new RegExp(
      `the run deadline \\(${RUN_MS} ms for the whole run\\) passed while running selftest\\.hang`,
    ),
  );
});

Deno.test("selftest: no TAP line before the boot deadline is a boot failure", async () => {
  const r = await get("no-boot");
  assert.equal(r.kind, "boot-timeout", r.message);
  assert.equal(r.category, "boot");
  assert.deepEqual(r.deadline, { deadline: "boot", ms: SHORT_MS });
  assert.match(
    r.message,
    new RegExp(`no boot: the boot deadline \\(${SHORT_MS} ms from start to the first TAP line\\)`),
  );
});

Deno.test("selftest: QEMU that cannot start is an infrastructure failure", async () => {
  const r = await get("no-qemu");
  assert.equal(r.kind, "qemu-failed", r.message);
  assert.equal(r.category, "infrastructure");
  assert.match(r.message, /QEMU binary not found/);
});

Deno.test("selftest: a panic is a crash with the reason and a symbolized backtrace", async () => {
  const r = await get("panic");
  assert.equal(r.kind, "panic", r.message);
  assert.equal(r.category, "crash");
  assert.equal(r.test, "selftest.panic");
  assert.match(r.crash?.reason ?? "", /deliberate panic/);
  // [0] is panic's return address: the line in st_panic that called it.
  const first = r.crash!.frames[0];
  assert.equal(first.index, 0);
  assert.equal(first.returnAddress, true);
  assert.equal(first.locations[0].function, "st_panic");
  assert.equal(first.locations[0].file, "kernel/ktest/selftest.c");
  assert.ok((first.locations[0].line ?? 0) > 0);
  // Up the stack: the ktest runner, then kmain.
  assert.ok(functionsOf(r).includes("kmain"), functionsOf(r).join(" "));
  assert.ok(
    r.crash!.dump.some((l) =>
      /\[0\] 0xffffffff8\w+ {2}st_panic \(kernel\/ktest\/selftest\.c:\d+\)/.test(l)
    ),
    r.crash!.dump.join("\n"),
  );
});

Deno.test("selftest: an unexpected page fault is a crash; its RIP is symbolized exactly", async () => {
  const r = await get("fault");
  assert.equal(r.kind, "panic", r.message);
  assert.match(r.crash?.reason ?? "", /#PF/);
  const dump = r.crash!.dump.join("\n");
  assert.match(dump, /cr2 0x0000100000000000/i);
  const rip = r.crash!.frames.find((f) => f.index === null)!;
  assert.equal(rip.returnAddress, false);
  assert.equal(rip.locations[0].function, "st_fault");
  assert.equal(rip.locations[0].file, "kernel/ktest/selftest.c");
  assert.match(dump, /# rip 0x\w+ .* at st_fault \(kernel\/ktest\/selftest\.c:\d+\)/);
  // After an exception [0] is the RIP itself, looked up as is.
  assert.equal(r.crash!.frames.find((f) => f.index === 0)?.returnAddress, false);
});

Deno.test("selftest: a stack overflow into the guard page is caught on the #DF stack", async () => {
  const r = await get("stack-overflow");
  assert.equal(r.kind, "panic", r.message);
  assert.match(r.crash?.reason ?? "", /#DF|stack overflow/);
  assert.ok(functionsOf(r).includes("recurse"), functionsOf(r).join(" "));
});

Deno.test("selftest: a kernel thread's stack overflow hits its own guard page", async () => {
  const r = await get("kstack-overflow");
  assert.equal(r.kind, "panic", r.message);
  assert.match(r.crash?.reason ?? "", /kernel stack overflow/);
  assert.ok(functionsOf(r).includes("recurse"), functionsOf(r).join(" "));
});

Deno.test("selftest: the kernel executing a user page is stopped by SMEP, named", async () => {
  const r = await onMax("smep");
  assert.equal(r.kind, "panic", r.message);
  assert.match(r.crash?.reason ?? "", /SMEP: the kernel executed a user page/);
  // The faulting rip is the user page itself (no symbol); the selftest runner called it.
  assert.match(r.message ?? "", /rip 0x0000100000000000/);
  assert.ok(functionsOf(r).includes("selftest_run"), functionsOf(r).join(" "));
});

Deno.test("selftest: the kernel reading a user page outside the copy routines is stopped by SMAP", async () => {
  const r = await onMax("smap");
  assert.equal(r.kind, "panic", r.message);
  assert.match(
    r.crash?.reason ?? "",
    /SMAP: the kernel accessed a user page outside the user-copy/,
  );
  assert.ok(functionsOf(r).includes("st_smap"), functionsOf(r).join(" "));
});

Deno.test("selftest: locks taken against their order are caught, naming both", async () => {
  const r = await get("lock-order");
  assert.equal(r.kind, "panic", r.message);
  assert.match(
    r.crash?.reason ?? "",
    /lock order violation on CPU 0: taking 'selftest-low' \(order 1\) while holding 'selftest-high' \(order 30\)/,
  );
});

Deno.test("selftest: a lock held across a context switch is caught, naming it", async () => {
  const r = await get("lock-switch");
  assert.equal(r.kind, "panic", r.message);
  assert.match(r.crash?.reason ?? "", /lock 'selftest-held' held across a context switch/);
});

Deno.test("selftest: the scheduler's own lock across a switch does not hide another one (smp2)", async () => {
  const r = await get("lock-switch-block");
  assert.equal(r.kind, "panic", r.message);
  assert.match(
    r.crash?.reason ?? "",
    /lock 'selftest-held' held across a context switch \(switch_to\) on CPU 0/,
  );
});

Deno.test("selftest: a CPU that never acknowledges a TLB shootdown is a panic naming it", async () => {
  const r = await get("tlb-noack");
  assert.equal(r.kind, "panic", r.message);
  assert.match(
    r.crash?.reason ?? "",
    /tlb: CPU 1 did not acknowledge a shootdown from CPU 0 within \d+ ms/,
  );
});

Deno.test("selftest: a TLB batch left open across a context switch is caught", async () => {
  const r = await get("tlb-open");
  assert.equal(r.kind, "panic", r.message);
  assert.match(r.crash?.reason ?? "", /tlb: 1 batch\(es\) left open \(sched_yield\) on CPU 0/);
});

Deno.test("selftest: a failed assertion carries expected, actual and file:line", async () => {
  const r = await get("fail");
  assert.equal(r.kind, "assertion-failure", r.message);
  assert.equal(r.category, "assertion");
  assert.equal(r.test, "selftest.fail");
  const t = r.suites[0].tests[0];
  assert.equal(t.status, "fail");
  assert.equal(t.diagnostic?.expected, "0x0000000000000036");
  assert.equal(t.diagnostic?.actual, "0x000000000000002a");
  assert.match(t.diagnostic?.at ?? "", /^kernel\/ktest\/selftest\.c:\d+$/);
  // The failed test says it all: the run adds no failure of its own.
  assert.equal(runEntry(r), null);
});

Deno.test("selftest: garbage instead of TAP is a boot failure, even with the pass status", async () => {
  const r = await get("garbage");
  assert.equal(r.kind, "no-tap", r.message);
  assert.equal(r.category, "boot");
  assert.deepEqual(r.attempts[0].exit, { kind: "exited", status: 33 });
});

Deno.test("selftest: every run's raw serial log is kept under build/logs", async () => {
  const r = await get("panic");
  assert.equal(r.log, "build/logs/selftest-panic-microvm.log");
  const log = await Deno.readTextFile(`${ROOT}/${r.log}`);
  assert.match(log, /TAP version 14/);
  assert.match(log, /Bail out! panic: selftest: deliberate panic/);
});

Deno.test("selftest: a suite that leaks fails by its own name, with the frames it lost", async () => {
  const r = await get("leak");
  assert.equal(r.kind, "assertion-failure", r.message);
  assert.equal(r.category, "assertion");
  assert.equal(r.status, "fail");
  // Its only test passed: the suite's own test point is the failure, and says why.
  assert.equal(r.test, "selftest");
  const suite = r.suites[0];
  assert.equal(suite.tests[0].status, "pass");
  assert.match(
    r.message,
    /selftest: leak check: suite selftest lost 4 frames \(page-table frames \+3\)/,
  );
  assert.match(r.message, /at kernel\/ktest\/selftest\.c:\d+/);
  const log = await Deno.readTextFile(`${ROOT}/${r.log}`);
  assert.match(log, /first_test: "selftest\.leak changed the free count by -4"/);
});

Deno.test("selftest: a suite declared to keep memory passes, the difference noted", async () => {
  const r = await get("leak-kept");
  assert.equal(r.kind, "pass", r.message);
  const log = await Deno.readTextFile(`${ROOT}/${r.log}`);
  assert.match(
    log,
    /# leak check: suite selftest lost 4 frames \(page-table frames \+3\), kept on purpose: /,
  );
});
