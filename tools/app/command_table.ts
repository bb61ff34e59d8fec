/**
 * The one command table of the toolchain: every command, its options, its
 * usage text and its exit statuses, for both front-ends (the Deno CLI,
 * tools/cli.ts and tools/test.ts, and the npm CLI, tools/npm/cli.ts). One
 * parser reads every command line: `node:util`'s parseArgs, which Deno and
 * Node both have, with strict checking of its own on top:
 *
 * - an option the command does not know is refused, naming it and the
 *   closest known one (`--filer`: did you mean `--filter`?);
 * - an option that takes a value and has none (or has the next option as
 *   its value) is refused, and so is a value given to a flag;
 * - words are checked against what the command takes (none, one, any);
 * - everything after `--` is passed on untouched (`test`: to `deno test`;
 *   `start`, `iso`, `pxe`: to the kernel command line).
 *
 * A refused command line exits with {@link EXIT}.usage (2). This module
 * loads no command: checking a command line is cheap, and the front-ends
 * load a command's module only to run it.
 */
import { parseArgs } from "node:util";
import { closest, editDistance, UsageError } from "../core/usage.ts";

export { UsageError };

/** Exit statuses, the same for every command and both front-ends. */
export const EXIT = {
  /** Everything asked for was done; every test passed. */
  ok: 0,
  /** A test failed, or the build, or a tool is missing: see the messages. */
  failed: 1,
  /** The command line is wrong; nothing was done. */
  usage: 2,
} as const;

/** The exit statuses as the usage text gives them. */
export const EXIT_USAGE =
  `exit status: ${EXIT.ok} done (every test passed), ${EXIT.failed} failed (a test, the build, ` +
  `a tool), ${EXIT.usage} wrong command line`;

/** A front-end: the Deno tasks or the npm package's CLI. */
export type Front = "deno" | "npm";

/** One option of a command. */
export interface OptionSpec {
  /** A flag, or an option with a value. */
  type: "boolean" | "string";
  /** A one-letter alias (`-h`). */
  short?: string;
  /** The value's name in the usage text (`NAME`). */
  value?: string;
  /** What it does; lines after the first are indented under it. */
  help: string;
}

/** One command. */
export interface CommandSpec {
  /** As typed: `parse`, `pxe serve`. */
  name: string;
  /** The arguments after the options, for the usage line: `FILE|-`, `[ARGS...]`. */
  args: string;
  /** What it does (one or more lines). */
  summary: string;
  /** Its options by long name (without `--`); `help` is added to every command. */
  options: Readonly<Record<string, OptionSpec>>;
  /** The words it takes before `--`: none, exactly one, or any number. */
  words: "none" | "one" | "any";
  /** The front-ends that have it. */
  fronts: readonly Front[];
  /** More text for `--help`. */
  more?: string;
}

const HELP: OptionSpec = { type: "boolean", short: "h", help: "print this help" };
const BOTH: readonly Front[] = ["deno", "npm"];

/** The kernel runner's options: `test` in both front-ends. */
export const RUNNER_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  config: {
    type: "string",
    value: "NAME[,NAME...]|all",
    help: "machine configurations to run on (run/configs.ts);\ndefault: microvm",
  },
  filter: {
    type: "string",
    value: "GLOB[,GLOB...]",
    help: "run only kernel tests whose suite.test matches (* and ?);\n" +
      "passed on the kernel command line, no rebuild",
  },
  list: {
    type: "boolean",
    help: "print the kernel tests that would run (asks the kernel), run none",
  },
  shard: {
    type: "string",
    value: "I/N",
    help: "run the I-th of N balanced, stable parts of the work",
  },
  retries: {
    type: "string",
    value: "N",
    help: "re-run a failed configuration up to N times; a test that passes\n" +
      "only on a retry is reported flaky",
  },
  "boot-timeout": {
    type: "string",
    value: "T",
    help: "deadline from start to the first TAP line (default 30s)",
  },
  "silence-timeout": {
    type: "string",
    value: "T",
    help: "deadline between two TAP lines (default 10s)",
  },
  "run-timeout": {
    type: "string",
    value: "T",
    help: "deadline for a whole run (default 10m)\n(T: 500ms, 20s, 2m; a bare number is seconds)",
  },
  jobs: { type: "string", value: "N", help: "runs at once (default: the number of CPUs)" },
  junit: {
    type: "string",
    value: "FILE",
    help: "write the kernel runs' report as JUnit (categories: build,\n" +
      "infrastructure, boot, crash, hang, assertion)",
  },
  json: { type: "string", value: "FILE", help: "write the kernel runs' report as JSON" },
  html: {
    type: "string",
    value: "FILE",
    help: "also write the HTML report there (always: build/reports/index.html)",
  },
  "kernel-only": {
    type: "boolean",
    help: "run only the kernel tests, not the toolchain's deno tests",
  },
  machine: {
    type: "string",
    value: "FILE",
    help: "run the kernel tests on the lab machine FILE describes (PXE boot,\n" +
      "power command, serial console; machines/lab/machine.ts), not QEMU",
  },
  image: {
    type: "string",
    value: "FILE",
    help: "run this kernel image instead of building ours: a Linux bzImage,\n" +
      "a PVH ELF, a multiboot1 or multiboot2 kernel (read from the image);\n" +
      "judged by its TAP/KTAP alone",
  },
  append: {
    type: "string",
    value: "ARGS",
    help: "the image's kernel command line (e.g. 'console=ttyS0 kunit.filter_glob=list*')",
  },
  initrd: { type: "string", value: "FILE", help: "the image's initial RAM disk" },
};

