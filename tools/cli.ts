/**
 * The Deno front-end: `deno task <command>` (and `deno task test`, through
 * tools/test.ts). The commands, their options, usage and exit statuses are
 * the command table's (app/command_table.ts); this file says only what
 * each command runs, loading its module when it runs.
 */
import { EXIT, type FrontEnd, runCommandLine, stringOption } from "./app/command_table.ts";
import { ROOT } from "./paths.ts";

/**
 * The modules a command loads when it runs, kept here once loaded: their
 * error classes tell {@link DENO_FRONT}'s failure what a thrown error is (an
 * error of a module not loaded cannot have been thrown). `--help`, a usage
 * error or `doctor` load neither the build nor the machine table.
 */
const loaded: {
  build?: typeof import("./build/build.ts");
  layout?: typeof import("../linker/layout.ts");
  toolcheck?: typeof import("./host/toolcheck.ts");
  configs?: typeof import("./run/configs.ts");
} = {};

async function toolcheck(): Promise<typeof import("./host/toolcheck.ts")> {
  return loaded.toolcheck ??= await import("./host/toolcheck.ts");
}

async function configs(): Promise<typeof import("./run/configs.ts")> {
  return loaded.configs ??= await import("./run/configs.ts");
}

/** The build and the layout it reads (whose errors a build throws). */
async function buildModule(): Promise<typeof import("./build/build.ts")> {
  loaded.layout ??= await import("../linker/layout.ts");
  return loaded.build ??= await import("./build/build.ts");
}

/**
 * The four modules, for a command whose own modules import them anyway
 * (test, debug, iso, pxe): any of their errors may come out of it (the image
 * commands check their own tools, grub-mkrescue and xorriso, before the build).
 */
async function kernelModules(): Promise<void> {
  await Promise.all([buildModule(), toolcheck(), configs()]);
}

async function ensureTools(): Promise<void> {
  await (await toolcheck()).ensureTools();
}

/** Build and report; returns the ELF path. */
async function buildKernel(): Promise<string> {
  const { build } = await buildModule();
  const t0 = performance.now();
  const r = await build({ root: ROOT, log: (l) => console.error(l) });
  const ms = (performance.now() - t0).toFixed(0);
  const what = r.compiled.length || r.linked
    ? `${r.compiled.length} compiled, linked`
    : "up to date";
  console.error(`build: ${what} (${ms} ms) -> ${r.elf}`);
  return r.elf;
}

/** Check the tools, then build; returns the ELF path. */
async function checkedBuild(): Promise<string> {
  await ensureTools();
  return await buildKernel();
}

/** The Deno front-end over the command table. */
export const DENO_FRONT: FrontEnd = {
  front: "deno",
  head: "usage: deno task <command> [options] [arguments]",
  handlers: {
    doctor: async () => {
      await ensureTools();
      console.error("doctor: all system tools are present");
      return EXIT.ok;
    },
    build: async () => {
      await checkedBuild();
      return EXIT.ok;
    },
    test: async (_p, argv) => {
      await kernelModules();
      const { testMain } = await import("./app/test_command.ts");
      return await testMain(argv);
    },
    parse: async (p) => {
      const { parseCommandRun } = await import("./app/parse.ts");
      return await parseCommandRun(p);
    },
    iso: async (p) => {
      await kernelModules();
      const { isoMain } = await import("./app/image.ts");
      return await isoMain(p, checkedBuild);
    },
    pxe: async (p) => {
      await kernelModules();
      const { pxeMain } = await import("./app/image.ts");
      return await pxeMain(p, checkedBuild);
    },
    "pxe serve": async (p) => {
      await kernelModules();
      const { serveMain } = await import("./app/image.ts");
      return await serveMain(p, checkedBuild);
    },
    debug: async (_p, argv) => {
      await kernelModules();
      await ensureTools();
      const { main: debug } = await import("./app/debug.ts");
      return await debug([...argv]);
    },
    start: async (p) => {
      const config = stringOption(p, "config");
      const { getConfig } = await configs();
      if (config !== undefined) getConfig(config); // an unknown name fails before the build
      const { startImage, startImageOf } = await import("./app/start.ts");
      const image = startImageOf({
        image: stringOption(p, "image"),
        append: stringOption(p, "append"),
        initrd: stringOption(p, "initrd"),
      }, [...p.words, ...p.passed]);
      if (image !== null) {
        await ensureTools();
        return await startImage(image, config);
      }
      await ensureTools();
      const elf = await buildKernel();
      const { startInteractive } = await import("./app/start.ts");
      return await startInteractive(elf, [...p.words, ...p.passed].join(" "), config);
    },
  },
  failure(e) {
    const { build, layout, toolcheck, configs } = loaded;
    if (build !== undefined && e instanceof build.BuildError) {
      console.error(e.output);
      console.error(`error: build failed in ${e.file}`);
      return EXIT.failed;
    }
    if (
      (toolcheck !== undefined && e instanceof toolcheck.MissingToolsError) ||
      (layout !== undefined && e instanceof layout.LayoutError) ||
      (configs !== undefined && e instanceof configs.UnknownConfigError)
    ) {
      console.error(`error: ${e.message}`);
      return EXIT.failed;
    }
    return undefined;
  },
};

if (import.meta.main) Deno.exit(await runCommandLine(DENO_FRONT, Deno.args));
