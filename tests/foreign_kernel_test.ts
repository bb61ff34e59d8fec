/**
 * A kernel that is not ours, end to end (issue 10, proof a): the fixture in
 * tests/fixtures/foreign-kernel (its own Makefile and linker script; 32-bit
 * C and assembly, multiboot1, KTAP on COM1, a reset instead of
 * isa-debug-exit) is built by its project file's build command and run by
 * the runner, through the npm CLI's `test` and `deno task test` with
 * OUROBOROS_PROJECT, and as a prebuilt `--image`:
 * - it passes on microvm and pc (judged by its KTAP alone: QEMU exits 0);
 * - `--append fail` makes one test fail, reported by name;
 * - `--append stop` resets before the plan is met: a crash, never a pass;
 * - a broken source is a build failure showing the compiler's output;
 * - a build command that makes no bootable image is refused with why;
 * - `--shard` shares the configurations out;
 * - its verdicts and counts equal `kunit.py parse`'s (Linux's kunit_tool,
 *   from Debian's linux-source-6.1 when installed) on the same logs;
 * - with `--config boot-paths`: it boots through every boot path too.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { KernelReport } from "../tools/core/record.ts";
import { ROOT } from "../tools/paths.ts";
import { runCommandLine } from "../tools/app/command_table.ts";
import { DENO_FRONT } from "../tools/cli.ts";
import { main as npmMain } from "../tools/npm/cli.ts";
import { summarize } from "../tools/core/record.ts";
import { bootPathsRequested, NOT_REQUESTED } from "../tools/app/requested.ts";
import { BOOT_PATH_CONFIGS } from "../tools/run/configs.ts";
import { kunitTool, LINUX_SOURCE_TARBALL } from "../tools/build/linux_kunit.ts";
import { assertSameAsKunitParse } from "./kunit_compare.ts";
import { captured } from "./in_process.ts";
import { tempDir } from "./support.ts";

const FIXTURE = join(ROOT, "tests/fixtures/foreign-kernel");
const FILES = ["Makefile", "boot.S", "kernel.c", "linker.ld"];

/** A copy of the fixture with a project file; `edit` may change it. */
async function project(
  config: Record<string, string> = { buildCommand: "make", image: "build/kernel.elf" },
): Promise<{ dir: string; file: string; cleanup: () => Promise<void> }> {
  const [dir, cleanup] = await tempDir("ouroboros-foreign-");
  for (const f of FILES) await Deno.copyFile(join(FIXTURE, f), join(dir, f));
  const file = join(dir, "ouroboros.config.json");
  await Deno.writeTextFile(file, JSON.stringify(config, null, 2) + "\n");
  return { dir, file, cleanup };
}

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  report: KernelReport | null;
}

/** Run a CLI entry with `args`; reports and logs in `dir`. */
async function cli(entry: string, args: string[], dir: string, env: Record<string, string> = {}) {
  const json = join(dir, "report.json");
  await Deno.remove(json).catch(() => {});
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, entry), ...args, "--json", json],
    cwd: dir,
    stdin: "null",
    env: {
      ...env,
      NO_COLOR: "1",
      OUROBOROS_LOG_DIR: join(dir, "logs"),
      OUROBOROS_REPORT_DIR: join(dir, "reports"),
    },
  }).output();
  const report = await Deno.readTextFile(json).then((t) => JSON.parse(t), () => null);
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr), report } as Outcome;
}

const npmTest = (file: string, dir: string, args: string[]) =>
  cli("tools/npm/bin.ts", ["--project", file, "test", ...args], dir);

/**
 * `deno task test --kernel-only ARGS` in this process: the same command
 * table, handler and exit status as the command, its console output
 * captured. For refusals only (they stop before any build or boot); the
 * real command's process (exit status, stderr) is proven for each kind of
 * refusal by the ones the tests still run as a process.
 */
