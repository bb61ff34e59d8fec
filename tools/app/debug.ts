/**
 * `deno task debug [--filter GLOB] [--config NAME] [--port N] [--print]`:
 * start the kernel under QEMU halted, with a gdb stub on a local port, and
 * give gdb to the developer with the kernel's symbols loaded and a
 * breakpoint at each selected test.
 *
 * Each kernel test is a function `ktest_fn_<suite>_<name>` (KTEST in
 * kernel/include/ktest.h); which tests a filter selects is asked of the
 * kernel itself (`ktest.list`), and the same filter goes on the debugged
 * kernel's command line, so only those tests run. Without a filter the
 * breakpoint is kmain.
 *
 * When gdb is installed and this is a terminal, gdb runs here and the serial
 * console goes to a log file; otherwise (or with `--print`) the gdb command
 * is printed and the serial console comes here. QEMU stops with gdb, with
 * Ctrl-C, or when the kernel exits.
 */
import { join } from "node:path";
import { LOG_DIR, ROOT } from "../paths.ts";
import { DEFAULT_CONFIG, getConfig } from "../run/configs.ts";
import { targetFor } from "../run/targets.ts";
import { parseElf } from "../core/elf.ts";
import { listKernelTests, prepareKernel } from "../run/matrix.ts";
import { commandSpec, parseCommand, stringOption, UsageError, usageLine } from "./command_table.ts";

const USAGE = usageLine(commandSpec("deno", "debug")!, "deno task");

/** How long QEMU may take to open its gdb stub (generous: QEMU starts slowly on a loaded host). */
const STUB_WAIT_MS = 30_000;
/** Hardware breakpoints the x86 debug registers give (DR0-DR3). */
const HW_BREAKPOINTS = 4;

/** The symbol of a kernel test's function (KTEST_REGISTER_ in kernel/include/ktest.h). */
export function testSymbol(fullName: string): string {
  const dot = fullName.indexOf(".");
  return `ktest_fn_${fullName.slice(0, dot)}_${fullName.slice(dot + 1)}`;
}

/**
 * gdb's command line: the ELF for symbols, the stub, a breakpoint per
 * function, then continue. Hardware breakpoints while there are debug
 * registers for them: they work before the kernel's higher half is mapped
 * and under KVM, where a software breakpoint would be written to memory.
 */
export function gdbCommand(elf: string, port: number, functions: readonly string[]): string[] {
  const args = ["gdb", "-q", elf, "-ex", `target remote 127.0.0.1:${port}`];
  const hw = functions.length <= HW_BREAKPOINTS;
  for (const f of functions) args.push("-ex", `${hw ? "hbreak" : "break"} ${f}`);
  args.push("-ex", "continue");
  return args;
}

/** Quote an argument for a POSIX shell. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_\/.:=@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A TCP port free on 127.0.0.1 at the time of asking. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** TCP state LISTEN in /proc/net/tcp (include/net/tcp_states.h: TCP_LISTEN = 10). */
const TCP_LISTEN = "0A";

/**
 * Wait until something listens on 127.0.0.1:`port` (QEMU's stub, once it is
 * up), reading /proc/net/tcp: connecting to find out would attach a
 * debugger, and QEMU resumes the guest when a debugger leaves.
 */
export async function waitListening(port: number, timeoutMs: number): Promise<boolean> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const table = await Deno.readTextFile("/proc/net/tcp").catch(() => "");
    const listening = table.split("\n").some((line) => {
      const f = line.trim().split(/\s+/);
      return f[1] === local && f[3] === TCP_LISTEN;
    });
    if (listening) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

interface DebugArgs {
  filter: string | null;
  config: string;
  port: number | null;
  print: boolean;
}

