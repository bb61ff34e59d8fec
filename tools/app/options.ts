/**
 * The runner's command-line options (`deno task test`, `parse`, `debug`).
 * Everything the runner does not know is left for `deno test`, as is
 * everything after `--`.
 */
import { isAbsolute, resolve } from "node:path";
import process from "node:process";
import { CONFIGS, type MachineConfig, selectConfigs } from "../run/configs.ts";
import { parseDuration as parseDurationMs } from "../core/duration.ts";
import { parseShard, type Shard } from "../run/plan.ts";
import type { Deadlines } from "../run/run.ts";

/** What the runner was asked. */
export interface RunnerArgs {
  configs: MachineConfig[];
  filter: string | null;
  list: boolean;
  shard: Shard | null;
  retries: number;
  deadlines: Partial<Deadlines>;
  jobs: number | null;
  junit: string | null;
  json: string | null;
  /** Also write the HTML report here (build/reports/index.html is always written). */
  html: string | null;
  kernelOnly: boolean;
  help: boolean;
  /** A lab machine file (tools/lab/machine.ts) to run on instead of QEMU; null if none. */
  machine: string | null;
}

/** Thrown for a malformed command line; the message says what is wrong. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The silence deadline of test runs unless given: kernel tests are short. */
export const TEST_SILENCE_MS = 10_000;

/** The option list, for `--help`. */
export const RUNNER_USAGE =
  `kernel runner options (anything else goes to deno test; so does all after --):
  --config NAME[,NAME...]|all  machine configurations to run on (tools/runner/configs.ts);
                               default: microvm
  --filter GLOB[,GLOB...]      run only kernel tests whose suite.test matches (* and ?);
                               passed on the kernel command line, no rebuild
  --list                       print the kernel tests that would run (asks the kernel), run none
  --shard I/N                  run the I-th of N balanced, stable parts of the work
  --retries N                  re-run a failed configuration up to N times; a test that passes
                               only on a retry is reported flaky
  --boot-timeout T             deadline from start to the first TAP line (default 30s)
  --silence-timeout T          deadline between two TAP lines (default 10s)
  --run-timeout T              deadline for a whole run (default 10m)
                               (T: 500ms, 20s, 2m; a bare number is seconds)
  --jobs N                     runs at once (default: the number of CPUs)
  --junit FILE, --json FILE    write the kernel runs' report (categories: build, infrastructure,
                               boot, crash, hang, assertion)
  --html FILE                  also write the HTML report there (always: build/reports/index.html)
  --kernel-only                run only the kernel tests, not the toolchain's deno tests
  --machine FILE               run the kernel tests on the lab machine FILE describes (PXE boot,
                               power command, serial console; tools/lab/machine.ts), not QEMU`;

/** `500ms`, `20s`, `2m`, or a bare number of seconds → milliseconds; a UsageError if not. */
export function parseDuration(text: string): number {
  try {
    return parseDurationMs(text);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}

function count(name: string, text: string, min: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min) {
    throw new UsageError(`${name} takes a whole number ≥ ${min}, not '${text}'`);
  }
  return Number(text);
}

/** A path given on the command line, against the directory the user ran the task in. */
export function userPath(path: string): string {
  if (isAbsolute(path)) return path;
  return resolve(process.env.INIT_CWD ?? process.cwd(), path);
}

const WITH_VALUE = new Set([
  "--config",
  "--filter",
  "--shard",
  "--retries",
  "--boot-timeout",
  "--silence-timeout",
  "--run-timeout",
  "--jobs",
  "--junit",
  "--json",
  "--html",
  "--machine",
]);
const FLAGS = new Set(["--list", "--kernel-only", "--help", "-h"]);

/**
 * Split a command line into the runner's options and `deno test`'s
 * arguments. `--config` names come from `table` (default: configs.ts's).
 */
export function parseRunnerArgs(
  argv: readonly string[],
  table: readonly MachineConfig[] = CONFIGS,
): { args: RunnerArgs; rest: string[] } {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      rest.push(...argv.slice(i + 1));
      break;
    }
    const eq = a.indexOf("=");
    const name = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    if (WITH_VALUE.has(name)) {
      const value = eq > 0 && a.startsWith("--") ? a.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new UsageError(`${name} needs a value`);
      values.set(name, value);
    } else if (FLAGS.has(a)) {
      flags.add(a);
    } else {
      rest.push(a);
    }
  }
  const get = (n: string) => values.get(n);
  const deadline = (n: string) => (get(n) === undefined ? undefined : parseDuration(get(n)!));
  let configs: MachineConfig[];
  try {
    configs = selectConfigs(get("--config"), table);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  let shard: Shard | null = null;
  if (get("--shard") !== undefined) {
    try {
      shard = parseShard(get("--shard")!);
    } catch (e) {
      throw new UsageError(e instanceof Error ? e.message : String(e));
    }
  }
  if (get("--machine") !== undefined && get("--config") !== undefined) {
    throw new UsageError("--machine and --config exclude each other (the file names the machine)");
  }
  const filter = get("--filter")?.trim() || null;
  if (filter !== null && /\s/.test(filter)) {
    throw new UsageError("--filter cannot contain blanks (the kernel command line splits on them)");
  }
  return {
    args: {
      configs,
      filter,
      list: flags.has("--list"),
      shard,
      retries: get("--retries") === undefined ? 0 : count("--retries", get("--retries")!, 0),
      deadlines: {
        bootMs: deadline("--boot-timeout"),
        silenceMs: deadline("--silence-timeout"),
        runMs: deadline("--run-timeout"),
      },
      jobs: get("--jobs") === undefined ? null : count("--jobs", get("--jobs")!, 1),
      junit: get("--junit") === undefined ? null : userPath(get("--junit")!),
      json: get("--json") === undefined ? null : userPath(get("--json")!),
      html: get("--html") === undefined ? null : userPath(get("--html")!),
      kernelOnly: flags.has("--kernel-only"),
      help: flags.has("--help") || flags.has("-h"),
      machine: get("--machine") === undefined ? null : userPath(get("--machine")!),
    },
    rest,
  };
}
