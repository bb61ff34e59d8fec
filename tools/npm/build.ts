/**
 * `deno task npm`: the toolchain as an npm package for Node users, in
 * build/npm/ (paths.ts NPM_DIR). Not with @deno/dnt, which is published only
 * on JSR, which this project's machines cannot reach; instead:
 *
 * 1. `deno bundle --platform=node` bundles the CLI (bin.ts) and the library
 *    (lib.ts) into ES modules under dist/, sharing one chunk; the npm
 *    packages the toolchain imports ({@link EXTERNALS}) stay imports,
 *    installed by npm as dependencies at the versions deno.json pins;
 * 2. the bundle is checked: no Deno API in it, no package import but those,
 *    and Node parses every file (`node --check`: syntax newer than the Node
 *    that runs this is caught);
 * 3. TypeScript (pinned, from npm) writes the library's declarations from
 *    the sources into types/, relative `.ts` imports rewritten to `.js`
 *    (without type checking, which `deno task check` does: 2 s, not 6);
 * 4. package.json is the template (package.template.json) with the version
 *    from deno.json and the dependencies from deno.json's imports; the
 *    README is README.md of this directory.
 */
import { execa } from "execa";
import { chmod, cp, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import process from "node:process";
import { acquireLock } from "../host/lockfile.ts";
import { BUILD_DIR, NPM_DIR, ROOT } from "../paths.ts";

/** TypeScript that writes the declarations: the version Deno 2.9.6 checks with. */
export const TYPESCRIPT_VERSION = "6.0.3";
/** Node's types: the oldest Node line the package supports. */
export const NODE_TYPES_VERSION = "20.19.25";
/** Where TypeScript is installed (npm's cache makes a second install quick). */
const TSC_DIR = join(BUILD_DIR, "npm-tsc");
const HERE = join(ROOT, "tools/npm");
/** The npm packages the toolchain's code imports: the package's dependencies. */
export const EXTERNALS = ["execa"] as const;
/** A deno.json import of an npm package: `npm:name@version`. */
const NPM_IMPORT = /^npm:((?:@[^/@]+\/)?[^@]+)@(.+)$/;
/** A static or dynamic import in the bundle, with its specifier. */
const IMPORT_SPECIFIER =
  /(?:^|[\s;])(?:import|export)\b[^"';]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/gm;
/** Numbers this process's builds (for their file names). */
let builds = 0;

/** What the build made. */
export interface PackageBuild {
  /** The package directory. */
  dir: string;
  /** Its package.json, as written. */
  manifest: Record<string, unknown>;
}

/** The build failed; the message says where. */
export class PackageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PackageError";
  }
}

async function run(cmd: string, args: string[], cwd = ROOT): Promise<string> {
  const r = await execa(cmd, args, { cwd, reject: false, all: true, stdin: "ignore" });
  if (r.failed) {
    throw new PackageError(`${cmd} ${args.join(" ")} failed:\n${r.all || r.message}`);
  }
  return String(r.all ?? "");
}

/** The package's dependencies: each of {@link EXTERNALS} at the version deno.json pins. */
export function dependenciesOf(denoJson: { imports?: Record<string, string> }) {
  const pinned = new Map<string, string>();
  for (const target of Object.values(denoJson.imports ?? {})) {
    const m = NPM_IMPORT.exec(target);
    if (m !== null) pinned.set(m[1], m[2]);
  }
  const deps: Record<string, string> = {};
  for (const name of EXTERNALS) {
    const version = pinned.get(name);
    if (version === undefined) throw new PackageError(`deno.json does not pin npm:${name}`);
    deps[name] = version;
  }
  return deps;
}

/** The bare specifiers (packages) a bundle file imports; node: builtins and relative files aside. */
export function packageImports(js: string): string[] {
  const found = new Set<string>();
  for (const m of js.matchAll(IMPORT_SPECIFIER)) {
    const spec = m[1] ?? m[2];
    if (spec.startsWith("node:") || spec.startsWith(".")) continue;
    found.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]);
  }
  return [...found].sort();
}

/** Every file under `dir`, sorted. */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...await filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

async function bundle(dist: string): Promise<void> {
  await run(process.execPath, [
    "bundle",
    "--platform=node",
    "--code-splitting",
    `--outdir=${dist}`,
    ...EXTERNALS.map((name) => `--external=${name}`),
    join(HERE, "bin.ts"),
    join(HERE, "lib.ts"),
  ]);
  const files = (await filesUnder(dist)).filter((f) => f.endsWith(".js"));
  for (const f of files) {
    const text = await readFile(f, "utf8");
    const leak = text.split("\n").findIndex((l) => /\bDeno\./.test(l));
    if (leak >= 0) {
      throw new PackageError(`${relative(ROOT, f)}:${leak + 1} uses a Deno API under Node`);
    }
    const undeclared = packageImports(text).filter((p) =>
      !(EXTERNALS as readonly string[]).includes(p)
    );
    if (undeclared.length > 0) {
      throw new PackageError(
        `${relative(ROOT, f)} imports ${undeclared.join(", ")}: not a dependency`,
      );
    }
    await run("node", ["--check", f]);
  }
  await chmod(join(dist, "bin.js"), 0o755);
}