/** `debug`'s arguments, read with the command table. */
function debugArgs(argv: readonly string[]): DebugArgs {
  const p = parseCommand(commandSpec("deno", "debug")!, argv);
  const port = stringOption(p, "port");
  if (port !== undefined && !/^\d+$/.test(port)) {
    throw new UsageError(`--port takes a TCP port number, not '${port}'`);
  }
  return {
    filter: stringOption(p, "filter") ?? null,
    config: stringOption(p, "config") ?? DEFAULT_CONFIG,
    port: port === undefined ? null : Number(port),
    print: p.values.print === true,
  };
}

async function hasGdb(): Promise<boolean> {
  const { execa } = await import("execa"); // loaded only when gdb may run here
  const r = await execa("gdb", ["--version"], { reject: false });
  return r.exitCode === 0;
}

export async function main(argv: string[]): Promise<number> {
  let args: DebugArgs;
  try {
    args = debugArgs(argv);
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : e}\n${USAGE}`);
    return 2;
  }
  const config = getConfig(args.config);
  const prepared = await prepareKernel(ROOT);
  if (prepared.elf === null) {
    console.error(`error: ${prepared.build?.message}\n${prepared.build?.details.join("\n")}`);
    return 1;
  }
  const elf = prepared.elf;
  const logDir = Deno.env.get("OUROBOROS_LOG_DIR") ?? LOG_DIR;
  let functions = ["kmain"];
  if (args.filter !== null) {
    const { tests } = await listKernelTests(elf, args.filter, { logDir });
    if (tests.length === 0) {
      console.error(`error: --filter '${args.filter}' selects no kernel test`);
      return 1;
    }
    const symbols = new Set(parseElf(await Deno.readFile(elf)).symbols.map((s) => s.name));
    functions = tests.map(testSymbol);
    const missing = functions.filter((f) => !symbols.has(f));
    if (missing.length > 0) throw new Error(`no symbol for ${missing.join(", ")} in ${elf}`);
  }
  const port = args.port ?? freePort();
  const target = targetFor(config, { detached: true });
  const cmdline = args.filter !== null ? `ktest.filter=${args.filter}` : "";
  const gdb = gdbCommand(elf, port, functions);
  const runGdb = !args.print && Deno.stdin.isTerminal() && await hasGdb();
  const logFile = join(logDir, "kernel-debug.log");
  await Deno.mkdir(logDir, { recursive: true });
  const log = runGdb
    ? await Deno.open(logFile, { write: true, create: true, truncate: true })
    : null;
  const machine = target.start({ kernel: elf, cmdline, gdbPort: port }, (chunk) => {
    if (log !== null) log.writeSync(chunk);
    else Deno.stdout.writeSync(chunk);
  });
  // With gdb here, Ctrl-C is gdb's (it interrupts the kernel): this process ignores it.
  const onInterrupt = runGdb ? () => {} : () => machine.kill();
  const stopQemu = () => machine.kill();
  Deno.addSignalListener("SIGINT", onInterrupt);
  Deno.addSignalListener("SIGTERM", stopQemu);
  if (!await waitListening(port, STUB_WAIT_MS)) {
    machine.kill();
    const end = await machine.done;
    console.error(`error: QEMU's gdb stub did not come up on port ${port}\n${end.stderr.trim()}`);
    return 1;
  }
  console.error(`debug: ${target.description}, halted; gdb stub on 127.0.0.1:${port}`);
  console.error(`debug: breakpoints at ${functions.join(", ")}`);
  try {
    if (runGdb) {
      console.error(`debug: serial console in ${logFile}`);
      const { execa } = await import("execa");
      await execa(gdb[0], gdb.slice(1), { stdio: "inherit", reject: false });
      machine.kill();
    } else {
      console.error(`debug: in another terminal, run:\n${gdb.map(shellQuote).join(" ")}`);
    }
    const end = await machine.done;
    if (end.exit.kind === "exited" && end.exit.status === 1 && end.stderr) {
      console.error(end.stderr.trim());
    }
    return 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
    Deno.removeSignalListener("SIGTERM", stopQemu);
    log?.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
