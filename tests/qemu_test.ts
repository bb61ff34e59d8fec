import assert from "node:assert/strict";
import { join } from "node:path";
import { execa } from "execa";
import { DEBUG_EXIT, qemuExitStatus } from "../linker/layout.ts";
import {
  type AccelProbe,
  buildQemuArgs,
  chooseAccel,
  cpuFlags,
  debugExitDevice,
  QEMU_MALLOC_TUNABLE,
  qemuEnv,
  qemuTunables,
} from "../tools/machines/qemu.ts";
import { runKernel, type RunResult } from "../tools/run/run.ts";
import type { TapEvent } from "../tools/core/tap.ts";
import { executable } from "./support.ts";

const FIXTURES = new URL("./fixtures/tap/", import.meta.url);
const fixturePath = (name: string) => new URL(name, FIXTURES).pathname;
const PASS = qemuExitStatus(DEBUG_EXIT.pass);

/** The value following `flag` in an argument list. */
function argOf(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "ouroboros-qemu-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Assert that a process id was known and no such process exists any more. */
function assertGone(pid: number | null): void {
  assert.ok(pid !== null && pid > 0, `pid ${pid}`);
  assert.throws(() => Deno.statSync(`/proc/${pid}`), Deno.errors.NotFound);
}

// ---------------------------------------------------------------- environment

const OURS = `${QEMU_MALLOC_TUNABLE.name}=${QEMU_MALLOC_TUNABLE.value}`;

Deno.test("qemu env: the malloc tunable alone when the user set none", () => {
  assert.equal(qemuTunables(undefined), OURS);
  assert.equal(qemuTunables(""), OURS);
});

Deno.test("qemu env: appended to the user's tunables, which are kept in order", () => {
  assert.equal(
    qemuTunables("glibc.malloc.check=3:glibc.pthread.rseq=0"),
    `glibc.malloc.check=3:glibc.pthread.rseq=0:${OURS}`,
  );
});

Deno.test("qemu env: the user's own value of the same tunable wins", () => {
  const user = `glibc.malloc.check=3:${QEMU_MALLOC_TUNABLE.name}=0`;
  assert.equal(qemuTunables(user), user);
});

Deno.test("qemu env: the rest of the environment is passed through unchanged", () => {
  const env = qemuEnv({ PATH: "/bin", HOME: "/h", GLIBC_TUNABLES: "glibc.malloc.check=3" });
  assert.deepEqual(env, {
    PATH: "/bin",
    HOME: "/h",
    GLIBC_TUNABLES: `glibc.malloc.check=3:${OURS}`,
  });
});

// ---------------------------------------------------------------- arguments

Deno.test("qemu args: microvm, no defaults, serial on stdio, no reboot, debug exit", () => {
  const args = buildQemuArgs({ kernel: "build/kernel.elf", accel: "tcg" });
  assert.equal(argOf(args, "-machine"), "microvm");
  assert.equal(argOf(args, "-accel"), "tcg");
  assert.equal(argOf(args, "-m"), "128M");
  assert.equal(argOf(args, "-kernel"), "build/kernel.elf");
  assert.equal(argOf(args, "-serial"), "stdio");
  assert.equal(argOf(args, "-display"), "none");
  assert.equal(argOf(args, "-device"), "isa-debug-exit,iobase=0xf4,iosize=0x04");
  for (const flag of ["-nodefaults", "-no-user-config", "-no-reboot"]) {
    assert.ok(args.includes(flag), flag);
  }
  assert.equal(args.includes("-append"), false);
  assert.equal(args.includes("-cpu"), false);
});

Deno.test("qemu args: the debug-exit port comes from DEBUG_EXIT", () => {
  assert.equal(
    debugExitDevice(),
    `isa-debug-exit,iobase=0x${DEBUG_EXIT.port.toString(16)},iosize=0x04`,
  );
  assert.equal(DEBUG_EXIT.port, 0xf4);
});

Deno.test("qemu args: cmdline, machine, memory, cpu, extra args last", () => {
  const args = buildQemuArgs({
    kernel: "k.elf",
    append: "selftest=hang ktest.filter=layout.*",
    machine: "q35",
    memory: "256M",
    accel: "kvm",
    cpu: "max",
    extraArgs: ["-d", "int"],
  });
  assert.equal(argOf(args, "-append"), "selftest=hang ktest.filter=layout.*");
  assert.equal(argOf(args, "-machine"), "q35");
  assert.equal(argOf(args, "-m"), "256M");
  assert.equal(argOf(args, "-accel"), "kvm");
  assert.equal(argOf(args, "-cpu"), "max");
  assert.deepEqual(args.slice(-2), ["-d", "int"]);
  assert.equal(buildQemuArgs({ kernel: "k", accel: "tcg", append: "" }).includes("-append"), false);
});

// ------------------------------------------------------------- accelerator

function probe(kvm: boolean, flags: string): AccelProbe {
  return {
    openKvm() {
      if (!kvm) throw new Error("Permission denied (os error 13)");
    },
    cpuinfo: () => `processor\t: 0\nflags\t\t: ${flags}\n\nprocessor\t: 1\nflags\t\t: ${flags}\n`,
  };
}

Deno.test("accel: kvm only when /dev/kvm opens and vmx or svm is present", () => {
  assert.equal(chooseAccel(probe(true, "fpu vme vmx sse2")).accel, "kvm");
  assert.equal(chooseAccel(probe(true, "fpu svm sse2")).accel, "kvm");
  const noHw = chooseAccel(probe(true, "fpu vme sse2 hypervisor"));
  assert.equal(noHw.accel, "tcg");
  assert.match(noHw.reason, /no vmx or svm/);
  const noDev = chooseAccel(probe(false, "fpu vmx"));
  assert.equal(noDev.accel, "tcg");
  assert.match(noDev.reason, /\/dev\/kvm cannot be opened read-write \(Permission denied/);
  const noInfo = chooseAccel({
    openKvm() {},
    cpuinfo() {
      throw new Error("gone");
    },
  });
  assert.equal(noInfo.accel, "tcg");
  assert.match(noInfo.reason, /cpuinfo is unreadable/);
});

Deno.test("accel: cpuFlags reads this machine's /proc/cpuinfo", () => {
  const flags = cpuFlags(Deno.readTextFileSync("/proc/cpuinfo"));
  // Every x86-64 CPU has these; a broken parser would not find them.
  for (const f of ["fpu", "lm", "sse2"]) assert.ok(flags.has(f), f);
  assert.equal(flags.has("flags"), false);
  assert.equal(flags.has(":"), false);
});

// --------------------------------------------------- real QEMU, no kernel

Deno.test("run: a QEMU binary that does not exist → qemu-failed", async () => {
  await withTempDir(async (dir) => {
    const r = await runKernel({
      kernel: fixturePath("pass.tap"),
      qemu: join(dir, "no-such-qemu"),
      accel: "tcg",
      logFile: join(dir, "logs", "enoent.log"),
    });
    assert.equal(r.classification.kind, "qemu-failed");
    assert.equal(r.exit.kind, "spawn-error");
    assert.match(r.classification.message, /QEMU binary not found: .*ENOENT/);
    assert.equal(r.pid, null);
  });
});

Deno.test("run: a bad -machine → qemu-failed with QEMU's stderr", async () => {
  const r = await runKernel({
    kernel: fixturePath("pass.tap"),
    machine: "no-such-machine",
    accel: "tcg",
  });
  assert.equal(r.classification.kind, "qemu-failed");
  assert.deepEqual(r.exit, { kind: "exited", status: 1 });
  assert.equal(r.serial.bytes, 0);
  assert.match(r.stderr, /unsupported machine type/);
  assert.match(r.classification.message, /unsupported machine type/);
});

// ------------------------------------------------ a stand-in QEMU (shell)

/**
 * A fake QEMU: "boots" the -kernel file by printing it, then does what
 * -append says (after writing its pid next to itself): exit=N, hang (until signalled), stubborn (ignores SIGTERM
 * from the start),
 * chatty (prints forever).
 */
const FAKE_QEMU = `#!/bin/sh
kernel=
append=
while [ $# -gt 0 ]; do
  case "$1" in
    -kernel) kernel=$2; shift ;;
    -append) append=$2; shift ;;
  esac
  shift
done
echo $$ > "$(dirname "$0")/pid"
# Before the output: a SIGTERM after the first line must find it ignoring.
[ "$append" = stubborn ] && trap '' TERM
cat "$kernel"
case "$append" in
  exit=*) exit "\${append#exit=}" ;;
  hang|stubborn) exec sleep 60 ;;
  chatty) while :; do echo "# still here"; sleep 0.05; done ;;
esac
`;

/**
 * Well under the fake's 60 s sleep, so a run this short was ended by the
 * runner; generous, so a loaded host does not fail it; and apart from the
 * runner's 30 s default deadlines, so one that ignored the test's own
 * deadlines would not pass by a hair.
 */
const SLEEP_BOUND_MS = 20_000;
/**
 * The chatty run's deadline, counted from the spawn: long enough for the
 * shell to print its first TAP line on a loaded host (before that, the
 * verdict would be a boot failure, not the run deadline).
 */
const CHATTY_RUN_MS = 2_500;

async function fakeQemu(dir: string): Promise<string> {
  const path = join(dir, "fake-qemu");
  await executable(path, FAKE_QEMU);
  return path;
}

Deno.test("run (fake QEMU): pass status and a complete plan → pass, log written raw", async () => {
  await withTempDir(async (dir) => {
    const log = join(dir, "logs", "pass.log");
    const events: TapEvent[] = [];
    const r = await runKernel({
      kernel: fixturePath("firmware-noise.tap"),
      append: `exit=${PASS}`,
      qemu: await fakeQemu(dir),
      accel: "tcg",
      logFile: log,
      onEvent: (e) => events.push(e),
    });
    assert.equal(r.classification.kind, "pass", r.classification.message);
    assert.deepEqual(r.exit, { kind: "exited", status: PASS });
    assert.deepEqual(
      await Deno.readFile(log),
      await Deno.readFile(fixturePath("firmware-noise.tap")),
    );
    assert.equal(r.logFile, log);
    assert.equal(events.filter((e) => e.type === "test-result").length, 4);
  });
});

Deno.test("run (fake QEMU): exit 0 mid-suite → triple fault naming the test", async () => {
  await withTempDir(async (dir) => {
    const r = await runKernel({
      kernel: fixturePath("crash-mid-suite.tap"),
      append: "exit=0",
      qemu: await fakeQemu(dir),
      accel: "tcg",
    });
    assert.equal(r.classification.kind, "triple-fault");
    assert.equal(r.classification.test, "layout.selfmap");
  });
});

Deno.test("run (fake QEMU): silence → SIGTERM, hang naming the running test", async () => {
  await withTempDir(async (dir) => {
    const log = join(dir, "hang.log");
    const r = await runKernel({
      kernel: fixturePath("crash-mid-suite.tap"),
      append: "hang",
      qemu: await fakeQemu(dir),
      accel: "tcg",
      silenceTimeoutMs: 500,
      killGraceMs: 5_000,
      logFile: log,
    });
    assert.equal(r.classification.kind, "hang");
    assert.equal(r.classification.test, "layout.selfmap");
    assert.deepEqual(r.timeout, { deadline: "silence", ms: 500 });
    assert.deepEqual(r.exit, { kind: "signaled", signal: "SIGTERM" });
    assert.ok(r.durationMs < SLEEP_BOUND_MS, `took ${r.durationMs} ms`);
    assertGone(r.pid);
    assert.deepEqual(
      await Deno.readFile(log),
      await Deno.readFile(fixturePath("crash-mid-suite.tap")),
    );
  });
});

Deno.test("run (fake QEMU): SIGTERM ignored → SIGKILL after the grace time", async () => {
  await withTempDir(async (dir) => {
    const r = await runKernel({
      kernel: fixturePath("crash-mid-suite.tap"),
      append: "stubborn",
      qemu: await fakeQemu(dir),
      accel: "tcg",
      silenceTimeoutMs: 300,
      killGraceMs: 300,
    });
    assert.equal(r.classification.kind, "hang");
    assert.deepEqual(r.exit, { kind: "signaled", signal: "SIGKILL" });
    assert.ok(r.durationMs < SLEEP_BOUND_MS, `took ${r.durationMs} ms`);
    assertGone(r.pid);
  });
});

Deno.test("run (fake QEMU): endless output → the run deadline, a hang", async () => {
  await withTempDir(async (dir) => {
    const r = await runKernel({
      kernel: fixturePath("crash-mid-suite.tap"),
      append: "chatty",
      qemu: await fakeQemu(dir),
      accel: "tcg",
      silenceTimeoutMs: 20_000,
      runTimeoutMs: CHATTY_RUN_MS,
    });
    assert.equal(r.classification.kind, "hang", r.classification.message);
    assert.deepEqual(r.timeout, { deadline: "run", ms: CHATTY_RUN_MS });
    assert.match(
      r.classification.message,
      new RegExp(
        `the run deadline \\(${CHATTY_RUN_MS} ms for the whole run\\) passed while running layout\\.selfmap`,
      ),
    );
    assert.ok(r.report.comments.includes("# still here"));
  });
});

Deno.test("run (fake QEMU): a throwing callback kills QEMU and is rethrown", async () => {
  await withTempDir(async (dir) => {
    const qemu = await fakeQemu(dir);
    const started = performance.now();
    await assert.rejects(
      runKernel({
        kernel: fixturePath("crash-mid-suite.tap"),
        append: "stubborn",
        qemu,
        accel: "tcg",
        onEvent: (e) => {
          if (e.type === "test-start") throw new Error("display broke");
        },
      }),
      /display broke/,
    );
    assert.ok(performance.now() - started < 5_000);
    const pid = Number(await Deno.readTextFile(join(dir, "pid")));
    assertGone(pid);
  });
});

// ------------------------------------------- real QEMU, a tiny PVH stub ELF

/**
 * A minimal PVH-bootable ELF32: prints `text` on COM1, then writes `exit`
 * to the debug-exit port, triple-faults, or halts forever.
 */
function stubSource(text: string, then: { exit: number } | "triple" | "hang"): string {
  const bytes = [...new TextEncoder().encode(text), 0].join(",");
  const action = then === "triple"
    ? "lidt [zero_idt]\n  int3"
    : then === "hang"
    ? ""
    : `mov al, ${then.exit}\n  out ${DEBUG_EXIT.port}, al`;
  return `BITS 32
ORG 0x100000
ehdr:
  db 0x7f, "ELF", 1, 1, 1, 0
  times 8 db 0
  dw 2, 3
  dd 1, start, phdr - $$, 0, 0
  dw 52, 32, 2, 40, 0, 0
phdr:
  dd 1, 0, $$, $$, file_end - $$, file_end - $$, 7, 0x1000
  dd 4, note - $$, note, note, note_end - note, note_end - note, 4, 4
note:
  dd 4, 4, 18          ; XEN_ELFNOTE_PHYS32_ENTRY
  db "Xen", 0
  dd start
note_end:
start:
  mov esi, msg
  mov dx, 0x3f8
.next:
  lodsb
  test al, al
  jz .done
  out dx, al
  jmp .next
.done:
  ${action}
.halt:
  cli
  hlt
  jmp .halt
zero_idt:
  dw 0
  dd 0
msg:
  db ${bytes}
file_end:
`;
}

async function stubKernel(
  dir: string,
  text: string,
  then: { exit: number } | "triple" | "hang",
): Promise<string> {
  const src = join(dir, "stub.asm");
  const elf = join(dir, "stub.elf");
  await Deno.writeTextFile(src, stubSource(text, then));
  await execa("nasm", ["-f", "bin", "-o", elf, src]);
  return elf;
}

const STUB_TAP = "SeaBIOS-like noise\r\rTAP version 14\r\n1..1\r\n# Subtest: stub\r\n" +
  "    1..2\r\n    # RUN stub.one\r\n    ok 1 - one\r\n    # RUN stub.two\r\n";

Deno.test("run (QEMU + stub ELF): serial reaches stdout, pass status → pass", async () => {
  await withTempDir(async (dir) => {
    const text = STUB_TAP + "    ok 2 - two\r\nok 1 - stub\r\n";
    const kernel = await stubKernel(dir, text, { exit: DEBUG_EXIT.pass });
    const log = join(dir, "logs", "stub.log");
    const r = await runKernel({ kernel, append: "selftest=none", logFile: log });
    assert.equal(r.classification.kind, "pass", r.classification.message);
    assert.deepEqual(r.exit, { kind: "exited", status: PASS });
    assert.equal(r.serial.raw, text);
    assert.equal(await Deno.readTextFile(log), text);
    assert.equal(r.accel?.accel, chooseAccel().accel);
  });
});

Deno.test("run (QEMU + stub ELF): a triple fault exits 0 → triple-fault naming the test", async () => {
  await withTempDir(async (dir) => {
    const kernel = await stubKernel(dir, STUB_TAP, "triple");
    const r = await runKernel({ kernel, accel: "tcg" });
    assert.deepEqual(r.exit, { kind: "exited", status: 0 });
    assert.equal(r.classification.kind, "triple-fault");
    assert.equal(r.classification.test, "stub.two");
  });
});

Deno.test("run (QEMU + stub ELF): a silent guest is killed → hang naming the test", async () => {
  await withTempDir(async (dir) => {
    const kernel = await stubKernel(dir, STUB_TAP, "hang");
    const r: RunResult = await runKernel({
      kernel,
      accel: "tcg",
      silenceTimeoutMs: 1_500,
    });
    assert.equal(r.classification.kind, "hang");
    assert.equal(r.classification.test, "stub.two");
    assert.equal(r.report.lastResult, "stub.one");
    assertGone(r.pid);
  });
});

Deno.test("run (fake QEMU): QEMU is started with the malloc tunable in its environment", async () => {
  await withTempDir(async (dir) => {
    // A QEMU that only writes down what it was given (then fails to boot: the verdict is not this test's).
    const qemu = join(dir, "env-qemu");
    const seen = join(dir, "tunables");
    await executable(qemu, `#!/bin/sh\nprintf '%s' "$GLIBC_TUNABLES" > '${seen}'\nexit 1\n`);
    await runKernel({ kernel: fixturePath("firmware-noise.tap"), qemu, accel: "tcg" });
    assert.equal(await Deno.readTextFile(seen), qemuTunables(Deno.env.get("GLIBC_TUNABLES")));
    assert.match(await Deno.readTextFile(seen), /glibc\.malloc\.hugetlb=/);
  });
});
