/**
 * The Deno front-end: `deno task <command>` (and `deno task test`, through
 * tools/test.ts). The commands, their options, usage and exit statuses are
 * the command table's (app/command_table.ts); this file says only what
 * each command runs, loading its module when it runs.
 */
import { LayoutError } from "../linker/layout.ts";
import { EXIT, type FrontEnd, runCommandLine, stringOption } from "./app/command_table.ts";
import { build, BuildError } from "./build/build.ts";
import { ensureTools, MissingToolsError } from "./host/toolcheck.ts";
import { ROOT } from "./paths.ts";
import { getConfig, UnknownConfigError } from "./run/configs.ts";

/** Build and report; returns the ELF path. */
async function buildKernel(): Promise<string> {
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
      const { testMain } = await import("./app/test_command.ts");
      return await testMain(argv);
    },
    parse: async (p) => {
      const { parseCommandRun } = await import("./app/parse.ts");
      return await parseCommandRun(p);
    },
    iso: async (p) => {
      const { isoMain } = await import("./app/image.ts");
      return await isoMain(p, checkedBuild);
    },
    pxe: async (p) => {
      const { pxeMain } = await import("./app/image.ts");
      return await pxeMain(p, checkedBuild);
    },
    "pxe serve": async (p) => {
      const { serveMain } = await import("./app/image.ts");
      return await serveMain(p, checkedBuild);
    },
    debug: async (_p, argv) => {
      await ensureTools();
      const { main: debug } = await import("./app/debug.ts");
      return await debug([...argv]);
    },
    start: async (p) => {
      const config = stringOption(p, "config");
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
    if (e instanceof BuildError) {
      console.error(e.output);
      console.error(`error: build failed in ${e.file}`);
      return EXIT.failed;
    }
    if (
      e instanceof MissingToolsError || e instanceof LayoutError || e instanceof UnknownConfigError
    ) {
      console.error(`error: ${e.message}`);
      return EXIT.failed;
    }
    return undefined;
  },
};

if (import.meta.main) Deno.exit(await runCommandLine(DENO_FRONT, Deno.args));
