/**
 * Compile: every C and NASM source of the kernel to an object, each a keyed
 * step (steps.ts) with the dependencies the compiler reports.
 */
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import type { BuildContext } from "./context.ts";
import type { Step } from "./steps.ts";

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

/**
 * The C compiler's dependency-file option (with -MF): -MD, which lists every
 * header the compile read. -MMD leaves out the headers found in system
 * directories, and those include C_INCLUDE_PATH's and -isystem's: an edit
 * of one would rebuild nothing, and a stale object would be linked.
 */
export const C_DEPFILE = "-MD";

/** The C and NASM sources under `dir`, sorted. */
export function listSources(dir: string): Promise<string[]> {
  const out: string[] = [];
  // Synchronously: node:fs's promise API costs several times the listing under Deno.
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(c|asm)$/.test(e.name)) out.push(p);
    }
  };
  try {
    walk(dir);
  } catch (e) {
    return Promise.reject(e);
  }
  return Promise.resolve(out.sort());
}

/** The steps that compile the kernel's sources (C with cc, assembly with NASM). */
export async function compileSteps(ctx: BuildContext): Promise<Step[]> {
  const { root, gen, obj, cc } = ctx;
  const includes = [`-I${gen}`, `-I${join(ctx.kernelDir, "include")}`];
  // __FILE__ relative to the repository, so diagnostics say kernel/tests/x.c.
  const prefixMap = `-fmacro-prefix-map=${root}/=`;
  const sources = await listSources(ctx.kernelDir);
  return sources.map((src) => {
    const rel = relative(root, src);
    const o = join(obj, rel + ".o");
    const d = o + ".d";
    const command = src.endsWith(".c")
      ? [
        cc,
        ...C_FLAGS,
        prefixMap,
        ...ctx.extraCFlags,
        ...includes,
        C_DEPFILE,
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
    const toolId = src.endsWith(".c") ? ctx.ids.cc : ctx.ids.nasm;
    return { output: o, command, inputs: [src], depfile: d, label: rel, toolId };
  });
}

/** A step that assembles a generated NASM file (the boot tables). */
export function asmStep(ctx: BuildContext, src: string, o: string, label: string): Step {
  return {
    output: o,
    command: ["nasm", "-f", "elf64", "-w+error", src, "-o", o],
    inputs: [src],
    label,
    toolId: ctx.ids.nasm,
  };
}
