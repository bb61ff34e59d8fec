/**
 * Linux with KUnit, built from Debian's linux-source package by Linux's own
 * `tools/testing/kunit/kunit.py build --arch=x86_64`, for the opt-in proof
 * that the runner serves a kernel that is not ours (tests/linux_kunit_test.ts,
 * OUROBOROS_LINUX_KUNIT=1; CI's `linux-kunit` job).
 *
 * The build is cached outside the repository, in
 * `<cache>/linux-kunit-<key>` (`$XDG_CACHE_HOME/ouroboros` or
 * `~/.cache/ouroboros`): the key hashes the source tarball's name, size and
 * time, the kunitconfig and the patches, so a change to any of them builds
 * anew and an unchanged one is reused at once. The directory holds the
 * extracted, patched source (`linux-source-6.1/`), kunit.py's build
 * directory (`build/`), its output (`build.log`) and, once the image is
 * made, `done` (the key and the build's duration).
 *
 * `deno run -A tools/build/linux_kunit.ts` builds (or finds) the image with
 * the fixtures' kunitconfig and patch and prints its path.
 */
import { execa } from "execa";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, realpath, rename, rm, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, join, resolve } from "node:path";
import process from "node:process";
import { ROOT } from "../paths.ts";

/** Debian's package `linux-source-6.1` puts the source here. */
export const LINUX_SOURCE_TARBALL = "/usr/src/linux-source-6.1.tar.xz";
/** The fixtures: a small kunitconfig and a patch that makes one test fail. */
export const KUNIT_FIXTURES = {
  kunitconfig: join(ROOT, "tests/fixtures/linux-kunit/kunitconfig"),
  patches: [join(ROOT, "tests/fixtures/linux-kunit/fail.patch")],
} as const;
/** Where kunit.py puts the image inside its build directory (qemu_configs/x86_64.py). */
export const BZIMAGE = "arch/x86/boot/bzImage";
/** Bumped when the way of building changes, so old caches are not taken for new ones. */
const BUILDER_VERSION = "1";

/** What to build. */
export interface LinuxKunitOptions {
  /** The kunitconfig file. */
  kunitconfig: string;
  /** Patches applied (`patch -p1`) to the extracted source, in order. */
  patches: readonly string[];
  /** The source tarball; default {@link LINUX_SOURCE_TARBALL}. */
  tarball?: string;
  /** Parent of the cache directories; default {@link defaultCacheRoot}. */
  cacheRoot?: string;
  /** make's jobs; default 2. */
  jobs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** A built image. */
export interface LinuxKunitBuild {
  /** The bzImage. */
  image: string;
  /** The cache directory. */
  dir: string;
  /** The patched source tree (kunit.py parse lives in it). */
  source: string;
  /** True if it was found built. */
  cached: boolean;
  /** How long the build took (this time, or when it was made). */
  buildMs: number;
}

/** A build that could not be made; the message says which step and shows its output's end. */
export class LinuxKunitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LinuxKunitError";
  }
}

/** `$XDG_CACHE_HOME/ouroboros`, else `~/.cache/ouroboros`. */
export function defaultCacheRoot(env: Record<string, string | undefined> = process.env): string {
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache");
  return join(base, "ouroboros");
}

/** The cache key: the tarball (name, size, time), the kunitconfig, the patches, the builder. */
export async function cacheKey(options: LinuxKunitOptions): Promise<string> {
  const tarball = options.tarball ?? LINUX_SOURCE_TARBALL;
  const t = await stat(tarball).catch(() => {
    throw new LinuxKunitError(
      `${tarball} not found: install Debian's linux-source-6.1 (apt-get install linux-source-6.1)`,
    );
  });
  const h = createHash("sha256");
  h.update(`builder ${BUILDER_VERSION}\n${basename(tarball)} ${t.size} ${t.mtimeMs}\n`);
  h.update(await readFile(options.kunitconfig));
  for (const p of options.patches) h.update(`\npatch ${basename(p)}\n`).update(await readFile(p));
  return h.digest("hex").slice(0, 16);
}

async function step(what: string, command: string, args: string[], cwd: string, logFile: string) {
  const r = await execa(command, args, { cwd, reject: false, stdin: "ignore", all: true });
  const out = String(r.all ?? "");
  await writeFile(logFile, `$ ${command} ${args.join(" ")}\n${out}\n`, { flag: "a" });
  if (r.exitCode !== 0) {
    const tail = out.trim().split("\n").slice(-30).join("\n");
    throw new LinuxKunitError(`${what} failed (exit ${r.exitCode ?? r.signal}):\n${tail}`);
  }
}

/** The source directory inside the tarball (`linux-source-6.1`). */
function sourceName(tarball: string): string {
  return basename(tarball).replace(/\.tar(\.\w+)?$/, "");
}

