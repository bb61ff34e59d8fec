/**
 * The named machine configurations kernel tests run on: one place, one
 * table. `deno task test --config NAME[,NAME...]|all` picks from it; the
 * default is {@link DEFAULT_CONFIG}. Each configuration changes one thing
 * against the default (the machine, the CPU model, the memory size, the CPU
 * count), so a test that fails on one of them points at that one thing.
 *
 * The table is data: checking a name loads no target and no image builder.
 * run/targets.ts turns a configuration into a target (machines/target.ts),
 * the seam where other ways to boot plug in.
 */
import type { BootPath } from "../machines/boot_path.ts";
import { DEFAULT_MACHINE, DEFAULT_MEMORY } from "../machines/qemu.ts";

/** A named machine configuration. */
export interface MachineConfig {
  /** Name on the command line and in test names: `kernel[NAME]/suite`. */
  name: string;
  /** What it is for, one line. */
  description: string;
  /** QEMU `-machine`. */
  machine: string;
  /** QEMU `-m`. */
  memory: string;
  /** QEMU `-cpu`; QEMU's default (qemu64) when undefined. */
  cpu?: string;
  /**
   * CPU features to turn off under TCG, which does not emulate them: with
   * them off QEMU runs the model without warnings, and the guest sees what
   * it really gets. Under KVM the model is used as is.
   */
  tcgWithout?: readonly string[];
  /** QEMU `-smp`. */
  smp?: number;
  /**
   * How the kernel reaches the machine when not by QEMU's -kernel (PVH):
   * firmware and a boot loader (machines/boot_path.ts).
   */
  boot?: BootPath;
}

/** The configuration used when none is named. */
export const DEFAULT_CONFIG = "microvm";

/**
 * Every configuration. TCG runs all of them (verified with QEMU 7.2); each
 * boots in about 0.1 s of wall time.
 */
export const CONFIGS: readonly MachineConfig[] = [
  {
    name: "microvm",
    description: "the default: microvm, no firmware, PVH boot",
    machine: DEFAULT_MACHINE,
    memory: DEFAULT_MEMORY,
  },
  {
    name: "pc",
    description: "i440FX PC with SeaBIOS (firmware noise before the kernel)",
    machine: "pc",
    memory: DEFAULT_MEMORY,
  },
  {
    name: "q35",
    description: "Q35 chipset with SeaBIOS",
    machine: "q35",
    memory: DEFAULT_MEMORY,
  },
  {
    name: "qemu64",
    description: "QEMU's baseline CPU model, named explicitly",
    machine: DEFAULT_MACHINE,
    memory: DEFAULT_MEMORY,
    cpu: "qemu64",
  },
  {
    name: "max",
    description: "every CPU feature the accelerator can offer",
    machine: DEFAULT_MACHINE,
    memory: DEFAULT_MEMORY,
    cpu: "max",
  },
  {
    name: "no-nx",
    description: "max without NX: EFER.NXE stays off, bit 63 of an entry is reserved",
    machine: DEFAULT_MACHINE,
    memory: DEFAULT_MEMORY,
    // max keeps SMEP and SMAP, so the access matrix's NXE-off half runs with them on and off.
    // In the model, not tcgWithout: under KVM too the guest must not see NX.
    cpu: "max,-nx",
  },
  {
    name: "haswell",
    description: "a named Intel model (Haswell, without TSX)",
    machine: DEFAULT_MACHINE,
    memory: DEFAULT_MEMORY,
    cpu: "Haswell-noTSX",
    // QEMU 7.2's TCG warns that it lacks these four and drops them anyway.
    tcgWithout: ["pcid", "x2apic", "tsc-deadline", "invpcid"],
  },
  {
    name: "mem-32m",
    description: "a small machine: 32 MiB",
    machine: DEFAULT_MACHINE,
    memory: "32M",
  },
  {
    name: "mem-4g",
    description: "memory above the 4 GiB line (q35 splits RAM around the PCI hole)",
    machine: "q35",
    memory: "4G",
  },
  {
    name: "smp2",
    description: "two CPUs (the MADT lists both; the kernel starts the second)",
    machine: DEFAULT_MACHINE,
    memory: DEFAULT_MEMORY,
    smp: 2,
  },
  {
    name: "smp4",
    description: "four CPUs (QEMU's multi-threaded TCG runs them on the host's cores)",
    machine: DEFAULT_MACHINE,
    memory: DEFAULT_MEMORY,
    smp: 4,
  },
];

