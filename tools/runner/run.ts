/**
 * Boot a kernel under QEMU, follow its TAP stream on the serial port as it
 * arrives, and classify the run.
 *
 * QEMU is stopped with `Deno.kill` rather than execa's `kill()`: under Deno's
 * node:child_process, `ChildProcess.kill()` marks the process as signalled at
 * once, so a second `kill("SIGKILL")` is refused, execa's
 * `forceKillAfterDelay` never fires, and the reported exit becomes the signal
 * sent instead of the real one.
 */

import { dirname } from "node:path";
import { execa } from "execa";
import { type Classification, classify, type ExitInfo, type TimeoutInfo } from "./classify.ts";
import { type Accel, type AccelChoice, buildQemuArgs, chooseAccel, DEFAULT_QEMU } from "./qemu.ts";
import { SerialStream } from "./serial.ts";
import { type TapEvent, TapIngest, type TapReport } from "./tap.ts";

/** Default for {@link RunOptions.silenceTimeoutMs}. */
export const DEFAULT_SILENCE_TIMEOUT_MS = 30_000;
/** Default for {@link RunOptions.overallTimeoutMs}. */
export const DEFAULT_OVERALL_TIMEOUT_MS = 600_000;
/** Default for {@link RunOptions.killGraceMs}. */
export const DEFAULT_KILL_GRACE_MS = 2_000;
/** How much of the serial output a no-TAP verdict quotes. */
const FIRST_BYTES = 200;

/** What to run and how to watch it. */
export interface RunOptions {
  /** The kernel ELF. */
  kernel: string;
  /** Kernel command line. */
  append?: string;
  /** QEMU machine; default microvm. */
  machine?: string;
  /** Guest memory (`-m`). */
  memory?: string;
  /** CPU model (`-cpu`). */
  cpu?: string;
  /** Accelerator; chosen with {@link chooseAccel} when undefined. */
  accel?: Accel;
  /** Extra QEMU arguments, appended last. */
  extraArgs?: readonly string[];
  /** QEMU binary (path or name on PATH); default qemu-system-x86_64. */
  qemu?: string;
  /** Where to write the raw serial output (directories are created). */
  logFile?: string;
  /** Kill QEMU after this long without serial output. */
  silenceTimeoutMs?: number;
  /** Kill QEMU after this long in all. */
  overallTimeoutMs?: number;
  /** Time between SIGTERM and SIGKILL when stopping QEMU. */
  killGraceMs?: number;
  /** Called with each TAP event as it happens. */
  onEvent?: (event: TapEvent) => void;
  /** Called with every serial line, firmware noise included. */
  onSerialLine?: (line: string) => void;
}

/** The outcome of {@link runKernel}. */
export interface RunResult {
  classification: Classification;
  report: TapReport;
  exit: ExitInfo;
  stderr: string;
  /** Set when the runner stopped QEMU itself. */
  timeout: TimeoutInfo | null;
  /** The command that was run. */
  command: { binary: string; args: string[] };
  accel: AccelChoice;
  /** QEMU's process id (null if it never started). */
  pid: number | null;
  /** The serial output. */
  serial: { raw: string; bytes: number; tapStarted: boolean };
  /** The serial log written, if any. */
  logFile: string | null;
  durationMs: number;
}

function writeAll(file: Deno.FsFile, data: Uint8Array): void {
  let off = 0;
  while (off < data.byteLength) off += file.writeSync(data.subarray(off));
}

function openLog(path: string): Deno.FsFile {
  Deno.mkdirSync(dirname(path), { recursive: true });
  return Deno.openSync(path, { write: true, create: true, truncate: true });
}

interface ExecaOutcome {
  exitCode?: number;
  signal?: string;
  stderr?: unknown;
  originalMessage?: string;
  shortMessage?: string;
  message?: string;
  code?: unknown;
}

function exitInfo(r: ExecaOutcome): ExitInfo {
  if (typeof r.exitCode === "number") {
    return { kind: "exited", status: r.exitCode };
  }
  if (typeof r.signal === "string") return { kind: "signaled", signal: r.signal };
  return {
    kind: "spawn-error",
    code: typeof r.code === "string" ? r.code : null,
    message: r.originalMessage ?? r.shortMessage ?? r.message ?? "unknown error",
  };
}

/**
 * Run a kernel under QEMU and classify the run. QEMU's stdout (COM1) is
 * followed as it arrives: written to the log, split into lines, fed to
 * tap-parser. With no serial output for `silenceTimeoutMs`, or after
 * `overallTimeoutMs`, QEMU gets SIGTERM, then SIGKILL after `killGraceMs`,
 * and the run is a hang naming the running test. QEMU is never left
 * running: if a callback throws, QEMU is killed and the error rethrown.
 */
