/**
 * Kernel images that are not built by our build: a prebuilt image named on
 * the command line (`--image FILE [--append ARGS] [--initrd FILE]`), or one
 * a project's own build command makes (app/project.ts: `buildCommand`,
 * `image`). The boot protocol is read from the image (core/boot_image.ts);
 * each configuration is checked for a way to boot it before anything runs.
 *
 * Such a kernel knows nothing of ours: no `ktest.filter`, no `ktest.list`,
 * no isa-debug-exit. Its runs are judged by its TAP/KTAP alone (run.ts,
 * judgedExit), `--shard` splits the configurations (its tests cannot be
 * listed), and its own filter goes in its command line (e.g. Linux's
 * `kunit.filter_glob=`).
 */
import { readFile } from "node:fs/promises";
import {
  type BootImage,
  BootImageError,
  describeBootImage,
  describeOffer,
  loaderProtocol,
  PROTOCOL_NAMES,
  whyNotQemuKernel,
} from "../core/boot_image.ts";
import type { KernelReport } from "../core/record.ts";
import type { MachineConfig } from "./configs.ts";

/** A kernel image that is not ours, ready to boot. */
export interface ForeignImage {
  /** The image file. */
  path: string;
  /** Its kernel command line. */
  append: string;
  /** Its initial RAM disk, or null. */
  initrd: string | null;
  /** What it offers (its protocols). */
  boot: BootImage;
}

/** Where a foreign image comes from: a file, made first by a build command if one is given. */
export interface ForeignSource {
  image: string;
  append?: string;
  initrd?: string | null;
  /** A build command of the project's own, run with `sh -c` in `cwd`. */
  build?: { command: string; cwd: string };
}

/** Lines of a failed build's output kept in the report. */
const BUILD_TAIL = 60;

/** The image at `path` described, or why it cannot boot (a missing file, no protocol). */
export async function readForeignImage(path: string): Promise<BootImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT"
      ? "no such file"
      : code === "EISDIR"
      ? "a directory"
      : (e as Error).message;
    throw new BootImageError([`cannot read ${path}: ${why}`]);
  }
  return describeBootImage(bytes);
}

/** One line for reports: "multiboot1 (multiboot1 header at 0x1000 (32-bit ELF))". */
export function describeForeign(image: ForeignImage): string {
  const offer = image.boot.qemuKernel ?? image.boot.offers[0];
  return `${image.path}: ${describeOffer(offer)}`;
}

/**
 * Why `config` cannot boot `image`, or null if it can. QEMU's -kernel
 * configurations need a protocol QEMU loads (Linux, multiboot1, PVH); the
 * boot paths need their loader's: QEMU's multiboot1 loader, GRUB (ISO, UEFI
 * PXE: Linux, multiboot2, multiboot1) or iPXE (BIOS PXE: Linux, multiboot1).
 */
export function cannotBoot(config: MachineConfig, image: ForeignImage): string | null {
  if (config.boot !== undefined) {
    const { via, firmware } = config.boot;
    if (via === "multiboot1") {
      if (image.boot.qemuKernel?.protocol === "multiboot1") return null;
      const offers = image.boot.offers.map((o) => PROTOCOL_NAMES[o.protocol]).join(", ");
      return `configuration ${config.name} boots a multiboot1 image with QEMU's loader; ` +
        `${image.path} offers ${offers}` +
        (image.boot.qemuKernel === null
          ? ""
          : ` (QEMU takes it as ${image.boot.qemuKernel.protocol})`);
    }
    const loader = via === "pxe" && firmware === "bios" ? "ipxe" : "grub";
    const how = loaderProtocol(image.boot, loader);
    return "why" in how
      ? `configuration ${config.name} cannot boot ${image.path}: ${how.why}`
      : null;
  }
  const why = whyNotQemuKernel(image.boot);
  if (why === null) {
    const max = image.boot.qemuKernel?.cmdlineMax;
    if (max !== undefined && new TextEncoder().encode(image.append).length > max) {
      return `the command line is longer than the ${max} bytes ${image.path} takes (cmdline_size)`;
    }
    return null;
  }
  return `configuration ${config.name} boots with QEMU's -kernel, which cannot boot ${image.path}: ` +
    why;
}

/**
 * Make (when a build command is given) and describe the image: the image,
 * or the build failure the report shows (the command's output; a missing
 * or unbootable image).
 */
export async function prepareForeign(
  source: ForeignSource,
  log?: (line: string) => void,
): Promise<{ image: ForeignImage | null; build: KernelReport["build"] }> {
  if (source.build !== undefined) {
    const { command, cwd } = source.build;
    log?.(`build: ${command} (in ${cwd})`);
    // Loaded when used: most commands never run it.
    const { execa } = await import("execa");
    const r = await execa("sh", ["-c", command], {
      cwd,
      reject: false,
      stdin: "ignore",
      all: true,
    });
    if (r.exitCode !== 0) {
      const lines = String(r.all ?? "").split("\n").filter((l) => l.trim() !== "");
      const how = r.exitCode !== undefined ? `exited ${r.exitCode}` : `was killed (${r.signal})`;
      return {
        image: null,
        build: {
          message: `build failure: the project's build command '${command}' ${how}`,
          details: lines.slice(-BUILD_TAIL),
        },
      };
    }
  }
  try {
    const boot = await readForeignImage(source.image);
    return {
      image: {
        path: source.image,
        append: source.append ?? "",
        initrd: source.initrd ?? null,
        boot,
      },
      build: null,
    };
  } catch (e) {
    if (!(e instanceof BootImageError)) throw e;
    const made = source.build !== undefined ? " (made by the project's build command)" : "";
    return {
      image: null,
      build: {
        message: `build failure: the image ${source.image}${made} cannot boot`,
        details: e.reasons,
      },
    };
  }
}
