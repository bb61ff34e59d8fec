/** Shared helpers for the toolchain's tests. */
import { createHash } from "node:crypto";
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import {
  build,
  buildCompiler,
  type BuildOptions,
  type BuildResult,
  buildToolIds,
} from "../tools/build/build.ts";
import { RACY_MS, setFactClock } from "../tools/build/input_facts.ts";
import type { ToolEnv } from "../tools/build/steps.ts";
import { join, relative } from "node:path";
import { acquireLock } from "../tools/host/lockfile.ts";
import { BUILD_DIR, ROOT } from "../tools/paths.ts";
import { type KernelReport, REPORT_SCHEMA } from "../tools/core/record.ts";

let built: Promise<BuildResult> | undefined;

/**
 * The kernel under test, built once per test process (incrementally): this
 * repository's, or the tree at OUROBOROS_ROOT built into OUROBOROS_BUILD_DIR
 * (how the end-to-end tests point the suite at a kernel of their own).
 */
export function builtKernel(): Promise<BuildResult> {
  const root = Deno.env.get("OUROBOROS_ROOT") ?? ROOT;
  const outDir = Deno.env.get("OUROBOROS_BUILD_DIR");
  built ??= build({ root, outDir });
  return built;
}

/**
 * Run `f` with the build's facts taken as if 10 s later than now
 * (input_facts.ts setFactClock), so files just written count as aged and
 * their facts are kept: it is then the kept fact that must not hide a change.
 */
export async function aged<T>(f: () => Promise<T>): Promise<T> {
  setFactClock(() => Date.now() + 5 * RACY_MS);
  try {
    return await f();
  } finally {
    setFactClock(null);
  }
}

/** A script with `text` at `path`, executable (a fake tool, driver or QEMU). */
export async function executable(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(path, text);
  await Deno.chmod(path, 0o755);
}

/** A fresh temporary directory, removed by the returned cleanup. */
export async function tempDir(prefix = "ouroboros-test-"): Promise<[string, () => Promise<void>]> {
  const dir = await Deno.makeTempDir({ prefix });
  return [dir, () => Deno.remove(dir, { recursive: true })];
}

/** The smallest kernel tree that links: the real boot code and a `main.c` (by default, a kmain that spins). */
export async function smallKernel(
  dir: string,
  mainC = "void kmain(void) { for (;;) { } }\n",
): Promise<void> {
  await Deno.mkdir(join(dir, "kernel/arch/x86_64"), { recursive: true });
  await Deno.mkdir(join(dir, "kernel/include"), { recursive: true });
  await Deno.copyFile(
    join(ROOT, "kernel/arch/x86_64/boot.asm"),
    join(dir, "kernel/arch/x86_64/boot.asm"),
  );
  await Deno.writeTextFile(join(dir, "kernel/main.c"), mainC);
}

/** Where {@link cachedDir} keeps its directories (under build/: a clean clone makes them once). */
export const TEST_CACHE_DIR = join(BUILD_DIR, "test-cache");

/**
 * What a build reads, relative to the repository root: the kernel and user
 * sources, the layout and its generators, the toolchain that runs them, and
 * the pinned versions. Conservative: any change to the toolchain counts.
 */
export const BUILD_INPUTS = ["kernel", "user", "linker", "tools", "deno.json", "deno.lock"];

/** What a cached directory's content is made from. */
export interface CacheInputs {
  /** Files and directories (all files under them), relative to the repository root. */
  paths: readonly string[];
  /** Anything else it depends on (options, tool versions), as JSON. */
  values?: readonly unknown[];
}

async function hashPath(hash: ReturnType<typeof createHash>, path: string): Promise<void> {
  const info = await stat(path).catch(() => null);
  if (info === null) {
    hash.update(`missing ${relative(ROOT, path)}\0`);
  } else if (info.isDirectory()) {
    const names = (await readdir(path)).sort();
    for (const name of names) await hashPath(hash, join(path, name));
  } else if (info.isFile()) {
    const data = await readFile(path);
    hash.update(`file ${relative(ROOT, path)} ${data.length}\0`);
    hash.update(data);
  }
}

/** A SHA-256 over the inputs' names and contents and the values, in hex. */
export async function contentHash(inputs: CacheInputs): Promise<string> {
  const hash = createHash("sha256");
  for (const p of [...inputs.paths].sort()) await hashPath(hash, join(ROOT, p));
  hash.update(JSON.stringify(inputs.values ?? [], bigints));
  return hash.digest("hex");
}

/**
 * A directory that `make` fills, made again only when its inputs change:
 * `build/test-cache/<name>-<hash of the inputs>`. What a test would rebuild
 * or repack on every run is made once per content, so a cached directory is
 * exactly what `make` makes from these inputs (a test that needs a fresh
 * result, say a clean build, still gets one: a clean build of the same
 * inputs). One process makes it at a time (a lock file); a directory whose
 * `make` failed or was interrupted is never used (it has no completion mark)
 * and the next call starts it again from empty. Directories of the same name
 * for other inputs are removed.
 */
