/**
 * The TFTP tree (`deno task pxe`) from which machines boot the kernel over
 * the network, for both firmware kinds:
 *
 *   boot.ipxe                  BIOS: iPXE's script, loads kernel.mb1 (multiboot1)
 *   kernel.mb1                 the flat multiboot1 image (multiboot1.ts)
 *   undionly.kpxe              BIOS PXE ROMs that are not iPXE load iPXE first (if installed)
 *   grub/x86_64-efi/core.efi   UEFI: GRUB's netboot image (grub-mknetdir) and its modules
 *   grub/grub.cfg              loads kernel.elf with multiboot2
 *   kernel.elf                 the kernel, as built
 *
 * Only these names are written: the tree may be a TFTP root that holds
 * other files. The kernel command line goes into boot.ipxe and grub.cfg.
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import type { BootImage } from "../core/boot_image.ts";
import { dirname, join } from "node:path";
import { parseElf } from "../core/elf.ts";
import { GRUB_LIB, grubPlatformMarker, UNDIONLY_KPXE } from "../host/firmware.ts";
import { grubLoad, ImageError } from "./iso.ts";
import { loaderProtocol } from "../core/boot_image.ts";
import { grubConfig, ipxeScript } from "./loader_config.ts";
import { buildMultiboot1Image } from "./multiboot1.ts";
import { INITRD_NAME, initrdBeside } from "../host/initrd.ts";

/** A firmware kind. */
export type Firmware = "bios" | "uefi";
/** Both, in the order the tree lists them. */
export const FIRMWARES: readonly Firmware[] = ["bios", "uefi"];

/** The tree's file names (relative to its root, as TFTP clients ask for them). */
export const PXE_FILES = {
  ipxeScript: "boot.ipxe",
  mb1Image: "kernel.mb1",
  undionly: "undionly.kpxe",
  grubDir: "grub",
  grubCfg: "grub/grub.cfg",
  uefiBootFile: "grub/x86_64-efi/core.efi",
  /** The UEFI boot file for proxy DHCP (see {@link writeProxyUefiImage}). */
  uefiProxyBootFile: "grub/x86_64-efi/core-proxy.efi",
  kernel: "kernel.elf",
  initrd: INITRD_NAME,
} as const;

/** The file a DHCP server names for each firmware kind (an iPXE client gets the script). */
export const BOOT_FILE: Readonly<Record<Firmware, string>> = {
  bios: PXE_FILES.ipxeScript,
  uefi: PXE_FILES.uefiBootFile,
};

/** What to write. */
export interface PxeTreeOptions {
  /** The kernel ELF. */
  kernel: string;
  /** The kernel command line. */
  cmdline: string;
  /** The tree's root (the TFTP root); created if missing. */
  out: string;
  /** Which firmware kinds to serve (default: both). */
  firmware?: readonly Firmware[];
  /**
   * A kernel image that is not ours: served as it is and loaded by its
   * protocol (iPXE: Linux or multiboot1; GRUB: Linux, multiboot2 or
   * multiboot1); default: our ELF, made into the multiboot1 image for iPXE.
   */
  image?: BootImage;
  /** An initrd (a module for multiboot kernels); default for our kernel: the build's, beside it. */
  initrd?: string;
}

/** What was written. */
export interface PxeTree {
  root: string;
  /** Files written by name (grub-mknetdir's modules not listed one by one). */
  files: string[];
  /** The firmware kinds served. */
  firmware: Firmware[];
  /** True if undionly.kpxe was copied (BIOS, when the ipxe package is installed). */
  undionly: boolean;
}

async function put(root: string, name: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(join(root, name)), { recursive: true });
  await writeFile(join(root, name), data, { mode: 0o644 });
}

/** The BIOS part: iPXE's script and the multiboot1 image; undionly.kpxe if installed. */
async function writeBios(o: PxeTreeOptions, files: string[]): Promise<boolean> {
  let linux = false;
  if (o.image !== undefined) {
    const how = loaderProtocol(o.image, "ipxe");
    if ("why" in how) throw new ImageError(how.why);
    linux = how.protocol === "linux";
    await copyFile(o.kernel, join(o.out, PXE_FILES.mb1Image));
  } else {
    const { image } = buildMultiboot1Image(parseElf(await readFile(o.kernel)));
    await put(o.out, PXE_FILES.mb1Image, image);
  }
  const initrd = await putInitrd(o, files);
  await put(o.out, PXE_FILES.ipxeScript, ipxeScript(PXE_FILES.mb1Image, o.cmdline, initrd, linux));
  files.push(PXE_FILES.mb1Image, PXE_FILES.ipxeScript);
  if (!existsSync(UNDIONLY_KPXE)) return false;
  await copyFile(UNDIONLY_KPXE, join(o.out, PXE_FILES.undionly));
  files.push(PXE_FILES.undionly);
  return true;
}

