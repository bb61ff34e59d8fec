/**
 * Boot paths: QEMU machines that receive the kernel the way real machines
 * do, through firmware and a boot loader, instead of QEMU's -kernel PVH
 * shortcut. Each is a QemuTarget (so the runner, `--config` and the reports
 * treat it like any configuration) whose start first makes what the path
 * needs in a work directory, then starts QEMU:
 *
 * - `multiboot1`: QEMU's own multiboot1 loader on the flat image iPXE boots
 *   (multiboot1.ts): the cheapest check of that image and the MB1 entry;
 * - `iso`: the hybrid GRUB ISO (iso.ts) as a CD-ROM, under SeaBIOS or OVMF;
 * - `pxe`: the TFTP tree (pxe.ts) served by QEMU's user-mode network (its
 *   built-in DHCP and TFTP, `restrict=on`: nothing leaves QEMU), booted by
 *   the NIC's iPXE option ROM (BIOS) or by OVMF with iPXE's UEFI driver.
 *
 * The work directory is named after the configuration and a hash of the
 * command line, so args() can name the files before start() makes them.
 */
import type * as NodeCrypto from "node:crypto";
import { createRequire } from "node:module";
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseElf } from "../core/elf.ts";
import { findOvmf, OVMF_PAIRS, PXE_NIC, PXE_NIC_ROM } from "../host/firmware.ts";
import { buildIso } from "../image/iso.ts";
import { buildMultiboot1Image } from "../image/multiboot1.ts";
import { BOOT_FILE, buildPxeTree, type Firmware } from "../image/pxe.ts";
import { BUILD_DIR } from "../paths.ts";
import { buildQemuArgs, DEFAULT_QEMU, type QemuMachineOptions, QemuTarget } from "./qemu.ts";
import type { BootRequest, Machine } from "./target.ts";
import { ensureToolGroups, type ToolGroup } from "../host/toolcheck.ts";
import { requestInitrd } from "../host/initrd.ts";
import { deferredMachine } from "./deferred.ts";

/** How the kernel reaches the machine. */
export interface BootPath {
  via: "multiboot1" | "iso" | "pxe";
  firmware: Firmware;
}

/** Where boot paths keep their images and trees unless told otherwise. */
export const BOOT_PATHS_DIR = join(BUILD_DIR, "boot-paths");

/** The files a work directory holds. */
export const WORK_FILES = {
  mb1Image: "kernel.mb1",
  iso: "ouroboros.iso",
  isoTree: "iso-tree",
  tftp: "tftp",
  ovmfVars: "OVMF_VARS.fd",
} as const;

/** The tool groups a boot path needs (toolcheck.ts). */
export function toolGroupsFor(path: BootPath): ToolGroup[] {
  const groups: ToolGroup[] = [];
  if (path.via === "iso") groups.push("iso");
  if (path.via === "pxe") groups.push("pxe-qemu");
  if (path.via === "pxe" && path.firmware === "uefi") groups.push("pxe-tree");
  if (path.firmware === "uefi") groups.push("uefi");
  return groups;
}

/** The tool groups of the boot paths among `configs` (installed before any of them starts). */
export function toolGroupsForConfigs(configs: readonly { boot?: BootPath }[]): ToolGroup[] {
  const groups = configs.flatMap((c) => (c.boot === undefined ? [] : toolGroupsFor(c.boot)));
  return [...new Set(groups)];
}

/** One line for reports: "GRUB ISO under OVMF". */
export function describeBootPath(path: BootPath): string {
  const fw = path.firmware === "bios" ? "SeaBIOS" : "OVMF";
  switch (path.via) {
    case "multiboot1":
      return "QEMU's multiboot1 loader, flat image";
    case "iso":
      return `GRUB ISO under ${fw}`;
    case "pxe":
      return path.firmware === "bios"
        ? "PXE: iPXE ROM, iPXE script, multiboot1"
        : "PXE: OVMF, iPXE UEFI driver, GRUB netboot, multiboot2";
  }
}

/** The firmware's QEMU arguments: SeaBIOS is QEMU's default; OVMF goes in as two flash drives. */
export function firmwareArgs(firmware: Firmware, varsCopy: string): string[] {
  if (firmware === "bios") return [];
  // Before prepare() installs OVMF, name the file the package will bring.
  const ovmf = findOvmf() ?? OVMF_PAIRS[0];
  return [
    "-drive",
    `if=pflash,format=raw,unit=0,readonly=on,file=${ovmf.code}`,
    "-drive",
    `if=pflash,format=raw,unit=1,file=${varsCopy}`,
  ];
}

/** The NIC with iPXE's ROM on a netdev, and network boot first. */
export function pxeNicArgs(netdev: string): string[] {
  return ["-device", `${PXE_NIC},netdev=${netdev},romfile=${PXE_NIC_ROM}`, "-boot", "n"];
}

