/**
 * Kernel test runs for real use: build and check the kernel, work out what
 * to run (configurations × filter × shard), boot the runs in parallel
 * (bounded by the number of CPUs), retry failed ones, symbolize crashes,
 * and produce the report (record.ts) that every output is made from.
 */
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { build, BuildError, type BuildOptions } from "../build/build.ts";
import { checkBootTables } from "../core/image_check.ts";
import { DEFAULT_CONFIG, getConfig, type MachineConfig } from "./configs.ts";
import { targetFor, type TargetOptions } from "./targets.ts";
import { type JobInfo, type RunObserver, silentObserver } from "./observer.ts";
import {
  globsFor,
  kernelCmdlineMax,
  listedTests,
  packFilters,
  type Shard,
  shardOf,
} from "./plan.ts";
import {
  type AttemptInput,
  type CheckRecord,
  type KernelReport,
  mergeAttempts,
  REPORT_SCHEMA,
  type RunRecord,
  type Selection,
  summarize,
} from "../core/record.ts";
import { type Deadlines, resolveDeadlines, runOnTarget, type RunResult } from "./run.ts";
import { attemptInput } from "./attempt.ts";

import type { TapEvent } from "../core/tap.ts";
import type { Target } from "../machines/target.ts";
import {
  cannotBoot,
  describeForeign,
  type ForeignImage,
  type ForeignSource,
  prepareForeign,
} from "./foreign.ts";

/** The kernel, built and checked, or why not. */
export interface PreparedKernel {
  elf: string | null;
  build: KernelReport["build"];
  checks: CheckRecord[];
}

/** The name of the host-side page-table check (kept: tests and users know it). */
export const BOOT_TABLES_CHECK = "boot page tables match the layout (host-side walker)";

/** What a project may choose about its kernel's build (default: this repository's). */
export type KernelSource = Pick<BuildOptions, "layout" | "kernelDir">;

/** Build the kernel (incrementally) and check its boot page tables before anything boots. */
export async function prepareKernel(
  root: string,
  outDir?: string,
  source: KernelSource = {},
): Promise<PreparedKernel> {
  let built;
  try {
    built = await build({ root, outDir, layout: source.layout, kernelDir: source.kernelDir });
  } catch (e) {
    const message = e instanceof BuildError
      ? `build failure in ${e.file}`
      : `build failure: ${e instanceof Error ? e.message : String(e)}`;
    const details = e instanceof BuildError ? e.output.split("\n").filter((l) => l !== "") : [];
    return { elf: null, build: { message, details }, checks: [] };
  }
  const image = built.image;
  // As loaded, and as boot.asm leaves the tables on a CPU without NX (config no-nx).
  const problems = [
    ...checkBootTables(image, built.layout),
    ...checkBootTables(image, built.layout, { nxe: false }).map((p) => `without NX: ${p}`),
  ];
  return {
    elf: built.elf,
    build: null,
    checks: [{
      name: BOOT_TABLES_CHECK,
      ok: problems.length === 0,
      category: "build",
      details: problems,
    }],
  };
}

/** What to run. */
export interface MatrixOptions {
  /** The kernel: our ELF, or the image of {@link image}. */
  elf: string;
  /**
   * A kernel image that is not ours (foreign.ts): booted by its protocol with
   * its own command line and initrd, judged by its TAP alone, never sent
   * `ktest.*` words; `--shard` splits the configurations.
   */
  image?: ForeignImage;
  /** Repository root: file names in symbolized crashes are relative to it. */
  root: string;
  /** The kernel sources, relative to root (for its command-line size); default `kernel`. */
  kernelDir?: string;
  configs: readonly MachineConfig[];
  /** `ktest.filter` globs (comma-separated), or null for every test. */
  filter: string | null;
  shard: Shard | null;
  /** Re-runs of a failed run. */
  retries: number;
  deadlines: Partial<Deadlines>;
  /** Runs at once; default: the number of CPUs. */
  jobs?: number;
  /** Where serial logs go. */
  logDir: string;
  /** Log files are `<logPrefix>-<run id>.log`; default `kernel`. */
  logPrefix?: string;
  /** Words added to every kernel command line (e.g. `selftest=panic`). */
  extraCmdline?: string;
  target?: TargetOptions;
  /** The target of a configuration; default: {@link targetFor} (QEMU). */
  targetOf?: (config: MachineConfig) => Target;
  observer?: RunObserver;
  /** The kernel's command-line size; read from the kernel's header when undefined. */
  cmdlineMax?: number;
  /** Expected duration of runs by id (from an earlier report): the longest start first. */
  estimates?: Readonly<Record<string, number>>;
  /** Called with the listed tests when a shard needed the kernel's list. */
  onList?: (tests: string[]) => void;
}