async function inProcess(args: string[]): Promise<Outcome> {
  const o = await captured(() => runCommandLine(DENO_FRONT, ["test", "--kernel-only", ...args]));
  return { code: o.exitCode, stdout: o.stdout, stderr: o.stderr, report: null };
}

/** The npm CLI's `test ARGS` in this process (its main, output captured), its report read. */
async function npmTestInProcess(file: string, dir: string, args: string[]): Promise<Outcome> {
  const json = join(dir, "report.json");
  await Deno.remove(json).catch(() => {});
  const o = await captured(() => npmMain(["--project", file, "test", ...args, "--json", json]));
  const report = await Deno.readTextFile(json).then((t) => JSON.parse(t), () => null);
  return { code: o.exitCode, stdout: o.stdout, stderr: o.stderr, report };
}

/** A run of the npm CLI's `test` in the shared project, and a copy of its microvm log. */
interface SharedRun {
  p: Awaited<ReturnType<typeof project>>;
  o: Outcome;
  /** The run's `kernel-microvm.log` (a later run in the project writes the log again). */
  log: string;
}

const sharedRuns = new Map<string, Promise<SharedRun>>();
let shared: Promise<Awaited<ReturnType<typeof project>>> | undefined;
let sharedDir: string | undefined;
/** The last thing done in the shared project: the next one waits for it. */
let sharedQueue: Promise<unknown> = Promise.resolve();
// The shared project goes with the test process.
globalThis.addEventListener("unload", () => {
  if (sharedDir !== undefined) Deno.removeSync(sharedDir, { recursive: true });
});

/**
 * `use` run in the project of the unchanged fixture that this test process
 * shares, after everything asked of it before (one at a time: the runs write
 * the same report, logs and build directory). The fixture's inputs are the
 * same for each: its first build (by whoever comes first) makes the image,
 * and the later ones find `make` with nothing to do, as a user's second run
 * does. A test about the build itself (a broken source) has a project of
 * its own. Never kept across processes.
 */
function inSharedProject<T>(use: (p: Awaited<ReturnType<typeof project>>) => Promise<T>) {
  shared ??= project().then((p) => {
    sharedDir = p.dir;
    return p;
  });
  const done = sharedQueue.then(() => shared!).then(use);
  sharedQueue = done.catch(() => {});
  return done;
}

/**
 * The npm CLI's `test ARGS` on the unchanged fixture, run once per test
 * process: the tests that check different things about the same boot
 * (same kernel, same arguments) share it. Never kept across processes.
 */
function sharedRun(args: string[]): Promise<SharedRun> {
  const key = JSON.stringify(args);
  let run = sharedRuns.get(key);
  if (run === undefined) {
    const n = sharedRuns.size + 1;
    run = inSharedProject(async (p) => {
      const o = await npmTest(p.file, p.dir, args);
      const log = join(p.dir, `shared-run-${n}-kernel-microvm.log`);
      await Deno.copyFile(join(p.dir, "logs", "kernel-microvm.log"), log).catch(() => {});
      return { p, o, log };
    });
    sharedRuns.set(key, run);
  }
  return run;
}

function why(o: Outcome): string {
  return `exit ${o.code}\n${o.stdout}\n${o.stderr}`;
}

Deno.test("foreign kernel: built by its project's make, passes on microvm and pc by its KTAP", async () => {
  const { p, o, log } = await sharedRun(["--config", "microvm,pc"]);
  assert.equal(o.code, 0, why(o));
  assert.match(o.stdout, /tests: 6 passed, 0 failed, 0 skipped/);
  assert.match(o.stderr, /build: make/);
  const r = o.report!;
  assert.equal(r.kernel, join(p.dir, "build/kernel.elf"));
  assert.deepEqual(r.runs.map((x) => [x.config, x.status]), [["microvm", "pass"], [
    "pc",
    "pass",
  ]]);
  for (const run of r.runs) {
    // No isa-debug-exit: the kernel reset the machine, QEMU exited 0; its KTAP decided.
    assert.deepEqual(run.attempts[0].exit, { kind: "exited", status: 0 });
    assert.deepEqual(run.suites.map((s) => s.name), ["arith", "boot"]);
    assert.ok(!run.cmdline.includes("ktest."), run.cmdline);
  }
  assert.match(await Deno.readTextFile(log), /^foreign kernel: booted/);
});

