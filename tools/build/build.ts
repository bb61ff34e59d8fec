/**
 * The incremental kernel build: generate the layout files, compile C and
 * assemble NASM sources, link in two passes (placeholder boot tables, then
 * the real ones computed from the first link's symbols).
 *
 * Every output carries a key: the SHA-256 of the tool command, the flags and
 * the contents of every input (sources and the headers the compiler reported
 * as dependencies). An output whose key is unchanged is not rebuilt, so a
 * second build with nothing changed compiles and links nothing.
 */
import { execa } from "execa";
import {
  bootTableNames,
  computeBootTables,
  type ImageSymbols,
  placeholderBootTables,
  renderBootTables,
} from "../../linker/boot_tables.ts";
import { hex, renderCHeader, renderNasmInclude } from "../../linker/constants.ts";
import { deriveLayout, type Layout, type LayoutConfig, PAGE_SIZE } from "../../linker/layout.ts";
import { renderLinkerScript, SECTION_SYMBOLS } from "../../linker/linker_script.ts";
import { buildUser, type UserBuildResult, writeAbiFiles } from "./build_user.ts";
import { parseElf, symbolValue } from "../core/elf.ts";
import { acquireLock } from "../host/lockfile.ts";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import process from "node:process";

/** What to build, and where. */
export interface BuildOptions {
  /** Repository root (holds kernel/). */
  root: string;
  /** Output directory; default `<root>/build`. */
  outDir?: string;
  /** C compiler; default $CC or `gcc`. */
  cc?: string;
  /** Layout configuration; default the project's. */
  layout?: LayoutConfig;
  /** Extra C flags (e.g. `-DKTEST_BROKEN` for tests of the build itself). */
  extraCFlags?: string[];
  /** Kernel source directory relative to root; default `kernel`. */
  kernelDir?: string;
  /** Called with a line of progress (e.g. "cc kernel/main.c"). */
  log?: (line: string) => void;
}

/** The outcome of a build. */
export interface BuildResult {
  /** The linked kernel image. */
  elf: string;
  /** Sources that were compiled or assembled in this run. */
  compiled: string[];
  /** True when the kernel was (re)linked in this run. */
  linked: boolean;
  layout: Layout;
  /** The user programs and their initrd (build_user.ts); null when the project has no user/. */
  user: UserBuildResult | null;
}

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

const C_FLAGS = [
  "-std=gnu11",
  "-ffreestanding",
  "-fno-builtin",
  "-nostdlib",
  "-mcmodel=kernel",
  "-mno-red-zone",
  "-mgeneral-regs-only",
  "-fno-pic",
  "-fno-pie",
  "-fno-stack-protector",
  "-fno-omit-frame-pointer",
  "-fno-asynchronous-unwind-tables",
  "-O2",
  "-g",
  "-Wall",
  "-Wextra",
  "-Werror",
];

const LD_FLAGS = [
  "-nostdlib",
  "-static",
  "-z",
  // Segments aligned to the layout's page size, not ld's default 2 MiB.
  `max-page-size=${hex(PAGE_SIZE)}`,
  "-z",
  "noexecstack",
  "--build-id=none",
];

