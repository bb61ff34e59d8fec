/**
 * The build's user-space half (issue 12): the generated ABI files (error
 * numbers, system calls, the user linker script) next to layout.h. Kept out
 * of build.ts so the kernel build only calls in here.
 */
import { renderUserLayoutHeader } from "../../linker/constants.ts";
import { renderKernelErrors } from "../../linker/errors.ts";
import type { Layout } from "../../linker/layout.ts";
import {
  renderKernelSyscalls,
  renderNasmSyscalls,
  renderUserSyscalls,
} from "../../linker/syscalls.ts";
import { renderUserLinkerScript } from "../../linker/user_linker_script.ts";
import { Buffer } from "node:buffer";
import { existsSync, readdirSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join, relative } from "node:path";
import { runAll, type Step } from "./build.ts";
import { C_DEPFILE } from "./compile.ts";
import { driverPath, writeIfChanged } from "./steps.ts";
import { toolFact } from "./input_facts.ts";
import { writeCpio } from "../core/cpio.ts";
import { commandText } from "../host/command.ts";
import { INITRD_NAME } from "../host/initrd.ts";

/** Directory of the user programs' generated headers and linker script, under gen/. */
export function userGenDir(gen: string): string {
  return join(gen, "user");
}

/**
 * Write the generated ABI files into `gen` (the kernel's include directory):
 * errors.h, syscalls.h, syscalls.inc; and into gen/user: syscall.h, layout.h, user.ld.
 */
export async function writeAbiFiles(gen: string, layout: Layout): Promise<void> {
  await writeIfChanged(join(gen, "errors.h"), renderKernelErrors());
  await writeIfChanged(join(gen, "syscalls.h"), renderKernelSyscalls());
  await writeIfChanged(join(gen, "syscalls.inc"), renderNasmSyscalls());
  const user = userGenDir(gen);
  await writeIfChanged(join(user, "syscall.h"), renderUserSyscalls());
  await writeIfChanged(join(user, "layout.h"), renderUserLayoutHeader(layout));
  await writeIfChanged(join(user, "user.ld"), renderUserLinkerScript(layout));
}

/** Flags of every user C file: static, freestanding, no system libc, general registers only. */
export const USER_C_FLAGS = [
  "-std=gnu11",
  "-ffreestanding",
  "-fno-builtin",
  "-nostdlib",
  "-nostdinc",
  "-fno-pic",
  "-fno-pie",
  "-fno-stack-protector",
  "-fno-omit-frame-pointer",
  "-fno-asynchronous-unwind-tables",
  // The loops of memset/memcpy must not be turned back into calls to themselves.
  "-fno-tree-loop-distribute-patterns",
  // The kernel saves general registers only on a switch: no SSE in user code either.
  "-mgeneral-regs-only",
  "-O2",
  "-g",
  "-Wall",
  "-Wextra",
  "-Werror",
];

const USER_LD_FLAGS = [
  "-nostdlib",
  "-static",
  "-z",
  "max-page-size=0x1000",
  "-z",
  "noexecstack",
  "--build-id=none",
];

/** One user program: its archive name ("bin/hello") and its linked ELF. */
export interface UserProgram {
  name: string;
  /** The linked program, with debug information (what the symbolizer reads). */
  elf: string;
  /** Its stripped copy: what the initrd holds. */
  packed: string;
}

/** What the user build made. */
export interface UserBuildResult {
  programs: UserProgram[];
  /** The cpio newc archive of every program, named by archive path. */
  initrd: string;
  /** Sources compiled and programs linked in this run (labels). */
  ran: string[];
}

/** What the user build needs from the kernel build. */
export interface UserBuildContext {
  root: string;
  out: string;
  gen: string;
  cc: string;
  ccId: string;
  nasmId: string;
  ldId: string;
  stripId: string;
  log: (line: string) => void;
}

