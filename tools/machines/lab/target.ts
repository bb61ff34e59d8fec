/**
 * A lab machine as a runner target (`deno task test --machine FILE`). For
 * each run it:
 *
 * 1. writes the PXE tree for the machine's firmware, with the run's kernel
 *    command line, into the machine's TFTP root;
 * 2. opens the serial console, then runs the power-cycle command; a console
 *    that is not listening yet (one the power command starts) is opened
 *    right after it, retrying until it answers;
 * 3. hands every byte of the console to the runner, which reads TAP from it
 *    like from QEMU. A machine has no exit status, so the runner ends the
 *    run when the TAP stream is complete (or a deadline passes);
 * 4. closes the console and runs the power-off command, if there is one.
 *
 * Failures of steps 1-2 are the infrastructure's (a spawn error naming the
 * step), never the kernel's.
 */
import process from "node:process";
import { buildPxeTree } from "../../image/pxe.ts";
import type { BootRequest, Machine, MachineEnd, Target } from "../target.ts";
import { ensureToolGroups } from "../../host/toolcheck.ts";
import { requestInitrd } from "../../host/initrd.ts";
import type { LabMachine } from "./machine.ts";
import {
  describeSerial,
  openSerial,
  openSerialRetrying,
  SerialError,
  type SerialSession,
} from "./serial.ts";

/** How long a console the power command starts may take to answer. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/** Run a power command (`sh -c`, in the file's directory); returns its output, throws on failure. */
export async function runPowerCommand(
  machine: LabMachine,
  which: "cycle" | "off",
  tftpRoot: string,
): Promise<string> {
  const command = which === "cycle" ? machine.power.cycle : machine.power.off!;
  // Loaded when used: most commands never run it.
  const { execa } = await import("execa");
  const r = await execa("sh", ["-c", command], {
    cwd: machine.dir,
    reject: false,
    stdin: "ignore",
    all: true,
    timeout: machine.power.timeoutMs,
    env: { ...process.env, OUROBOROS_MACHINE: machine.name, OUROBOROS_TFTP_ROOT: tftpRoot },
  });
  const output = String(r.all ?? "").trim();
  if (r.timedOut) {
    throw new Error(
      `power ${which} command timed out after ${machine.power.timeoutMs} ms: ${output}`,
    );
  }
  if (r.exitCode !== 0) {
    throw new Error(`power ${which} command failed (exit ${r.exitCode ?? r.signal}): ${output}`);
  }
  return output;
}

/** A lab machine booting over PXE, its console on TCP or a device (see the module comment). */
export class LabTarget implements Target {
  readonly kind = "lab";
  readonly reportsExit = false;
  readonly machine: LabMachine;
  readonly #connectTimeoutMs: number;

  constructor(machine: LabMachine, options: { connectTimeoutMs?: number } = {}) {
    this.machine = machine;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  }

  get description(): string {
    const m = this.machine;
    return `lab machine ${m.name}: PXE ${m.boot.firmware}, serial ${describeSerial(m.serial)}`;
  }

  /** Steps 1 and 2: the tree, the console, the power cycle; returns the open console. */
  async #bringUp(
    request: BootRequest,
    onSerial: (chunk: Uint8Array) => void,
    notes: string[],
  ): Promise<SerialSession> {
    const m = this.machine;
    if (m.boot.firmware === "uefi") await ensureToolGroups(["pxe-tree"]);
    await buildPxeTree({
      kernel: request.kernel,
      cmdline: request.cmdline,
      out: m.tftpRoot,
      firmware: [m.boot.firmware],
      image: request.image,
      initrd: requestInitrd(request),
    });
    let session: SerialSession | null = null;
    try {
      session = await openSerial(m.serial, onSerial);
    } catch (e) {
      if (!(e instanceof SerialError) || !e.refused) throw e;
    }
    notes.push(await runPowerCommand(m, "cycle", m.tftpRoot));
    session ??= await openSerialRetrying(
      m.serial,
      onSerial,
      performance.now() + this.#connectTimeoutMs,
    );
    return session;
  }

  start(request: BootRequest, onSerial: (chunk: Uint8Array) => void): Machine {
    const notes: string[] = [];
    let stop = () => {};
    const stopped = new Promise<void>((r) => (stop = r));
    let stopping = false;
    let session: SerialSession | null = null;
    const run = async (): Promise<MachineEnd> => {
      try {
        session = await this.#bringUp(request, onSerial, notes);
      } catch (e) {
        const message = `lab machine ${this.machine.name}: ${(e as Error).message}`;
        return { exit: { kind: "spawn-error", code: null, message }, stderr: "" };
      }
      if (!stopping) await Promise.race([stopped, session.closed]);
      return { exit: { kind: "none" }, stderr: "" };
    };
    const done = run().then(async (end) => {
      (session as SerialSession | null)?.close();
      if (this.machine.power.off !== null) {
        try {
          notes.push(await runPowerCommand(this.machine, "off", this.machine.tftpRoot));
        } catch (e) {
          notes.push((e as Error).message);
        }
      }
      const stderr = [end.stderr, ...notes].filter((t) => t !== "").join("\n");
      return { ...end, stderr };
    });
    const halt = () => {
      stopping = true;
      stop();
    };
    return {
      done,
      pid: null,
      command: { binary: "lab", args: [this.machine.file] },
      kill: halt,
      stop: async () => {
        halt();
        await done;
      },
    };
  }
}
