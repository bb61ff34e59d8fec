/**
 * `iso`, `pxe` and `pxe serve` of both front-ends (tools/cli.ts, tools/npm/cli.ts).
 * Each checks (and installs) the tools it needs, builds the kernel, then
 * writes the image or tree with the rest of the command line as the kernel
 * command line.
 */
import { resolve } from "node:path";
import process from "node:process";
import { BUILD_DIR } from "../paths.ts";
import {
  dhcpModeOf,
  isIpv4,
  serve,
  type ServeArgs,
  ServeUsageError,
} from "../machines/pxe_serve.ts";
import { ensureToolGroups } from "../host/toolcheck.ts";
import { buildIso, defaultIsoPath, ImageError } from "../image/iso.ts";
import { CmdlineError } from "../image/loader_config.ts";
import { Mb1ImageError } from "../image/multiboot1.ts";
import {
  BOOT_FILE,
  buildPxeTree,
  defaultPxeRoot,
  PXE_FILES,
  writeProxyUefiImage,
} from "../image/pxe.ts";
import {
  commandSpec,
  parseCommand,
  type ParsedCommand,
  stringOption,
  UsageError,
} from "./command_table.ts";

/** Builds the kernel and returns the ELF's path (tools/cli.ts's build, with its messages). */
export type KernelBuilder = () => Promise<string>;

/** A path given by the user, against the directory the task was started in. */
function userPath(path: string): string {
  return resolve(process.env.INIT_CWD ?? process.cwd(), path);
}

/**
 * `pxe serve`'s arguments (after `serve`), read with the command table;
 * a {@link ServeUsageError} says what is wrong.
 */
export function parseServeArgs(argv: readonly string[]): ServeArgs {
  let p: ParsedCommand;
  try {
    p = parseCommand(commandSpec("deno", "pxe serve")!, argv);
  } catch (e) {
    throw e instanceof UsageError && !(e instanceof ServeUsageError)
      ? new ServeUsageError(e.message)
      : e;
  }
  return serveArgsOf(p);
}

/** `pxe serve`'s arguments from its parsed command line. */
function serveArgsOf(p: ParsedCommand): ServeArgs {
  const out: ServeArgs = {
    interface: stringOption(p, "interface") ?? "",
    root: stringOption(p, "root") ?? null,
    range: null,
    proxy: p.values.proxy === true,
    cmdline: [...p.words, ...p.passed].join(" "),
  };
  const range = stringOption(p, "dhcp-range");
  if (range !== undefined) {
    const [first, last, ...more] = range.split(",");
    if (more.length > 0 || !isIpv4(first ?? "") || !isIpv4(last ?? "")) {
      throw new ServeUsageError("--dhcp-range takes FIRST,LAST (two IPv4 addresses)");
    }
    out.range = { first, last };
  }
  if (out.interface === "") throw new ServeUsageError("--interface is required");
  if ((out.range === null) === !out.proxy) {
    throw new ServeUsageError("choose one of --dhcp-range FIRST,LAST (full DHCP) and --proxy");
  }
  return out;
}

/** Print an image error and return the exit code; rethrow others (usage errors too). */
function failure(e: unknown): number {
  if (e instanceof ImageError || e instanceof Mb1ImageError || e instanceof CmdlineError) {
    console.error(`error: ${e.message}`);
    return 1;
  }
  throw e;
}

/** `deno task iso`; the default image goes under `buildDir` (a project's, for the npm CLI). */
export async function isoMain(
  p: ParsedCommand,
  buildKernel: KernelBuilder,
  buildDir = BUILD_DIR,
) {
  try {
    const out = stringOption(p, "out") ?? null;
    const words = [...p.words, ...p.passed];
    const iso = out === null ? defaultIsoPath(buildDir) : userPath(out);
    await ensureToolGroups(["iso"]);
    const kernel = await buildKernel();
    const cmdline = words.join(" ");
    await buildIso({ kernel, cmdline, out: iso });
    console.error(`iso: ${iso} (GRUB, multiboot2, BIOS and UEFI); command line '${cmdline}'`);
    console.error(`  try: qemu-system-x86_64 -serial stdio -display none -cdrom ${iso}`);
    return 0;
  } catch (e) {
    return failure(e);
  }
}

/** `deno task pxe serve`. */
export async function serveMain(
  p: ParsedCommand,
  buildKernel: KernelBuilder,
  buildDir = BUILD_DIR,
): Promise<number> {
  const args = serveArgsOf(p);
  await ensureToolGroups(args.root === null ? ["serve", "pxe-tree", "undionly"] : ["serve"]);
  let root = args.root === null ? null : userPath(args.root);
  if (root === null) {
    root = defaultPxeRoot(buildDir);
    await buildPxeTree({ kernel: await buildKernel(), cmdline: args.cmdline, out: root });
    console.error(`pxe: wrote ${root}; command line '${args.cmdline}'`);
  } else if (args.cmdline !== "") {
    throw new ServeUsageError("kernel arguments need a tree built here: leave out --root");
  }
  const mode = await dhcpModeOf(args);
  if (mode.kind === "proxy" && await writeProxyUefiImage(root, mode.server)) {
    console.error(`pxe: wrote ${PXE_FILES.uefiProxyBootFile} (GRUB asks ${mode.server} by name)`);
  }
  return await serve({ interface: args.interface, root, mode });
}

/** `pxe`; the default tree goes under `buildDir` (a project's, for the npm CLI). */
export async function pxeMain(
  p: ParsedCommand,
  buildKernel: KernelBuilder,
  buildDir = BUILD_DIR,
) {
  try {
    const out = stringOption(p, "out") ?? null;
    const words = [...p.words, ...p.passed];
    const root = out === null ? defaultPxeRoot(buildDir) : userPath(out);
    await ensureToolGroups(["pxe-tree", "undionly"]);
    const kernel = await buildKernel();
    const cmdline = words.join(" ");
    const tree = await buildPxeTree({ kernel, cmdline, out: root });
    console.error(`pxe: wrote ${root}; command line '${cmdline}'`);
    console.error(
      `  BIOS (iPXE):     boot file ${BOOT_FILE.bios}` +
        (tree.undionly ? `; other PXE ROMs first get ${PXE_FILES.undionly}` : ""),
    );
    console.error(`  UEFI (x86-64):   boot file ${BOOT_FILE.uefi}`);
    console.error(
      `  serve it:        deno task pxe serve --interface IF --proxy (or --dhcp-range A,B)`,
    );
    return 0;
  } catch (e) {
    return failure(e);
  }
}