export async function cachedDir(
  name: string,
  inputs: CacheInputs,
  make: (dir: string) => Promise<void>,
): Promise<string> {
  const key = (await contentHash(inputs)).slice(0, 16);
  const dir = join(TEST_CACHE_DIR, `${name}-${key}`);
  const done = join(dir, ".complete");
  await Deno.mkdir(TEST_CACHE_DIR, { recursive: true });
  const lock = await acquireLock(join(TEST_CACHE_DIR, `${name}.lock.pid`));
  try {
    if (await stat(done).then(() => true, () => false)) return dir;
    for (const e of await readdir(TEST_CACHE_DIR)) {
      if (e.startsWith(`${name}-`)) await rm(join(TEST_CACHE_DIR, e), { recursive: true });
    }
    await Deno.mkdir(dir, { recursive: true });
    await make(dir);
    await writeFile(done, "");
    return dir;
  } finally {
    await lock.release();
  }
}

/**
 * What {@link cachedBuild}'s directory for `options` is made from: the tree
 * ({@link BUILD_INPUTS}), the options, and the tools' identities as the
 * build's own keys hold them (buildToolIds: the driver's own file, the
 * compiler proper and the assembler behind it, NASM's, ld's and strip's
 * files, the environment that changes what they do; headers found through
 * CPATH or C_INCLUDE_PATH are not held: see {@link uncachedHeaderVars}), `env` the process's unless a test gives another.
 */
export async function cachedBuildInputs(
  options: Omit<BuildOptions, "root" | "outDir" | "log">,
  env: ToolEnv = Deno.env.toObject(),
): Promise<CacheInputs> {
  const tools = await buildToolIds(buildCompiler(options.cc, env), env, undefined, ROOT);
  return { paths: BUILD_INPUTS, values: [options, tools] };
}

/** The variables naming directories the C compiler finds headers in. */
const HEADER_ENV = ["CPATH", "C_INCLUDE_PATH"] as const;

/**
 * The header-directory variables set (non-empty) in `env`, each a reason a
 * cached build must not be reused: with -MD the headers found through them
 * are the build's inputs, but {@link cachedBuildInputs} holds only the
 * variables' values, so a header edited there would leave the key as it was
 * and hand back a build of the old header. [] when neither is set.
 */
export function uncachedHeaderVars(env: ToolEnv = Deno.env.toObject()): string[] {
  return HEADER_ENV.filter((v) => (env[v] ?? "") !== "");
}

/** Fresh builds of this process (see {@link cachedBuild}), removed when it ends. */
const freshDirs: string[] = [];
globalThis.addEventListener("unload", () => {
  for (const dir of freshDirs) {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // Already gone.
    }
  }
});

/**
 * The kernel built from nothing with `options` into a directory of its own,
 * once per content of {@link cachedBuildInputs} (the tree, the options and
 * the tools): what a clean build of the tree as it is makes, without making
 * it again on every test run. With CPATH or C_INCLUDE_PATH set
 * ({@link uncachedHeaderVars}) it is built afresh into a temporary directory
 * on every call and never reused.
 */
export async function cachedBuild(
  name: string,
  options: Omit<BuildOptions, "root" | "outDir" | "log"> = {},
): Promise<BuildResult & { dir: string }> {
  const make = async (out: string) => {
    const r = await build({ ...options, root: ROOT, outDir: out });
    await writeFile(join(out, "result.json"), JSON.stringify(r, bigints));
  };
  let dir: string;
  if (uncachedHeaderVars().length > 0) {
    dir = await Deno.makeTempDir({ prefix: `ouroboros-${name}-` });
    freshDirs.push(dir);
    await make(dir);
  } else {
    dir = await cachedDir(name, await cachedBuildInputs(options), make);
  }
  const result: BuildResult = JSON.parse(
    await readFile(join(dir, "result.json"), "utf8"),
    (_k, v) => typeof v === "object" && v !== null && "bigint" in v ? BigInt(v.bigint) : v,
  );
  return { ...result, dir };
}

/** JSON of a bigint (the layout's addresses), read back by cachedBuild. */
function bigints(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? { bigint: value.toString() } : value;
}

/**
 * The kernel report `deno task test` hands over in OUROBOROS_KERNEL_REPORT
 * (null without one). Its kernel phase runs while the Deno tests start
 * (OUROBOROS_KERNEL_REPORT_PENDING): then the report is waited for; the
 * command writes it whole, or stops the tests if it cannot.
 */
export async function handedOverReport(): Promise<KernelReport | null> {
  const path = Deno.env.get("OUROBOROS_KERNEL_REPORT");
  if (path === undefined) return null;
  if (Deno.env.get("OUROBOROS_KERNEL_REPORT_PENDING") === "1") {
    while (!await stat(path).then(() => true, () => false)) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  const r = JSON.parse(await readFile(path, "utf8")) as KernelReport;
  if (r.schema !== REPORT_SCHEMA) throw new Error(`${path}: not a ${REPORT_SCHEMA} report`);
  return r;
}
