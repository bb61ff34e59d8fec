/**
 * Machine files: one JSON file per lab machine says how to run the kernel's
 * tests on it (`deno task test --machine FILE`):
 *
 *   {
 *     "name": "nuc-01",
 *     "boot": "pxe-uefi",                      // or "pxe-bios"
 *     "tftpRoot": "/srv/tftp",                 // the PXE tree is written here for each run
 *     "serial": { "tcp": "bmc-nuc-01:2001" },  // or { "device": "/dev/ttyUSB0", "baud": 115200 }
 *     "power": {
 *       "cycle": "ipmitool -I lanplus -H bmc-nuc-01 -U admin -E chassis power cycle",
 *       "off": "ipmitool -I lanplus -H bmc-nuc-01 -U admin -E chassis power off",
 *       "timeout": "60s"
 *     },
 *     "deadlines": { "boot": "3m", "silence": "30s", "run": "15m" }
 *   }
 *
 * `${NAME}` in any string is replaced by the environment variable NAME (a
 * missing one is an error): secrets and per-site values stay out of the
 * file. Relative paths are relative to the file's directory, where the
 * power commands also run (with `sh -c`). Every problem is reported at
 * once, by field.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import process from "node:process";
import type { Firmware } from "../../image/pxe.ts";
import { parseDuration } from "../../core/duration.ts";
import type { Deadlines } from "../target.ts";

/** Where the machine's serial console is. */
export type SerialSpec =
  | { kind: "tcp"; host: string; port: number }
  | { kind: "tty"; path: string; baud: number | null };

/** A lab machine, as its machine file declares it. */
export interface LabMachine {
  name: string;
  /** The file it came from. */
  file: string;
  /** The file's directory: relative paths and the power commands' working directory. */
  dir: string;
  /** How the machine boots: always over the network, from {@link LabMachine.tftpRoot}. */
  boot: { via: "pxe"; firmware: Firmware };
  /** The TFTP server's root the machine boots from. */
  tftpRoot: string;
  serial: SerialSpec;
  power: {
    /** Shell command that power-cycles (or switches on) the machine. */
    cycle: string;
    /** Shell command that switches it off after the run; null: leave it on. */
    off: string | null;
    /** Longest a power command may take. */
    timeoutMs: number;
  };
  /** The runner's deadlines for this machine (command-line options still win). */
  deadlines: Partial<Deadlines>;
}

/** Default for {@link LabMachine.power}.timeoutMs. */
export const DEFAULT_POWER_TIMEOUT_MS = 60_000;

/** What is wrong with a machine file, every problem by field. */
export class MachineFileError extends Error {
  constructor(readonly file: string, readonly problems: string[]) {
    super(`${file}: ${problems.join("; ")}`);
    this.name = "MachineFileError";
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const BOOTS: Readonly<Record<string, Firmware>> = { "pxe-bios": "bios", "pxe-uefi": "uefi" };
const TOP_KEYS = ["name", "boot", "tftpRoot", "serial", "power", "deadlines"];

/** `500ms`, `20s`, `2m` or a bare number of seconds, in milliseconds; null if malformed. */
export function durationMs(text: string): number | null {
  try {
    return parseDuration(text);
  } catch {
    return null;
  }
}

/** Replace `${NAME}` in every string of `value` by the environment; missing names are collected. */
function expand(value: Json, env: Record<string, string | undefined>, missing: Set<string>): Json {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const v = env[name];
      if (v === undefined) missing.add(name);
      return v ?? "";
    });
  }
  if (Array.isArray(value)) return value.map((v) => expand(v, env, missing));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expand(v, env, missing)]));
  }
  return value;
}

function isObject(v: Json | undefined): v is { [key: string]: Json } {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** A field reader that records problems instead of throwing. */
class Fields {
  readonly problems: string[] = [];

  string(obj: { [key: string]: Json }, key: string, where: string, required = true): string | null {
    const v = obj[key];
    if (v === undefined && !required) return null;
    if (typeof v !== "string" || v.trim() === "") {
      this.problems.push(`${where}${key} must be a non-empty string`);
      return null;
    }
    return v;
  }

  unknown(obj: { [key: string]: Json }, known: string[], where: string): void {
    for (const k of Object.keys(obj)) {
      if (!known.includes(k)) this.problems.push(`${where}${k} is not a known field`);
    }
  }

  duration(obj: { [key: string]: Json }, key: string, where: string): number | undefined {
    const v = obj[key];
    if (v === undefined) return undefined;
    const ms = typeof v === "string" || typeof v === "number" ? durationMs(String(v)) : null;
    if (ms === null) this.problems.push(`${where}${key} must be a duration (500ms, 20s, 2m)`);
    return ms ?? undefined;
  }
}

/** `host:port` (IPv6 in brackets) → host and port, or null. */
export function parseHostPort(text: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text.trim());
  if (m === null) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1] ?? m[2], port };
}

