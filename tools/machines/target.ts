/**
 * A target: how a machine is started with the kernel and where its serial
 * console comes from. The runner (run/run.ts) sees only this interface.
 * The targets: QEMU booting the ELF with `-kernel` (qemu.ts); QEMU through
 * firmware and a boot loader, from an ISO or over PXE (boot_path.ts), also
 * across a bridged LAN with a real DHCP/TFTP server (pxe_lan.ts); a lab
 * machine with a power command and a serial console (lab/target.ts); and a
 * saved serial log read back (log_target.ts).
 *
 * What a target must provide:
 * - the serial bytes as they arrive (`onSerial`);
 * - a way to stop the machine (`stop`), used when a deadline passes;
 * - how the machine ended (`done`), if it can tell: QEMU's exit status
 *   carries the kernel's isa-debug-exit code; a lab machine has none, so it
 *   says `reportsExit: false` and the runner ends the run itself when the
 *   TAP stream is complete (or bails out).
 */
import type { BootImage } from "../core/boot_image.ts";
import type { ExitInfo } from "../core/classify.ts";
import type { AccelChoice } from "./qemu.ts";

/** The deadlines of a run on a machine, in milliseconds. */
export interface Deadlines {
  /** From the start to the first TAP line. */
  bootMs: number;
  /** Between two TAP lines. */
  silenceMs: number;
  /** For the whole run. */
  runMs: number;
}

/** What to boot. */
export interface BootRequest {
  /** The kernel ELF (QEMU loads it with -kernel; other targets derive their image from it). */
  kernel: string;
  /** The kernel command line. */
  cmdline: string;
  /** An initial RAM disk (QEMU `-initrd`; a loader's module), if any. */
  initrd?: string;
  /**
   * What a kernel image that is not ours offers (core/boot_image.ts); absent
   * for our own kernel. Targets boot it by its protocol, and its end is
   * judged by its TAP alone: it need not know isa-debug-exit.
   */
  image?: BootImage;
  /** Start halted with a gdb stub on this TCP port (targets that can). */
  gdbPort?: number;
}

/** A started machine. */
export interface Machine {
  /** Resolves once the machine is gone (or the target stopped watching it). */
  readonly done: Promise<MachineEnd>;
  /**
   * Stop the machine: politely, then by force after `graceMs`. Resolves when
   * `done` has. Stopping a machine that is gone does nothing.
   */
  stop(graceMs: number): Promise<void>;
  /** Stop at once (used when the runner itself fails). */
  kill(): void;
  /** The process id of the local process behind the machine, if any (QEMU's). */
  readonly pid: number | null;
  /** How the machine was started, for reports (a command line, a host name). */
  readonly command: { binary: string; args: string[] };
}

/** How a machine ended. */
export interface MachineEnd {
  exit: ExitInfo;
  /** The target's own diagnostics (QEMU's stderr); "" if none. */
  stderr: string;
}

/** A way to boot the kernel. */
export interface Target {
  /** Short name for reports: "qemu". */
  readonly kind: string;
  /** One line for humans: "qemu microvm, 128M, cpu max, tcg". */
  readonly description: string;
  /** True if the machine's end says how the kernel ended (QEMU's exit status). */
  readonly reportsExit: boolean;
  /** The accelerator of a virtual machine and why it was chosen; absent where there is none. */
  readonly accel?: AccelChoice;
  /**
   * Start a machine; `onSerial` receives its console output as it arrives.
   * Throwing here is an infrastructure failure; a machine that fails to come
   * up may also resolve `done` with a spawn error.
   */
  start(request: BootRequest, onSerial: (chunk: Uint8Array) => void): Machine;
}
