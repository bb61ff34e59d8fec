/**
 * QEMU command lines for running the kernel, and the choice of accelerator.
 *
 * Verified against QEMU 7.2 (microvm): with `-nodefaults` the machine's ISA
 * serial port has no backend, so output is silently lost (the guest still
 * runs and exits) unless `-serial stdio` is given; `-nographic` does not add
 * it back under `-nodefaults`. Under `-no-reboot` a triple fault makes QEMU
 * exit with status 0, and SIGTERM makes it exit 0 too, printing
 * "terminating on signal 15" on stderr.
 *
 * QEMU is started with node:child_process (Deno and Node both have it)
 * rather than execa, whose loading cost every process that boots about
 * 0.15 s of CPU time and more of wall time under Deno. It is stopped with
 * `process.kill(pid)` rather than `ChildProcess.kill()`: under Deno's
 * node:child_process, `kill()` marks the process as signalled at once, so a
 * second `kill("SIGKILL")` is refused and the reported exit becomes the
 * signal sent instead of the real one.
 *
 * QEMU runs with glibc's heap in transparent huge pages ({@link qemuEnv}):
 * most of a short boot's host time is QEMU's own start-up, and page faults
 * are a large part of it. Measured on the 2-core CI-like host (perf stat -r
 * 10 -e task-clock, interleaved, median of 7, load under 1): a trivial boot
 * 142 -> 122 ms of CPU time.
 */

import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { Buffer } from "node:buffer";
import process from "node:process";
import { DEBUG_EXIT } from "../../linker/layout.ts";
import type { ExitInfo } from "../core/classify.ts";
import { requestInitrd } from "../host/initrd.ts";
import { killWithThisProcess } from "../host/child_cleanup.ts";
import type { BootRequest, Machine, MachineEnd, Target } from "./target.ts";

/** An accelerator QEMU can use. */
export type Accel = "kvm" | "tcg";

/** The accelerator to use and why. */
export interface AccelChoice {
  accel: Accel;
  reason: string;
}

/** What {@link chooseAccel} looks at; replaceable in tests. */
export interface AccelProbe {
  /** Open /dev/kvm read-write and close it again; throws if that fails. */
  openKvm(): void;
  /** The text of /proc/cpuinfo; throws if unreadable. */
  cpuinfo(): string;
}

/** The QEMU binary used when none is given. */
export const DEFAULT_QEMU = "qemu-system-x86_64";
/** The machine used when none is given. */
export const DEFAULT_MACHINE = "microvm";
/** Guest memory used when none is given (QEMU `-m` syntax). */
export const DEFAULT_MEMORY = "128M";

/** The glibc tunable QEMU runs with: malloc asks for transparent huge pages (madvise). */
export const QEMU_MALLOC_TUNABLE = { name: "glibc.malloc.hugetlb", value: "1" } as const;

/**
 * GLIBC_TUNABLES for QEMU: the user's own list with {@link QEMU_MALLOC_TUNABLE}
 * appended, or left as it is when it names that tunable already (theirs wins).
 */
export function qemuTunables(user: string | undefined): string {
  const ours = `${QEMU_MALLOC_TUNABLE.name}=${QEMU_MALLOC_TUNABLE.value}`;
  if (user === undefined || user === "") return ours;
  const names = user.split(":").map((t) => t.split("=")[0]);
  return names.includes(QEMU_MALLOC_TUNABLE.name) ? user : `${user}:${ours}`;
}

/**
 * QEMU's environment: this process's (or `env`), with GLIBC_TUNABLES from
 * {@link qemuTunables}; every process that starts QEMU (the runner's
 * machines, the Linux bench) passes it.
 */
export function qemuEnv(
  env: Record<string, string | undefined> = process.env,
): Record<string, string> {
  const set = Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined);
  return { ...Object.fromEntries(set), GLIBC_TUNABLES: qemuTunables(env.GLIBC_TUNABLES) };
}

/** The real machine: /dev/kvm and /proc/cpuinfo. */
export const systemProbe: AccelProbe = {
  openKvm() {
    closeSync(openSync("/dev/kvm", "r+"));
  },
  cpuinfo() {
    return readFileSync("/proc/cpuinfo", "utf8");
  },
};

