/**
 * The toolchain's command line: `build`, `start`, `doctor`.
 * (`deno task test` is tools/test.ts.)
 */
import { build, BuildError } from "./build/build.ts";
import { ROOT } from "./paths.ts";
import { ensureTools, MissingToolsError } from "./host/toolcheck.ts";
import { LayoutError } from "../linker/layout.ts";
import { getConfig, UnknownConfigError } from "./run/configs.ts";

const USAGE = `usage: deno task <command>
  build            build build/kernel.elf (incremental)
  start [--config NAME] [ARGS...]
                   build, then boot the kernel with its serial console on this terminal;
                   ARGS become the kernel command line (e.g. ktest.filter='layout.*');
                   NAME is a machine configuration (tools/runner/configs.ts)
  doctor           check (and install) the system tools
  parse FILE|-     report a saved serial log (TAP 14 or KTAP) like a live run
  debug [--filter GLOB]
                   boot halted with a gdb stub, breakpoints at the selected tests
  iso [--out FILE] [ARGS...]
                   hybrid GRUB ISO (BIOS and UEFI, multiboot2) booting the kernel with ARGS
  pxe [--out DIR] [ARGS...]
                   TFTP tree: BIOS through iPXE (multiboot1), UEFI through GRUB (multiboot2)
  pxe serve --interface IF (--dhcp-range FIRST,LAST | --proxy) [--root DIR] [ARGS...]
                   serve the tree with dnsmasq (full or proxy DHCP, TFTP) on IF
  (test: tools/test.ts; deno task test --help)`;

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

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case "doctor":
        await ensureTools();
        console.error("doctor: all system tools are present");
        return 0;
      case "build":
        await ensureTools();
        await buildKernel();
        return 0;
      case "parse": {
        const { main: parse } = await import("./app/parse.ts");
        return await parse(rest);
      }
      case "iso": {
        const { isoMain } = await import("./app/image.ts");
        return await isoMain(rest, checkedBuild);
      }
      case "pxe": {
        const { pxeMain } = await import("./app/image.ts");
        return await pxeMain(rest, checkedBuild);
      }
      case "debug": {
        await ensureTools();
        const { main: debug } = await import("./app/debug.ts");
        return await debug(rest);
      }
      case "start": {
        const config = rest[0] === "--config" ? rest[1] : undefined;
        if (config !== undefined) getConfig(config); // an unknown name fails before the build
        await ensureTools();
        const elf = await buildKernel();
        const { startInteractive } = await import("./app/start.ts");
        return await startInteractive(elf, rest.slice(config ? 2 : 0).join(" "), config);
      }
      default:
        console.error(USAGE);
        return command === undefined || command === "help" ? 0 : 2;
    }
  } catch (e) {
    if (e instanceof BuildError) {
      console.error(e.output);
      console.error(`error: build failed in ${e.file}`);
      return 1;
    }
    if (
      e instanceof MissingToolsError || e instanceof LayoutError || e instanceof UnknownConfigError
    ) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
