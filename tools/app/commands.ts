/**
 * Pieces of the test commands that both `deno task test` (tools/test.ts)
 * and the npm package's `test` (tools/npm/test.ts) use: the tools a run
 * needs, the runs it makes (on QEMU, or on a lab machine), its deadlines,
 * and `--list`.
 */
import { MachineFileError } from "../machines/lab/machine.ts";
import { type LabSelection, labSelection, layerDeadlines } from "../run/lab_selection.ts";
import { toolGroupsForConfigs } from "../machines/boot_path.ts";
import { ensureTools, MissingToolsError, requiredTools, toolsOf } from "../host/toolcheck.ts";
import { CONFIGS, defaultConfig, type MachineConfig } from "../run/configs.ts";
import { targetFor } from "../run/targets.ts";
import type { RunObserver } from "../run/observer.ts";
import {
  type KernelSource,
  type KernelTestOptions,
  listKernelTests,
  prepareKernel,
} from "../run/matrix.ts";
import { type RunnerArgs, TEST_SILENCE_MS } from "./options.ts";
import { shardOf } from "../run/plan.ts";
import { summaryLine } from "../core/record.ts";
import type { Deadlines } from "../run/run.ts";

/** The deadlines of a test run: those given, and {@link TEST_SILENCE_MS} for silence unless given. */
export function testDeadlines(args: Pick<RunnerArgs, "deadlines">): Partial<Deadlines> {
  const d: Partial<Deadlines> = { silenceMs: TEST_SILENCE_MS };
  for (const [k, v] of Object.entries(args.deadlines)) {
    if (v !== undefined) d[k as keyof Deadlines] = v;
  }
  return d;
}

/**
 * Make sure the system tools a run needs are there (installing them if
 * allowed): the build's and QEMU's, and those of the configurations' boot paths.
 */
export async function ensureTestTools(configs: readonly MachineConfig[]): Promise<void> {
  await ensureTools([...requiredTools(), ...toolsOf(toolGroupsForConfigs(configs))]);
}

/** Which kernel to build and where its files go. */
/**
 * What every test command does before running: read the machine file (if
 * any) and make sure the tools are there. A number is the exit status to
 * stop with, after the error (and, for missing tools, the closing line).
 */
export async function prepareTestRun(
  args: Pick<RunnerArgs, "machine" | "configs">,
): Promise<{ lab: LabSelection | null } | number> {
  let lab: LabSelection | null = null;
  try {
    lab = args.machine === null ? null : labSelection(args.machine);
  } catch (e) {
    if (!(e instanceof MachineFileError)) throw e;
    console.error(`error: machine file ${e.message}`);
    return 2;
  }
  try {
    await ensureTestTools(args.configs);
  } catch (e) {
    if (!(e instanceof MissingToolsError)) throw e;
    console.error(`error: ${e.message}`);
    console.log(summaryLine({ passed: 0, failed: 1, skipped: 0, flaky: 0 }));
    return 1;
  }
  return { lab };
}

export interface KernelPlace {
  /** Repository root. */
  root: string;
  /** Build output; default `<root>/build`. */
  outDir?: string;
  /** Serial logs. */
  logDir: string;
  /** Layout and kernel directory; default this repository's. */
  source?: KernelSource;
  /** The configuration table (the kernel lists its tests on its default); default configs.ts's. */
  table?: readonly MachineConfig[];
}

/**
 * `--list`: build, boot once with `ktest.list`, print the tests the
 * selection would run (one per line, `kernel[NAME] suite.test` with several
 * configurations), and their count on stderr. Resolves to the exit status.
 */
export async function listCommand(place: KernelPlace, args: RunnerArgs): Promise<number> {
  const prepared = await prepareKernel(place.root, place.outDir, place.source);
  if (prepared.elf === null) {
    console.error(`error: ${prepared.build?.message}\n${prepared.build?.details.join("\n")}`);
    return 1;
  }
  const { tests } = await listKernelTests(prepared.elf, args.filter, {
    logDir: place.logDir,
    target: targetFor(defaultConfig(place.table ?? CONFIGS)),
    deadlines: testDeadlines(args),
  });
  const several = args.configs.length > 1;
  let units = args.configs.flatMap((c) => tests.map((t) => ({ config: c.name, test: t })));
  if (args.shard !== null) units = shardOf(units, args.shard);
  for (const u of units) console.log(several ? `kernel[${u.config}] ${u.test}` : u.test);
  const where = args.shard ? ` in shard ${args.shard.index}/${args.shard.count}` : "";
  console.error(`${units.length} kernel tests${where} (listed by the kernel)`);
  return 0;
}

/**
 * The runs of a test command: the selection of `args` on its
 * configurations, or on the lab machine of `--machine` (its deadlines
 * between the test run's defaults and the command line's).
 */
export function kernelTestOptions(
  place: KernelPlace,
  args: RunnerArgs,
  lab: LabSelection | null,
  observer: RunObserver,
): KernelTestOptions {
  return {
    root: place.root,
    outDir: place.outDir,
    kernelDir: place.source?.kernelDir,
    layout: place.source?.layout,
    configs: lab ? [lab.config] : args.configs,
    targetOf: lab ? () => lab.target : undefined,
    filter: args.filter,
    shard: args.shard,
    retries: args.retries,
    deadlines: lab
      ? layerDeadlines(testDeadlines(args), lab.target.machine.deadlines, args.deadlines)
      : testDeadlines(args),
    jobs: args.jobs ?? undefined,
    logDir: place.logDir,
    observer,
  };
}
