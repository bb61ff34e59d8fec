/**
 * A target: how a machine is started with the kernel and where its serial
 * console comes from. The runner (run.ts) only sees this interface, so a run
 * can be QEMU with `-kernel` (qemu.ts, today's only target), or later a GRUB
 * ISO, a PXE boot, or a lab machine whose console is a TCP socket or a tty
 * and whose power is a command, without the runner changing.
 *
 * What a target must provide:
 * - the serial bytes as they arrive (`onSerial`);
 * - a way to stop the machine (`stop`), used when a deadline passes;
 * - how the machine ended (`done`), if it can tell: QEMU's exit status
 *   carries the kernel's isa-debug-exit code; a lab machine has none, so it
 *   says `reportsExit: false` and the runner ends the run itself when the
 *   TAP stream is complete (or bails out).
 */
import type { ExitInfo } from "./classify.ts";

/** What to boot. */
export interface BootRequest {
  /** The kernel ELF (QEMU loads it with -kernel; other targets derive their image from it). */
  kernel: string;
  /** The kernel command line. */
  cmdline: string;
  /**
   * The first boot module (QEMU -initrd, GRUB module2, iPXE module); default:
   * the build's initrd.cpio beside the kernel, if there is one (tools/initrd.ts).
   */
  initrd?: string;
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
  /**
   * Start a machine; `onSerial` receives its console output as it arrives.
   * Throwing here is an infrastructure failure; a machine that fails to come
   * up may also resolve `done` with a spawn error.
   */
  start(request: BootRequest, onSerial: (chunk: Uint8Array) => void): Machine;
}