/** One boot (with its retries) to make. */
interface Job extends JobInfo {
  config: MachineConfig;
  cmdline: string;
  target: Target;
}

function join2(...words: (string | null | undefined)[]): string {
  return words.filter((w) => w !== null && w !== undefined && w !== "").join(" ");
}

/** `kernel` when only the default configuration runs, else `kernel[NAME]`. */
export function labelFor(config: MachineConfig, configs: readonly MachineConfig[]): string {
  const onlyDefault = configs.length === 1 && configs[0].name === DEFAULT_CONFIG;
  return onlyDefault ? "kernel" : `kernel[${config.name}]`;
}

/** Boot the kernel with `ktest.list` (and the filter) and return the tests it would run. */
export async function listKernelTests(
  elf: string,
  filter: string | null,
  options: { logDir: string; target?: Target; deadlines?: Partial<Deadlines> },
): Promise<{ tests: string[]; run: RunResult }> {
  const target = options.target ?? targetFor(getConfig(DEFAULT_CONFIG));
  const run = await runOnTarget(
    target,
    { kernel: elf, cmdline: join2("ktest.list", filter ? `ktest.filter=${filter}` : null) },
    { deadlines: options.deadlines, logFile: join(options.logDir, "kernel-list.log") },
  );
  // Listed tests are skipped ones, and a filter may select none: neither is a failed listing.
  if (!run.classification.ok && run.classification.kind !== "no-tests") {
    throw new Error(`listing the kernel's tests failed: ${run.classification.message}`);
  }
  return { tests: listedTests(run.report), run };
}

async function planJobs(options: MatrixOptions): Promise<Job[]> {
  const targetOf = options.targetOf ?? ((c: MachineConfig) => targetFor(c, options.target));
  const job = (config: MachineConfig, filter: string | null, part: number | null): Job => {
    const target = targetOf(config);
    return {
      id: part === null ? config.name : `${config.name}#${part}`,
      label: labelFor(config, options.configs),
      description: target.description,
      config,
      cmdline: options.image
        ? options.image.append
        : join2(filter ? `ktest.filter=${filter}` : null, options.extraCmdline),
      target,
    };
  };
  if (options.shard === null) return options.configs.map((c) => job(c, options.filter, null));
  // A foreign kernel's tests cannot be listed: a shard is a share of the configurations.
  if (options.image) return shardOf(options.configs, options.shard).map((c) => job(c, null, null));

  const { tests } = await listKernelTests(options.elf, options.filter, {
    logDir: options.logDir,
    target: targetOf(options.configs[0]),
    deadlines: options.deadlines,
  });
  options.onList?.(tests);
  const units = options.configs.flatMap((config) => tests.map((test) => ({ config, test })));
  const mine = shardOf(units, options.shard);
  const cmdlineMax = options.cmdlineMax ?? await kernelCmdlineMax(options.root, options.kernelDir);
  // Room for "ktest.filter=", the other words, the separating spaces and the NUL.
  const budget = cmdlineMax - 1 - "ktest.filter= ".length - (options.extraCmdline ?? "").length;
  const jobs: Job[] = [];
  for (const config of options.configs) {
    const wanted = mine.filter((u) => u.config === config).map((u) => u.test);
    if (wanted.length === 0) continue;
    // With a user filter, `suite.*` could select tests the filter excludes: name every test.
    const globs = options.filter === null ? globsFor(wanted, tests) : wanted;
    const filters = packFilters(globs, budget);
    filters.forEach((f, i) => jobs.push(job(config, f, filters.length > 1 ? i + 1 : null)));
  }
  return jobs;
}