Deno.test("foreign kernel: a failing test by name; a reset before the plan is met is a crash", async () => {
  const { p, o: fail } = await sharedRun(["--append", "fail"]);
  assert.equal(fail.code, 1, why(fail));
  assert.match(fail.stdout, /tests: 2 passed, 1 failed, 0 skipped/);
  const run = fail.report!.runs[0];
  assert.equal(run.category, "assertion");
  assert.equal(run.test, "arith.sum_of_four");
  assert.equal(run.cmdline, "fail");

  // The same through deno task test, the project named by OUROBOROS_PROJECT.
  const stop = await inSharedProject(() =>
    cli("tools/test.ts", ["--kernel-only", "--append", "stop"], p.dir, {
      OUROBOROS_PROJECT: p.file,
    })
  );
  assert.equal(stop.code, 1, why(stop));
  const s = stop.report!.runs[0];
  assert.equal(s.kind, "incomplete");
  assert.equal(s.category, "crash");
  assert.match(s.message, /the log ends after arith/);
});

Deno.test("foreign kernel: its build's failure shows its output; an image that cannot boot is refused", async () => {
  const p = await project();
  try {
    await Deno.writeTextFile(join(p.dir, "kernel.c"), "\nthis is not C;\n", { append: true });
    const broken = await npmTest(p.file, p.dir, []);
    assert.equal(broken.code, 1, why(broken));
    const b = broken.report!.build!;
    assert.match(b.message, /build failure: the project's build command 'make' exited 2/);
    assert.ok(b.details.some((l) => /kernel\.c:\d+:\d+: error/.test(l)), b.details.join("\n"));
    assert.match(broken.stdout, /kernel\.c:\d+:\d+: error/);
    assert.equal(broken.report!.runs.length, 0);

    await Deno.writeTextFile(
      p.file,
      JSON.stringify({ buildCommand: "true", image: "Makefile" }),
    );
    // In this process (the npm CLI's exit 1 with its report as a process: the build failure).
    const bad = await npmTestInProcess(p.file, p.dir, []);
    assert.equal(bad.code, 1, why(bad));
    assert.match(bad.report!.build!.message, /the image .*Makefile \(made by the project's build/);
    assert.match(bad.report!.build!.details.join("\n"), /no Linux setup header/);
  } finally {
    await p.cleanup();
  }
});

Deno.test("foreign kernel: --image prebuilt, --shard shares configurations, refusals", async () => {
  // The image the fixture's make makes (in the shared project: built there already, or now).
  await inSharedProject(async (p) => {
    const made = await new Deno.Command("make", { args: ["-s"], cwd: p.dir }).output();
    assert.equal(made.code, 0);
    const image = join(p.dir, "build/kernel.elf");
    const shard = await cli("tools/test.ts", [
      "--kernel-only",
      "--image",
      image,
      "--config",
      "microvm,pc,q35",
      "--shard",
      "2/3",
    ], p.dir);
    assert.equal(shard.code, 0, why(shard));
    assert.deepEqual(shard.report!.runs.map((r) => r.config), ["pc"]);

    // A multiboot2-only file: QEMU's -kernel has no loader for it (GRUB's boot paths do).
    const mb2 = new Uint8Array(64);
    const view = new DataView(mb2.buffer);
    view.setUint32(0, 0xe85250d6, true);
    view.setUint32(8, 24, true);
    view.setUint32(12, -(0xe85250d6 + 24) >>> 0, true);
    view.setUint32(20, 8, true); // the end tag
    await Deno.writeFile(join(p.dir, "mb2.bin"), mb2);
    // Each kind of refusal once as a real process (exit status, stderr): an image no
    // configuration can boot (2), one that cannot be read (1), a usage error (2). The others go
    // through the same command table and handler in this process.
    const refused: [string[], number, RegExp, "process" | "in process"][] = [
      [
        ["--image", join(p.dir, "mb2.bin")],
        2,
        /microvm .* no multiboot2 loader \(GRUB boots it/,
        "process",
      ],
      [
        ["--image", join(p.dir, "nope.elf")],
        1,
        /--image .*nope\.elf: cannot read .*: no such file/,
        "process",
      ],
      [["--append", "x"], 2, /--append applies to a kernel image/, "process"],
      [
        ["--image", join(p.dir, "kernel.c")],
        1,
        /not a kernel image .* no Linux setup header/,
        "in process",
      ],
      [["--image", image, "--filter", "x"], 2, /--filter selects our kernel's tests/, "in process"],
      [["--image", image, "--list"], 2, /--list asks our kernel/, "in process"],
      [
        ["--image", image, "--initrd", join(p.dir, "none.cpio")],
        1,
        /--initrd .* no such file/,
        "in process",
      ],
    ];
    for (const [args, code, message, how] of refused) {
      const o = how === "process"
        ? await cli("tools/test.ts", ["--kernel-only", ...args], p.dir)
        : await inProcess(args);
      assert.equal(o.code, code, `${args.join(" ")} (${how}): ${why(o)}`);
      assert.match(o.stderr, message, `${args.join(" ")} (${how})`);
    }
  });
});

Deno.test({
  name: bootPathsRequested()
    ? "foreign kernel: every boot path (QEMU's multiboot1 loader, GRUB ISO and PXE, iPXE)"
    : `foreign kernel: every boot path [skipped: ${NOT_REQUESTED}]`,
  ignore: !bootPathsRequested(),
  fn: async () => {
    const p = await project();
    try {
      const made = await new Deno.Command("make", { args: ["-s"], cwd: p.dir }).output();
      assert.equal(made.code, 0);
      const o = await cli("tools/test.ts", [
        "--kernel-only",
        "--image",
        join(p.dir, "build/kernel.elf"),
        "--config",
        "boot-paths",
        "--boot-timeout",
        "3m",
      ], p.dir);
      assert.equal(o.code, 0, why(o));
      assert.deepEqual(
        o.report!.runs.map((r) => [r.config, r.status]),
        BOOT_PATH_CONFIGS.map((c) => [c.name, "pass"]),
      );
    } finally {
      await p.cleanup();
    }
  },
});

const kunitPy = await kunitTool().catch(() => null);

Deno.test({
  name: kunitPy !== null
    ? "foreign kernel: verdicts and counts equal kunit.py parse's on the same logs, pass and fail"
    : `foreign kernel: kunit.py parse agreement [skipped: ${LINUX_SOURCE_TARBALL} not installed]`,
  ignore: kunitPy === null,
  fn: async () => {
    // The same boots as the tests above (same kernel, same arguments): the microvm run of the
    // pass on microvm and pc (its own counts), and the failing run.
    const pass = await sharedRun(["--config", "microvm,pc"]);
    const microvm = pass.o.report!.runs.filter((r) => r.config === "microvm");
    assert.equal(microvm.length, 1, why(pass.o));
    const passed = summarize({ ...pass.o.report!, runs: microvm });
    const fail = await sharedRun(["--append", "fail"]);
    for (const [r, report] of [[pass, passed], [fail, fail.o.report!]] as const) {
      assert.equal(r.o.code, r === fail ? 1 : 0, why(r.o));
      await assertSameAsKunitParse(kunitPy!, r.log, report, join(r.p.dir, "kunit.json"));
    }
  },
});