/** The UEFI part: GRUB's netboot directory, its grub.cfg, the kernel. */
/** The initrd copied into the tree (once); its name there, or undefined without one. */
async function putInitrd(o: PxeTreeOptions, files: string[]): Promise<string | undefined> {
  if (o.initrd === undefined) return undefined;
  if (!files.includes(PXE_FILES.initrd)) {
    await copyFile(o.initrd, join(o.out, PXE_FILES.initrd));
    files.push(PXE_FILES.initrd);
  }
  return PXE_FILES.initrd;
}

async function writeUefi(o: PxeTreeOptions, files: string[]): Promise<void> {
  if (!existsSync(grubPlatformMarker("x86_64-efi"))) {
    throw new ImageError("GRUB for x86_64-efi is not installed (grub-efi-amd64-bin)");
  }
  // Loaded when used: most commands never run it.
  const { execa } = await import("execa");
  const r = await execa("grub-mknetdir", [
    `--net-directory=${o.out}`,
    `--subdir=${PXE_FILES.grubDir}`,
    `--directory=${GRUB_LIB}/x86_64-efi`,
    "--locales=",
    "--fonts=",
    "--themes=",
  ], { reject: false, stdin: "ignore", all: true });
  if (r.exitCode !== 0) {
    throw new ImageError(`grub-mknetdir failed (exit ${r.exitCode ?? r.signal}): ${r.all}`);
  }
  const initrd = await putInitrd(o, files);
  const load = grubLoad(o.image, initrd === undefined ? undefined : `/${initrd}`);
  await put(o.out, PXE_FILES.grubCfg, grubConfig(`/${PXE_FILES.kernel}`, o.cmdline, load));
  await copyFile(o.kernel, join(o.out, PXE_FILES.kernel));
  files.push(PXE_FILES.uefiBootFile, PXE_FILES.grubCfg, PXE_FILES.kernel);
}

/** Write the tree. Throws ImageError (or Mb1ImageError) if a part cannot be made. */
export async function buildPxeTree(given: PxeTreeOptions): Promise<PxeTree> {
  // Our own kernel's default module: the build's initrd beside it, if any.
  const options = {
    ...given,
    initrd: given.initrd ?? (given.image ? undefined : initrdBeside(given.kernel)),
  };
  const firmware = [...(options.firmware ?? FIRMWARES)];
  await mkdir(options.out, { recursive: true, mode: 0o755 });
  const files: string[] = [];
  let undionly = false;
  if (firmware.includes("bios")) undionly = await writeBios(options, files);
  if (firmware.includes("uefi")) await writeUefi(options, files);
  return { root: options.out, files, firmware, undionly };
}

/**
 * For proxy DHCP: a GRUB UEFI image that fetches its modules, grub.cfg and
 * the kernel from `server` by name. GRUB 2.06 takes its TFTP server from the
 * DHCP server's answer only, never from the proxy's offer (verified: it
 * times out asking the site's DHCP server), so behind proxy DHCP the server
 * must be built in. Written next to core.efi; returns false (and writes
 * nothing) if the tree has no UEFI part.
 */
export async function writeProxyUefiImage(root: string, server: string): Promise<boolean> {
  if (!existsSync(join(root, PXE_FILES.uefiBootFile))) return false;
  // Loaded when used: most commands never run it.
  const { execa } = await import("execa");
  const r = await execa("grub-mkimage", [
    "--format=x86_64-efi",
    `--directory=${GRUB_LIB}/x86_64-efi`,
    `--prefix=(tftp,${server})/${PXE_FILES.grubDir}`,
    `--output=${join(root, PXE_FILES.uefiProxyBootFile)}`,
    "efinet",
    "tftp",
  ], { reject: false, stdin: "ignore", all: true });
  if (r.exitCode !== 0) {
    throw new ImageError(`grub-mkimage failed (exit ${r.exitCode ?? r.signal}): ${r.all}`);
  }
  return true;
}

/** The TFTP tree written by `deno task pxe` unless told otherwise. */
export function defaultPxeRoot(buildDir: string): string {
  return join(buildDir, "pxe");
}
