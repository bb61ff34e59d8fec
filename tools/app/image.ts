/**
 * `deno task iso` and `deno task pxe [serve]` (called from tools/cli.ts).
 * Each checks (and installs) the tools it needs, builds the kernel, then
 * writes the image or tree with the rest of the command line as the kernel
 * command line.
 */
import { resolve } from "node:path";
import process from "node:process";
import { BUILD_DIR } from "../paths.ts";
import {
  dhcpModeOf,
  parseServeArgs,
  serve,
  SERVE_USAGE,
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

/** Builds the kernel and returns the ELF's path (tools/cli.ts's build, with its messages). */
export type KernelBuilder = () => Promise<string>;

export const ISO_USAGE = `usage: deno task iso [--out FILE] [KERNEL ARGS...]
  writes a hybrid GRUB ISO (default build/ouroboros.iso) that boots the kernel with multiboot2
  from BIOS and UEFI, as a CD or as a USB disk; KERNEL ARGS become its command line`;

export const PXE_USAGE = `usage: deno task pxe [--out DIR] [KERNEL ARGS...]
  writes the TFTP tree (default build/pxe): BIOS through iPXE (${PXE_FILES.ipxeScript}, ` +
  `${PXE_FILES.mb1Image}),
  UEFI through GRUB (${PXE_FILES.uefiBootFile}, ${PXE_FILES.grubCfg}); KERNEL ARGS become the ` +
  `command line
${SERVE_USAGE}`;

/** A path given by the user, against the directory the task was started in. */
function userPath(path: string): string {
  return resolve(process.env.INIT_CWD ?? process.cwd(), path);
}

/** `--out VALUE` (anywhere) and the remaining words. */
function splitOut(argv: readonly string[]): { out: string | null; words: string[]; help: boolean } {
  const words: string[] = [];
  let out: string | null = null;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--out") {
      out = argv[++i] ?? null;
      if (out === null) throw new ServeUsageError("--out needs a value");
    } else if (argv[i] === "--help" || argv[i] === "-h") help = true;
    else words.push(argv[i]);
  }
  return { out, words, help };
}

/** Print an error this module expects and return the exit code; rethrow others. */
function failure(e: unknown, usage: string): number {
  if (e instanceof ServeUsageError) {
    console.error(`error: ${e.message}\n\n${usage}`);
    return 2;
  }
  if (e instanceof ImageError || e instanceof Mb1ImageError || e instanceof CmdlineError) {
    console.error(`error: ${e.message}`);
    return 1;
  }
  throw e;
}

/** `deno task iso`; the default image goes under `buildDir` (a project's, for the npm CLI). */
export async function isoMain(
  argv: readonly string[],
  buildKernel: KernelBuilder,
  buildDir = BUILD_DIR,
) {
  try {
    const { out, words, help } = splitOut(argv);
    if (help) {
      console.log(ISO_USAGE);
      return 0;
    }
    const iso = out === null ? defaultIsoPath(buildDir) : userPath(out);
    await ensureToolGroups(["iso"]);
    const kernel = await buildKernel();
    const cmdline = words.join(" ");
    await buildIso({ kernel, cmdline, out: iso });
    console.error(`iso: ${iso} (GRUB, multiboot2, BIOS and UEFI); command line '${cmdline}'`);
    console.error(`  try: qemu-system-x86_64 -serial stdio -display none -cdrom ${iso}`);
    return 0;
  } catch (e) {
    return failure(e, ISO_USAGE);
  }
}

/** `deno task pxe serve`. */
async function serveMain(
  argv: readonly string[],
  buildKernel: KernelBuilder,
  buildDir: string,
): Promise<number> {
  const args = parseServeArgs(argv);
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

/** `deno task pxe [serve]`; the default tree goes under `buildDir` (a project's, for the npm CLI). */
export async function pxeMain(
  argv: readonly string[],
  buildKernel: KernelBuilder,
  buildDir = BUILD_DIR,
) {
  try {
    if (argv[0] === "serve") return await serveMain(argv.slice(1), buildKernel, buildDir);
    const { out, words, help } = splitOut(argv);
    if (help) {
      console.log(PXE_USAGE);
      return 0;
    }
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
    return failure(e, argv[0] === "serve" ? SERVE_USAGE : PXE_USAGE);
  }
}