function logName(prefix: string, job: Job, attempt: number): string {
  const safe = job.id.replace(/[^A-Za-z0-9._-]/g, "_");
  return `${prefix}-${safe}${attempt > 1 ? `-attempt${attempt}` : ""}.log`;
}

async function runJob(job: Job, options: MatrixOptions, observer: RunObserver): Promise<RunRecord> {
  const inputs: AttemptInput[] = [];
  const attempts = 1 + options.retries;
  let last: RunResult | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    observer.attemptStart(job, attempt);
    const timer = new TestTimer();
    const request = options.image
      ? {
        kernel: options.image.path,
        cmdline: job.cmdline,
        initrd: options.image.initrd ?? undefined,
        image: options.image.boot,
      }
      : { kernel: options.elf, cmdline: job.cmdline };
    last = await runOnTarget(job.target, request, {
      deadlines: options.deadlines,
      logFile: join(options.logDir, logName(options.logPrefix ?? "kernel", job, attempt)),
      onEvent: (e) => {
        timer.event(e);
        observer.event(job, e);
      },
    });
    const c = last.classification;
    // Crash dumps are read and symbolized in our kernel's format only.
    const input = await attemptInput(last, options.image ? null : options.elf, options.root);
    input.testDurations = timer.durations;
    inputs.push(input);
    const retry = !c.ok && attempt < attempts;
    observer.attemptEnd(job, attempt, c, retry);
    if (!retry) break;
  }
  const record = mergeAttempts({
    id: job.id,
    label: job.label,
    config: job.config.name,
    target: {
      kind: job.target.kind,
      description: job.target.description,
      command: [last!.command.binary, ...last!.command.args],
    },
    cmdline: job.cmdline,
  }, inputs);
  observer.runEnd(job, record);
  return record;
}

/** Host time from each test's start event to its result event. */
export class TestTimer {
  readonly durations: Record<string, number> = {};
  readonly #started = new Map<string, number>();

  event(e: TapEvent, now = performance.now()): void {
    if (e.type === "test-start") this.#started.set(e.fullName, now);
    else if (e.type === "test-result") {
      const t0 = this.#started.get(e.result.fullName);
      if (t0 !== undefined) this.durations[e.result.fullName] = Math.round((now - t0) * 10) / 10;
    }
  }
}

/**
 * Run `tasks` with at most `limit` at once, starting them in `order` (indices
 * into `tasks`); results in the order of `tasks`.
 */
export async function pool<T>(
  limit: number,
  tasks: (() => Promise<T>)[],
  order: readonly number[] = tasks.map((_, i) => i),
): Promise<T[]> {
  const results = new Array<T>(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < order.length) {
      const i = order[next++];
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, tasks.length)) }, worker));
  return results;
}

/**
 * Longest first, by the durations of earlier runs: the longest run starts at
 * once instead of last, when it would keep the others' CPUs idle. Runs with
 * no history keep their place after those with one.
 */
export function longestFirst(
  ids: readonly string[],
  estimates: Readonly<Record<string, number>> = {},
): number[] {
  const cost = (i: number) => estimates[ids[i]] ?? -1;
  return ids.map((_, i) => i).sort((a, b) => cost(b) - cost(a) || a - b);
}

/** How long each run of an earlier report took, by run id (empty if there is none). */
export function durationsOf(reportFile: string): Record<string, number> {
  try {
    const report = JSON.parse(readFileSync(reportFile, "utf8")) as KernelReport;
    if (report.schema !== REPORT_SCHEMA) return {};
    return Object.fromEntries(report.runs.map((r) => [r.id, r.durationMs]));
  } catch {
    return {};
  }
}

/** Plan the runs and make them, longest first; records in plan order. */
export async function runMatrix(options: MatrixOptions): Promise<RunRecord[]> {
  const observer = options.observer ?? silentObserver;
  const jobs = await planJobs(options);
  observer.start(jobs);
  const limit = options.jobs ?? availableParallelism();
  const order = longestFirst(jobs.map((j) => j.id), options.estimates);
  return pool(limit, jobs.map((job) => () => runJob(job, options, observer)), order);
}