/** Every command. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: "build",
    args: "",
    summary: "build the kernel (incremental): build/kernel.elf, or the project's build directory",
    options: {},
    words: "none",
    fronts: BOTH,
  },
  {
    name: "test",
    args: "[TEST FILES...] [-- DENO TEST OPTIONS...]",
    summary: "build, check and run every test; ends with 'tests: N passed, N failed, N skipped'",
    options: RUNNER_OPTIONS,
    words: "any",
    fronts: ["deno"],
    more: "Files before -- and everything after -- go to deno test (deno test's own options\n" +
      "only after --: deno task test -- --fail-fast).",
  },
  {
    name: "test",
    args: "",
    summary: "build, check and run the kernel tests; ends with " +
      "'tests: N passed, N failed, N skipped'",
    options: RUNNER_OPTIONS,
    // None, but said by the runner's options (options.ts): there is no deno test here.
    words: "any",
    fronts: ["npm"],
    more: "Only kernel tests run here (as with --kernel-only); configurations are the project's.",
  },
  {
    name: "start",
    args: "[KERNEL ARGS...]",
    summary: "build, then boot the kernel with its serial console on this terminal;\n" +
      "KERNEL ARGS become the kernel command line (e.g. ktest.filter='layout.*')",
    options: {
      config: { type: "string", value: "NAME", help: "the machine configuration to boot" },
      image: {
        type: "string",
        value: "FILE",
        help: "boot this kernel image instead of building ours (KERNEL ARGS, or\n" +
          "--append, are its command line)",
      },
      append: { type: "string", value: "ARGS", help: "the image's kernel command line" },
      initrd: { type: "string", value: "FILE", help: "the image's initial RAM disk" },
    },
    words: "any",
    fronts: BOTH,
  },
  {
    name: "doctor",
    args: "",
    summary: "check (and install) the system tools",
    options: {},
    words: "none",
    fronts: BOTH,
  },
  {
    name: "parse",
    args: "FILE|-",
    summary: "report a saved serial log (TAP 14 or KTAP) like a live run",
    options: {
      json: { type: "string", value: "FILE", help: "write the report as JSON" },
      junit: { type: "string", value: "FILE", help: "write the report as JUnit" },
      elf: { type: "string", value: "KERNEL", help: "symbolize crash addresses against KERNEL" },
    },
    words: "one",
    fronts: BOTH,
  },
  {
    name: "debug",
    args: "",
    summary: "boot halted with a gdb stub, breakpoints at the selected tests",
    options: {
      filter: { type: "string", value: "GLOB[,GLOB...]", help: "the kernel tests to stop at" },
      config: { type: "string", value: "NAME", help: "the machine configuration" },
      port: { type: "string", value: "N", help: "the gdb stub's TCP port" },
      print: { type: "boolean", help: "print the gdb command instead of starting gdb" },
    },
    words: "none",
    fronts: ["deno"],
  },
  {
    name: "iso",
    args: "[KERNEL ARGS...]",
    summary: "hybrid GRUB ISO (BIOS and UEFI, multiboot2) booting the kernel with KERNEL ARGS",
    options: {
      out: { type: "string", value: "FILE", help: "the image (default build/ouroboros.iso)" },
    },
    words: "any",
    fronts: BOTH,
  },
  {
    name: "pxe",
    args: "[KERNEL ARGS...]",
    summary: "TFTP tree: BIOS through iPXE (multiboot1), UEFI through GRUB (multiboot2)",
    options: {
      out: { type: "string", value: "DIR", help: "the tree (default build/pxe)" },
    },
    words: "any",
    fronts: BOTH,
  },
  {
    name: "pxe serve",
    args: "[KERNEL ARGS...]",
    summary: "serve the tree with dnsmasq (full or proxy DHCP, TFTP) on one interface",
    options: {
      interface: {
        type: "string",
        value: "IF",
        help: "serve DHCP and TFTP on IF only (it needs an IPv4 address); required",
      },
      "dhcp-range": {
        type: "string",
        value: "FIRST,LAST",
        help: "full DHCP: hand out these addresses (no other DHCP server on\nIF's network!)",
      },
      proxy: {
        type: "boolean",
        help: "proxy DHCP: the network's DHCP server hands out addresses,\n" +
          "dnsmasq only the boot files",
      },
      root: {
        type: "string",
        value: "DIR",
        help: "serve this PXE tree as it is (default: build the kernel and write\n" +
          "build/pxe with KERNEL ARGS as the command line)",
      },
    },
    words: "any",
    fronts: BOTH,
    more: "One of --dhcp-range and --proxy.",
  },
  {
    name: "version",
    args: "",
    summary: "print the package's version",
    options: {},
    words: "none",
    fronts: ["npm"],
  },
];

/** The command `name` of `front`; null if it has none. */
export function commandSpec(front: Front, name: string): CommandSpec | null {
  return COMMANDS.find((c) => c.name === name && c.fronts.includes(front)) ?? null;
}