/**
 * Install the pinned TypeScript and Node types unless they are there (one
 * install at a time: a test may build the package while the task does).
 */
async function installTsc(): Promise<string> {
  await mkdir(TSC_DIR, { recursive: true });
  const lock = await acquireLock(join(TSC_DIR, ".install-lock.pid"));
  try {
    await installTscLocked();
  } finally {
    await lock.release();
  }
  return join(TSC_DIR, "node_modules", "typescript", "bin", "tsc");
}

async function installTscLocked(): Promise<void> {
  const want: Record<string, string> = {
    typescript: TYPESCRIPT_VERSION,
    "@types/node": NODE_TYPES_VERSION,
  };
  const have = async (name: string) => {
    const pkg = join(TSC_DIR, "node_modules", name, "package.json");
    return JSON.parse(await readFile(pkg, "utf8").catch(() => "{}")).version;
  };
  const missing = [];
  for (const [name, version] of Object.entries(want)) {
    if (await have(name) !== version) missing.push(`${name}@${version}`);
  }
  if (missing.length > 0) {
    await writeFile(join(TSC_DIR, "package.json"), JSON.stringify({ private: true }) + "\n");
    await run("npm", [
      "install",
      "--no-audit",
      "--no-fund",
      "--no-package-lock",
      "--save-exact",
      ...missing,
    ], TSC_DIR);
  }
}

/** Relative `.ts` specifiers in declarations become `.js`, as in the bundle's world. */
export function rewriteSpecifiers(dts: string): string {
  return dts.replace(
    /((?:from\s+|import\s*\(\s*)["'])(\.{1,2}\/[^"']*?)\.ts(["'])/g,
    "$1$2.js$3",
  );
}

async function declarations(types: string): Promise<void> {
  const tsc = await installTsc();
  // Deno's import.meta.main, which guards the sources' entry points.
  const globals = join(TSC_DIR, "deno-globals.d.ts");
  await writeFile(globals, "interface ImportMeta {\n  main: boolean;\n}\n");
  // One configuration per build: builds into different directories may run at once.
  const config = join(TSC_DIR, `tsconfig-${process.pid}-${builds++}.json`);
  await writeFile(
    config,
    JSON.stringify(
      {
        compilerOptions: {
          target: "es2022",
          module: "esnext",
          moduleResolution: "bundler",
          lib: ["es2023"],
          strict: true,
          declaration: true,
          emitDeclarationOnly: true,
          allowImportingTsExtensions: true,
          skipLibCheck: true,
          noCheck: true,
          rootDir: ROOT,
          outDir: types,
          types: ["node"],
          typeRoots: [join(TSC_DIR, "node_modules", "@types")],
        },
        files: [join(HERE, "lib.ts"), globals],
      },
      null,
      2,
    ),
  );
  try {
    await run("node", [tsc, "-p", config]);
  } finally {
    await rm(config, { force: true });
  }
  for (const f of await filesUnder(types)) {
    await writeFile(f, rewriteSpecifiers(await readFile(f, "utf8")));
  }
}

/** Build the package into `dir` (emptied first). */
export async function buildPackage(dir = NPM_DIR): Promise<PackageBuild> {
  const denoJson = JSON.parse(await readFile(join(ROOT, "deno.json"), "utf8"));
  if (typeof denoJson.version !== "string") throw new PackageError("deno.json has no version");
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await bundle(join(dir, "dist"));
  await declarations(join(dir, "types"));
  const template = JSON.parse(await readFile(join(HERE, "package.template.json"), "utf8"));
  const manifest = {
    ...template,
    version: denoJson.version,
    dependencies: dependenciesOf(denoJson),
  };
  await writeFile(join(dir, "package.json"), JSON.stringify(manifest, null, 2) + "\n");
  await cp(join(HERE, "README.md"), join(dir, "README.md"));
  return { dir, manifest };
}

if (import.meta.main) {
  try {
    const t0 = performance.now();
    const { dir, manifest } = await buildPackage();
    const files = await filesUnder(dir);
    const ms = (performance.now() - t0).toFixed(0);
    const what = `${manifest.name}@${manifest.version}, ${files.length} files`;
    console.error(`npm: ${what} (${ms} ms) -> ${relative(ROOT, dir)}`);
  } catch (e) {
    if (!(e instanceof PackageError)) throw e;
    console.error(`error: ${e.message}`);
    process.exit(1);
  }
}
