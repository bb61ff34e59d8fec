/**
 * A target whose "serial console" is a saved log or a stream (a file,
 * stdin, a pipe from another machine): the runner reads it exactly as it
 * reads a live QEMU, which is how `deno task parse` reports a saved log like
 * a live run. Like a lab machine it has no exit status, so the verdict comes
 * from the TAP stream alone and the run ends when the stream does.
 */
import { open } from "node:fs/promises";
import type { BootRequest, Machine, MachineEnd, Target } from "./target.ts";

/** Bytes read per chunk from a file. */
const CHUNK = 64 * 1024;

/** Where the bytes come from. */
export type LogSource = () => AsyncIterable<Uint8Array>;

/** A source reading a file in chunks. */
export function fileSource(path: string): LogSource {
  return async function* () {
    const file = await open(path, "r");
    try {
      const buf = new Uint8Array(CHUNK);
      for (;;) {
        const { bytesRead } = await file.read(buf, 0, CHUNK, null);
        if (bytesRead === 0) return;
        yield buf.slice(0, bytesRead);
      }
    } finally {
      await file.close();
    }
  };
}

/** A source giving fixed bytes in chunks of `chunk` bytes. */
export function bytesSource(bytes: Uint8Array | string, chunk = CHUNK): LogSource {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  return async function* () {
    for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
  };
}

/** Replays a source as a machine's console. */
export class LogTarget implements Target {
  readonly kind = "log";
  readonly reportsExit = false;
  readonly description: string;
  readonly #source: LogSource;

  /** `description` names the source in reports ("saved log build/logs/x.log"). */
  constructor(source: LogSource, description: string) {
    this.#source = source;
    this.description = description;
  }

  start(_request: BootRequest, onSerial: (chunk: Uint8Array) => void): Machine {
    let stopped = false;
    const end: MachineEnd = { exit: { kind: "none" }, stderr: "" };
    // Stopping must not wait for a source that has nothing more to say (a quiet pipe).
    let stop = () => {};
    const stoppedEarly = new Promise<MachineEnd>((resolve) => {
      stop = () => {
        stopped = true;
        resolve(end);
      };
    });
    const source = this.#source;
    const read = (async () => {
      for await (const chunk of source()) {
        if (stopped) break;
        onSerial(chunk);
      }
      return end;
    })();
    const done = Promise.race([read, stoppedEarly]);
    return {
      done,
      pid: null,
      command: { binary: "log", args: [this.description] },
      kill: stop,
      stop: async () => {
        stop();
        await done;
      },
    };
  }
}
