/**
 * `deno task bench`: boots a bench build of the kernel twice, once plainly
 * (guest TSC cycles) and once under `-icount shift=0`, where QEMU advances
 * the guest TSC by exactly one tick per instruction, so instruction counts
 * repeat exactly from run to run. Prints a table and writes
 * build/bench/results.json, and charts of it (build/bench/report.html and
 * SVG files, bench/charts.ts).
 *
 * The kernel (command line `bench`) prints one line per measurement:
 * `# BENCH op=OP page_size=BYTES region_bytes=BYTES pages=N ticks=T`
 * then `# BENCH leak-check ok` (every frame back in the PMM; anything else
 * after `leak-check` is a failure) and `# BENCH done` at the end.
 */
import { join, relative } from "node:path";
import { writeBenchCharts } from "./bench/charts.ts";
import {
  formatInference,
  formatMemTable,
  inferMemory,
  membenchSvg,
  type MemInference,
  type MemRun,
  parseMembench,
} from "./bench/membench.ts";
import { chooseAccel } from "./machines/qemu.ts";
import { build } from "./build/build.ts";
import { BUILD_DIR, LOG_DIR, ROOT } from "./paths.ts";
import { runKernel } from "./run/run.ts";
import { ensureTools } from "./host/toolcheck.ts";
import { finishLinux, type LinuxSide, startLinux } from "./bench/linux/hooks.ts";

/** The operations the kernel measures. */
export const BENCH_OPS = [
  "pmm_alloc",
  "pmm_free",
  "map",
  "unmap",
  "protect",
  "fault_zero",
  "copy",
  "drop",
  "getpid",
  "yield_switch",
  "spawn_exit_wait",
  "user_fault_zero",
  "fork",
  "cow_fault",
  "trap_kernel",
  "trap_upcall",
  "prot1_trap_unprot",
  "prot100_trap_unprot",
  "user_populate",
  "user_protect",
  "user_unmap",
  // The SMP rows (`bench.smp`, SMP_BENCH_CPUS CPUs): an unmap of one user page whose
  // shootdown reaches 0, 1 and 3 other CPUs, a 64-page one (per page), boot to all CPUs up.
  "unmap_notify0",
  "unmap_notify1",
  "unmap_notify3",
  "unmap64_notify3",
  "smp_boot_microvm",
  "smp_boot_q35",
] as const;
/** One of {@link BENCH_OPS}. */
export type BenchOp = typeof BENCH_OPS[number];

/** One measurement as the kernel printed it. */
export interface BenchSample {
  op: BenchOp;
  page_size: number;
  region_bytes: number;
  pages: number;
  ticks: number;
}

/** One row of results.json. */
export interface BenchResult {
  op: BenchOp;
  page_size: number;
  region_bytes: number;
  cycles_per_page: number;
  instructions_per_page: number;
}

const LINE = /^\s*# BENCH op=(\S+) page_size=(\d+) region_bytes=(\d+) pages=(\d+) ticks=(\d+)\s*$/;

/**
 * Parse the kernel's bench lines; throws on a malformed or unknown one, a
 * missing `done`, or a leak check that is missing or not ok.
 */
