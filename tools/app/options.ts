/**
 * The runner's command-line options (`test` in both front-ends), read
 * with the command table (command_table.ts). Test files before `--` and
 * everything after it are left for `deno test`; an option the runner does
 * not know is refused.
 */
import { isAbsolute, resolve } from "node:path";
import { UsageError } from "../core/usage.ts";
import process from "node:process";
import { CONFIGS, type MachineConfig, selectConfigs } from "../run/configs.ts";
import { parseDuration as parseDurationMs } from "../core/duration.ts";
import { parseShard, type Shard } from "../run/plan.ts";
import type { Deadlines } from "../run/run.ts";
import {
  commandSpec,
  type Front,
  optionLines,
  parseCommand,
  RUNNER_OPTIONS,
  stringOption,
} from "./command_table.ts";

export { UsageError };

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
  /** A lab machine file (machines/lab/machine.ts) to run on instead of QEMU; null if none. */
  machine: string | null;
  /** A prebuilt kernel image to run instead of building ours; null if none. */
  image: string | null;
  /** The image's kernel command line; null if not given. */
  append: string | null;
  /** The image's initial RAM disk; null if not given. */
  initrd: string | null;
}

/**
 * The silence deadline of test runs unless given: kernel tests are short,
 * and a long one prints progress lines. Measured on the 2-core TCG host with
 * two more `--config all` running at once: the longest silence of any
 * configuration was 2.3 s (inside the model test, between its progress
 * lines every 10,000 operations), the slowest boot 5.6 s (against the 30 s
 * boot deadline) and the slowest run 26.5 s (against 10 min): margins of
 * 4x, 5x and 20x.
 */
export const TEST_SILENCE_MS = 10_000;

/** The runner's options (the command table's), for `--help`. */
export const RUNNER_USAGE =
  `kernel runner options (test files may come before --, deno test's own options after it):
${optionLines(RUNNER_OPTIONS)}`;

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

/**
 * Split a command line into the runner's options and `deno test`'s
 * arguments (test files before `--`, anything after it), strictly: an
 * unknown option is a {@link UsageError} naming the closest known one.
 * `--config` names come from `table` (default: configs.ts's); `front` says
 * which front-end's `test` is parsed (npm's takes no words).
 */
export function parseRunnerArgs(
  argv: readonly string[],
  table: readonly MachineConfig[] = CONFIGS,
  front: Front = "deno",
): { args: RunnerArgs; rest: string[] } {
  const parsed = parseCommand(commandSpec(front, "test")!, argv);
  const rest = [...parsed.words, ...parsed.passed];
  if (front === "npm" && rest.length > 0) {
    throw new UsageError(`unexpected argument '${rest[0]}' (there is no deno test here)`);
  }
  const get = (n: string) => stringOption(parsed, n.slice(2));
  const flag = (n: string) => parsed.values[n.slice(2)] === true;
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
  const image = get("--image") === undefined ? null : userPath(get("--image")!);
  if (image !== null) {
    if (get("--filter") !== undefined) {
      throw new UsageError(
        "--filter selects our kernel's tests (ktest.filter); with --image, give the kernel's " +
          "own filter in --append (e.g. kunit.filter_glob=list*)",
      );
    }
    if (flag("--list")) {
      throw new UsageError("--list asks our kernel for its tests (ktest.list); not with --image");
    }
  }
  const filter = get("--filter")?.trim() || null;
  if (filter !== null && /\s/.test(filter)) {
    throw new UsageError("--filter cannot contain blanks (the kernel command line splits on them)");
  }
  return {
    args: {
      configs,
      filter,
      list: flag("--list"),
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
      kernelOnly: flag("--kernel-only"),
      help: parsed.help,
      machine: get("--machine") === undefined ? null : userPath(get("--machine")!),
      image,
      append: get("--append") ?? null,
      initrd: get("--initrd") === undefined ? null : userPath(get("--initrd")!),
    },
    rest,
  };
}
