/**
 * A minimal QMP client (QEMU Machine Protocol over a UNIX socket): enough to
 * run human-monitor commands such as `info mem`, `info tlb` and `gva2gpa`,
 * and to write into a ringbuf character device.
 */

/** A QMP error reply, or a broken connection. */
export class QmpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QmpError";
  }
}

type Reply = { return?: unknown; error?: { class: string; desc: string }; event?: string };

/** A connected QMP session (capabilities already negotiated). */
export class Qmp {
  #conn: Deno.UnixConn;
  #buffered = "";
  #decoder = new TextDecoder();

  private constructor(conn: Deno.UnixConn) {
    this.#conn = conn;
  }

  /** Connect to QEMU's `-qmp unix:PATH,server=on,wait=off` socket, retrying until `timeoutMs`. */
  static async connect(path: string, timeoutMs = 5_000): Promise<Qmp> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const qmp = new Qmp(await Deno.connect({ transport: "unix", path }));
        await qmp.#readReply(true); // the greeting
        await qmp.execute("qmp_capabilities");
        return qmp;
      } catch (e) {
        if (Date.now() > deadline) {
          throw new QmpError(`cannot connect to QMP at ${path}: ${(e as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  async #line(): Promise<string> {
    const buf = new Uint8Array(65536);
    while (!this.#buffered.includes("\n")) {
      const n = await this.#conn.read(buf);
      if (n === null) throw new QmpError("QMP connection closed");
      this.#buffered += this.#decoder.decode(buf.subarray(0, n), { stream: true });
    }
    const i = this.#buffered.indexOf("\n");
    const line = this.#buffered.slice(0, i);
    this.#buffered = this.#buffered.slice(i + 1);
    return line;
  }

  async #readReply(greeting = false): Promise<Reply> {
    for (;;) {
      const msg = JSON.parse(await this.#line()) as Reply & { QMP?: unknown };
      if (greeting && msg.QMP) return msg;
      if (msg.event) continue; // asynchronous events are not replies
      return msg;
    }
  }

  /** Run a QMP command; resolves to its `return` value, or throws QmpError. */
  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const req = args ? { execute: command, arguments: args } : { execute: command };
    await this.#conn.write(new TextEncoder().encode(JSON.stringify(req) + "\n"));
    const reply = await this.#readReply();
    if (reply.error) throw new QmpError(`${command}: ${reply.error.class}: ${reply.error.desc}`);
    return reply.return;
  }

  /** Run a human-monitor (HMP) command and return its text output. */
  async hmp(commandLine: string): Promise<string> {
    const out = await this.execute("human-monitor-command", { "command-line": commandLine });
    return typeof out === "string" ? out : "";
  }

  /** Close the connection (QEMU keeps running). */
  close(): void {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}
