/**
 * Lab machines: machine files (every problem by field; `${NAME}` from the
 * environment; relative paths), and the lab target against stand-in
 * machines made here, by default: a TCP console that is there before the
 * power cycle, one the power command brings up, a serial device (a FIFO),
 * a failing power command. With `--config boot-paths`, the real thing:
 * `deno task test --machine tests/fixtures/lab/qemu-machine.json`, whose
 * machine is a QEMU PC that PXE-boots with its console on a TCP socket.
 */
import assert from "node:assert/strict";
import { execa } from "execa";
import { join } from "node:path";
import { validateMultiboot1Image } from "../tools/image/multiboot1.ts";
import { PXE_FILES } from "../tools/image/pxe.ts";
import {
  DEFAULT_POWER_TIMEOUT_MS,
  type LabMachine,
  loadMachineFile,
  MachineFileError,
  parseHostPort,
  parseMachineFile,
} from "../tools/machines/lab/machine.ts";
import { layerDeadlines } from "../tools/run/lab_selection.ts";
import { LabTarget } from "../tools/machines/lab/target.ts";
import { ROOT } from "../tools/paths.ts";
import { parseRunnerArgs, UsageError } from "../tools/app/options.ts";
import { runOnTarget } from "../tools/run/run.ts";
import { bootPathsRequested, NOT_REQUESTED } from "../tools/app/requested.ts";
import { builtKernel, tempDir } from "./support.ts";

const FIXTURES = join(ROOT, "tests/fixtures/lab");
const TAP = await Deno.readFile(join(ROOT, "tests/fixtures/tap/pass.tap"));

// ------------------------------------------------------------- machine files

Deno.test("machine file: the QEMU lab machine, ${NAME} filled from the environment", () => {
  const m = loadMachineFile(join(FIXTURES, "qemu-machine.json"), {
    OUROBOROS_LAB_DIR: "/tmp/lab",
    OUROBOROS_LAB_PORT: "4555",
  });
  assert.equal(m.name, "qemu-lab");
  assert.deepEqual(m.boot, { via: "pxe", firmware: "bios" });
  assert.equal(m.tftpRoot, "/tmp/lab/tftp");
  assert.deepEqual(m.serial, { kind: "tcp", host: "127.0.0.1", port: 4555 });
  assert.deepEqual(m.power, {
    cycle: "./qemu-power.sh cycle",
    off: "./qemu-power.sh off",
    timeoutMs: 20_000,
  });
  assert.deepEqual(m.deadlines, { bootMs: 90_000, silenceMs: 20_000, runMs: 300_000 });
  assert.equal(m.dir, FIXTURES);
});

Deno.test("machine file: a serial device, defaults for what is left out", () => {
  const m = loadMachineFile(join(FIXTURES, "tty-machine.json"), {});
  assert.deepEqual(m.serial, { kind: "tty", path: "/dev/ttyUSB0", baud: 115200 });
  assert.deepEqual(m.boot, { via: "pxe", firmware: "uefi" });
  assert.equal(m.power.off, null);
  assert.equal(m.power.timeoutMs, DEFAULT_POWER_TIMEOUT_MS);
  assert.deepEqual(m.deadlines, {});
});

Deno.test("machine file: every problem is reported, by field", () => {
  const file = join(FIXTURES, "broken-machine.json");
  assert.throws(() => loadMachineFile(file, {}), (e: unknown) => {
    assert.ok(e instanceof MachineFileError);
    assert.equal(e.file, file);
    assert.deepEqual(e.problems, [
      "colour is not a known field",
      "name may hold letters, digits, '.', '_' and '-' only",
      "boot must be one of pxe-bios, pxe-uefi",
      "tftpRoot must be a non-empty string",
      "serial.tcp must be HOST:PORT",
      "serial.baud applies to a device, not to tcp",
      "power.cycle must be a non-empty string",
      "power.timeout must be a duration (500ms, 20s, 2m)",
      "deadlines.boot must be a duration (500ms, 20s, 2m)",
    ]);
    return true;
  });
});

