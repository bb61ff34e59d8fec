/**
 * The scheduler on every CPU, seen from the console: the kernel boots on 2
 * and 4 CPUs with only the `sched_smp` suite, which must pass. While it
 * runs, one thread per CPU prints 20 long comment lines at once: each must
 * arrive whole (the console lock), every line of the subtest must be TAP
 * (a result, a plan, a comment or YAML), and the suite's figures (which CPUs
 * ran what, how many migrations) must be there for the report. On QEMU's
 * `max` model the AP must run with SMEP and SMAP on, as CPU 0 does.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { LOG_DIR } from "../tools/paths.ts";
import { runKernel, type RunResult } from "../tools/run/run.ts";
import { builtKernel } from "./support.ts";

const CPUS = [2, 4] as const;
const LINES_PER_THREAD = 20;
const SILENCE_MS = 30_000;

const CONSOLE_LINE =
  /^ {4}# console: thread (\d+) on CPU (\d+), line (\d+) of 20, padding to make the line long enough to be cut \.{11}$/;
/** The lines of a subtest: indented results, plans, comments, YAML blocks. */
const SUBTEST_LINE = /^ {4}((not )?ok \d+ - \S.*|1\.\.\d+|# .*|#| {2}---| {2}\.\.\.| {2}\S.*)$/;

async function boot(cpus: number): Promise<RunResult> {
  const { elf } = await builtKernel();
  return runKernel({
    kernel: elf,
    smp: cpus,
    append: "ktest.filter=sched_smp.*",
    logFile: join(LOG_DIR, `smp-sched-${cpus}.log`),
    silenceTimeoutMs: SILENCE_MS,
  });
}

/** Two CPUs of QEMU's `max` model (SMEP and SMAP): processes in ring 3 on the AP with both on. */
async function bootMax(): Promise<RunResult> {
  const { elf } = await builtKernel();
  return runKernel({
    kernel: elf,
    smp: 2,
    cpu: "max",
    append: "ktest.filter=sched_smp.aps_have_smep_smap_as_cpu0,sched_smp.user_processes_*",
    logFile: join(LOG_DIR, "smp-sched-2-max.log"),
    silenceTimeoutMs: SILENCE_MS,
  });
}

// One after the other: each QEMU runs its CPUs on the host's two cores.
const runs = CPUS.reduce<Promise<RunResult>[]>((acc, n) => {
  const prev = acc.length ? acc[acc.length - 1].catch(() => null) : Promise.resolve(null);
  acc.push(prev.then(() => boot(n)));
  return acc;
}, []);
const maxRun = runs[runs.length - 1].catch(() => null).then(bootMax);
for (const r of [...runs, maxRun]) r.catch(() => {});

/** The run's verdict and, for each failed kernel test, what it printed (at most 40 lines). */
function why(r: RunResult): string {
  const tests = r.report.failures.filter((f) => f.suite !== ""); // not the suites' own results
  return [
    r.classification.message,
    ...tests.flatMap((f) => [`${f.fullName}:`, ...f.log.slice(-40)]),
  ]
    .join("\n");
}

/** The lines between "# Subtest: sched_smp" and the suite's result. */
function subtestLines(raw: string): string[] {
  const lines = raw.split(/\r?\n/);
  const start = lines.findIndex((l) => l === "# Subtest: sched_smp");
  assert.ok(start >= 0, "no sched_smp subtest in the serial log");
  const end = lines.findIndex((l, i) => i > start && /^(not )?ok \d+ - sched_smp$/.test(l));
  assert.ok(end > start, "the sched_smp suite has no result line");
  return lines.slice(start + 1, end);
}

CPUS.forEach((cpus, i) => {
  Deno.test(`smp sched: ${cpus} CPUs: sched_smp passes, console lines stay whole`, async () => {
    const r = await runs[i];
    assert.equal(r.classification.kind, "pass", why(r));
    const lines = subtestLines(r.serial.raw);
    for (const line of lines) assert.match(line, SUBTEST_LINE, "a line that is not TAP");
    const consoleLines = lines.filter((l) => l.includes("# console:"));
    for (const line of consoleLines) assert.match(line, CONSOLE_LINE, "a console line was cut");
    assert.equal(consoleLines.length, cpus * LINES_PER_THREAD);
    // Thread t printed on CPU t, its lines in order.
    for (let t = 0; t < cpus; t++) {
      const mine = consoleLines.map((l) => CONSOLE_LINE.exec(l)!).filter((m) => m[1] === `${t}`);
      assert.deepEqual(
        mine.map((m) => Number(m[3])),
        [...Array(LINES_PER_THREAD).keys()].map((k) => k + 1),
      );
      assert.ok(mine.every((m) => m[2] === `${t}`), `thread ${t} left CPU ${t}`);
    }
  });

  Deno.test(`smp sched: ${cpus} CPUs: the figures of migration are reported`, async () => {
    const r = await runs[i];
    const all = `0x${((1 << cpus) - 1).toString(16)}`;
    const migrate =
      /# (\d+) processes, (\d+) mask rotations, (\d+) migrations in all, CPUs mask (0x[0-9a-f]+)/
        .exec(r.serial.raw);
    assert.ok(migrate !== null, "the migration test's summary is missing");
    assert.equal(Number(migrate[1]), cpus + 1);
    assert.ok(Number(migrate[3]) >= cpus + 1, `${migrate[3]} migrations`);
    assert.equal(migrate[4], all);
    const perCpu = [...r.serial.raw.matchAll(/# CPU (\d+): (\d+) switches to a thread/g)];
    assert.equal(perCpu.length, cpus);
  });
});

Deno.test("smp sched: the AP runs with SMEP and SMAP on, as CPU 0 (-cpu max, 2 CPUs)", async () => {
  const r = await maxRun;
  assert.equal(r.classification.kind, "pass", why(r));
  assert.match(r.serial.raw, /# CPU 0: SMEP on, SMAP on/);
  assert.match(r.serial.raw, /ok \d+ - aps_have_smep_smap_as_cpu0\n/);
  assert.match(r.serial.raw, /ok \d+ - user_processes_migrate_intact\n/);
});
