/**
 * Pieces of the test commands that both `deno task test` (tools/test.ts)
 * and the npm package's `test` (tools/npm/test.ts) use: the tools a run
 * needs, the runs it makes (on QEMU, or on a lab machine), its deadlines,
 * and `--list`.
 */
import { stat } from "node:fs/promises";
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
import { type RunnerArgs, TEST_SILENCE_MS, UsageError } from "./options.ts";
import { cannotBoot, type ForeignSource, readForeignImage } from "../run/foreign.ts";
import { BootImageError } from "../core/boot_image.ts";
import type { ProjectImage } from "./project.ts";
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
  /** A kernel image that is not ours, run instead of our build (run/foreign.ts). */
  foreign?: ForeignSource;
}

/**
 * The foreign image a test command runs: `--image` (with `--append`,
 * `--initrd`), else the project's own image and build command, whose
 * command line and initrd `--append` and `--initrd` replace. Undefined for
 * our kernel; a UsageError for `--append`/`--initrd` with nothing to apply to.
 */
export function foreignSourceOf(
  args: Pick<RunnerArgs, "image" | "append" | "initrd" | "filter" | "list">,
  project: ProjectImage | null = null,
): ForeignSource | undefined {
  if (args.image === null && project === null) {
    const stray = args.append !== null ? "--append" : args.initrd !== null ? "--initrd" : null;
    if (stray !== null) {
      throw new UsageError(
        `${stray} applies to a kernel image (--image FILE, or a project's image)`,
      );
    }
    return undefined;
  }
  if (args.image === null && (args.filter !== null || args.list)) {
    throw new UsageError(
      `${args.list ? "--list" : "--filter"} is for our kernel (ktest.*); the project's image ` +
        `${project!.image} takes its own filter in --append`,
    );
  }
  if (args.image !== null) {
    return { image: args.image, append: args.append ?? "", initrd: args.initrd };
  }
  const p = project!;
  return {
    image: p.image,
    append: args.append ?? p.append,
    initrd: args.initrd ?? p.initrd,
    build: p.buildCommand === null ? undefined : { command: p.buildCommand, cwd: p.cwd },
  };
}

/**
 * Before a run, a prebuilt image (no build command) is checked: a missing
 * or unbootable file is an error (exit 1), a configuration that cannot boot
 * it a usage error (exit 2). Resolves to the exit status to stop with, or null.
 */
export async function checkForeign(
  source: ForeignSource | undefined,
  configs: readonly MachineConfig[],
): Promise<number | null> {
  if (source === undefined || source.build !== undefined) return null;
  try {
    const boot = await readForeignImage(source.image);
    for (const c of configs) {
      const why = cannotBoot(c, {
        path: source.image,
        append: source.append ?? "",
        initrd: null,
        boot,
      });
      if (why !== null) {
        console.error(`error: ${why}`);
        return 2;
      }
    }
  } catch (e) {
    if (!(e instanceof BootImageError)) throw e;
    const unread = e.reasons.length === 1 && e.reasons[0].startsWith("cannot read");
    console.error(`error: --image ${source.image}: ${unread ? e.reasons[0] : e.message}`);
    return 1;
  }
  if (source.initrd) {
    const ok = await stat(source.initrd).then((s) => s.isFile(), () => false);
    if (!ok) {
      console.error(`error: --initrd ${source.initrd}: no such file`);
      return 1;
    }
  }
  return null;
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
    foreign: place.foreign,
    log: place.foreign ? (line) => console.error(line) : undefined,
  };
}