/** The CPU feature flags listed in /proc/cpuinfo text (union over all CPUs). */
export function cpuFlags(cpuinfo: string): Set<string> {
  const flags = new Set<string>();
  for (const line of cpuinfo.split("\n")) {
    const m = /^flags\s*:(.*)$/.exec(line);
    if (m === null) continue;
    for (const f of m[1].trim().split(/\s+/)) if (f !== "") flags.add(f);
  }
  return flags;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * KVM when /dev/kvm opens read-write and the CPU flags show hardware
 * virtualization (vmx or svm); TCG otherwise. The reason says which check
 * decided.
 */
export function chooseAccel(probe: AccelProbe = systemProbe): AccelChoice {
  try {
    probe.openKvm();
  } catch (e) {
    return {
      accel: "tcg",
      reason: `/dev/kvm cannot be opened read-write (${errorText(e)})`,
    };
  }
  let flags: Set<string>;
  try {
    flags = cpuFlags(probe.cpuinfo());
  } catch (e) {
    return {
      accel: "tcg",
      reason: `/proc/cpuinfo is unreadable (${errorText(e)})`,
    };
  }
  const hw = ["vmx", "svm"].find((f) => flags.has(f));
  if (hw === undefined) {
    return {
      accel: "tcg",
      reason:
        "/dev/kvm opens but /proc/cpuinfo shows no vmx or svm flag (no hardware virtualization)",
    };
  }
  return {
    accel: "kvm",
    reason: `/dev/kvm opens read-write and the CPU has ${hw}`,
  };
}

/** How to run QEMU. */
export interface QemuOptions {
  /**
   * The kernel ELF, loaded with `-kernel`; undefined when firmware boots
   * the machine from its disks or network (machines/boot_path.ts).
   */
  kernel?: string;
  /** Kernel command line (`-append`); omitted when undefined or empty. */
  append?: string;
  /** An initial RAM disk (`-initrd`); omitted when undefined. */
  initrd?: string;
  /** `-machine` value; default {@link DEFAULT_MACHINE}. */
  machine?: string;
  /** `-m` value; default {@link DEFAULT_MEMORY}. */
  memory?: string;
  /** Accelerator (see {@link chooseAccel}). */
  accel: Accel;
  /** `-cpu` model; QEMU's default when undefined. */
  cpu?: string;
  /** `-smp` CPU count; QEMU's default (1) when undefined. */
  smp?: number;
  /** Start halted (`-S`) with a gdb stub on this TCP port of localhost. */
  gdbPort?: number;
  /** Appended last, verbatim. */
  extraArgs?: readonly string[];
}

/** The `-device` value of the isa-debug-exit device at {@link DEBUG_EXIT}'s port. */
export function debugExitDevice(): string {
  return `isa-debug-exit,iobase=0x${DEBUG_EXIT.port.toString(16)},iosize=0x04`;
}

/**
 * QEMU's arguments: no default devices or config, no display, COM1 on
 * stdio, exit instead of reboot, and the isa-debug-exit device.
 */
export function buildQemuArgs(options: QemuOptions): string[] {
  const args = [
    "-machine",
    options.machine ?? DEFAULT_MACHINE,
    "-accel",
    options.accel,
    "-m",
    options.memory ?? DEFAULT_MEMORY,
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-no-reboot",
    "-serial",
    "stdio",
    "-device",
    debugExitDevice(),
  ];
  if (options.kernel !== undefined) args.push("-kernel", options.kernel);
  if (options.append !== undefined && options.append !== "") {
    args.push("-append", options.append);
  }
  if (options.initrd !== undefined) args.push("-initrd", options.initrd);
  if (options.cpu !== undefined) args.push("-cpu", options.cpu);
  if (options.smp !== undefined) args.push("-smp", String(options.smp));
  if (options.gdbPort !== undefined) {
    args.push("-S", "-gdb", `tcp:127.0.0.1:${options.gdbPort}`);
  }
  args.push(...(options.extraArgs ?? []));
  return args;
}

/** A QEMU machine: everything of {@link QemuOptions} but what a boot request gives. */
export type QemuMachineOptions =
  & Omit<QemuOptions, "kernel" | "append" | "initrd" | "gdbPort" | "accel">
  & {
    /** QEMU binary (path or name on PATH); default {@link DEFAULT_QEMU}. */
    qemu?: string;
    /** Accelerator (or a choice already made); chosen with {@link chooseAccel} when undefined. */
    accel?: Accel | AccelChoice;
    /**
     * Run QEMU in a process group of its own, so a Ctrl-C meant for a
     * debugger on the same terminal does not reach it.
     */
    detached?: boolean;
  };

/** How QEMU ended, from node:child_process's `close` event (exit status or signal). */
function exitInfo(code: number | null, signal: string | null): ExitInfo {
  if (typeof code === "number") return { kind: "exited", status: code };
  if (typeof signal === "string") return { kind: "signaled", signal };
  return { kind: "spawn-error", code: null, message: "unknown error" };
}

/** The target of today: QEMU loading the kernel ELF with `-kernel`, COM1 on stdout. */
export class QemuTarget implements Target {
  readonly kind = "qemu";
  readonly reportsExit = true;
  readonly accel: AccelChoice;
  readonly #options: QemuMachineOptions;

  /** A QEMU target; the accelerator is chosen now unless given. */
  constructor(options: QemuMachineOptions = {}) {
    this.#options = options;
    this.accel = typeof options.accel === "string"
      ? { accel: options.accel, reason: "requested" }
      : options.accel ?? chooseAccel();
  }

  get description(): string {
    const o = this.#options;
    const parts = [o.machine ?? DEFAULT_MACHINE, o.memory ?? DEFAULT_MEMORY];
    if (o.cpu !== undefined) parts.push(`cpu ${o.cpu}`);
    if (o.smp !== undefined) parts.push(`smp ${o.smp}`);
    parts.push(this.accel.accel);
    return `qemu ${parts.join(", ")}`;
  }

  /** QEMU's arguments for a boot request. */
  args(request: BootRequest): string[] {
    const { qemu: _qemu, accel: _accel, detached: _detached, ...rest } = this.#options;
    return buildQemuArgs({
      ...rest,
      kernel: request.kernel,
      append: request.cmdline,
      initrd: requestInitrd(request),
      gdbPort: request.gdbPort,
      accel: this.accel.accel,
    });
  }

  start(request: BootRequest, onSerial: (chunk: Uint8Array) => void): Machine {
    const binary = this.#options.qemu ?? DEFAULT_QEMU;
    const args = this.args(request);
    return this.#spawn(binary, args, onSerial);
  }

  #spawn(binary: string, args: string[], onSerial: (chunk: Uint8Array) => void): Machine {
    const subprocess = spawn(binary, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: qemuEnv(),
      detached: this.#options.detached ?? false,
    });
    const pid = subprocess.pid ?? null;
    // Not detached: it ends with this process, whatever ends it (a detached one is its owner's).
    const forget = pid !== null && !this.#options.detached ? killWithThisProcess(pid) : () => {};
    let exited = false;
    const stderr: Uint8Array[] = [];
    subprocess.stderr?.on("data", (chunk: Uint8Array) => stderr.push(chunk));
    subprocess.stdout?.on("data", (chunk: Uint8Array) => onSerial(chunk));
    const done = new Promise<MachineEnd>((resolve) => {
      const end = (exit: ExitInfo) => {
        if (exited) return;
        exited = true;
        forget();
        resolve({ exit, stderr: Buffer.concat(stderr).toString("utf8") });
      };
      // A spawn failure (no such binary): `error`, and no exit to wait for.
      subprocess.on("error", (e: NodeJS.ErrnoException) =>
        end({
          kind: "spawn-error",
          code: typeof e.code === "string" ? e.code : null,
          message: e.message,
        }));
      // After the exit and the end of its output, so every serial byte came first.
      subprocess.on("close", (code: number | null, sig: string | null) => end(exitInfo(code, sig)));
    });
    const signal = (sig: NodeJS.Signals): void => {
      if (exited || pid === null) return;
      try {
        process.kill(pid, sig);
      } catch {
        // Already gone.
      }
    };
    return {
      done,
      pid,
      command: { binary, args },
      kill: () => signal("SIGKILL"),
      stop: async (graceMs: number) => {
        signal("SIGTERM");
        const timer = setTimeout(() => signal("SIGKILL"), graceMs);
        try {
          await done;
        } finally {
          clearTimeout(timer);
        }
      },
    };
  }
}
