/**
 * Checkpoints against the external oracle during a kernel run. The kernel
 * (booted with `oracle` on its command line) prints its page dump between
 * `# oracle-begin NAME` and `# CHECKPOINT NAME`, then waits for a byte on the
 * oracle UART. The session asks QEMU over QMP what it sees, compares, and
 * writes that byte through the ringbuf behind the UART.
 */
import { join } from "node:path";
import { ORACLE_UART } from "../../../linker/layout.ts";
import {
  compareWithQemu,
  parseGva2gpa,
  parseInfoMem,
  parseInfoTlb,
  parseKernelDump,
} from "./compare.ts";
import { Qmp } from "./qmp.ts";

/** The verdict on one checkpoint. */
export interface CheckpointResult {
  name: string;
  problems: string[];
}

const BEGIN = /^\s*# oracle-begin (\S+)\s*$/;
const CHECKPOINT = /^\s*# CHECKPOINT (\S+)\s*$/;

/** One run's oracle: QEMU arguments to add, a serial-line hook, and the results. */
export class OracleSession {
  readonly socket: string;
  /** The socket behind the oracle UART. */
  readonly uartSocket: string;
  #uart: Promise<Deno.UnixConn> | null = null;
  readonly results: CheckpointResult[] = [];
  #lines: string[] | null = null;
  #pending: Promise<void> = Promise.resolve();
  #qmp: Promise<Qmp> | null = null;

  /** `dir` holds the QMP socket (a short path: UNIX socket paths are limited to ~100 bytes). */
  constructor(dir: string) {
    const id = crypto.randomUUID().slice(0, 8);
    this.socket = join(dir, `qmp-${id}.sock`);
    this.uartSocket = join(dir, `uart-${id}.sock`);
  }

  /** Arguments that give QEMU the QMP socket and the oracle UART. */
  qemuArgs(): string[] {
    const { chardev, port, irq } = ORACLE_UART;
    return [
      "-qmp",
      `unix:${this.socket},server=on,wait=off`,
      "-chardev",
      `socket,id=${chardev},path=${this.uartSocket},server=on,wait=off`,
      "-device",
      `isa-serial,chardev=${chardev},iobase=0x${port.toString(16)},irq=${irq}`,
    ];
  }

  /** Feed every serial line here (runKernel's onSerialLine). */
  onSerialLine = (line: string): void => {
    if (BEGIN.test(line)) {
      this.#lines = [];
      return;
    }
    const cp = CHECKPOINT.exec(line);
    if (cp) {
      const lines = this.#lines ?? [];
      this.#lines = null;
      this.#pending = this.#pending.then(() => this.#check(cp[1], lines));
      return;
    }
    this.#lines?.push(line);
  };

  async #check(name: string, lines: string[]): Promise<void> {
    let problems: string[];
    try {
      this.#qmp ??= Qmp.connect(this.socket);
      const qmp = await this.#qmp;
      const kernel = parseKernelDump(lines);
      const gva2gpa = new Map<bigint, bigint | null>();
      for (const va of kernel.probes.keys()) {
        gva2gpa.set(va, parseGva2gpa(await qmp.hmp(`gva2gpa 0x${va.toString(16)}`)));
      }
      const infoMem = parseInfoMem(await qmp.hmp("info mem"));
      const tlbPages = parseInfoTlb(await qmp.hmp("info tlb"));
      problems = compareWithQemu(kernel, { infoMem, tlbPages, gva2gpa });
    } catch (e) {
      problems = [`oracle failed: ${(e as Error).message}`];
    }
    this.results.push({ name, problems });
    // Let the kernel go on whatever the verdict, so the run ends normally.
    try {
      this.#uart ??= Deno.connect({ transport: "unix", path: this.uartSocket });
      await (await this.#uart).write(new TextEncoder().encode("g"));
    } catch (e) {
      this.results[this.results.length - 1].problems.push(
        `cannot resume the kernel: ${(e as Error).message}`,
      );
    }
  }

  /** Wait for checkpoints in flight and close QMP. */
  async finish(): Promise<CheckpointResult[]> {
    await this.#pending;
    if (this.#qmp) (await this.#qmp.catch(() => null))?.close();
    if (this.#uart) (await this.#uart.catch(() => null))?.close();
    return this.results;
  }
}
