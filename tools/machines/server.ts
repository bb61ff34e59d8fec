/**
 * A helper process that must be up before a machine boots (a DHCP/TFTP
 * server) and down after it: started in a process group of its own, ready
 * when a line of its output matches, stopped with its whole group.
 */
import { execa, type ResultPromise } from "execa";
import process from "node:process";

/** A running helper. */
export interface Server {
  /** Everything it printed so far (stdout and stderr, interleaved). */
  readonly output: string;
  /** Stop its process group (SIGTERM, then SIGKILL after `graceMs`); resolves when it is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** The helper ended or did not get ready in time; the message quotes its output. */
export class ServerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ServerError";
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone.
  }
}

/**
 * Start `argv` and resolve once a line of its output matches `ready`.
 * Rejects with ServerError (after stopping it) if it exits first or
 * `timeoutMs` passes.
 */
export async function startServer(
  argv: readonly string[],
  ready: RegExp,
  timeoutMs: number,
): Promise<Server> {
  const child: ResultPromise = execa(argv[0], argv.slice(1), {
    reject: false,
    detached: true,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    buffer: false,
  });
  let output = "";
  let exited = false;
  const gone = Promise.resolve(child).then(() => {
    exited = true;
  });
  const pid = child.pid;
  const server: Server = {
    get output() {
      return output;
    },
    stop: async (graceMs = 2_000) => {
      if (pid === undefined || exited) return await gone;
      signalGroup(pid, "SIGTERM");
      const timer = setTimeout(() => signalGroup(pid, "SIGKILL"), graceMs);
      await gone;
      clearTimeout(timer);
    },
  };
  const name = argv.join(" ");
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (error: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error === null) resolve();
      else server.stop().finally(() => reject(new ServerError(`${error}\n${output}`.trim())));
    };
    const timer = setTimeout(
      () => settle(`${name}: not ready after ${timeoutMs} ms (waiting for ${ready})`),
      timeoutMs,
    );
    const take = (chunk: Uint8Array) => {
      output += new TextDecoder().decode(chunk);
      if (ready.test(output)) settle(null);
    };
    child.stdout?.on("data", take);
    child.stderr?.on("data", take);
    gone.then(() => settle(`${name}: exited before it was ready`));
  });
  return server;
}
