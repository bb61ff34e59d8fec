/**
 * `deno task parse FILE|- [--json FILE] [--junit FILE] [--elf KERNEL]`:
 * report a saved serial log (or stdin, `-`) like a live run, as
 * `kunit.py parse` does: TAP 14 or KTAP v1, the same console output, the
 * same reports, the same summary line and exit status (0 only if nothing
 * failed). A log that stops short of its plan is a crash, never a pass.
 * With `--elf`, crash addresses are symbolized against that kernel.
 */
import { ROOT } from "./paths.ts";
import { ConsoleReporter } from "./runner/console.ts";
import { toJunit } from "./runner/junit.ts";
import { fileSource, type LogSource, LogTarget } from "./runner/log_target.ts";
import { attemptInput } from "./runner/matrix.ts";
import { userPath } from "./runner/options.ts";
import {
  type KernelReport,
  mergeAttempts,
  REPORT_SCHEMA,
  summarize,
  summaryLine,
} from "./runner/record.ts";
import { runOnTarget } from "./runner/run.ts";

/** No deadline: a saved log is read to its end, however slowly a pipe delivers it. */
const NEVER_MS = 2 ** 31 - 1;

const USAGE = "usage: deno task parse FILE|- [--json FILE] [--junit FILE] [--elf KERNEL]";

/** Parse a log into a report (the whole of `deno task parse` but the printing). */
export async function parseLog(
  source: LogSource,
  name: string,
  options: { elf?: string | null; observer?: ConsoleReporter } = {},
): Promise<KernelReport> {
  const started = performance.now();
  const target = new LogTarget(source, `saved log ${name}`);
  const r = await runOnTarget(target, { kernel: options.elf ?? "", cmdline: "" }, {
    deadlines: { bootMs: NEVER_MS, silenceMs: NEVER_MS, runMs: NEVER_MS },
  });
  const input = await attemptInput(r, options.elf ?? null, ROOT);
  input.log = name;
  const job = { id: "log", label: "kernel", description: target.description };
  const run = mergeAttempts({
    ...job,
    config: "log",
    target: { kind: target.kind, description: target.description, command: [name] },
    cmdline: "",
  }, [input]);
  options.observer?.start([job]);
  options.observer?.runEnd(job, run);
  return summarize({
    schema: REPORT_SCHEMA,
    createdAt: new Date().toISOString(),
    durationMs: performance.now() - started,
    kernel: options.elf ?? null,
    build: null,
    checks: [],
    selection: {
      configs: [],
      filter: null,
      shard: null,
      retries: 0,
      deadlines: { bootMs: NEVER_MS, silenceMs: NEVER_MS, runMs: NEVER_MS },
    },
    runs: [run],
  });
}

export async function main(argv: string[]): Promise<number> {
  let file: string | null = null;
  const opts: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--json" || a === "--junit" || a === "--elf") {
      if (argv[i + 1] === undefined) {
        console.error(`error: ${a} needs a value\n${USAGE}`);
        return 2;
      }
      opts[a] = argv[++i];
    } else if (a === "-h" || a === "--help") {
      console.log(USAGE);
      return 0;
    } else if (file === null && (a === "-" || !a.startsWith("-"))) {
      file = a;
    } else {
      console.error(`error: unexpected argument '${a}'\n${USAGE}`);
      return 2;
    }
  }
  if (file === null) {
    console.error(USAGE);
    return 2;
  }
  const source: LogSource = file === "-" ? () => Deno.stdin.readable : fileSource(userPath(file));
  let report: KernelReport;
  try {
    report = await parseLog(source, file === "-" ? "stdin" : file, {
      elf: opts["--elf"] ? userPath(opts["--elf"]) : null,
      observer: new ConsoleReporter(),
    });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    console.error(`error: ${e.message}`);
    return 2;
  }
  if (opts["--json"]) {
    await Deno.writeTextFile(userPath(opts["--json"]), JSON.stringify(report, null, 2) + "\n");
  }
  if (opts["--junit"]) await Deno.writeTextFile(userPath(opts["--junit"]), toJunit(report));
  console.log(summaryLine(report.summary));
  return report.summary.ok ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