/** Files under `dir` whose names match `re`, sorted ([] if there is no `dir`). */
function listFiles(dir: string, re: RegExp): string[] {
  const out: string[] = [];
  let entries;
  try {
    // Synchronously: node:fs's promise API costs several times the listing under Deno.
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  for (const e of entries) {
    if (e.isDirectory()) out.push(...listFiles(join(dir, e.name), re));
    else if (re.test(e.name)) out.push(join(dir, e.name));
  }
  return out.sort();
}

/** The initrd's path under a build directory. */
export function initrdPath(out: string): string {
  return join(out, INITRD_NAME);
}

/**
 * The compiler's own freestanding headers (`cc -print-file-name=include`),
 * which -nostdinc drops. Asked once per compiler binary (input_facts.ts);
 * the build asks early, while it asks the tools' versions.
 */
export async function compilerIncludeDir(cc: string): Promise<string> {
  return await toolFact(cc, "-print-file-name=include", async () => {
    const r = await commandText(cc, ["-print-file-name=include"]);
    if (r.failed) throw new Error(r.shortMessage);
    return r.stdout.trim();
  });
}

/**
 * Build the user programs when the project has a `user/` folder (null
 * otherwise): user/lib/ (*.c, *.asm) is the library linked into each
 * program; each user/bin/X.c and user/tests/X.c is one program, linked with
 * the generated user.ld into out/user/{bin,tests}/X.elf; then every program
 * is packed into out/initrd.cpio as bin/X and tests/X. Incremental like the
 * kernel: a step whose inputs did not change does not run again.
 */
export async function buildUser(ctx: UserBuildContext): Promise<UserBuildResult | null> {
  const udir = join(ctx.root, "user");
  if (!existsSync(udir)) return null;
  const obj = join(ctx.out, "obj");
  const ugen = userGenDir(ctx.gen);
  const includes = [`-I${ugen}`, `-I${join(udir, "include")}`];
  const cflags = [...USER_C_FLAGS, `-fmacro-prefix-map=${ctx.root}/=`];
  // -nostdinc drops the compiler's own freestanding headers too: add them back.
  // Asked once per compiler binary (input_facts.ts).
  const gccInclude = await compilerIncludeDir(driverPath(ctx.cc, ctx.root));
  const compile = (src: string): Step => {
    const rel = relative(ctx.root, src);
    const o = join(obj, rel + ".o");
    const d = o + ".d";
    const asm = src.endsWith(".asm");
    const command = asm
      ? ["nasm", "-f", "elf64", "-g", "-F", "dwarf", "-w+error", "-MD", d, rel, "-o", o]
      : [
        ctx.cc,
        ...cflags,
        "-isystem",
        gccInclude,
        ...includes,
        C_DEPFILE,
        "-MF",
        d,
        "-c",
        rel,
        "-o",
        o,
      ];
    return {
      output: o,
      command,
      inputs: [src],
      depfile: d,
      label: rel,
      toolId: asm ? ctx.nasmId : ctx.ccId,
    };
  };
  const lib = (listFiles(join(udir, "lib"), /\.(c|asm)$/)).map(compile);
  const mains = [
    ...listFiles(join(udir, "bin"), /\.c$/),
    ...listFiles(join(udir, "tests"), /\.c$/),
  ];
  const progs = mains.map(compile);
  const cores = availableParallelism();
  const ran = await runAll([...lib, ...progs], ctx.root, cores, (l) => ctx.log(`build ${l}`));
  const script = join(ugen, "user.ld");
  const crt0 = lib.filter((s) => /crt0\.asm\.o$/.test(s.output));
  const rest = lib.filter((s) => !crt0.includes(s)).map((s) => s.output);
  const programs: UserProgram[] = [];
  const links: Step[] = mains.map((src, i) => {
    const name = relative(udir, src).replace(/\.c$/, "");
    const elf = join(ctx.out, "user", name + ".elf");
    programs.push({ name, elf, packed: elf.replace(/\.elf$/, ".stripped.elf") });
    const objects = [...crt0.map((s) => s.output), progs[i].output, ...rest];
    return {
      output: elf,
      command: ["ld", ...USER_LD_FLAGS, "-T", script, "-o", elf, ...objects],
      inputs: [script, ...objects],
      label: `link user/${name}`,
      toolId: ctx.ldId,
    };
  });
  ran.push(...await runAll(links, ctx.root, cores, (l) => ctx.log(`build ${l}`)));
  // The initrd carries stripped copies (a third of the size: boot paths fetch it over TFTP);
  // the ELFs with debug information stay beside them for the runner's symbolizer.
  const strips: Step[] = programs.map((p) => ({
    output: p.packed,
    command: ["strip", "--strip-all", "-o", p.packed, p.elf],
    inputs: [p.elf],
    label: `strip user/${p.name}`,
    toolId: ctx.stripId,
  }));
  ran.push(...await runAll(strips, ctx.root, cores, (l) => ctx.log(`build ${l}`)));
  const files = await Promise.all(
    programs.map(async (p) => ({ name: p.name, data: await readFile(p.packed) })),
  );
  const initrd = initrdPath(ctx.out);
  const archive = writeCpio(files);
  const old = await readFile(initrd).catch(() => null);
  if (!old || Buffer.compare(old, archive) !== 0) {
    await writeFile(initrd, archive);
    ran.push("initrd");
    ctx.log(`build initrd (${programs.length} programs, ${archive.length} bytes)`);
  }
  return { programs, initrd, ran };
}
