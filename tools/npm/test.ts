/**
 * `test` of the npm CLI: the kernel half of `deno task test`, for a
 * project (app/project.ts). Same runner options (the command table's), same
 * console reporter, the same `--json`/`--junit` reports and
 * `<build>/reports/kernel.json`, the same closing line and exit status as
 * `deno task test --kernel-only`. There is no `deno test` under Node: the
 * npm `test` takes no test files and nothing after `--`.
 *
 * OUROBOROS_REPORT_DIR and OUROBOROS_LOG_DIR move the reports and serial
 * logs, as they do for `deno task test`.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import type { Project } from "../app/project.ts";
import {
  checkForeign,
  foreignSourceOf,
  kernelTestOptions,
  listCommand,
  prepareTestRun,
} from "../app/commands.ts";
import { ConsoleReporter } from "../app/console.ts";
import { toJunit } from "../core/junit.ts";
import { writeReportHtml } from "../report/html.ts";
import { runKernelTests } from "../run/matrix.ts";
import { parseRunnerArgs } from "../app/options.ts";
import { summaryLine } from "../core/record.ts";

function dirs(project: Project): { reportDir: string; logDir: string } {
  return {
    reportDir: process.env.OUROBOROS_REPORT_DIR ?? join(project.buildDir, "reports"),
    logDir: process.env.OUROBOROS_LOG_DIR ?? join(project.buildDir, "logs"),
  };
}

/**
 * Run the project's kernel tests with the runner options in `argv`; resolves to the exit status.
 */
export async function testCommand(
  argv: readonly string[],
  project: Project,
): Promise<number> {
  // Read with the command table; a usage error is thrown (the CLI prints it, exit 2).
  const args = parseRunnerArgs(argv, project.configs, "npm").args;
  const foreign = foreignSourceOf(args, project.image);
  const stop = await checkForeign(foreign, args.configs);
  if (stop !== null) return stop;
  const prepared = await prepareTestRun(args);
  if (typeof prepared === "number") return prepared;
  const lab = prepared.lab;
  const { reportDir, logDir } = dirs(project);
  const place = {
    root: project.root,
    outDir: project.buildDir,
    logDir,
    source: project,
    table: project.configs,
    foreign,
  };
  if (args.list) return await listCommand(place, args);
  const report = await runKernelTests(
    kernelTestOptions(place, args, lab, new ConsoleReporter()),
  );
  const json = JSON.stringify(report, null, 2) + "\n";
  await mkdir(reportDir, { recursive: true });
  await writeFile(join(reportDir, "kernel.json"), json);
  if (args.json !== null) await writeFile(args.json, json);
  if (args.junit !== null) await writeFile(args.junit, toJunit(report));
  const index = join(reportDir, "index.html");
  await writeReportHtml(report, project.root, args.html === null ? [index] : [index, args.html]);
  console.log(summaryLine(report.summary));
  return report.summary.ok ? 0 : 1;
}