export function parseBench(lines: string[]): BenchSample[] {
  const out: BenchSample[] = [];
  let done = false;
  let leakChecked = false;
  for (const line of lines) {
    if (/^\s*# BENCH done\s*$/.test(line)) done = true;
    else if (/^\s*# BENCH leak-check ok\s*$/.test(line)) leakChecked = true;
    else if (/^\s*# BENCH leak-check/.test(line)) {
      throw new Error(`the kernel's leak check failed: ${line.trim()}`);
    } else if (/^\s*# BENCH /.test(line)) {
      const m = LINE.exec(line);
      if (!m) throw new Error(`malformed bench line: ${line.trim()}`);
      if (!(BENCH_OPS as readonly string[]).includes(m[1])) {
        throw new Error(`unknown bench op: ${m[1]}`);
      }
      const [page_size, region_bytes, pages, ticks] = m.slice(2).map(Number);
      if (pages <= 0) throw new Error(`bench line with no pages: ${line.trim()}`);
      out.push({ op: m[1] as BenchOp, page_size, region_bytes, pages, ticks });
    }
  }
  if (!done) throw new Error("the kernel did not finish its benchmarks (no '# BENCH done')");
  if (!leakChecked) throw new Error("the kernel did not report '# BENCH leak-check ok'");
  return out;
}

/** Join the plain run (cycles) and the icount run (instructions) sample by sample. */
export function combine(cycles: BenchSample[], instructions: BenchSample[]): BenchResult[] {
  const key = (s: BenchSample) => `${s.op}/${s.page_size}/${s.region_bytes}`;
  const byKey = new Map(instructions.map((s) => [key(s), s]));
  return cycles.map((c) => {
    const i = byKey.get(key(c));
    if (!i) throw new Error(`no icount sample for ${key(c)}`);
    return {
      op: c.op,
      page_size: c.page_size,
      region_bytes: c.region_bytes,
      cycles_per_page: round(c.ticks / c.pages),
      instructions_per_page: round(i.ticks / i.pages),
    };
  });
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

function size(bytes: number): string {
  for (const [unit, n] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n} ${unit}`;
  }
  return `${bytes} B`;
}

/** The table printed on the console. */
export function formatTable(results: BenchResult[]): string {
  const head = ["op", "page", "region", "cycles/page", "instructions/page"];
  const rows = results.map((r) => [
    r.op,
    size(r.page_size),
    size(r.region_bytes),
    r.cycles_per_page.toFixed(1),
    r.instructions_per_page.toFixed(1),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) =>
    r.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [fmt(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(fmt)].join("\n");
}

/** CPUs the SMP rows boot with: three others to notify. */
export const SMP_BENCH_CPUS = 4;

/** The machines the SMP boot time is measured on (the kernel's `smp_boot` row, renamed). */
export const SMP_BOOT_MACHINES = ["microvm", "q35"] as const;

/** A bench boot: the plain one, or an SMP one on a machine. */
interface BenchBoot {
  append: "bench" | "bench.smp";
  machine?: (typeof SMP_BOOT_MACHINES)[number];
  smp?: number;
}

/**
 * The kernel's `smp_boot` row named for the machine it was measured on
 * (`smp_boot_q35`), so the runs' rows stay apart.
 */
export function nameBootRow(lines: string[], machine: string): string[] {
  return lines.map((l) => l.replace(/(# BENCH op=)smp_boot /, `$1smp_boot_${machine} `));
}

async function benchRun(elf: string, icount: boolean, boot: BenchBoot): Promise<string[]> {
  const lines: string[] = [];
  const tag = boot.append === "bench" ? "bench" : `bench-smp-${boot.machine}`;
  const r = await runKernel({
    kernel: elf,
    append: boot.append,
    memory: "2G",
    machine: boot.machine,
    smp: boot.smp,
    // icount needs TCG, and makes it single-threaded (QEMU refuses MTTCG with icount): the
    // vCPUs take turns, so the SMP rows repeat exactly. The plain run uses TCG too.
    accel: "tcg",
    extraArgs: icount ? ["-icount", "shift=0"] : [],
    logFile: join(LOG_DIR, `${tag}${icount ? "-icount" : ""}.log`),
    silenceTimeoutMs: 120_000,
    onSerialLine: (l) => lines.push(l),
  });
  if (!r.classification.ok) throw new Error(`bench run failed: ${r.classification.message}`);
  return boot.machine ? nameBootRow(lines, boot.machine) : lines;
}

/** IPIs per operation, from the kernel's `# BENCH-IPIS` lines. */
export interface IpiResult {
  op: BenchOp;
  /** Operations measured. */
  ops: number;
  /** Shootdown rounds (batches that needed other CPUs). */
  rounds: number;
  /** IPIs sent. */
  ipis: number;
  /** Rounds that flushed everything (more than 33 pages, or tables freed). */
  full: number;
}

const IPI_LINE = /^\s*# BENCH-IPIS op=(\S+) ops=(\d+) rounds=(\d+) ipis=(\d+) full=(\d+)\s*$/;

/** Parse the `# BENCH-IPIS` lines; throws on a malformed one or an unknown op. */
export function parseIpis(lines: string[]): IpiResult[] {
  const out: IpiResult[] = [];
  for (const line of lines) {
    if (!/^\s*# BENCH-IPIS /.test(line)) continue;
    const m = IPI_LINE.exec(line);
    if (!m) throw new Error(`malformed IPI line: ${line.trim()}`);
    if (!(BENCH_OPS as readonly string[]).includes(m[1])) {
      throw new Error(`unknown bench op: ${m[1]}`);
    }
    const [ops, rounds, ipis, full] = m.slice(2).map(Number);
    if (ops <= 0) throw new Error(`IPI line with no operations: ${line.trim()}`);
    out.push({ op: m[1] as BenchOp, ops, rounds, ipis, full });
  }
  return out;
}

/** The IPI table: per operation, rounds, IPIs and full flushes. */
export function formatIpis(rows: IpiResult[]): string {
  const head = ["op", "rounds/op", "IPIs/op", "full flushes/op"];
  const cells = rows.map((r) => [
    r.op,
    (r.rounds / r.ops).toFixed(2),
    (r.ipis / r.ops).toFixed(2),
    (r.full / r.ops).toFixed(2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i])));
  return [
    fmt(head).join("  "),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...cells.map((c) => fmt(c).join("  ")),
  ]
    .join("\n");
}

/**
 * The SMP rows: `bench.smp` on microvm (every row) and on q35 (its boot row
 * only), SMP_BENCH_CPUS CPUs, plainly and under icount, one boot at a time.
 */
async function smpBench(elf: string): Promise<{ results: BenchResult[]; ipis: IpiResult[] }> {
  const results: BenchResult[] = [];
  let ipis: IpiResult[] = [];
  for (const machine of SMP_BOOT_MACHINES) {
    const boot: BenchBoot = { append: "bench.smp", machine, smp: SMP_BENCH_CPUS };
    const plain = await benchRun(elf, false, boot);
    const counted = await benchRun(elf, true, boot);
    const rows = combine(parseBench(plain), parseBench(counted));
    // q35 adds its boot time; the shootdown rows are microvm's.
    results.push(
      ...(machine === "microvm" ? rows : rows.filter((r) => r.op.startsWith("smp_boot"))),
    );
    if (machine === "microvm") ipis = parseIpis(counted);
  }
  return { results, ipis };
}

/** The membench's results, as build/bench/membench.json holds them. */
export interface MembenchResults {
  /** The accelerator QEMU used. */
  accel: string;
  run: MemRun;
  inference: MemInference;
}

/**
 * The membench (kernel/bench/membench.c): its own kernel build (the bench
 * kernel with -DOUROBOROS_MEMBENCH), booted once with KVM when the host has
 * it (real caches), else TCG (the report then says nothing can be inferred).
 */
async function membench(): Promise<MembenchResults> {
  const outDir = join(BUILD_DIR, "membench");
  const { elf } = await build({
    root: ROOT,
    outDir,
    extraCFlags: ["-DOUROBOROS_BENCH", "-DOUROBOROS_MEMBENCH"],
  });
  const accel = chooseAccel();
  const lines: string[] = [];
  const r = await runKernel({
    kernel: elf,
    append: "bench",
    memory: "2G",
    accel: accel.accel,
    logFile: join(LOG_DIR, "membench.log"),
    silenceTimeoutMs: 120_000,
    onSerialLine: (l) => lines.push(l),
  });
  if (!r.classification.ok) throw new Error(`membench run failed: ${r.classification.message}`);
  const run = parseMembench(lines);
  return { accel: accel.accel, run, inference: inferMemory(run, accel.accel) };
}

/** What `deno task bench` was asked. */
interface BenchArgs {
  /** Run the membench too (`--membench`), or only it (`--membench-only`). */
  membench: "no" | "also" | "only";
  /** Also boot Debian's Linux on the same workloads and compare (`--vs-linux`). */
  vsLinux: boolean;
}

const BENCH_USAGE = `usage: deno task bench [--vs-linux] [--membench | --membench-only]
  (no option)       the memory-manager benchmark: table, build/bench/results.json, charts
  --vs-linux        the same workloads on Debian's Linux in the same QEMU: both counts and ratios
  --membench        also the membench: cycles per access over ranges and strides, cache sizes
                    and TLB reach inferred (not under TCG), build/bench/membench.{json,svg}
  --membench-only   only the membench
The bench runs under QEMU on this host; lab machines (--machine) are not supported yet.`;

export function parseBenchArgs(argv: readonly string[]): BenchArgs | string {
  const args: BenchArgs = { membench: "no", vsLinux: false };
  for (const a of argv) {
    if (a === "--vs-linux") args.vsLinux = true;
    else if (a === "--membench") args.membench = "also";
    else if (a === "--membench-only") args.membench = "only";
    else if (a === "--machine" || a.startsWith("--machine=")) {
      return "--machine: the bench runs under QEMU only for now (see README, Benchmarks)";
    } else return `unknown option '${a}'`;
  }
  return args;
}

async function main(argv: string[]): Promise<number> {
  const started = performance.now();
  const args = parseBenchArgs(argv);
  if (typeof args === "string") {
    console.error(`error: ${args}\n\n${BENCH_USAGE}`);
    return 2;
  }
  await ensureTools();
  const start = performance.now();
  const outDir = join(BUILD_DIR, "bench");
  await Deno.mkdir(outDir, { recursive: true });
  let mem: MembenchResults | null = null;
  if (args.membench !== "no") {
    mem = await membench();
    console.log(formatMemTable(mem.run.points));
    console.log(`\n${formatInference(mem.inference)}`);
    await Deno.writeTextFile(join(outDir, "membench.json"), JSON.stringify(mem, null, 2) + "\n");
    await Deno.writeTextFile(
      join(outDir, "membench.svg"),
      await membenchSvg(mem.run, mem.inference),
    );
    console.log(`written: build/bench/membench.json, build/bench/membench.svg`);
    if (args.membench === "only") {
      console.log(`bench wall time: ${((performance.now() - started) / 1000).toFixed(1)} s`);
      return 0;
    }
  }
  const { elf } = await build({ root: ROOT, outDir, extraCFlags: ["-DOUROBOROS_BENCH"] });
  // One after the other: the plain run's cycles are host time under TCG, and a second QEMU
  // on the same cores makes them swing several-fold. Linux's run counts instructions only,
  // so it goes alongside our icount run.
  const plain: BenchBoot = { append: "bench" };
  const cycles = parseBench(await benchRun(elf, false, plain));
  const linux = args.vsLinux ? startLinux(join(outDir, "linux")) : null;
  const instructions = parseBench(await benchRun(elf, true, plain));
  const results = combine(cycles, instructions);
  const smp = await smpBench(elf);
  results.push(...smp.results);
  console.log(formatTable(results));
  console.log(
    `\nIPIs per operation (${SMP_BENCH_CPUS} CPUs, the icount run):\n${formatIpis(smp.ipis)}`,
  );
  await Deno.writeTextFile(join(outDir, "ipis.json"), JSON.stringify(smp.ipis, null, 2) + "\n");
  const file = join(outDir, "results.json");
  let side: LinuxSide | null = null;
  if (linux) {
    // Our calibration line is in the icount run's serial log (bin/bench prints it).
    const ourLog = (await Deno.readTextFile(join(LOG_DIR, "bench-icount.log"))).split("\n");
    side = finishLinux(await linux, results, ourLog);
    await Deno.writeTextFile(file, JSON.stringify({ ours: results, ...side }, null, 2) + "\n");
  } else await Deno.writeTextFile(file, JSON.stringify(results, null, 2) + "\n");
  console.log(`bench: ${((performance.now() - start) / 1000).toFixed(0)} s wall time`);
  console.log(
    `\nwritten: ${file}, ${
      join(outDir, "ipis.json")
    } (instructions under -icount shift=0: exact and repeatable; cycles: guest TSC under TCG)`,
  );
  const extra = mem === null ? [] : [{
    title: "Membench",
    svg: await membenchSvg(mem.run, mem.inference),
    text: `${formatInference(mem.inference)}\n\n${formatMemTable(mem.run.points)}`,
  }];
  const charts = await writeBenchCharts(
    outDir,
    { ours: results, linux: side?.linux },
    extra,
  );
  console.log(`charts: ${charts.map((f) => relative(ROOT, f)).join(", ")}`);
  console.log(`bench wall time: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
