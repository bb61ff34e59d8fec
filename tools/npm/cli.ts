/**
 * The npm package's command line (`npx ouroboros-toolchain <command>`): the
 * toolchain for a kernel repository of one's own, under Node. Paths come
 * from the project (tools/app/project.ts): the nearest `ouroboros.config.json`,
 * or `--project FILE`, or OUROBOROS_PROJECT.
 *
 * `test` runs the kernel tests only (there is no `deno test` under Node):
 * the runner's console, `--json` and `--junit` reports, the same exit status
 * and closing line as `deno task test --kernel-only`.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import process from "node:process";
import { LayoutError } from "../../linker/layout.ts";
import { build, BuildError } from "../build/build.ts";
import { parseCommandRun } from "../app/parse.ts";
import {
  checkKernelSources,
  findProject,
  loadProject,
  type Project,
  PROJECT_FILE,
  ProjectError,
} from "../app/project.ts";
import { configIn, defaultConfig, UnknownConfigError } from "../run/configs.ts";
import {
  EXIT,
  type FrontEnd,
  frontEndUsage,
  type ParsedCommand,
  runCommandLine,
  stringOption,
  UsageError,
} from "../app/command_table.ts";
import { startImage, startImageOf, startInteractive } from "../app/start.ts";
import { prepareForeign } from "../run/foreign.ts";
import { ensureTools, MissingToolsError } from "../host/toolcheck.ts";
import { testCommand } from "./test.ts";

/** The command name users type. */
export const COMMAND = "ouroboros-toolchain";

const HEAD = `usage: ${COMMAND} [--project FILE] <command> [options] [arguments]`;
const TAIL = `The project is the nearest ${PROJECT_FILE} in the current directory or above
(or --project FILE, or OUROBOROS_PROJECT=FILE); without one, the current directory with
kernel sources in kernel/ and the build in build/.`;

/** `--project FILE` taken out of the arguments (anywhere before `--`). */
export function splitProjectOption(
  argv: readonly string[],
): { file: string | null; rest: string[] } {
  const rest: string[] = [];
  let file: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    if (a === "--project") {
      if (argv[i + 1] === undefined) throw new UsageError("--project needs a file");
      file = argv[++i];
    } else if (a.startsWith("--project=")) {
      file = a.slice("--project=".length);
    } else {
      rest.push(a);
    }
  }
  return { file, rest };
}

/**
 * The project named on the command line or in the environment, else the
 * one found from the directory the user is in; with `kernel`, its kernel
 * sources must exist.
 */
export async function openProject(file: string | null, kernel = true): Promise<Project> {
  const named = file ?? process.env.OUROBOROS_PROJECT ?? null;
  const cwd = process.env.INIT_CWD ?? process.cwd();
  const project = named !== null
    ? await loadProject(resolve(cwd, named), cwd)
    : await findProject(cwd);
  if (kernel) await checkKernelSources(project);
  return project;
}

/** Build the project's kernel and say so; returns the ELF path. */
async function buildKernel(project: Project): Promise<string> {
  const t0 = performance.now();
  const r = await build({
    root: project.root,
    kernelDir: project.kernelDir,
    outDir: project.buildDir,
    layout: project.layout,
    log: (l) => console.error(l),
  });
  const ms = (performance.now() - t0).toFixed(0);
  const what = r.compiled.length || r.linked
    ? `${r.compiled.length} compiled, linked`
    : "up to date";
  console.error(`build: ${what} (${ms} ms) -> ${r.elf}`);
  return r.elf;
}

async function start(project: Project, p: ParsedCommand): Promise<number> {
  const named = stringOption(p, "config");
  // An unknown name fails before the build.
  const config = named !== undefined
    ? configIn(project.configs, named)
    : defaultConfig(project.configs);
  const image = startImageOf({
    image: stringOption(p, "image"),
    append: stringOption(p, "append"),
    initrd: stringOption(p, "initrd"),
  }, [...p.words, ...p.passed]);
  if (image !== null) {
    await ensureTools();
    return await startImage(image, config.name, project.configs);
  }
  if (project.image !== null) {
    // The project's own kernel: its build command first, then its image.
    const { image: made, build } = await prepareForeign({
      image: project.image.image,
      build: project.image.buildCommand === null
        ? undefined
        : { command: project.image.buildCommand, cwd: project.image.cwd },
    }, (l) => console.error(l));
    if (made === null) {
      console.error(`error: ${build!.message}\n${build!.details.join("\n")}`);
      return EXIT.failed;
    }
    const words = [...p.words, ...p.passed];
    return await startImage(
      {
        image: made.path,
        append: words.length > 0 ? words.join(" ") : project.image.append,
        initrd: project.image.initrd ?? undefined,
      },
      config.name,
      project.configs,
    );
  }
  await ensureTools();
  const elf = await buildKernel(project);
  const cmdline = [...p.words, ...p.passed].join(" ");
  return await startInteractive(elf, cmdline, config.name, project.configs);
}

/** The package's version, from its package.json (the bundle lies in the package's dist/). */
async function version(): Promise<string> {
  const pkg = new URL("../package.json", import.meta.url);
  return JSON.parse(await readFile(pkg, "utf8")).version;
}

/** The npm front-end over the command table, for the project named by `file` (or found). */
function npmFront(file: string | null): FrontEnd {
  const builder = (project: Project) => async () => {
    await ensureTools();
    return await buildKernel(project);
  };
  return {
    front: "npm",
    head: HEAD,
    tail: TAIL,
    handlers: {
      build: async () => {
        await ensureTools();
        await buildKernel(await openProject(file));
        return EXIT.ok;
      },
      // With --image there need be no kernel sources.
      test: async (_p, argv) =>
        await testCommand(
          argv,
          await openProject(file, !argv.some((a) => a === "--image" || a.startsWith("--image="))),
        ),
      parse: async (p) =>
        await parseCommandRun(p, {
          command: `${COMMAND} parse`,
          root: (await openProject(file, false)).root,
        }),
      start: async (p) => await start(await openProject(file, !stringOption(p, "image")), p),
      iso: async (p) => {
        const project = await openProject(file);
        const { isoMain } = await import("../app/image.ts");
        return await isoMain(p, builder(project), project.buildDir);
      },
      pxe: async (p) => {
        const project = await openProject(file);
        const { pxeMain } = await import("../app/image.ts");
        return await pxeMain(p, builder(project), project.buildDir);
      },
      "pxe serve": async (p) => {
        const project = await openProject(file);
        const { serveMain } = await import("../app/image.ts");
        return await serveMain(p, builder(project), project.buildDir);
      },
      doctor: async () => {
        await ensureTools();
        console.error("doctor: all system tools are present");
        return EXIT.ok;
      },
      version: async () => {
        console.log(await version());
        return EXIT.ok;
      },
    },
    failure(e) {
      if (e instanceof BuildError) {
        console.error(e.output);
        console.error(`error: build failed in ${e.file}`);
        return EXIT.failed;
      }
      if (
        e instanceof MissingToolsError || e instanceof LayoutError ||
        e instanceof UnknownConfigError || e instanceof ProjectError
      ) {
        console.error(`error: ${e.message}`);
        return EXIT.failed;
      }
      return undefined;
    },
  };
}

/** Run the CLI with `argv` (the arguments after the command name); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let split: { file: string | null; rest: string[] };
  try {
    split = splitProjectOption(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`error: ${e.message}\n\n${frontEndUsage(npmFront(null))}`);
    return EXIT.usage;
  }
  return await runCommandLine(npmFront(split.file), split.rest);
}