async function sha256(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function readOrNull(path: string): Promise<Uint8Array | null> {
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

/** Write a file only if its content differs, so its consumers' keys stay put. */
async function writeIfChanged(path: string, content: string): Promise<void> {
  const old = await readOrNull(path);
  if (old && new TextDecoder().decode(old) === content) return;
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, content);
}

/** Files listed in a make-style dependency file, or [] if there is none. */
async function depfileInputs(path: string, cwd: string): Promise<string[]> {
  const raw = await readOrNull(path);
  if (!raw) return [];
  const text = new TextDecoder().decode(raw).replace(/\\\n/g, " ");
  const rules = text.split("\n").filter((l) => l.includes(":"));
  const deps = rules.flatMap((l) => l.slice(l.indexOf(":") + 1).trim().split(/\s+/));
  // The compiler ran in cwd: relative dependencies are relative to it.
  return [...new Set(deps.filter(Boolean).map((d) => resolve(cwd, d)))];
}

/** Key of a command over its inputs' contents; a missing input gives a fresh key. */
async function keyOf(command: string[], inputs: string[]): Promise<string> {
  const parts = [command.join("\0")];
  for (const f of [...inputs].sort()) {
    const data = await readOrNull(f);
    parts.push(f, data ? await sha256(data) : "missing");
  }
  return sha256(parts.join("\n"));
}

async function run(cmd: string[], cwd: string, file: string): Promise<void> {
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
  /** Identity of the tool (its version line), so an upgrade rebuilds. */
  toolId: string;
}

/** Run a step unless its key is unchanged; returns true if it ran. */
export async function runStep(step: Step, cwd: string): Promise<boolean> {
  const keyFile = step.output + ".key";
  const deps = step.depfile ? await depfileInputs(step.depfile, cwd) : [];
  const key = await keyOf([step.toolId, ...step.command], [...step.inputs, ...deps]);
  const old = await readOrNull(keyFile);
  const have = await readOrNull(step.output);
  if (have && old && new TextDecoder().decode(old) === key) return false;
  await mkdir(dirname(step.output), { recursive: true });
  await rm(keyFile, { force: true });
  await run(step.command, cwd, step.label);
  // The key must cover the dependencies of the build that just ran.
  const newDeps = step.depfile ? await depfileInputs(step.depfile, cwd) : [];
  await writeFile(
    keyFile,
    await keyOf([step.toolId, ...step.command], [...step.inputs, ...newDeps]),
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
  const worker = async () => {
    for (let s = queue.shift(); s; s = queue.shift()) {
      try {
        if (await runStep(s, cwd)) {
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

async function listSources(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (/\.(c|asm)$/.test(e.name)) out.push(p);
    }
  };
  await walk(dir);
  return out.sort();
}

async function readSymbols(elf: string): Promise<ImageSymbols> {
  const image = parseElf(await readFile(elf));
  const names = [...SECTION_SYMBOLS, "boot_pml4"] as const;
  return Object.fromEntries(names.map((n) => [n, symbolValue(image, n)])) as ImageSymbols;
}

/** First line of `tool --version` (or -v), or a BuildError if the tool does not run. */
export async function toolIdentity(tool: string, flag = "--version"): Promise<string> {
  const r = await execa(tool, [flag], { reject: false });
  if (r.failed) throw new BuildError(tool, `cannot run ${tool}: ${r.shortMessage ?? r.message}`);
  return `${tool}: ${String(r.stdout).split("\n")[0]}`;
}

/**
 * Build the kernel; throws BuildError with the tool's output on failure.
 * Builds into one output directory are serialized with a lock file
 * (lockfile.ts), so parallel test processes never write the same files at once.
 */
export async function build(options: BuildOptions): Promise<BuildResult> {
  const out = options.outDir ?? join(options.root, "build");
  await mkdir(out, { recursive: true });
  const lock = await acquireLock(join(out, ".build-lock.pid"));
  try {
    return await buildLocked(options, out);
  } finally {
    await lock.release();
  }
}

async function buildLocked(options: BuildOptions, out: string): Promise<BuildResult> {
  const root = options.root;
  const cc = options.cc ?? process.env.CC ?? "gcc";
  const log = options.log ?? (() => {});
  const layout = deriveLayout(options.layout);
  const gen = join(out, "gen");
  const obj = join(out, "obj");

  await writeIfChanged(join(gen, "layout.h"), renderCHeader(layout));
  await writeIfChanged(join(gen, "layout.inc"), renderNasmInclude(layout));
  await writeIfChanged(join(gen, "kernel.ld"), renderLinkerScript(layout));
  await writeAbiFiles(gen, layout);
  await writeIfChanged(
    join(gen, "boot_tables_pass1.asm"),
    renderBootTables(placeholderBootTables(layout)),
  );

  const [ccId, nasmId, ldId] = await Promise.all([
    toolIdentity(cc),
    toolIdentity("nasm", "-v"),
    toolIdentity("ld"),
  ]);
  const kdir = join(root, options.kernelDir ?? "kernel");
  const includes = [`-I${gen}`, `-I${join(kdir, "include")}`];
  // __FILE__ relative to the repository, so diagnostics say kernel/tests/x.c.
  const prefixMap = `-fmacro-prefix-map=${root}/=`;
  const sources = await listSources(kdir);
  const steps: Step[] = sources.map((src) => {
    const rel = relative(root, src);
    const o = join(obj, rel + ".o");
    const d = o + ".d";
    const command = src.endsWith(".c")
      ? [
        cc,
        ...C_FLAGS,
        prefixMap,
        ...(options.extraCFlags ?? []),
        ...includes,
        "-MMD",
        "-MF",
        d,
        "-c",
        rel,
        "-o",
        o,
      ]
      : [
        "nasm",
        "-f",
        "elf64",
        "-g",
        "-F",
        "dwarf",
        "-w+error",
        `-I${gen}/`,
        "-MD",
        d,
        rel,
        "-o",
        o,
      ];
    const toolId = src.endsWith(".c") ? ccId : nasmId;
    return { output: o, command, inputs: [src], depfile: d, label: rel, toolId };
  });
  const asmStep = (src: string, o: string, label: string): Step => ({
    output: o,
    command: ["nasm", "-f", "elf64", "-w+error", src, "-o", o],
    inputs: [src],
    label,
    toolId: nasmId,
  });
  const pass1Tables = asmStep(
    join(gen, "boot_tables_pass1.asm"),
    join(obj, "boot_tables_pass1.o"),
    "boot tables (placeholder)",
  );
  const cores = availableParallelism();
  const compiled = await runAll([...steps, pass1Tables], root, cores, (l) => log(`build ${l}`));

  const objects = steps.map((s) => s.output);
  const script = join(gen, "kernel.ld");
  const linkStep = (tables: string, elf: string, label: string): Step => ({
    output: elf,
    command: ["ld", ...LD_FLAGS, "-T", script, "-o", elf, ...objects, tables],
    inputs: [script, ...objects, tables],
    label,
    toolId: ldId,
  });
  const pass1 = join(out, "kernel.pass1.elf");
  const linked1 = await runStep(linkStep(pass1Tables.output, pass1, "link (pass 1)"), root);
  if (linked1) log("build link (pass 1)");

  const sym1 = await readSymbols(pass1);
  await writeIfChanged(
    join(gen, "boot_tables.asm"),
    renderBootTables(computeBootTables(layout, sym1)),
  );
  const tables = asmStep(join(gen, "boot_tables.asm"), join(obj, "boot_tables.o"), "boot tables");
  if (await runStep(tables, root)) compiled.push(tables.label);

  const elf = join(out, "kernel.elf");
  const linked = await runStep(linkStep(tables.output, elf, "link"), root);
  if (linked) {
    log("build link");
    const sym2 = await readSymbols(elf);
    const moved = Object.keys(sym1).filter((k) =>
      sym1[k as keyof ImageSymbols] !== sym2[k as keyof ImageSymbols]
    );
    if (moved.length) {
      await rm(elf);
      throw new BuildError(elf, `symbols moved between link passes: ${moved.join(", ")}`);
    }
  }
  // Sanity: every table label the generator knows is in the image.
  const image = parseElf(await readFile(elf));
  for (const n of bootTableNames(layout)) symbolValue(image, n);
  const user = await buildUser({ root, out, gen, cc, ccId, nasmId, ldId, log });
  if (user) compiled.push(...user.ran);
  return { elf, compiled, linked: linked || linked1, layout, user };
}
