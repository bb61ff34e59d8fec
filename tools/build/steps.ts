/**
 * The build's engine: keyed steps. Every output carries a key: the tool's
 * identity, the command, the flags, and every input (sources and the
 * headers the compiler reported as dependencies) with the SHA-256 of its
 * contents. An output whose key is unchanged is not rebuilt, so a second
 * build with nothing changed runs nothing.
 */
import { readFileSync, statSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { commandText } from "../host/command.ts";
import process from "node:process";
import {
  fileHash,
  inDir,
  programIdentity,
  programName,
  StatMemo,
  TOOL_ENV,
  toolFact,
} from "./input_facts.ts";

/** A compiler, assembler or linker failure, with the tool's own output. */
export class BuildError extends Error {
  constructor(
    /** The failing file (a source, or the image for link errors). */
    readonly file: string,
    /** The tool's output, unchanged. */
    readonly output: string,
  ) {
    super(`build failed: ${file}\n${output}`);
    this.name = "BuildError";
  }
}

/**
 * The file's contents, or null if there is none. Read synchronously: the
 * files read this way are small (keys, depfiles, generated sources), and
 * node:fs's promise API costs ten times the read under Deno.
 */
export function readOrNull(path: string): Promise<Uint8Array | null> {
  try {
    return Promise.resolve(readFileSync(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return Promise.resolve(null);
    return Promise.reject(e);
  }
}

function isFile(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
}

/** Write a file only if its content differs, so its consumers' keys stay put. */
export async function writeIfChanged(path: string, content: string): Promise<void> {
  const old = await readOrNull(path);
  if (old && new TextDecoder().decode(old) === content) return;
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, content);
}

/**
 * Dependencies resolved against the directory the compiler ran in, by that
 * directory and the name as listed: the same headers are listed by most
 * depfiles, and node:path's resolve costs a build ~5 ms over them all.
 */
const resolved = new Map<string, string>();

/** Files listed in a make-style dependency file, or [] if there is none. */
async function depfileInputs(path: string, cwd: string): Promise<string[]> {
  const raw = await readOrNull(path);
  if (!raw) return [];
  const text = new TextDecoder().decode(raw).replace(/\\\n/g, " ");
  const rules = text.split("\n").filter((l) => l.includes(":"));
  const deps = rules.flatMap((l) => l.slice(l.indexOf(":") + 1).trim().split(/\s+/));
  // The compiler ran in cwd: relative dependencies are relative to it.
  const resolveDep = (d: string) => {
    // A relative cwd is resolved against the process's, which may change.
    if (!isAbsolute(cwd)) return resolve(cwd, d);
    const k = `${cwd}\0${d}`;
    let r = resolved.get(k);
    if (r === undefined) resolved.set(k, r = resolve(cwd, d));
    return r;
  };
  return [...new Set(deps.filter(Boolean).map(resolveDep))];
}

/**
 * Key of a command over its inputs' contents: the command, then each input
 * with the SHA-256 of its contents ("missing" for none, which gives a fresh
 * key). The contents' hashes come from input_facts.ts (read again only for a
 * file whose identity changed). The key is kept as it is, a few kilobytes,
 * and compared as text: hashed once more, it was compared the same way, but
 * Web Crypto's asynchronous digest cost a build with nothing changed 15 to
 * 50 ms over its hundred-odd steps.
 */
export async function keyOf(
  command: string[],
  inputs: string[],
  memo?: StatMemo,
): Promise<string> {
  const parts = [command.join("\0")];
  for (const f of [...inputs].sort()) {
    parts.push(f, await fileHash(f, memo) ?? "missing");
  }
  return parts.join("\n");
}

async function run(cmd: string[], cwd: string, file: string): Promise<void> {
  // Loaded when a step runs: a build with nothing changed runs no tool.
  const { execa } = await import("execa");
  const r = await execa(cmd[0], cmd.slice(1), { cwd, reject: false, all: true });
  if (r.failed) {
    const out = String(r.all || r.message);
    throw new BuildError(file, out);
  }
}

export interface Step {
  /** The output file. */
  output: string;
  /** The command that makes it. */
  command: string[];
  /** Inputs besides those the depfile lists. */
  inputs: string[];
  /** Depfile the command writes, if any. */
  depfile?: string;
  /** Name for logs and errors. */
  label: string;
  /**
   * Identity of the tool run, so a change to it rebuilds: one of
   * {@link ToolIds}, from {@link buildToolIds} (its version line, the real
   * path and identity of the files that do the work, for C the compiler
   * proper and the assembler, and the environment variables the tool reads).
   */
  toolId: string;
}

/**
 * Run a step unless its key is unchanged; returns true if it ran. `memo`:
 * the stats of its batch (runAll).
 */
export async function runStep(step: Step, cwd: string, memo?: StatMemo): Promise<boolean> {
  const keyFile = step.output + ".key";
  const deps = step.depfile ? await depfileInputs(step.depfile, cwd) : [];
  const key = await keyOf([step.toolId, ...step.command], [...step.inputs, ...deps], memo);
  const old = await readOrNull(keyFile);
  if (old && new TextDecoder().decode(old) === key && isFile(step.output)) return false;
  await mkdir(dirname(step.output), { recursive: true });
  await rm(keyFile, { force: true });
  await run(step.command, cwd, step.label);
  // The key must cover the dependencies of the build that just ran.
  const newDeps = step.depfile ? await depfileInputs(step.depfile, cwd) : [];
  await writeFile(
    keyFile,
    await keyOf([step.toolId, ...step.command], [...step.inputs, ...newDeps], memo),
  );
  return true;
}

/** Run steps with at most `limit` at once; the first failure is rethrown. */
export async function runAll(
  steps: Step[],
  cwd: string,
  limit: number,
  log: (l: string) => void,
): Promise<string[]> {
  const ran: string[] = [];
  const queue = [...steps];
  const errors: unknown[] = [];
  const writes = new Set(steps.flatMap((s) => [s.output, ...(s.depfile ? [s.depfile] : [])]));
  const memo = new StatMemo(writes);
  const worker = async () => {
    for (let s = queue.shift(); s; s = queue.shift()) {
      try {
        if (await runStep(s, cwd, memo)) {
          log(s.label);
          ran.push(s.label);
        }
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  if (errors.length) throw errors[0];
  return ran.sort();
}

/**
 * First line of `tool --version` (or -v), or a BuildError if the tool does
 * not run. Asked once per tool binary (input_facts.ts: again when PATH finds
 * another file, or the file changed).
 */
export function toolIdentity(tool: string, flag = "--version"): Promise<string> {
  return toolFact(tool, flag, async () => {
    const r = await commandText(tool, [flag]);
    if (r.failed) throw new BuildError(tool, `cannot run ${tool}: ${r.shortMessage}`);
    return `${tool}: ${r.stdout.split("\n")[0]}`;
  });
}

/**
 * Environment variables that change what GCC compiles a C file to: where it
 * finds headers, and its programs (cc1, as) and files (the include directory
 * the user programs' build asks for: {@link TOOL_ENV}).
 */
const COMPILE_ENV = ["CPATH", "C_INCLUDE_PATH", ...TOOL_ENV] as const;

/** Environment variables NASM reads: NASMENV holds options it takes before the command's. */
const NASM_ENV = ["NASMENV"] as const;

/** Environment variables that change what GNU ld does: LDEMULATION, its default emulation. */
const LD_ENV = ["LDEMULATION"] as const;

/** The environment the build's tools run in (a test may give another to a key). */
export type ToolEnv = Readonly<Record<string, string | undefined>>;

/** `name=value` of each of `vars` in `env` (empty when unset). */
function envPart(vars: readonly string[], env: ToolEnv): string[] {
  return vars.map((v) => `${v}=${env[v] ?? ""}`);
}

/**
 * The path of the program `cc` runs as `prog` (`cc -print-prog-name=cc1`:
 * a path, or a name the driver looks for on PATH), or "" if `cc` does not
 * say. Asked once per compiler binary, and again once a program of that
 * name appears where the driver would run it instead (input_facts.ts
 * programName).
 */
function progName(cc: string, prog: string, cwd: string): Promise<string> {
  // Asked where the compiles run: a relative program directory is the driver's own cwd's.
  return programName(cc, prog, (args) => commandText(cc, args, { cwd }), cwd);
}

/**
 * The C driver `cc` a build run in `root` runs: a relative path (CC=tools/x-gcc)
 * is the one in `root`, where the compiles run it, for every question asked
 * of it; a bare name is looked for on PATH.
 */
export function driverPath(cc: string, root: string): string {
  return cc.includes("/") ? inDir(root, cc) : cc;
}

/**
 * Identity of a C compiler for its steps' keys: its version line (see
 * {@link toolIdentity}), the real path and identity of the driver's own file
 * (clang, tcc, zig cc: the driver is the compiler, and a rebuilt package may
 * say the same version), those of the compiler proper and the assembler it
 * runs (cc1 and as: either may change while the driver stays the same file),
 * and {@link COMPILE_ENV} as `env` has it (the process's environment
 * unless a test gives another). `cwd`: where it compiles (the build's
 * root), for the program directories it names relative to it.
 */
export async function compilerIdentity(
  cc: string,
  env: ToolEnv = process.env,
  cwd: string = process.cwd(),
): Promise<string> {
  const driver = driverPath(cc, cwd);
  const [version, cc1, as] = await Promise.all([
    toolIdentity(driver),
    progName(driver, "cc1", cwd),
    progName(driver, "as", cwd),
  ]);
  const prog = (name: string) => name === "" ? "unknown" : programIdentity(name);
  return [
    version,
    `driver ${programIdentity(driver)}`,
    `cc1 ${prog(cc1)}`,
    `as ${prog(as)}`,
    ...envPart(COMPILE_ENV, env),
  ].join("; ");
}

/**
 * Identity of a tool that does its work itself (NASM, ld) for its steps'
 * keys: its version line (`flag`, see {@link toolIdentity}), the real path
 * and identity of the file run (a rebuilt binary may say the same version),
 * and `vars` as `env` has them.
 */
async function programToolIdentity(
  tool: string,
  flag: string,
  vars: readonly string[],
  env: ToolEnv = process.env,
): Promise<string> {
  const version = await toolIdentity(tool, flag);
  return [version, `file ${programIdentity(tool)}`, ...envPart(vars, env)].join("; ");
}

/** The identities of a build's tools, each part of the keys of the steps that run it. */
export interface ToolIds {
  cc: string;
  nasm: string;
  ld: string;
  /** strip (binutils, beside ld; a rebuilt one may say the same version). */
  strip: string;
}

/** The C compiler a build runs: the one asked for, else $CC, else gcc. */
export function buildCompiler(cc: string | undefined, env: ToolEnv = process.env): string {
  return cc ?? env.CC ?? "gcc";
}

/**
 * The identities of the tools a build runs (the C compiler `cc`, and NASM,
 * ld and strip by the names the build runs them by, `nasm`, `ld` and
 * `strip`, which only a test changes), as its steps' keys hold them: the
 * one rule for what a build's output depends on besides its inputs. `cwd`:
 * where the build runs them (its root).
 */
export async function buildToolIds(
  cc: string,
  env: ToolEnv = process.env,
  names: { nasm: string; ld: string; strip?: string } = { nasm: "nasm", ld: "ld" },
  cwd: string = process.cwd(),
): Promise<ToolIds> {
  const [ccId, nasm, ld, strip] = await Promise.all([
    compilerIdentity(cc, env, cwd),
    programToolIdentity(names.nasm, "-v", NASM_ENV, env),
    programToolIdentity(names.ld, "--version", LD_ENV, env),
    // strip runs only for the user programs: a tree without them builds where there is none (its
    // step, if any, then fails saying so), and the identity changes once there is one.
    programToolIdentity(names.strip ?? "strip", "--version", [], env).catch((e) =>
      e instanceof BuildError
        ? `strip: ${e.message}; file ${programIdentity(names.strip ?? "strip")}`
        : Promise.reject(e)
    ),
  ]);
  return { cc: ccId, nasm, ld, strip };
}
