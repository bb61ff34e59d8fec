/**
 * `deno task parse FILE|- [--json FILE] [--junit FILE] [--elf KERNEL]`:
 * report a saved serial log (or stdin, `-`) like a live run, as
 * `kunit.py parse` does: TAP 14 or KTAP v1, the same console output, the
 * same reports, the same summary line and exit status (0 only if nothing
 * failed). A log that stops short of its plan is a crash, never a pass.
 * With `--elf`, crash addresses are symbolized against that kernel.
 */
import { readFile, writeFile } from "node:fs/promises";
import { BootImageError, describeBootImage, describeOffer } from "../core/boot_image.ts";
import process from "node:process";
import { ROOT } from "../paths.ts";
import { ConsoleReporter } from "./console.ts";
import { toJunit } from "../core/junit.ts";
import { fileSource, type LogSource, LogTarget } from "../machines/log_target.ts";
import { attemptInput } from "../run/attempt.ts";
import { userPath } from "./options.ts";
import {
  type KernelReport,
  mergeAttempts,
  REPORT_SCHEMA,
  summarize,
  summaryLine,
} from "../core/record.ts";
import { runOnTarget } from "../run/run.ts";
import {
  commandSpec,
  commandUsage,
  EXIT,
  parseCommand,
  type ParsedCommand,
  stringOption,
  UsageError,
  usageLine,
} from "./command_table.ts";

/** No deadline: a saved log is read to its end, however slowly a pipe delivers it. */
const NEVER_MS = 2 ** 31 - 1;

/** How to parse a log. */
export interface ParseOptions {
  /** The kernel the log came from, to symbolize crash addresses (none: not symbolized). */
  elf?: string | null;
  /** Watches the run (e.g. a ConsoleReporter). */
  observer?: ConsoleReporter;
  /** The kernel repository: source files and the log are named relative to it; default ROOT. */
  root?: string;
}

/** Parse a log into a report (the whole of `deno task parse` but the printing). */
export async function parseLog(
  source: LogSource,
  name: string,
  options: ParseOptions = {},
): Promise<KernelReport> {
  const started = performance.now();
  const target = new LogTarget(source, `saved log ${name}`);
  const r = await runOnTarget(target, { kernel: options.elf ?? "", cmdline: "" }, {
    deadlines: { bootMs: NEVER_MS, silenceMs: NEVER_MS, runMs: NEVER_MS },
    keepSerial: false,
  });
  const input = await attemptInput(r, options.elf ?? null, options.root ?? ROOT);
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

/**
 * The parse command as a script (`deno run tools/app/parse.ts`): reads the
 * command line with the command table; `command` is how the user called it
 * (for the usage line), `root` the kernel repository.
 */
export async function main(
  argv: string[],
  options: { command?: string; root?: string } = {},
): Promise<number> {
  const spec = commandSpec("deno", "parse")!;
  const command = options.command ?? "deno task parse";
  const usage = usageLine(spec, command.replace(/ parse$/, ""));
  let p: ParsedCommand;
  try {
    p = parseCommand(spec, argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`error: ${e.message}\n${usage}`);
    return EXIT.usage;
  }
  if (p.help) {
    console.log(commandUsage(spec, command.replace(/ parse$/, "")));
    return EXIT.ok;
  }
  return await parseCommandRun(p, options);
}

/** The parse command, its command line read; resolves to the exit status. */
/**
 * `--elf FILE`: any kernel image may be named; a missing file is an error
 * (exit 1), and an image without symbols (a bzImage, a flat multiboot
 * image) is said before the crash shows up unsymbolized.
 */
async function checkSymbolFile(path: string): Promise<number | null> {
  let head: Uint8Array;
  try {
    head = await readFile(path);
  } catch (e) {
    console.error(`error: --elf ${path}: ${(e as Error).message}`);
    return 1;
  }
  const isElf = head.length >= 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c &&
    head[3] === 0x46;
  if (isElf) return null;
  let what = "no kernel image";
  try {
    const image = describeBootImage(head);
    what = describeOffer(image.qemuKernel ?? image.offers[0]);
  } catch (e) {
    if (!(e instanceof BootImageError)) throw e;
  }
  console.error(
    `note: --elf ${path} is ${what}, not an ELF: it has no symbols, crash addresses are not ` +
      "symbolized (name the ELF it came from, e.g. Linux's vmlinux)",
  );
  return null;
}

export async function parseCommandRun(
  p: ParsedCommand,
  { command = "deno task parse", root = ROOT }: { command?: string; root?: string } = {},
): Promise<number> {
  const spec = commandSpec("deno", "parse")!;
  const file = p.words[0] ?? null;
  if (file === null) {
    console.error(usageLine(spec, command.replace(/ parse$/, "")));
    return EXIT.usage;
  }
  const opts: Record<string, string | undefined> = {
    "--json": stringOption(p, "json"),
    "--junit": stringOption(p, "junit"),
    "--elf": stringOption(p, "elf"),
  };
  const elf = opts["--elf"] ? userPath(opts["--elf"]) : null;
  const stop = elf === null ? null : await checkSymbolFile(elf);
  if (stop !== null) return stop;
  const source: LogSource = file === "-" ? () => process.stdin : fileSource(userPath(file));
  let report: KernelReport;
  try {
    report = await parseLog(source, file === "-" ? "stdin" : file, {
      elf,
      observer: new ConsoleReporter(),
      root,
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    console.error(`error: cannot read ${file}: No such file or directory`);
    return 2;
  }
  if (opts["--json"]) {
    await writeFile(userPath(opts["--json"]), JSON.stringify(report, null, 2) + "\n");
  }
  if (opts["--junit"]) await writeFile(userPath(opts["--junit"]), toJunit(report));
  console.log(summaryLine(report.summary));
  return report.summary.ok ? 0 : 1;
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
