/**
 * Boot a kernel on a target, follow its TAP stream on the serial console as
 * it arrives, enforce the deadlines, and classify the run.
 *
 * Three deadlines, each reported by name when it passes:
 * - boot: from start to the first TAP line (`TAP version` / `KTAP version`);
 * - silence: between two TAP lines once the stream has started (results,
 *   `# RUN` lines and comments all count: a test that logs is alive);
 * - run: the whole run.
 * When one passes the machine is stopped (politely, then by force) and the
 * run is a hang naming the running test, or a boot failure if no TAP came.
 * All three are wall-clock time. Guest time (QEMU's -icount) would not
 * depend on the host's load, but no configuration runs with icount, and a
 * QEMU stalled on the host stops guest time too: a wall-clock deadline would
 * still be needed behind it. Instead, a kernel prints progress lines during
 * long work, and the defaults leave a wide margin (options.ts says how wide).
 */

import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import {
  type Classification,
  classify,
  type ExitInfo,
  type TimeoutInfo,
} from "../core/classify.ts";
import { type Accel, type AccelChoice, QemuTarget } from "../machines/qemu.ts";
import { SerialStream } from "../core/serial.ts";
import { type TapEvent, TapIngest, type TapReport } from "../core/tap.ts";
import type { BootRequest, Deadlines, Machine, MachineEnd, Target } from "../machines/target.ts";

/** Default for {@link Deadlines.bootMs}: generous, a loaded TCG host is slow to start QEMU. */
export const DEFAULT_BOOT_TIMEOUT_MS = 30_000;
/** Default for {@link Deadlines.silenceMs}. */
export const DEFAULT_SILENCE_TIMEOUT_MS = 30_000;
/** Default for {@link Deadlines.runMs}. */
export const DEFAULT_RUN_TIMEOUT_MS = 600_000;
/** Default for {@link WatchOptions.killGraceMs}. */
export const DEFAULT_KILL_GRACE_MS = 2_000;
/** How much of the serial output a no-TAP verdict quotes. */
const FIRST_BYTES = 200;

/** The deadlines of a run (machines/target.ts). */
export type { Deadlines };

/** How to watch a run on a target. */
export interface WatchOptions {
  /** Deadlines; each missing one takes its default. */
  deadlines?: Partial<Deadlines>;
  /** Where to write the raw serial output (directories are created). */
  logFile?: string;
  /** Time between the polite and the forced stop. */
  killGraceMs?: number;
  /** Called with each TAP event as it happens. */
  onEvent?: (event: TapEvent) => void;
  /** Called with every serial line, firmware noise included. */
  onSerialLine?: (line: string) => void;
  /**
   * Keep the whole serial output in {@link RunResult.serial} (default true);
   * false keeps its first kilobytes only, for logs of any size.
   */
  keepSerial?: boolean;
}

/** What to run and how to watch it, on QEMU (the options of {@link runKernel}). */
export interface RunOptions extends Omit<WatchOptions, "deadlines"> {
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
  /** CPU count (`-smp`). */
  smp?: number;
  /** Accelerator; chosen with chooseAccel when undefined. */
  accel?: Accel;
  /** Extra QEMU arguments, appended last. */
  extraArgs?: readonly string[];
  /** QEMU binary (path or name on PATH); default qemu-system-x86_64. */
  qemu?: string;
  /** The boot deadline. */
  bootTimeoutMs?: number;
  /** The silence deadline. */
  silenceTimeoutMs?: number;
  /** The run deadline. */
  runTimeoutMs?: number;
}

/** The outcome of a run. */
export interface RunResult {
  classification: Classification;
  report: TapReport;
  exit: ExitInfo;
  stderr: string;
  /** Set when a deadline passed and the runner stopped the machine. */
  timeout: TimeoutInfo | null;
  /** The command that was run. */
  command: { binary: string; args: string[] };
  /** The target's kind and description. */
  target: { kind: string; description: string };
  /** QEMU's accelerator (null on other targets). */
  accel: AccelChoice | null;
  /** The local process id behind the machine (null if none started). */
  pid: number | null;
  /** The serial output. */
  serial: { raw: string; bytes: number; tapStarted: boolean };
  /** The serial log written, if any. */
  logFile: string | null;
  durationMs: number;
}

/** An open log file (a file descriptor). */
interface LogFile {
  write(data: Uint8Array): void;
  close(): void;
}