/** Build (or find built) Linux with KUnit for x86_64; see the module comment. */
export async function buildLinuxKunit(options: LinuxKunitOptions): Promise<LinuxKunitBuild> {
  const tarball = options.tarball ?? LINUX_SOURCE_TARBALL;
  const key = await cacheKey(options);
  // Its real path: kbuild records absolute paths, so one build is always made under one name.
  const named = join(options.cacheRoot ?? defaultCacheRoot(), `linux-kunit-${key}`);
  const dir = await realpath(named).catch(() => named);
  const source = join(dir, sourceName(tarball));
  const buildDir = join(dir, "build");
  const image = join(buildDir, BZIMAGE);
  const doneFile = join(dir, "done");
  const done = await readFile(doneFile, "utf8").then((t) => JSON.parse(t), () => null);
  if (done?.key === key && existsSync(image)) {
    return { image, dir, source, cached: true, buildMs: done.buildMs };
  }
  const log = options.log ?? (() => {});
  const logFile = join(dir, "build.log");
  const t0 = performance.now();
  await mkdir(dir, { recursive: true });
  if (!existsSync(join(source, ".ouroboros-patched"))) {
    // Extract and patch afresh: a half-extracted or half-patched tree is not trusted.
    await rm(source, { recursive: true, force: true });
    const part = `${source}.partial`;
    await rm(part, { recursive: true, force: true });
    await mkdir(part);
    log(`linux-kunit: extracting ${tarball} into ${dir}`);
    await step("extracting the source", "tar", ["-xf", tarball, "-C", part], dir, logFile);
    await rename(join(part, sourceName(tarball)), source);
    await rm(part, { recursive: true, force: true });
    for (const p of options.patches) {
      log(`linux-kunit: applying ${p}`);
      await step(`applying ${p}`, "patch", ["-p1", "-i", resolve(p)], source, logFile);
    }
    await writeFile(join(source, ".ouroboros-patched"), options.patches.join("\n") + "\n");
  }
  log(`linux-kunit: kunit.py build --arch=x86_64 (make -j${options.jobs ?? 2}; minutes)`);
  await step(
    "kunit.py build",
    "nice",
    [
      "-n",
      "10",
      "python3",
      join(source, "tools/testing/kunit/kunit.py"),
      "build",
      "--arch=x86_64",
      `--build_dir=${buildDir}`,
      `--kunitconfig=${resolve(options.kunitconfig)}`,
      `--jobs=${options.jobs ?? 2}`,
    ],
    source,
    logFile,
  );
  if (!existsSync(image)) throw new LinuxKunitError(`kunit.py build made no ${image}`);
  const buildMs = Math.round(performance.now() - t0);
  await writeFile(doneFile, JSON.stringify({ key, buildMs, image }) + "\n");
  return { image, dir, source, cached: false, buildMs };
}

if (import.meta.main) {
  try {
    const b = await buildLinuxKunit({
      ...KUNIT_FIXTURES,
      log: (l) => console.error(l),
    });
    const how = b.cached ? "cached" : "built";
    console.error(`linux-kunit: ${how} (build took ${(b.buildMs / 1000).toFixed(0)} s)`);
    console.log(b.image);
  } catch (e) {
    if (!(e instanceof LinuxKunitError)) throw e;
    console.error(`error: ${e.message}`);
    process.exit(1);
  }
}

/**
 * Linux's kunit_tool alone (`tools/testing/kunit/`, to run `kunit.py parse`
 * on a log), extracted once from the source tarball into
 * `<cache>/kunit-tool-<tarball key>`; null when the tarball is not installed.
 */
export async function kunitTool(
  options: { tarball?: string; cacheRoot?: string } = {},
): Promise<string | null> {
  const tarball = options.tarball ?? LINUX_SOURCE_TARBALL;
  const t = await stat(tarball).catch(() => null);
  if (t === null) return null;
  const key = createHash("sha256").update(`${basename(tarball)} ${t.size} ${t.mtimeMs}`).digest(
    "hex",
  ).slice(0, 16);
  const dir = join(options.cacheRoot ?? defaultCacheRoot(), `kunit-tool-${key}`);
  const inTar = `${sourceName(tarball)}/tools/testing/kunit`;
  const script = join(dir, inTar, "kunit.py");
  if (existsSync(script)) return script;
  const part = `${dir}.partial-${process.pid}`;
  await mkdir(part, { recursive: true });
  const r = await execa("tar", ["-xf", tarball, "-C", part, inTar], {
    reject: false,
    stdin: "ignore",
    all: true,
  });
  if (r.exitCode !== 0) {
    await rm(part, { recursive: true, force: true });
    throw new LinuxKunitError(`extracting kunit_tool from ${tarball} failed: ${r.all}`);
  }
  // Another process may have finished first: its copy is as good.
  await rename(part, dir).catch(() => rm(part, { recursive: true, force: true }));
  return script;
}
