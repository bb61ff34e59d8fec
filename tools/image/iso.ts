/**
 * The hybrid GRUB ISO (`deno task iso`): one image that boots the kernel
 * with multiboot2 from BIOS (El Torito, and as a disk through its MBR) and
 * from UEFI (El Torito's EFI image, and through its GPT), made by
 * grub-mkrescue from a staged tree:
 *
 *   boot/kernel.elf       the kernel, as built
 *   boot/grub/grub.cfg    boots it at once with the kernel command line
 *
 * grub-mkrescue quietly leaves out a GRUB platform that is not installed,
 * so both are checked first: an ISO that boots only one way is an error.
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { GRUB_PLATFORMS, grubPlatformMarker } from "../host/firmware.ts";
import { grubConfig, type LoaderLoad } from "./loader_config.ts";
import { type BootImage as KernelImage, loaderProtocol } from "../core/boot_image.ts";
import { INITRD_NAME, initrdBeside } from "../host/initrd.ts";

/** Where the kernel lies inside the ISO (GRUB's path). */
export const ISO_KERNEL = "/boot/kernel.elf";
/** Where grub.cfg lies inside the ISO. */
export const ISO_GRUB_CFG = "/boot/grub/grub.cfg";

/** An image could not be made; the message says why (and what to install). */
export class ImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImageError";
  }
}

/** What to put on the ISO. */
export interface IsoOptions {
  /** The kernel ELF. */
  kernel: string;
  /** The kernel command line. */
  cmdline: string;
  /** The ISO file to write. */
  out: string;
  /** Where the tree is staged (default: next to `out`, `<out>.tree`); replaced. */
  stageDir?: string;
  /** A kernel image that is not ours: GRUB boots it by its protocol (default: our multiboot2). */
  image?: KernelImage;
  /** An initrd (a module for multiboot kernels). */
  initrd?: string;
}

/** Where an initrd lies inside the ISO. */
export const ISO_INITRD = `/boot/${INITRD_NAME}`;

/** GRUB's way to load an image (ours: multiboot2); an ImageError if GRUB cannot boot it. */
export function grubLoad(image: KernelImage | undefined, initrd: string | undefined): LoaderLoad {
  const load: LoaderLoad = { initrd };
  if (image === undefined) return load;
  const how = loaderProtocol(image, "grub");
  if ("why" in how) throw new ImageError(how.why);
  return { ...load, protocol: how.protocol as LoaderLoad["protocol"] };
}

/**
 * Write the ISO's tree into `dir` (replacing it); returns the files, relative
 * to `dir`. The initrd (default for our own kernel: the build's, beside it)
 * becomes the first module.
 */
export async function stageIso(
  kernel: string,
  cmdline: string,
  dir: string,
  given: { image?: KernelImage; initrd?: string } = {},
): Promise<string[]> {
  const from = {
    ...given,
    initrd: given.initrd ?? (given.image ? undefined : initrdBeside(kernel)),
  };
  const load = grubLoad(from.image, from.initrd === undefined ? undefined : ISO_INITRD);
  const cfg = grubConfig(ISO_KERNEL, cmdline, load);
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, dirname(ISO_GRUB_CFG)), { recursive: true });
  await copyFile(kernel, join(dir, ISO_KERNEL));
  await writeFile(join(dir, ISO_GRUB_CFG), cfg);
  const files = [ISO_KERNEL, ISO_GRUB_CFG];
  if (from.initrd !== undefined) {
    await copyFile(from.initrd, join(dir, ISO_INITRD));
    files.push(ISO_INITRD);
  }
  return files.map((p) => p.slice(1));
}

/** The GRUB platforms that are not installed. */
export function missingGrubPlatforms(): string[] {
  return GRUB_PLATFORMS.filter((p) => !existsSync(grubPlatformMarker(p)));
}

/**
 * Stage the tree and run grub-mkrescue (without locales, fonts and themes:
 * the menu is never shown). Throws ImageError if a GRUB platform is missing
 * or grub-mkrescue fails.
 */