function readSerial(f: Fields, v: Json | undefined, dir: string): SerialSpec | null {
  if (!isObject(v)) {
    f.problems.push(`serial must be { "tcp": "HOST:PORT" } or { "device": PATH, "baud": N }`);
    return null;
  }
  f.unknown(v, ["tcp", "device", "baud"], "serial.");
  if ((v.tcp === undefined) === (v.device === undefined)) {
    f.problems.push("serial needs exactly one of tcp and device");
    return null;
  }
  if (v.tcp !== undefined) {
    const hp = typeof v.tcp === "string" ? parseHostPort(v.tcp) : null;
    if (hp === null) f.problems.push("serial.tcp must be HOST:PORT");
    if (v.baud !== undefined) f.problems.push("serial.baud applies to a device, not to tcp");
    return hp === null ? null : { kind: "tcp", ...hp };
  }
  const path = f.string(v, "device", "serial.");
  const baud = v.baud === undefined ? null : v.baud;
  if (baud !== null && (typeof baud !== "number" || !Number.isInteger(baud) || baud <= 0)) {
    f.problems.push("serial.baud must be a positive whole number");
  }
  return path === null
    ? null
    : { kind: "tty", path: resolve(dir, path), baud: baud as number | null };
}

function readPower(f: Fields, v: Json | undefined): LabMachine["power"] | null {
  if (!isObject(v)) {
    f.problems.push(`power must be { "cycle": COMMAND, "off"?: COMMAND, "timeout"?: DURATION }`);
    return null;
  }
  f.unknown(v, ["cycle", "off", "timeout"], "power.");
  const cycle = f.string(v, "cycle", "power.");
  const off = f.string(v, "off", "power.", false);
  const timeoutMs = f.duration(v, "timeout", "power.") ?? DEFAULT_POWER_TIMEOUT_MS;
  return cycle === null ? null : { cycle, off, timeoutMs };
}

function readDeadlines(f: Fields, v: Json | undefined): Partial<Deadlines> {
  if (v === undefined) return {};
  if (!isObject(v)) {
    f.problems.push("deadlines must be { boot?, silence?, run? } durations");
    return {};
  }
  f.unknown(v, ["boot", "silence", "run"], "deadlines.");
  const d: Partial<Deadlines> = {};
  const boot = f.duration(v, "boot", "deadlines.");
  const silence = f.duration(v, "silence", "deadlines.");
  const run = f.duration(v, "run", "deadlines.");
  if (boot !== undefined) d.bootMs = boot;
  if (silence !== undefined) d.silenceMs = silence;
  if (run !== undefined) d.runMs = run;
  return d;
}

/**
 * Parse and check a machine file's text. `file` names it in errors and
 * anchors relative paths; `env` fills `${NAME}`. Throws MachineFileError.
 */
export function parseMachineFile(
  text: string,
  file: string,
  env: Record<string, string | undefined> = process.env,
): LabMachine {
  let raw: Json;
  try {
    raw = JSON.parse(text) as Json;
  } catch (e) {
    throw new MachineFileError(file, [`not JSON: ${(e as Error).message}`]);
  }
  if (!isObject(raw)) throw new MachineFileError(file, ["the file must hold a JSON object"]);
  const missing = new Set<string>();
  const v = expand(raw, env, missing) as { [key: string]: Json };
  const f = new Fields();
  for (const name of missing) f.problems.push(`\${${name}} is not set in the environment`);
  f.unknown(v, TOP_KEYS, "");
  const dir = dirname(resolve(file));
  const name = f.string(v, "name", "");
  if (name !== null && !/^[A-Za-z0-9._-]+$/.test(name)) {
    f.problems.push("name may hold letters, digits, '.', '_' and '-' only");
  }
  const firmware = typeof v.boot === "string" ? BOOTS[v.boot] : undefined;
  if (firmware === undefined) {
    f.problems.push(`boot must be one of ${Object.keys(BOOTS).join(", ")}`);
  }
  const tftp = f.string(v, "tftpRoot", "");
  const serial = readSerial(f, v.serial, dir);
  const power = readPower(f, v.power);
  const deadlines = readDeadlines(f, v.deadlines);
  if (f.problems.length > 0) throw new MachineFileError(file, f.problems);
  return {
    name: name!,
    file: resolve(file),
    dir,
    boot: { via: "pxe", firmware: firmware! },
    tftpRoot: isAbsolute(tftp!) ? tftp! : resolve(dir, tftp!),
    serial: serial!,
    power: power!,
    deadlines,
  };
}

/** Read and check a machine file. Throws MachineFileError (also when it cannot be read). */
export function loadMachineFile(
  file: string,
  env: Record<string, string | undefined> = process.env,
): LabMachine {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new MachineFileError(file, [`cannot read it: ${(e as Error).message}`]);
  }
  return parseMachineFile(text, file, env);
}