export async function runKernel(options: RunOptions): Promise<RunResult> {
  const accel: AccelChoice = options.accel !== undefined
    ? { accel: options.accel, reason: "requested" }
    : chooseAccel();
  const binary = options.qemu ?? DEFAULT_QEMU;
  const args = buildQemuArgs({
    kernel: options.kernel,
    append: options.append,
    machine: options.machine,
    memory: options.memory,
    cpu: options.cpu,
    accel: accel.accel,
    extraArgs: options.extraArgs,
  });
  const silenceMs = options.silenceTimeoutMs ?? DEFAULT_SILENCE_TIMEOUT_MS;
  const overallMs = options.overallTimeoutMs ?? DEFAULT_OVERALL_TIMEOUT_MS;
  const graceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;

  const tap = new TapIngest((event) => options.onEvent?.(event));
  const serial = new SerialStream({
    onLine: (line) => options.onSerialLine?.(line),
    onTapLine: (line) => tap.push(line),
  });
  const log = options.logFile !== undefined ? openLog(options.logFile) : null;

  const started = performance.now();
  // Mutated by the timers and the stdout handler.
  const state: {
    timeout: TimeoutInfo | null;
    failure: { error: unknown } | null;
    exited: boolean;
    stopping: boolean;
  } = { timeout: null, failure: null, exited: false, stopping: false };
  let silenceTimer: ReturnType<typeof setTimeout> | undefined;
  let overallTimer: ReturnType<typeof setTimeout> | undefined;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  let pid: number | undefined;
  let done: Promise<ExecaOutcome> | undefined;

  const sendSignal = (sig: Deno.Signal): void => {
    if (state.exited || pid === undefined) return;
    try {
      Deno.kill(pid, sig);
    } catch {
      // Already gone.
    }
  };
  const stop = (why: TimeoutInfo): void => {
    if (state.stopping) return;
    state.stopping = true;
    state.timeout = why;
    clearTimeout(silenceTimer);
    sendSignal("SIGTERM");
    graceTimer = setTimeout(() => sendSignal("SIGKILL"), graceMs);
  };
  const armSilence = (): void => {
    clearTimeout(silenceTimer);
    if (state.stopping) return;
    silenceTimer = setTimeout(
      () => stop({ kind: "silence", ms: silenceMs }),
      silenceMs,
    );
  };

  try {
    const subprocess = execa(binary, args, {
      reject: false,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      buffer: { stdout: false, stderr: true },
      stripFinalNewline: false,
      forceKillAfterDelay: false,
    });
    pid = subprocess.pid;
    done = Promise.resolve(subprocess).then(
      (r) => r as ExecaOutcome,
      (e: unknown) => e as ExecaOutcome,
    ).finally(() => {
      state.exited = true;
    });
    subprocess.stdout?.on("data", (chunk: Uint8Array) => {
      if (state.failure !== null) return;
      armSilence();
      try {
        if (log !== null) writeAll(log, chunk);
        serial.push(chunk);
      } catch (error) {
        state.failure = { error };
        state.stopping = true;
        sendSignal("SIGKILL");
      }
    });
    armSilence();
    overallTimer = setTimeout(
      () => stop({ kind: "overall", ms: overallMs }),
      overallMs,
    );

    const outcome = await done;
    if (state.failure !== null) throw state.failure.error;
    serial.end();
    const report = tap.end();
    const exit = exitInfo(outcome);
    const stderr = typeof outcome.stderr === "string" ? outcome.stderr : "";
    const classification = classify({
      exit,
      stderr,
      report,
      tapSeen: serial.tapStarted,
      serialBytes: serial.byteCount,
      firstBytes: serial.raw.slice(0, FIRST_BYTES),
      timeout: state.timeout,
    });
    return {
      classification,
      report,
      exit,
      stderr,
      timeout: state.timeout,
      command: { binary, args },
      accel,
      pid: pid ?? null,
      serial: {
        raw: serial.raw,
        bytes: serial.byteCount,
        tapStarted: serial.tapStarted,
      },
      logFile: options.logFile ?? null,
      durationMs: performance.now() - started,
    };
  } finally {
    clearTimeout(silenceTimer);
    clearTimeout(overallTimer);
    if (!state.exited) {
      sendSignal("SIGKILL");
      await done?.catch(() => {});
    }
    clearTimeout(graceTimer);
    log?.close();
  }
}