Deno.test("machine file: unset variables, bad JSON, relative paths, host:port", () => {
  const text = JSON.stringify({
    name: "m",
    boot: "pxe-bios",
    tftpRoot: "tftp",
    serial: { device: "${TTY}" },
    power: { cycle: "power ${WHO}" },
  });
  assert.throws(() => parseMachineFile(text, "/lab/m.json", { WHO: "x" }), /\$\{TTY\} is not set/);
  const m = parseMachineFile(text, "/lab/m.json", { TTY: "dev/tty0", WHO: "x" });
  assert.equal(m.tftpRoot, "/lab/tftp");
  assert.deepEqual(m.serial, { kind: "tty", path: "/lab/dev/tty0", baud: null });
  assert.equal(m.power.cycle, "power x");
  assert.throws(() => parseMachineFile("{", "/lab/m.json", {}), /not JSON/);
  assert.throws(() => loadMachineFile("/nonexistent/m.json", {}), /cannot read it/);
  assert.deepEqual(parseHostPort("[::1]:23"), { host: "::1", port: 23 });
  assert.deepEqual(parseHostPort("bmc.lab:2001"), { host: "bmc.lab", port: 2001 });
  for (const bad of ["bmc", "bmc:0", "bmc:65536", ":23"]) {
    assert.equal(parseHostPort(bad), null, bad);
  }
});

Deno.test("machine file: --machine on the command line; its deadlines under the command line's", () => {
  const { args } = parseRunnerArgs(["--machine", "/lab/m.json", "--boot-timeout", "5m"]);
  assert.equal(args.machine, "/lab/m.json");
  assert.throws(() => parseRunnerArgs(["--machine", "m.json", "--config", "pc"]), UsageError);
  assert.deepEqual(
    layerDeadlines({ silenceMs: 10_000 }, { bootMs: 60_000, silenceMs: 30_000 }, args.deadlines),
    { silenceMs: 30_000, bootMs: 300_000 },
  );
});

// ------------------------------------------------------- stand-in machines

/** A machine file for a stand-in whose power commands are `cycle` and `off`. */
function standIn(
  dir: string,
  serial: LabMachine["serial"],
  cycle: string,
  off: string | null,
): LabMachine {
  return {
    name: "stand-in",
    file: join(dir, "machine.json"),
    dir,
    boot: { via: "pxe", firmware: "bios" },
    tftpRoot: join(dir, "tftp"),
    serial,
    power: { cycle, off, timeoutMs: 10_000 },
    deadlines: {},
  };
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function waitFor(path: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await exists(path))) {
    if (Date.now() > end) throw new Error(`${path} never appeared`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A console that sends the TAP fixture once `powered` exists, then stays open like a machine. */
async function serveConsole(listener: Deno.Listener, powered: string) {
  const conn = await listener.accept();
  await waitFor(powered);
  await conn.write(TAP);
  return conn;
}

/**
 * A shell test that a TCP connection to `port` on this machine is
 * established (/proc/net/tcp: remote address :PORT in state 01), so the
 * power command itself checks the console was opened before it ran.
 */
const connectedTo = (port: number) =>
  `grep -q ":${port.toString(16).toUpperCase().padStart(4, "0")} 01 " /proc/net/tcp`;

Deno.test("lab target: console opened first, power cycled, TAP read, run ended by the stream, power off", async () => {
  const built = await builtKernel();
  const [dir, cleanup] = await tempDir();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const powered = join(dir, "powered"), off = join(dir, "off");
    const m = standIn(
      dir,
      { kind: "tcp", host: "127.0.0.1", port },
      `${connectedTo(port)} && test "$OUROBOROS_MACHINE" = stand-in && ` +
        `test -d "$OUROBOROS_TFTP_ROOT" && touch powered`,
      "touch off",
    );
    const console_ = serveConsole(listener, powered);
    const r = await runOnTarget(new LabTarget(m), {
      kernel: built.elf,
      cmdline: "ktest.filter=layout.*",
    });
    (await console_).close();
    assert.ok(r.classification.ok, `${r.classification.message}\n${r.stderr}`);
    assert.equal(r.classification.message, "pass: 3 passed, 1 skipped, 0 todo in 2 suites");
    assert.ok(await exists(off), "powered off after the run");
    assert.equal(r.exit.kind, "none");
    assert.equal(r.target.kind, "lab");
    // The machine's TFTP root got the tree with the run's command line.
    const script = await Deno.readTextFile(join(m.tftpRoot, PXE_FILES.ipxeScript));
    assert.match(script, /^kernel kernel\.mb1 ktest\.filter=layout\.\* /m);
    validateMultiboot1Image(await Deno.readFile(join(m.tftpRoot, PXE_FILES.mb1Image)));
  } finally {
    listener.close();
    await cleanup();
  }
});

Deno.test("lab target: a console the power command brings up is opened after it, nothing lost", async () => {
  const built = await builtKernel();
  const [dir, cleanup] = await tempDir();
  // Reserve a port, then free it: nothing listens there until "power on".
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  let listener: Deno.Listener | undefined;
  try {
    const powered = join(dir, "powered");
    const m = standIn(dir, { kind: "tcp", host: "127.0.0.1", port }, "touch powered", null);
    const machine = (async () => {
      await waitFor(powered);
      await new Promise((r) => setTimeout(r, 300)); // the console comes up late
      listener = Deno.listen({ hostname: "127.0.0.1", port });
      const conn = await listener.accept();
      await conn.write(TAP);
      return conn;
    })();
    const r = await runOnTarget(new LabTarget(m), { kernel: built.elf, cmdline: "" });
    (await machine).close();
    assert.ok(r.classification.ok, r.classification.message);
    assert.equal(r.report.suites.length, 2);
  } finally {
    listener?.close();
    await cleanup();
  }
});

Deno.test("lab target: a serial device (here a FIFO) is read like a TCP console", async () => {
  const built = await builtKernel();
  const [dir, cleanup] = await tempDir();
  try {
    const fifo = join(dir, "ttyS9");
    await execa("mkfifo", [fifo]);
    await Deno.writeFile(join(dir, "tap"), TAP);
    // The "machine" writes its console into the device once powered; the device stays open.
    const m = standIn(dir, { kind: "tty", path: fifo, baud: null }, "cat tap > ttyS9 &", null);
    const r = await runOnTarget(new LabTarget(m), { kernel: built.elf, cmdline: "" });
    assert.ok(r.classification.ok, r.classification.message);
  } finally {
    await cleanup();
  }
});

Deno.test("lab target: a failing power command is the infrastructure's failure, with its output", async () => {
  const built = await builtKernel();
  const [dir, cleanup] = await tempDir();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const m = standIn(
      dir,
      { kind: "tcp", host: "127.0.0.1", port },
      "echo no BMC answers; exit 3",
      null,
    );
    const accepted = listener.accept().catch(() => null);
    const r = await runOnTarget(new LabTarget(m), { kernel: built.elf, cmdline: "" });
    (await accepted)?.close();
    assert.equal(r.classification.kind, "qemu-failed");
    assert.equal(r.classification.category, "infrastructure");
    assert.match(
      r.classification.message,
      /lab machine stand-in: power cycle command failed \(exit 3\): no BMC answers/,
    );
  } finally {
    listener.close();
    await cleanup();
  }
});

