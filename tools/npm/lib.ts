/**
 * The npm package's library: what a kernel repository's own scripts can
 * call. Four parts:
 *
 * - the project (where the kernel sources, layout and machine
 *   configurations are: {@link findProject}, {@link loadProject});
 * - the build ({@link build}): layout files generated, C and NASM compiled
 *   incrementally, two-pass link with boot page tables;
 * - the runner: boot a kernel on a target and classify the run
 *   ({@link runKernel}, {@link runOnTarget}), or the whole test matrix with
 *   its report ({@link runKernelTests}), its console reporter and JUnit;
 * - the TAP 14 / KTAP v1 reader ({@link TapIngest}, {@link KtapNormalizer},
 *   {@link SerialStream}, {@link parseLog} for saved logs);
 * - the layout and its generators ({@link deriveLayout},
 *   {@link renderCHeader}, {@link renderNasmInclude},
 *   {@link renderLinkerScript}, {@link computeBootTables}).
 *
 * @example Run a kernel and print its verdict
 * ```ts
 * import { runKernel } from "ouroboros-toolchain";
 * const r = await runKernel({ kernel: "build/kernel.elf", append: "ktest.filter=pmm.*" });
 * console.log(r.classification.kind, r.report.counts);
 * ```
 * @module
 */

// The project.
export {
  findProject,
  layoutToJson,
  loadProject,
  parseConfigsJson,
  parseLayoutJson,
  parseProjectFile,
  type Project,
  PROJECT_FILE,
  ProjectError,
  type ProjectFile,
} from "../app/project.ts";

// The build.
export { build, BuildError, type BuildOptions, type BuildResult } from "../build/build.ts";
export { type ElfImage, parseElf, symbolValue } from "../core/elf.ts";
export { checkBootTables } from "../core/image_check.ts";

// The runner: one run.
export {
  type Deadlines,
  DEFAULT_BOOT_TIMEOUT_MS,
  DEFAULT_KILL_GRACE_MS,
  DEFAULT_RUN_TIMEOUT_MS,
  DEFAULT_SILENCE_TIMEOUT_MS,
  resolveDeadlines,
  runKernel,
  runOnTarget,
  type RunOptions,
  type RunResult,
  type WatchOptions,
} from "../run/run.ts";
export type { BootRequest, Machine, MachineEnd, Target } from "../machines/target.ts";
export {
  type Accel,
  type AccelChoice,
  buildQemuArgs,
  chooseAccel,
  DEFAULT_MACHINE,
  DEFAULT_MEMORY,
  DEFAULT_QEMU,
  type QemuMachineOptions,
  type QemuOptions,
  QemuTarget,
} from "../machines/qemu.ts";
export { bytesSource, fileSource, type LogSource, LogTarget } from "../machines/log_target.ts";
export {
  type Category,
  type Classification,
  type ClassificationKind,
  classify,
  type ExitInfo,
  type TimeoutInfo,
} from "../core/classify.ts";

// The runner: the test matrix and its reports.
export {
  configIn,
  CONFIGS,
  DEFAULT_CONFIG,
  defaultConfig,
  type MachineConfig,
  selectConfigs,
  UnknownConfigError,
} from "../run/configs.ts";
export { targetFor, type TargetOptions } from "../run/targets.ts";
export {
  type KernelSource,
  type KernelTestOptions,
  listKernelTests,
  type MatrixOptions,
  type PreparedKernel,
  prepareKernel,
  runKernelTests,
  runMatrix,
} from "../run/matrix.ts";
export {
  type Counts,
  type KernelReport,
  REPORT_SCHEMA,
  type RunRecord,
  type SuiteRecord,
  summaryLine,
  type TestRecord,
} from "../core/record.ts";
export { toJunit } from "../core/junit.ts";
export {
  consoleMode,
  ConsoleReporter,
  type JobInfo,
  type RunObserver,
  silentObserver,
} from "../app/console.ts";
export {
  parseRunnerArgs,
  RUNNER_USAGE,
  type RunnerArgs,
  TEST_SILENCE_MS,
  UsageError,
} from "../app/options.ts";
export { type Shard, shardOf } from "../run/plan.ts";

// The TAP 14 / KTAP v1 reader.
export {
  type BailOut,
  type Diagnostic,
  type PlanInfo,
  type SuiteReport,
  type TapEvent,
  TapIngest,
  type TapReport,
  type TestResult,
  type TestStatus,
} from "../core/tap.ts";
export { KtapNormalizer } from "../core/ktap.ts";
export { LineSplitter, SerialStream, type SerialStreamHandlers } from "../core/serial.ts";
export { parseLog, type ParseOptions } from "../app/parse.ts";

// The layout and its generators.
export {
  DEBUG_EXIT,
  DEFAULT_LAYOUT_CONFIG,
  deriveLayout,
  type Layout,
  type LayoutConfig,
  LayoutError,
  qemuExitStatus,
} from "../../linker/layout.ts";
export {
  type Constant,
  layoutConstants,
  renderCHeader,
  renderNasmInclude,
} from "../../linker/constants.ts";
export { renderLinkerScript, SECTION_SYMBOLS } from "../../linker/linker_script.ts";
export {
  type BootTable,
  bootTableNames,
  computeBootTables,
  type ImageSymbols,
  placeholderBootTables,
  renderBootTables,
} from "../../linker/boot_tables.ts";

// The command line, for scripts that want to run it in-process.
export { main as cli } from "./cli.ts";