function openLog(path: string): LogFile {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, "w");
  return {
    write: (data) => {
      let off = 0;
      while (off < data.byteLength) off += writeSync(fd, data, off);
    },
    close: () => closeSync(fd),
  };
}

/** Every deadline, defaults filled in. */
export function resolveDeadlines(d: Partial<Deadlines> = {}): Deadlines {
  return {
    bootMs: d.bootMs ?? DEFAULT_BOOT_TIMEOUT_MS,
    silenceMs: d.silenceMs ?? DEFAULT_SILENCE_TIMEOUT_MS,
    runMs: d.runMs ?? DEFAULT_RUN_TIMEOUT_MS,
  };
}

/**
 * True once the stream's top level is done: its plan is met by top-level
 * results, or the kernel bailed out. Read from the lines themselves, not
 * from the reader (tap.ts), which holds a result back until the next line
 * arrives (a YAML block may follow it): a machine that stays silent after
 * its last line would never end the run.
 * (KTAP and TAP 14 both put the top level at column 0.)
 */
export class TapEndWatch {
  #planned: number | null = null;
  #closed = 0;
  #bailed = false;

  /** Feed one TAP line as it arrives. */
  line(text: string): void {
    const plan = /^1\.\.(\d+)/.exec(text);
    if (plan !== null) this.#planned ??= Number(plan[1]);
    else if (/^(?:not )?ok\b/.test(text)) this.#closed++;
    else if (/^bail out!/i.test(text)) this.#bailed = true;
  }

  get ended(): boolean {
    return this.#bailed || (this.#planned !== null && this.#closed >= this.#planned);
  }
}

/**
 * The exit a run is judged by. A target that reports none, or a kernel
 * that is not ours (it need not know isa-debug-exit: Linux's
 * `kunit_shutdown=reboot` under -no-reboot exits 0, as does a power-off or a
 * triple fault), is judged by its TAP alone: `none`. Kept even then: a
 * machine that could not start, one killed by someone else, and QEMU
 * failing before the kernel printed anything.
 */
export function judgedExit(
  end: MachineEnd,
  how: { exitless: boolean; reportsExit: boolean; stoppedAtEnd: boolean; serialBytes: number },
): ExitInfo {
  const exit = end.exit;
  if (exit.kind === "spawn-error") return exit;
  if (!how.reportsExit) return { kind: "none" };
  if (!how.exitless) return exit;
  if (how.stoppedAtEnd) return { kind: "none" };
  if (exit.kind === "signaled") return exit;
  if (exit.kind === "exited") {
    const qemuFailed = exit.status !== 0 && how.serialBytes === 0 && end.stderr.trim() !== "";
    const killed = exit.status === 0 && /terminating on signal/.test(end.stderr);
    if (qemuFailed || killed) return exit;
  }
  return { kind: "none" };
}

/**
 * Boot `request` on `target` and classify the run. The serial output is
 * written to the log, split into lines and read (tap.ts) as it arrives.
 * When a deadline passes the machine is stopped and the run is a hang (or a
 * boot failure). A target that reports no exit, or a kernel image that is
 * not ours (`request.image`), is stopped once the TAP stream is complete and
 * judged by its TAP alone (see {@link judgedExit}). The machine is never left running: if a callback
 * throws, it is killed and the error rethrown.
 */