// ------------------------------------------------------------ end to end

const requested = bootPathsRequested();
const e2eName = "lab: deno task test --machine FILE runs the kernel tests on a QEMU PC over PXE, " +
  "console on TCP, power by command";
Deno.test({
  name: requested ? e2eName : `${e2eName} [skipped: ${NOT_REQUESTED}]`,
  ignore: !requested,
  fn: async () => {
    const [dir, cleanup] = await tempDir();
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    try {
      const json = join(dir, "report.json");
      const r = await execa(Deno.execPath(), [
        "run",
        "-A",
        join(ROOT, "tools/test.ts"),
        "--machine",
        join(FIXTURES, "qemu-machine.json"),
        "--kernel-only",
        "--filter",
        "bootinfo.*",
        "--json",
        json,
      ], {
        cwd: ROOT,
        reject: false,
        all: true,
        env: {
          OUROBOROS_LAB_DIR: dir,
          OUROBOROS_LAB_PORT: String(port),
          OUROBOROS_REPORT_DIR: join(dir, "reports"),
          OUROBOROS_LOG_DIR: join(dir, "logs"),
          NO_COLOR: "1",
        },
      });
      assert.equal(r.exitCode, 0, r.all);
      assert.match(r.all, /kernel\[qemu-lab\]/);
      assert.match(r.all, /^tests: \d+ passed, 0 failed, \d+ skipped$/m);
      const report = JSON.parse(await Deno.readTextFile(json));
      const run = report.runs[0];
      assert.equal(run.target.kind, "lab");
      assert.equal(run.config, "qemu-lab");
      // The log's path is relative to the repository; the kernel came through iPXE.
      const log = await Deno.readTextFile(join(ROOT, run.log));
      assert.match(log, /booted by multiboot1, command line 'ktest\.filter=bootinfo\.\*'/);
      assert.equal(await exists(join(dir, "qemu.pid")), false, "powered off");
    } finally {
      await execa("sh", [join(FIXTURES, "qemu-power.sh"), "off"], {
        reject: false,
        env: { OUROBOROS_LAB_DIR: dir },
      });
      await cleanup();
    }
  },
});