/** How a front-end's commands are called: `deno task`, `ouroboros-toolchain`. */
export const CALLED: Readonly<Record<Front, string>> = {
  deno: "deno task",
  npm: "ouroboros-toolchain",
};

/** `--name VALUE` / `-h, --help`. */
function optionLabel(name: string, o: OptionSpec): string {
  const long = `--${name}${o.value ? ` ${o.value}` : ""}`;
  return o.short ? `-${o.short}, ${long}` : long;
}

/** The option list, two columns, continuation lines indented. */
export function optionLines(options: Readonly<Record<string, OptionSpec>>): string {
  const rows = Object.entries({ ...options, help: HELP });
  const width = Math.max(...rows.map(([n, o]) => optionLabel(n, o).length)) + 2;
  const lines: string[] = [];
  for (const [name, o] of rows) {
    const [first, ...more] = o.help.split("\n");
    lines.push(`  ${optionLabel(name, o).padEnd(width)} ${first}`);
    for (const m of more) lines.push(`  ${" ".repeat(width)} ${m}`);
  }
  return lines.join("\n");
}

/** One command's usage line (`usage: deno task parse [options] FILE|-`). */
export function usageLine(spec: CommandSpec, called: string): string {
  const opts = Object.keys(spec.options).length > 0 ? " [options]" : "";
  return `usage: ${called} ${spec.name}${opts}${spec.args ? ` ${spec.args}` : ""}`;
}

/** A command's full `--help` text. */
export function commandUsage(spec: CommandSpec, called: string): string {
  const parts = [
    usageLine(spec, called),
    "",
    spec.summary,
    "",
    "options:",
    optionLines(spec.options),
  ];
  if (spec.more) parts.push("", spec.more);
  parts.push("", EXIT_USAGE);
  return parts.join("\n");
}

/** The front-end's command list (`help`, or no command). */
export function frontUsage(front: Front, head: string, tail = ""): string {
  const lines = [head];
  for (const c of COMMANDS.filter((c) => c.fronts.includes(front))) {
    lines.push(`  ${c.name}${c.args ? ` ${c.args}` : ""}`);
    for (const s of c.summary.split("\n")) lines.push(`      ${s}`);
  }
  lines.push(`  (${CALLED[front]} COMMAND --help: a command's options)`);
  if (tail) lines.push("", tail);
  lines.push("", EXIT_USAGE);
  return lines.join("\n");
}

/** A command line as read against its command. */
export interface ParsedCommand {
  /** Option values by long name; flags are true when given. */
  values: Record<string, string | boolean | undefined>;
  /** The words before `--`. */
  words: string[];
  /** Everything after `--`, untouched. */
  passed: string[];
  /** `--help` or `-h` was given. */
  help: boolean;
}

/** The message for an option `spec` does not know. */
function unknownOption(raw: string, spec: CommandSpec): string {
  const known = [...Object.keys(spec.options), "help"].map((n) => `--${n}`);
  const shorts = Object.entries({ ...spec.options, help: HELP })
    .filter(([, o]) => o.short !== undefined).map(([, o]) => `-${o.short}`);
  const guess = closest(raw, raw.startsWith("--") ? known : [...shorts, ...known]);
  let message = `unknown option ${raw} for ${spec.name}: did you mean ${guess}?`;
  const far = guess === null || editDistance(raw, guess) > 2;
  if (far && spec.name === "test" && spec.fronts.includes("deno")) {
    message += ` (deno test's own options go after --: deno task test -- ${raw})`;
  }
  return message;
}

