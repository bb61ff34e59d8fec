/**
 * A lab machine's serial console: a TCP socket (an IPMI serial-over-LAN
 * bridge, ser2net, a console server, QEMU's `-serial tcp:`) or a local
 * serial device (/dev/ttyUSB0; its speed is set with stty first). The bytes
 * go to the runner as they arrive; the session ends when the far end hangs
 * up or the runner closes it.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createConnection, type Socket } from "node:net";
import type { SerialSpec } from "./machine.ts";

/** An open console. */
export interface SerialSession {
  /** Resolves when the console is closed (by the far end or by close()). */
  readonly closed: Promise<void>;
  /** Stop reading and let the console go. */
  close(): void;
}

/** The console cannot be opened; `refused` says nothing listens there (yet). */
export class SerialError extends Error {
  constructor(message: string, readonly refused: boolean) {
    super(message);
    this.name = "SerialError";
  }
}

/** "tcp HOST:PORT" or "device PATH", for messages. */
export function describeSerial(spec: SerialSpec): string {
  return spec.kind === "tcp" ? `tcp ${spec.host}:${spec.port}` : `device ${spec.path}`;
}

/** Connect once to a TCP console. */
export function openTcp(
  host: string,
  port: number,
  onData: (chunk: Uint8Array) => void,
): Promise<SerialSession> {
  return new Promise((resolve, reject) => {
    const socket: Socket = createConnection({ host, port });
    const closed = new Promise<void>((r) => socket.once("close", () => r()));
    socket.once("error", (e: NodeJS.ErrnoException) => {
      reject(new SerialError(`${host}:${port}: ${e.message}`, e.code === "ECONNREFUSED"));
    });
    socket.once("connect", () => {
      socket.on("error", () => {}); // a reset after connecting just closes the session
      socket.on("data", (chunk: Uint8Array) => onData(new Uint8Array(chunk)));
      resolve({ closed, close: () => socket.destroy() });
    });
  });
}

/** Open a serial device (after setting its speed, if it is a terminal and a speed is given). */
export async function openDevice(
  path: string,
  baud: number | null,
  onData: (chunk: Uint8Array) => void,
): Promise<SerialSession> {
  let info;
  try {
    info = await stat(path);
  } catch (e) {
    throw new SerialError(`${path}: ${(e as Error).message}`, false);
  }
  if (baud !== null && info.isCharacterDevice()) {
    // Loaded when used: most commands never run it.
    const { execa } = await import("execa");
    const r = await execa("stty", ["-F", path, String(baud), "raw", "-echo"], { reject: false });
    if (r.exitCode !== 0) throw new SerialError(`stty -F ${path} ${baud}: ${r.stderr}`, false);
  }
  // Read-write, as a terminal is opened; a FIFO opened so does not wait for a writer.
  const stream = createReadStream(path, { flags: "r+" });
  const closed = new Promise<void>((r) => stream.once("close", () => r()));
  await new Promise<void>((resolve, reject) => {
    stream.once("open", () => resolve());
    stream.once("error", (e) => reject(new SerialError(`${path}: ${e.message}`, false)));
  });
  stream.on("error", () => {});
  stream.on("data", (chunk) => onData(new Uint8Array(chunk as Uint8Array)));
  return { closed, close: () => stream.destroy() };
}

/** Open the console once. */
export function openSerial(
  spec: SerialSpec,
  onData: (chunk: Uint8Array) => void,
): Promise<SerialSession> {
  return spec.kind === "tcp"
    ? openTcp(spec.host, spec.port, onData)
    : openDevice(spec.path, spec.baud, onData);
}

/**
 * Open the console, retrying while nothing listens there, until `deadline`
 * (a performance.now() value) passes; then the last error is thrown.
 */
export async function openSerialRetrying(
  spec: SerialSpec,
  onData: (chunk: Uint8Array) => void,
  deadline: number,
  intervalMs = 100,
): Promise<SerialSession> {
  for (;;) {
    try {
      return await openSerial(spec, onData);
    } catch (e) {
      if (!(e instanceof SerialError) || !e.refused || performance.now() >= deadline) throw e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
