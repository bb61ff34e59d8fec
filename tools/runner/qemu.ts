/**
 * QEMU command lines for running the kernel, and the choice of accelerator.
 *
 * Verified against QEMU 7.2 (microvm): with `-nodefaults` the machine's ISA
 * serial port has no backend, so output is silently lost (the guest still
 * runs and exits) unless `-serial stdio` is given; `-nographic` does not add
 * it back under `-nodefaults`. Under `-no-reboot` a triple fault makes QEMU
 * exit with status 0, and SIGTERM makes it exit 0 too, printing
 * "terminating on signal 15" on stderr.
 */

import { DEBUG_EXIT } from "../../linker/layout.ts";

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

/** The real machine: /dev/kvm and /proc/cpuinfo. */
export const systemProbe: AccelProbe = {
  openKvm() {
    Deno.openSync("/dev/kvm", { read: true, write: true }).close();
  },
  cpuinfo() {
    return Deno.readTextFileSync("/proc/cpuinfo");
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
  /** The kernel ELF, loaded with `-kernel`. */
  kernel: string;
  /** Kernel command line (`-append`); omitted when undefined or empty. */
  append?: string;
  /** `-machine` value; default {@link DEFAULT_MACHINE}. */
  machine?: string;
  /** `-m` value; default {@link DEFAULT_MEMORY}. */
  memory?: string;
  /** Accelerator (see {@link chooseAccel}). */
  accel: Accel;
  /** `-cpu` model; QEMU's default when undefined. */
  cpu?: string;
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
    "-kernel",
    options.kernel,
  ];
  if (options.append !== undefined && options.append !== "") {
    args.push("-append", options.append);
  }
  if (options.cpu !== undefined) args.push("-cpu", options.cpu);
  args.push(...(options.extraArgs ?? []));
  return args;
}