/**
 * A filter that selects no test is a mistake (a typo would otherwise pass
 * in silence): the check fails. Known from the kernel's list when sharding
 * (a shard may rightly be empty), from the runs otherwise.
 */
export function filterCheck(
  filter: string,
  runs: readonly RunRecord[],
  listed: readonly string[] | null,
): CheckRecord {
  const selected = listed !== null
    ? listed.length
    : runs.reduce((n, r) => n + r.suites.reduce((m, s) => m + s.tests.length, 0), 0);
  // A kernel that ran no test (`1..0`) did what the filter asked: the check names the cause.
  const ranOk = runs.every((r) => r.status !== "fail" || r.kind === "no-tests");
  return {
    name: `--filter '${filter}' selects kernel tests`,
    // A failed run may have crashed before its first result: that is its own failure.
    ok: selected > 0 || !ranOk,
    category: "assertion",
    details: [`no kernel test matches '${filter}' (see deno task test --list)`],
  };
}

/** Everything `deno task test` asks of the kernel runs. */
export interface KernelTestOptions
  extends Omit<MatrixOptions, "elf" | "configs" | "deadlines" | "logDir"> {
  /** Where the build goes (default: ROOT/build). */
  outDir?: string;
  /** The kernel's layout (default: linker/layout.ts's). */
  layout?: KernelSource["layout"];
  configs: readonly MachineConfig[];
  deadlines?: Partial<Deadlines>;
  logDir?: string;
  /**
   * An earlier report whose run times order this run's (longest first);
   * default: the last one, `reports/kernel.json` of the build directory.
   */
  history?: string;
  /** Run this image instead of building ours (foreign.ts); `filter` must then be null. */
  foreign?: ForeignSource;
  /** Build progress lines (a foreign build command). */
  log?: (line: string) => void;
}

/** The kernel a test run boots: ours, built and checked, or a foreign image (maybe built). */
async function prepareAny(
  options: KernelTestOptions,
): Promise<PreparedKernel & { image: ForeignImage | null }> {
  if (options.foreign === undefined) {
    return { ...await prepareKernel(options.root, options.outDir, options), image: null };
  }
  const { image, build } = await prepareForeign(options.foreign, options.log);
  if (image === null) return { elf: null, build, checks: [], image: null };
  options.log?.(`image: ${describeForeign(image)}`);
  const checks: CheckRecord[] = options.configs.flatMap((c) => {
    const why = cannotBoot(c, image);
    return why === null ? [] : [{
      name: `kernel[${c.name}] can boot ${image.path}`,
      ok: false,
      category: "boot",
      details: [why],
    }];
  });
  return { elf: image.path, build: null, checks, image };
}

/** Build, check, run, summarize: the whole report. */
export async function runKernelTests(options: KernelTestOptions): Promise<KernelReport> {
  const started = performance.now();
  const buildDir = options.outDir ?? join(options.root, "build");
  const prepared = await prepareAny(options);
  const deadlines = resolveDeadlines(options.deadlines);
  const selection: Selection = {
    configs: options.configs.map((c) => c.name),
    filter: options.filter,
    shard: options.shard,
    retries: options.retries,
    deadlines,
  };
  const ready = prepared.elf !== null && prepared.checks.every((c) => c.ok);
  let listed: string[] | null = null;
  const runs = ready
    ? await runMatrix({
      ...options,
      elf: prepared.elf!,
      image: prepared.image ?? undefined,
      deadlines,
      logDir: options.logDir ?? join(buildDir, "logs"),
      estimates: options.estimates ??
        durationsOf(options.history ?? join(buildDir, "reports", "kernel.json")),
      onList: (tests) => {
        listed = tests;
        options.onList?.(tests);
      },
    })
    : [];
  const checks = [...prepared.checks];
  if (ready && options.filter !== null) checks.push(filterCheck(options.filter, runs, listed));
  const report = summarize({
    schema: REPORT_SCHEMA,
    createdAt: new Date().toISOString(),
    durationMs: performance.now() - started,
    kernel: prepared.elf,
    build: prepared.build,
    checks,
    selection,
    runs,
  });
  (options.observer ?? silentObserver).end(report);
  return report;
}