export async function buildIso(options: IsoOptions): Promise<{ iso: string; files: string[] }> {
  const missing = missingGrubPlatforms();
  if (missing.length > 0) {
    throw new ImageError(
      `GRUB for ${missing.join(" and ")} is not installed (grub-pc-bin, grub-efi-amd64-bin): ` +
        `the ISO must boot from BIOS and UEFI`,
    );
  }
  const stage = options.stageDir ?? `${options.out}.tree`;
  const files = await stageIso(options.kernel, options.cmdline, stage, options);
  await mkdir(dirname(options.out), { recursive: true });
  // Loaded when used: most commands never run it.
  const { execa } = await import("execa");
  const r = await execa(
    "grub-mkrescue",
    ["--locales=", "--fonts=", "--themes=", "-o", options.out, stage],
    { reject: false, stdin: "ignore", all: true },
  );
  if (r.exitCode !== 0) {
    const tail = String(r.all ?? "").trim().split("\n").slice(-5).join("\n");
    throw new ImageError(`grub-mkrescue failed (exit ${r.exitCode ?? r.signal}):\n${tail}`);
  }
  return { iso: options.out, files };
}

/** One El Torito boot image of an ISO. */
export interface BootImage {
  /** `BIOS` or `UEFI`. */
  platform: string;
  /** The image's path inside the ISO. */
  path: string;
}

/** What an ISO holds, as xorriso reads it. */
export interface IsoInfo {
  /** Every file, with a leading `/`. */
  files: string[];
  /** The El Torito boot images. */
  bootImages: BootImage[];
  /** The system area holds an MBR and a GPT (bootable as a disk, BIOS and UEFI). */
  hybrid: boolean;
}

async function xorriso(iso: string, args: string[]): Promise<string> {
  // Loaded when used: most commands never run it.
  const { execa } = await import("execa");
  const r = await execa("xorriso", ["-indev", iso, ...args], { reject: false, stdin: "ignore" });
  if (r.exitCode !== 0) throw new ImageError(`xorriso cannot read ${iso}: ${r.stderr}`);
  return r.stdout;
}

/** Parse `xorriso -report_el_torito plain`. */
export function parseElTorito(report: string): BootImage[] {
  const platforms = new Map<string, string>();
  const paths = new Map<string, string>();
  for (const line of report.split("\n")) {
    const img = /^El Torito boot img :\s+(\d+)\s+(\S+)/.exec(line);
    if (img) platforms.set(img[1], img[2]);
    const path = /^El Torito img path :\s+(\d+)\s+(\S+)/.exec(line);
    if (path) paths.set(path[1], path[2]);
  }
  return [...platforms].map(([n, platform]) => ({ platform, path: paths.get(n) ?? "" }));
}

/** Read an ISO's files, boot images and system area with xorriso. */
export async function inspectIso(iso: string): Promise<IsoInfo> {
  const list = await xorriso(iso, ["-find", "/", "-type", "f"]);
  const files = list.split("\n").map((l) => l.trim()).filter((l) => l.startsWith("'"))
    .map((l) => l.slice(1, -1));
  const bootImages = parseElTorito(await xorriso(iso, ["-report_el_torito", "plain"]));
  const area = await xorriso(iso, ["-report_system_area", "plain"]);
  const summary = /^System area summary:(.*)$/m.exec(area)?.[1] ?? "";
  return { files, bootImages, hybrid: /\bMBR\b/.test(summary) && /\bGPT\b/.test(summary) };
}

/** Read one file of an ISO (xorriso -osirrox). */
export async function readIsoFile(iso: string, path: string, dest: string): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  await rm(dest, { force: true });
  await xorriso(iso, ["-osirrox", "on", "-extract", path, dest]);
}

/** The ISO file written by `deno task iso` unless told otherwise. */
export function defaultIsoPath(buildDir: string): string {
  return join(buildDir, "ouroboros.iso");
}