export async function runOnTarget(
  target: Target,
  request: BootRequest,
  options: WatchOptions = {},
): Promise<RunResult> {
  const deadlines = resolveDeadlines(options.deadlines);
  const graceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const endWatch = new TapEndWatch();
  const tap = new TapIngest((event) => options.onEvent?.(event));
  const state: {
    timeout: TimeoutInfo | null;
    failure: { error: unknown } | null;
    stopping: boolean;
    stoppedAtEnd: boolean;
  } = { timeout: null, failure: null, stopping: false, stoppedAtEnd: false };
  const exitless = !target.reportsExit || request.image !== undefined;
  let machine: Machine | undefined;
  let silenceTimer: ReturnType<typeof setTimeout> | undefined;

  const stop = (): void => {
    if (state.stopping) return;
    state.stopping = true;
    clearTimeout(silenceTimer);
    void machine?.stop(graceMs);
  };
  const expire = (deadline: TimeoutInfo["deadline"], ms: number) => () => {
    if (state.stopping) return;
    state.timeout = { deadline, ms };
    stop();
  };
  // One timer, not one per line: when it fires early it waits out the rest.
  let lastTapLine = 0;
  const checkSilence = (): void => {
    const quiet = performance.now() - lastTapLine;
    if (quiet >= deadlines.silenceMs) expire("silence", deadlines.silenceMs)();
    else silenceTimer = setTimeout(checkSilence, deadlines.silenceMs - quiet);
  };
  const armSilence = (): void => {
    lastTapLine = performance.now();
    if (silenceTimer === undefined && !state.stopping) {
      silenceTimer = setTimeout(checkSilence, deadlines.silenceMs);
    }
  };
  const log = options.logFile !== undefined ? openLog(options.logFile) : null;
  const bootTimer = setTimeout(expire("boot", deadlines.bootMs), deadlines.bootMs);
  const serial = new SerialStream({
    onLine: (line) => options.onSerialLine?.(line),
    onTapLine: (line) => {
      clearTimeout(bootTimer);
      armSilence();
      tap.push(line);
      endWatch.line(line);
      if (exitless && endWatch.ended && !state.stopping) {
        state.stoppedAtEnd = true;
        stop();
      }
    },
  }, options.keepSerial ?? true);
  const started = performance.now();
  const onSerial = (chunk: Uint8Array): void => {
    if (state.failure !== null) return;
    try {
      if (log !== null) log.write(chunk);
      serial.push(chunk);
    } catch (error) {
      state.failure = { error };
      state.stopping = true;
      machine?.kill();
    }
  };

  const runTimer = setTimeout(expire("run", deadlines.runMs), deadlines.runMs);
  let end: MachineEnd | undefined;
  try {
    try {
      machine = target.start(request, onSerial);
    } catch (e) {
      // A machine that cannot be started is the infrastructure's failure, not the kernel's.
      const message = e instanceof Error ? e.message : String(e);
      end = { exit: { kind: "spawn-error", code: null, message }, stderr: "" };
    }
    end ??= await machine!.done;
    if (state.failure !== null) throw state.failure.error;
    serial.end();
    const report = tap.end();
    // Without a meaningful exit status the run ended when the TAP stream did (or a deadline).
    const exit = judgedExit(end, {
      exitless,
      reportsExit: target.reportsExit,
      stoppedAtEnd: state.stoppedAtEnd,
      serialBytes: serial.byteCount,
    });
    const classification = classify({
      exit,
      stderr: end.stderr,
      report,
      tapSeen: serial.tapStarted,
      serialBytes: serial.byteCount,
      firstBytes: serial.raw.slice(0, FIRST_BYTES),
      timeout: state.timeout,
    });
    return {
      classification,
      report,
      exit: end.exit,
      stderr: end.stderr,
      timeout: state.timeout,
      command: machine?.command ?? { binary: target.kind, args: [] },
      target: { kind: target.kind, description: target.description },
      accel: target.accel ?? null,
      pid: machine?.pid ?? null,
      serial: { raw: serial.raw, bytes: serial.byteCount, tapStarted: serial.tapStarted },
      logFile: options.logFile ?? null,
      durationMs: performance.now() - started,
    };
  } finally {
    clearTimeout(bootTimer);
    clearTimeout(silenceTimer);
    clearTimeout(runTimer);
    if (end === undefined && machine !== undefined) {
      machine.kill();
      await machine.done.catch(() => {});
    }
    log?.close();
  }
}

/**
 * Run a kernel under QEMU and classify the run (see {@link runOnTarget}).
 * `silenceTimeoutMs` etc. set the deadlines.
 */
export function runKernel(options: RunOptions): Promise<RunResult> {
  const target = new QemuTarget({
    qemu: options.qemu,
    machine: options.machine,
    memory: options.memory,
    cpu: options.cpu,
    smp: options.smp,
    accel: options.accel,
    extraArgs: options.extraArgs,
  });
  return runOnTarget(target, { kernel: options.kernel, cmdline: options.append ?? "" }, {
    deadlines: {
      bootMs: options.bootTimeoutMs,
      silenceMs: options.silenceTimeoutMs,
      runMs: options.runTimeoutMs,
    },
    logFile: options.logFile,
    killGraceMs: options.killGraceMs,
    onEvent: options.onEvent,
    onSerialLine: options.onSerialLine,
  });
}
