/**
 * The incremental kernel build: generate the layout files (generate.ts),
 * compile C and assemble NASM sources (compile.ts), link in two passes
 * (link.ts: placeholder boot tables, then the real ones computed from the
 * first link's symbols). buildLocked below is the one place the phases are
 * put in order.
 *
 * Every output carries a key (steps.ts): the tool command, the flags and
 * every input with the SHA-256 of its contents. An output whose key is
 * unchanged is not rebuilt, so a second build with nothing changed compiles
 * and links nothing.
 */
import { deriveLayout, type Layout, type LayoutConfig } from "../../linker/layout.ts";
import type { ElfImage } from "../core/elf.ts";
import { removeDeadLeftovers } from "../host/leftovers.ts";
import { acquireLock } from "../host/lockfile.ts";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { compileSteps } from "./compile.ts";
import type { BuildContext } from "./context.ts";
import {
  buildUser,
  compilerIncludeDir,
  type UserBuildResult,
  writeAbiFiles,
} from "./build_user.ts";
import { generate } from "./generate.ts";
import { link, placeholderTablesStep } from "./link.ts";
import { buildCompiler, BuildError, buildToolIds, driverPath, runAll } from "./steps.ts";
import { factsPartPid, loadFacts, saveFacts } from "./input_facts.ts";

export { BuildError };
// The engine, for modules of build/ that add steps (steps.ts is its home).
export { buildCompiler, buildToolIds, runAll, runStep, type Step, toolIdentity } from "./steps.ts";

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
  /**
   * The image at {@link elf}, parsed as the build read it for its own checks:
   * a caller that reads it next need not (the kernel is 2 MB, a read ~10 ms).
   */
  image: ElfImage;
}

/**
 * Build the kernel; throws BuildError with the tool's output on failure.
 * Builds into one output directory are serialized with a lock file
 * (host/lockfile.ts), so parallel test processes never write the same files at once.
 */
export async function build(options: BuildOptions): Promise<BuildResult> {
  const out = options.outDir ?? join(options.root, "build");
  await mkdir(out, { recursive: true });
  const lock = await acquireLock(join(out, ".build-lock.pid"));
  try {
    // What earlier builds learnt about the inputs (input_facts.ts); kept again for the next.
    loadFacts(out);
    try {
      return await buildLocked(options, out);
    } finally {
      // Facts only save work: failing to keep them must not hide the build's own result.
      await saveFacts(out, [options.root, out]).catch((e) =>
        console.error(`warning: the build's input facts were not kept: ${e}`)
      );
      // What killed builds left while saving theirs (host/leftovers.ts: dead and old only).
      await removeDeadLeftovers(out, factsPartPid);
    }
  } finally {
    await lock.release();
  }
}

/**
 * The build's phases, in order. Each is a module of build/: generate
 * (generate.ts), compile (compile.ts), link (link.ts), over keyed steps
 * (steps.ts) that run only when their inputs changed.
 */
async function buildLocked(options: BuildOptions, out: string): Promise<BuildResult> {
  const cc = buildCompiler(options.cc);
  // The user programs' build asks the compiler too: ask now, while the versions are asked
  // (its own question, later, gets this answer; its failure is reported there).
  if (existsSync(join(options.root, "user"))) {
    compilerIncludeDir(driverPath(cc, options.root)).catch(() => {});
  }
  const ids = await buildToolIds(cc, process.env, undefined, options.root);
  const ctx: BuildContext = {
    root: options.root,
    kernelDir: join(options.root, options.kernelDir ?? "kernel"),
    out,
    gen: join(out, "gen"),
    obj: join(out, "obj"),
    layout: deriveLayout(options.layout),
    cc,
    extraCFlags: options.extraCFlags ?? [],
    ids,
    log: options.log ?? (() => {}),
  };

  // 1. Generate the layout's files and the system-call ABI's.
  await generate(ctx);
  await writeAbiFiles(ctx.gen, ctx.layout);
  // 2. Compile the kernel's sources and the placeholder boot tables, in parallel.
  const kernel = await compileSteps(ctx);
  const placeholder = placeholderTablesStep(ctx);
  const batch = [...kernel, placeholder];
  // A further build step (user programs, an initrd) plugs in here: a module
  // of build/ that makes keyed steps from the context; they run in this batch
  // (or after it, if they need its objects), and their outputs go into
  // BuildResult.
  const compiled = await runAll(
    batch,
    ctx.root,
    availableParallelism(),
    (l) => ctx.log(`build ${l}`),
  );
  // 3. Link in two passes.
  const linked = await link(ctx, kernel.map((s) => s.output), placeholder.output);
  compiled.push(...linked.assembled);
  // 4. The user programs and their initrd (build_user.ts).
  const user = await buildUser({
    root: ctx.root,
    out,
    gen: ctx.gen,
    cc: ctx.cc,
    ccId: ctx.ids.cc,
    nasmId: ctx.ids.nasm,
    ldId: ctx.ids.ld,
    stripId: ctx.ids.strip,
    log: ctx.log,
  });
  if (user) compiled.push(...user.ran);
  return {
    elf: linked.elf,
    compiled,
    linked: linked.linked,
    layout: ctx.layout,
    user,
    image: linked.image,
  };
}
