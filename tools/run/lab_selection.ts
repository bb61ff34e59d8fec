/**
 * `deno task test --machine FILE`: what the runner runs on a lab machine.
 * One configuration, named after the machine (results read
 * `kernel[NAME]/suite > test`), whose target is the machine; deadlines from
 * the file under the command line's.
 */
import type { MachineConfig } from "./configs.ts";
import type { Deadlines } from "./run.ts";
import { loadMachineFile } from "../machines/lab/machine.ts";
import { LabTarget } from "../machines/lab/target.ts";

/** What a `--machine` run needs. */
export interface LabSelection {
  config: MachineConfig;
  target: LabTarget;
}

/** Load the machine file (throws MachineFileError) and make its configuration and target. */
export function labSelection(file: string): LabSelection {
  const machine = loadMachineFile(file);
  const target = new LabTarget(machine);
  return {
    config: {
      name: machine.name,
      description: target.description,
      machine: "lab",
      memory: "as built",
    },
    target,
  };
}

/**
 * Deadlines by layer, later layers winning where they say something:
 * the test run's defaults, the machine file's, the command line's.
 */
export function layerDeadlines(...layers: Partial<Deadlines>[]): Partial<Deadlines> {
  const out: Partial<Deadlines> = {};
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer)) {
      if (v !== undefined) out[k as keyof Deadlines] = v;
    }
  }
  return out;
}
