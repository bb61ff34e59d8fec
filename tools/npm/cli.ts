/**
 * The npm package's command line (`npx ouroboros-toolchain <command>`): the
 * toolchain for a kernel repository of one's own, under Node. Paths come
 * from the project (tools/project.ts): the nearest `ouroboros.config.json`,
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
import { main as parseMain } from "../app/parse.ts";
import {
  checkKernelSources,
  findProject,
  loadProject,
  type Project,
  PROJECT_FILE,
  ProjectError,
} from "../app/project.ts";
import { configIn, defaultConfig, UnknownConfigError } from "../run/configs.ts";
import { UsageError } from "../app/options.ts";
import { startInteractive } from "../app/start.ts";
import { ensureTools, MissingToolsError } from "../host/toolcheck.ts";
import { testCommand } from "./test.ts";

/** The command name users type. */
export const COMMAND = "ouroboros-toolchain";

const USAGE = `usage: ${COMMAND} [--project FILE] <command> [arguments]
  build            build the kernel (incremental) into the project's build directory
  test [options]   build, check and run the kernel tests; ends with
                   'tests: N passed, N failed, N skipped' (test --help: the options)
  parse FILE|- [--json FILE] [--junit FILE] [--elf KERNEL]
                   report a saved serial log (TAP 14 or KTAP) like a live run
  start [--config NAME] [ARGS...]
                   build, then boot the kernel with its serial console on this terminal;
                   ARGS become the kernel command line
  iso [--out FILE] [ARGS...]
                   hybrid GRUB ISO (BIOS and UEFI, multiboot2) booting the kernel with ARGS
  pxe [--out DIR] [ARGS...]
                   TFTP tree: BIOS through iPXE (multiboot1), UEFI through GRUB (multiboot2)
  pxe serve --interface IF (--dhcp-range FIRST,LAST | --proxy) [--root DIR] [ARGS...]
                   serve the tree with dnsmasq (full or proxy DHCP, TFTP) on IF
  doctor           check (and install) the system tools
  version          print the package's version

The project is the nearest ${PROJECT_FILE} in the current directory or above
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

async function start(project: Project, args: string[]): Promise<number> {
  const named = args[0] === "--config" ? args[1] : undefined;
  if (args[0] === "--config" && named === undefined) throw new UsageError("--config needs a name");
  // An unknown name fails before the build.
  const config = named !== undefined
    ? configIn(project.configs, named)
    : defaultConfig(project.configs);
  await ensureTools();
  const elf = await buildKernel(project);
  const cmdline = args.slice(named !== undefined ? 2 : 0).join(" ");
  return await startInteractive(elf, cmdline, config.name, project.configs);
}

/** The package's version, from its package.json (the bundle lies in the package's dist/). */
async function version(): Promise<string> {
  const pkg = new URL("../package.json", import.meta.url);
  return JSON.parse(await readFile(pkg, "utf8")).version;
}

async function dispatch(command: string | undefined, args: string[], file: string | null) {
  switch (command) {
    case "build":
      await ensureTools();
      await buildKernel(await openProject(file));
      return 0;
    case "test":
      return await testCommand(args, await openProject(file), `${COMMAND} test`);
    case "parse":
      return await parseMain(args, {
        command: `${COMMAND} parse`,
        root: (await openProject(file, false)).root,
      });
    case "start":
      return await start(await openProject(file), args);
    case "iso":
    case "pxe": {
      const project = await openProject(file);
      const { isoMain, pxeMain } = await import("../app/image.ts");
      const builder = async () => {
        await ensureTools();
        return await buildKernel(project);
      };
      const run = command === "iso" ? isoMain : pxeMain;
      return await run(args, builder, project.buildDir);
    }
    case "doctor":
      await ensureTools();
      console.error("doctor: all system tools are present");
      return 0;
    case "version":
    case "--version":
      console.log(await version());
      return 0;
    default:
      console.error(USAGE);
      return command === undefined || command === "help" || command === "--help" ? 0 : 2;
  }
}

/** Run the CLI with `argv` (the arguments after the command name); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    const { file, rest } = splitProjectOption(argv);
    const [command, ...args] = rest;
    return await dispatch(command, args, file);
  } catch (e) {
    if (e instanceof BuildError) {
      console.error(e.output);
      console.error(`error: build failed in ${e.file}`);
      return 1;
    }
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    if (
      e instanceof MissingToolsError || e instanceof LayoutError ||
      e instanceof UnknownConfigError || e instanceof ProjectError
    ) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
