/**
 * `deno task bench`: boots a bench build of the kernel twice, once plainly
 * (guest TSC cycles) and once under `-icount shift=0`, where QEMU advances
 * the guest TSC by exactly one tick per instruction, so instruction counts
 * repeat exactly from run to run. Prints a table and writes
 * build/bench/results.json.
 *
 * The kernel (command line `bench`) prints one line per measurement:
 * `# BENCH op=OP page_size=BYTES region_bytes=BYTES pages=N ticks=T`
 * then `# BENCH leak-check ok` (every frame back in the PMM; anything else
 * after `leak-check` is a failure) and `# BENCH done` at the end.
 */
import { join } from "node:path";
import { build } from "./build/build.ts";
import { BUILD_DIR, LOG_DIR, ROOT } from "./paths.ts";
import { runKernel } from "./run/run.ts";
import { ensureTools } from "./host/toolcheck.ts";
import { finishLinux, startLinux } from "./bench/linux/hooks.ts";

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
  "user_populate",
  "user_protect",
  "user_unmap",
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

async function benchRun(elf: string, icount: boolean): Promise<BenchSample[]> {
  const lines: string[] = [];
  const r = await runKernel({
    kernel: elf,
    append: "bench",
    memory: "2G",
    accel: "tcg", // icount needs TCG; the plain run uses it too, so both see the same CPU
    extraArgs: icount ? ["-icount", "shift=0"] : [],
    logFile: join(LOG_DIR, `bench${icount ? "-icount" : ""}.log`),
    silenceTimeoutMs: 120_000,
    onSerialLine: (l) => lines.push(l),
  });
  if (!r.classification.ok) throw new Error(`bench run failed: ${r.classification.message}`);
  return parseBench(lines);
}

async function main(args: string[]): Promise<number> {
  const vsLinux = args.includes("--vs-linux");
  const unknown = args.filter((a) => a !== "--vs-linux");
  if (unknown.length > 0) {
    console.error(`bench: unknown option ${unknown[0]} (known: --vs-linux)`);
    return 2;
  }
  await ensureTools();
  const start = performance.now();
  const outDir = join(BUILD_DIR, "bench");
  const { elf } = await build({ root: ROOT, outDir, extraCFlags: ["-DOUROBOROS_BENCH"] });
  // One after the other: the plain run's cycles are host time under TCG, and a second QEMU
  // on the same cores makes them swing several-fold. Linux's run counts instructions only,
  // so it goes alongside our icount run.
  const cycles = await benchRun(elf, false);
  const linux = vsLinux ? startLinux(join(outDir, "linux")) : null;
  const instructions = await benchRun(elf, true);
  const results = combine(cycles, instructions);
  console.log(formatTable(results));
  const file = join(outDir, "results.json");
  if (linux) {
    // Our calibration line is in the icount run's serial log (bin/bench prints it).
    const ourLog = (await Deno.readTextFile(join(LOG_DIR, "bench-icount.log"))).split("\n");
    const side = finishLinux(await linux, results, ourLog);
    await Deno.writeTextFile(file, JSON.stringify({ ours: results, ...side }, null, 2) + "\n");
  } else await Deno.writeTextFile(file, JSON.stringify(results, null, 2) + "\n");
  console.log(`bench: ${((performance.now() - start) / 1000).toFixed(0)} s wall time`);
  console.log(
    `\nwritten: ${file} (instructions under -icount shift=0: exact and repeatable; cycles: guest TSC under TCG)`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