/**
 * Read `argv` (the arguments after the command's name) against `spec`,
 * strictly (see the module comment); throws a {@link UsageError} naming
 * what is wrong.
 */
export function parseCommand(spec: CommandSpec, argv: readonly string[]): ParsedCommand {
  const options: Readonly<Record<string, OptionSpec>> = { ...spec.options, help: HELP };
  const { tokens } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(
      Object.entries(options).map((
        [n, o],
      ) => [n, o.short === undefined ? { type: o.type } : { type: o.type, short: o.short }]),
    ),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const values: ParsedCommand["values"] = {};
  const words: string[] = [];
  let terminator: number | null = null;
  for (const t of tokens) {
    if (t.kind === "option-terminator") {
      terminator = t.index;
      break;
    }
    if (t.kind === "positional") {
      words.push(t.value);
      continue;
    }
    const o = Object.hasOwn(options, t.name) ? options[t.name] : undefined;
    if (o === undefined) throw new UsageError(unknownOption(t.rawName, spec));
    if (o.type === "boolean") {
      if (t.value !== undefined) throw new UsageError(`${t.rawName} takes no value`);
      values[t.name] = true;
    } else if (t.value === undefined || (!t.inlineValue && t.value.startsWith("--"))) {
      throw new UsageError(`${t.rawName} needs a value`);
    } else {
      values[t.name] = t.value;
    }
  }
  const help = values.help === true;
  delete values.help;
  const passed = terminator === null ? [] : argv.slice(terminator + 1);
  if (!help && spec.words === "none" && words.length > 0) {
    throw new UsageError(`unexpected argument '${words[0]}' (${spec.name} takes none)`);
  }
  if (!help && spec.words === "one" && words.length > 1) {
    throw new UsageError(
      `unexpected argument '${words[1]}' (${spec.name} takes one: ${spec.args})`,
    );
  }
  return { values, words, passed, help };
}

/** An option's string value (undefined if not given). */
export function stringOption(p: ParsedCommand, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === "string" ? v : undefined;
}

/** Runs a command whose command line has been read; resolves to the exit status. */
export type Handler = (p: ParsedCommand, argv: readonly string[]) => Promise<number>;

/** A front-end over the table: its handlers and how it reports what its commands throw. */
export interface FrontEnd {
  front: Front;
  /** The first lines of the command list (`usage: deno task <command>`). */
  head: string;
  /** Lines after the command list. */
  tail?: string;
  /** A handler for each of the front-end's commands, by name. */
  handlers: Readonly<Record<string, Handler>>;
  /**
   * The exit status for an error a command throws and this front-end
   * expects (after printing it); undefined for one it does not (rethrown).
   */
  failure(e: unknown): number | undefined;
}

/** A front-end's command list. */
export function frontEndUsage(fe: FrontEnd): string {
  return frontUsage(fe.front, fe.head, fe.tail);
}

/**
 * Run the command `argv` names (its first word; `pxe serve` takes two):
 * its command line is read strictly against the table first, `--help`
 * prints its usage, and a usage error exits with {@link EXIT}.usage.
 */
export async function runCommandLine(fe: FrontEnd, argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  const called = CALLED[fe.front];
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    console.log(frontEndUsage(fe));
    return EXIT.ok;
  }
  let spec = commandSpec(fe.front, name === "--version" ? "version" : name);
  let args = rest;
  const sub = rest[0] === undefined ? null : commandSpec(fe.front, `${name} ${rest[0]}`);
  if (sub !== null) [spec, args] = [sub, rest.slice(1)];
  if (spec === null) {
    const names = [
      ...new Set(COMMANDS.filter((c) => c.fronts.includes(fe.front)).map((c) => c.name)),
    ];
    const what = name.startsWith("-") ? "option" : "command";
    console.error(
      `error: unknown ${what} ${name}: did you mean ${closest(name, names)}?\n\n${
        frontEndUsage(fe)
      }`,
    );
    return EXIT.usage;
  }
  const handler = fe.handlers[spec.name];
  try {
    const parsed = parseCommand(spec, args);
    if (parsed.help) {
      console.log(commandUsage(spec, called));
      return EXIT.ok;
    }
    return await handler(parsed, args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(
        `error: ${e.message}\n\n${
          usageLine(spec, called)
        }\n(${called} ${spec.name} --help: the options)`,
      );
      return EXIT.usage;
    }
    const status = fe.failure(e);
    if (status !== undefined) return status;
    throw e;
  }
}