/** A short stable name for a boot request: the configuration and a hash of what it boots. */
export function workName(name: string, request: BootRequest): string {
  // Loaded here, not by every command that imports this module (~60 ms of CPU).
  const { createHash } = createRequire(import.meta.url)("node:crypto") as typeof NodeCrypto;
  const h = createHash("sha256").update(`${request.kernel}\n${request.cmdline}`).digest("hex");
  return `${name}-${h.slice(0, 12)}`;
}

/** Options of a boot-path target: the QEMU machine, and where its work goes. */
export type BootPathOptions = QemuMachineOptions & {
  /** Names the work directory (the configuration's name). */
  name: string;
  /** Parent of the work directories; default {@link BOOT_PATHS_DIR}. */
  workRoot?: string;
};

/** A QEMU machine booted through firmware and a loader (see the module comment). */
export class BootPathTarget extends QemuTarget {
  readonly path: BootPath;
  readonly #options: BootPathOptions;

  constructor(path: BootPath, options: BootPathOptions) {
    super(options);
    this.path = path;
    this.#options = options;
  }

  override get description(): string {
    return `${super.description}; ${describeBootPath(this.path)}`;
  }

  /** Where a request's image or tree is made. */
  workDir(request: BootRequest): string {
    return join(this.#options.workRoot ?? BOOT_PATHS_DIR, workName(this.#options.name, request));
  }

  /** The boot medium's QEMU arguments (files inside {@link workDir}). */
  protected mediaArgs(dir: string): string[] {
    switch (this.path.via) {
      case "multiboot1":
        return [];
      case "iso":
        return ["-cdrom", join(dir, WORK_FILES.iso)];
      case "pxe": {
        const tftp = join(dir, WORK_FILES.tftp);
        const bootfile = BOOT_FILE[this.path.firmware];
        return [
          "-netdev",
          `user,id=net0,restrict=on,tftp=${tftp},bootfile=${bootfile}`,
          ...pxeNicArgs("net0"),
        ];
      }
    }
  }

  override args(request: BootRequest): string[] {
    const o = this.#options;
    const dir = this.workDir(request);
    const mb1 = this.path.via === "multiboot1";
    return buildQemuArgs({
      machine: o.machine,
      memory: o.memory,
      cpu: o.cpu,
      smp: o.smp,
      accel: this.accel.accel,
      // A foreign multiboot1 image goes to QEMU's loader as it is.
      kernel: mb1 ? (request.image ? request.kernel : join(dir, WORK_FILES.mb1Image)) : undefined,
      append: mb1 ? request.cmdline : undefined,
      initrd: mb1 ? requestInitrd(request) : undefined,
      gdbPort: request.gdbPort,
      extraArgs: [
        ...firmwareArgs(this.path.firmware, join(dir, WORK_FILES.ovmfVars)),
        ...this.mediaArgs(dir),
        ...(o.extraArgs ?? []),
      ],
    });
  }

  /** Install what the path needs, then make its image or tree and the firmware's files. */
  async prepare(request: BootRequest): Promise<void> {
    await ensureToolGroups(toolGroupsFor(this.path));
    const dir = this.workDir(request);
    await mkdir(dir, { recursive: true });
    if (this.path.firmware === "uefi") {
      const ovmf = findOvmf();
      if (ovmf === null) throw new Error("OVMF is not installed (package ovmf)");
      await copyFile(ovmf.vars, join(dir, WORK_FILES.ovmfVars)); // writable, fresh each boot
    }
    switch (this.path.via) {
      case "multiboot1": {
        if (request.image !== undefined) return; // booted as it is (args())
        const { image } = buildMultiboot1Image(parseElf(await readFile(request.kernel)));
        await writeFile(join(dir, WORK_FILES.mb1Image), image);
        return;
      }
      case "iso":
        await buildIso({
          kernel: request.kernel,
          cmdline: request.cmdline,
          out: join(dir, WORK_FILES.iso),
          stageDir: join(dir, WORK_FILES.isoTree),
          image: request.image,
          initrd: requestInitrd(request),
        });
        return;
      case "pxe":
        await buildPxeTree({
          kernel: request.kernel,
          cmdline: request.cmdline,
          out: join(dir, WORK_FILES.tftp),
          firmware: [this.path.firmware],
          image: request.image,
          initrd: requestInitrd(request),
        });
        return;
    }
  }

  /** Undo what prepare() set up once the machine is gone; text returned goes to its stderr. */
  cleanup(_request: BootRequest): Promise<string | void> {
    return Promise.resolve();
  }

  override start(request: BootRequest, onSerial: (chunk: Uint8Array) => void): Machine {
    const binary = this.#options.qemu ?? DEFAULT_QEMU;
    return deferredMachine({
      prepare: () => this.prepare(request),
      launch: () => super.start(request, onSerial),
      cleanup: () => this.cleanup(request),
      command: { binary, args: this.args(request) },
    });
  }
}
