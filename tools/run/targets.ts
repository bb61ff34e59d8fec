/**
 * The target that boots a machine configuration (configs.ts): QEMU with
 * `-kernel`, or QEMU through a boot path's firmware and loader.
 */
import { BootPathTarget } from "../machines/boot_path.ts";
import { type Accel, type AccelChoice, chooseAccel, QemuTarget } from "../machines/qemu.ts";
import type { MachineConfig } from "./configs.ts";

/** The `-cpu` value for a configuration on an accelerator. */
export function cpuArgument(config: MachineConfig, accel: Accel): string | undefined {
  if (config.cpu === undefined) return undefined;
  if (accel !== "tcg" || !config.tcgWithout?.length) return config.cpu;
  return [config.cpu, ...config.tcgWithout.map((f) => `-${f}`)].join(",");
}

/** Options of the target for a configuration. */
export interface TargetOptions {
  /** Accelerator; chosen from the host when undefined. */
  accel?: Accel | AccelChoice;
  /** QEMU binary. */
  qemu?: string;
  /** Extra QEMU arguments. */
  extraArgs?: readonly string[];
  /** QEMU in a process group of its own (see QemuMachineOptions). */
  detached?: boolean;
}

/** The target that boots a configuration (a boot path's if it has one). */
export function targetFor(config: MachineConfig, options: TargetOptions = {}): QemuTarget {
  const accel: AccelChoice = typeof options.accel === "string"
    ? { accel: options.accel, reason: "requested" }
    : options.accel ?? chooseAccel();
  const machine = {
    qemu: options.qemu,
    accel,
    machine: config.machine,
    memory: config.memory,
    cpu: cpuArgument(config, accel.accel),
    smp: config.smp,
    extraArgs: options.extraArgs,
    detached: options.detached,
  };
  if (config.boot !== undefined) {
    return new BootPathTarget(config.boot, { ...machine, name: config.name });
  }
  return new QemuTarget(machine);
}