/** UEFI firmware (OVMF) wants more than the default memory. */
const UEFI_MEMORY = "256M";

/**
 * The boot paths (`--config boot-paths`): the kernel arrives through
 * firmware and a boot loader as on real machines. Slower than -kernel
 * (seconds under TCG, see README), so outside `all` and the default run.
 */
export const BOOT_PATH_CONFIGS: readonly MachineConfig[] = [
  {
    name: "multiboot1",
    description: "QEMU's multiboot1 loader on the flat image iPXE boots (pc, SeaBIOS)",
    machine: "pc",
    memory: DEFAULT_MEMORY,
    boot: { via: "multiboot1", firmware: "bios" },
  },
  {
    name: "iso-bios",
    description: "the hybrid GRUB ISO as a CD-ROM under SeaBIOS, multiboot2",
    machine: "pc",
    memory: DEFAULT_MEMORY,
    boot: { via: "iso", firmware: "bios" },
  },
  {
    name: "iso-uefi",
    description: "the hybrid GRUB ISO as a CD-ROM under OVMF, multiboot2",
    machine: "q35",
    memory: UEFI_MEMORY,
    boot: { via: "iso", firmware: "uefi" },
  },
  {
    name: "pxe-bios",
    description: "PXE from QEMU's TFTP: iPXE ROM, iPXE script, multiboot1 image",
    machine: "pc",
    memory: DEFAULT_MEMORY,
    boot: { via: "pxe", firmware: "bios" },
  },
  {
    name: "pxe-uefi",
    description: "PXE from QEMU's TFTP: OVMF, GRUB netboot, multiboot2",
    machine: "q35",
    memory: UEFI_MEMORY,
    boot: { via: "pxe", firmware: "uefi" },
  },
];

/** Names that select several configurations: `all` (the table) and `boot-paths`. */
export const BOOT_PATHS_GROUP = "boot-paths";

/** Thrown for a configuration name that is not in the table ({@link CONFIGS} by default). */
export class UnknownConfigError extends Error {
  constructor(name: string, table: readonly MachineConfig[] = CONFIGS) {
    const known = [...table, ...BOOT_PATH_CONFIGS].map((c) => c.name).join(", ");
    super(`unknown configuration '${name}' (known: ${known}, all, ${BOOT_PATHS_GROUP})`);
    this.name = "UnknownConfigError";
  }
}

/** The configuration called `name`. */
export function getConfig(name: string): MachineConfig {
  return configIn(CONFIGS, name);
}

/** The configuration called `name` in `table` (a project may bring its own: project.ts). */
export function configIn(table: readonly MachineConfig[], name: string): MachineConfig {
  // Boot paths deliver any table's kernel: their names are known everywhere.
  const config = table.find((c) => c.name === name) ??
    BOOT_PATH_CONFIGS.find((c) => c.name === name);
  if (config === undefined) throw new UnknownConfigError(name, table);
  return config;
}

/** The configuration used when none is named: {@link DEFAULT_CONFIG}, else the table's first. */
export function defaultConfig(table: readonly MachineConfig[] = CONFIGS): MachineConfig {
  return table.find((c) => c.name === DEFAULT_CONFIG) ?? configIn(table, table[0]?.name ?? "");
}

/**
 * The configurations a `--config` value selects: `all`, or names separated
 * by commas, in the order given, each once. Empty: the default.
 */
export function selectConfigs(
  spec: string | undefined,
  table: readonly MachineConfig[] = CONFIGS,
): MachineConfig[] {
  if (spec === undefined || spec.trim() === "") return [defaultConfig(table)];
  const names = spec.split(",").map((n) => n.trim()).filter((n) => n !== "");
  if (names.includes("all")) return [...table];
  const expanded = names.flatMap((n) =>
    n === BOOT_PATHS_GROUP ? BOOT_PATH_CONFIGS.map((c) => c.name) : [n]
  );
  return [...new Set(expanded)].map((n) => configIn(table, n));
}
