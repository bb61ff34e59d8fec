/**
 * The side-by-side comparison of `deno task bench --vs-linux` (pure: no I/O).
 *
 * Linux's side is bench/linux/bench.c, run as /init under Debian's kernel; it
 * prints `# LINUX op=OP page_size=4096 region_bytes=B pages=N ticks=T` lines, one
 * `# LINUX calibration loop_instructions=I tsc_ticks=T monotonic_ns=M` line and
 * `# LINUX done` (or `# LINUX failed: WHAT`). {@link PAIRS} says which of our
 * rows measures the same work as each Linux row.
 */

/** The rows bench/linux/bench.c prints. */
export const LINUX_OPS = [
  "fault_zero",
  "populate",
  "protect",
  "unmap",
  "getpid",
  "spawn_exit_wait",
  "fork",
  "cow_fault",
] as const;
/** One of {@link LINUX_OPS}. */
export type LinuxOp = typeof LINUX_OPS[number];

/** One Linux measurement. */
export interface LinuxSample {
  op: LinuxOp;
  page_size: number;
  region_bytes: number;
  pages: number;
  ticks: number;
}

/** The calibration loop's figures: a loop of known length counted by both clocks. */
export interface Calibration {
  loop_instructions: number;
  tsc_ticks: number;
  monotonic_ns: number;
}

/** Everything Linux's run printed. */
export interface LinuxRun {
  samples: LinuxSample[];
  calibration: Calibration;
}

const LINE = /^\s*# LINUX op=(\S+) page_size=(\d+) region_bytes=(\d+) pages=(\d+) ticks=(\d+)\s*$/;
const CALIB =
  /^\s*# LINUX calibration loop_instructions=(\d+) tsc_ticks=(\d+) monotonic_ns=(\d+)\s*$/;

/**
 * Parse Linux's serial log (kernel messages interleaved are ignored); throws
 * on a malformed or unknown `# LINUX` line, a reported failure, a missing
 * calibration or a missing `done`.
 */
export function parseLinux(lines: readonly string[]): LinuxRun {
  const samples: LinuxSample[] = [];
  let calibration: Calibration | null = null;
  let done = false;
  for (const raw of lines) {
    const line = raw.replace(/\r$/, "");
    if (!/^\s*# LINUX /.test(line)) continue;
    if (/^\s*# LINUX done\s*$/.test(line)) done = true;
    else if (/^\s*# LINUX start\s*$/.test(line)) continue;
    else if (/^\s*# LINUX failed/.test(line)) {
      throw new Error(`the Linux bench program failed: ${line.trim()}`);
    } else if (/^\s*# LINUX calibration/.test(line)) {
      const m = CALIB.exec(line);
      if (!m) throw new Error(`malformed Linux calibration line: ${line.trim()}`);
      const [loop_instructions, tsc_ticks, monotonic_ns] = m.slice(1).map(Number);
      calibration = { loop_instructions, tsc_ticks, monotonic_ns };
    } else {
      const m = LINE.exec(line);
      if (!m) throw new Error(`malformed Linux bench line: ${line.trim()}`);
      if (!(LINUX_OPS as readonly string[]).includes(m[1])) {
        throw new Error(`unknown Linux bench op: ${m[1]}`);
      }
      const [page_size, region_bytes, pages, ticks] = m.slice(2).map(Number);
      if (pages <= 0) throw new Error(`Linux bench line with no pages: ${line.trim()}`);
      samples.push({ op: m[1] as LinuxOp, page_size, region_bytes, pages, ticks });
    }
  }
  if (calibration === null) throw new Error("the Linux bench printed no calibration line");
  if (!done) throw new Error("the Linux bench did not finish (no '# LINUX done')");
  return { samples, calibration };
}

/**
 * The calibration's verdict: rdtsc must count the loop's instructions within
 * `slack` (the loop plus the clock reads around it); a tsc that does not follow
 * icount would make every Linux figure meaningless, so this throws.
 */
export function checkCalibration(c: Calibration, slack = 0.02, side = "Linux"): string {
  const ratio = c.tsc_ticks / c.loop_instructions;
  if (Math.abs(ratio - 1) > slack) {
    throw new Error(
      `rdtsc does not count instructions under ${side}: ${c.tsc_ticks} ticks for a loop of ${c.loop_instructions} instructions`,
    );
  }
  const mono = side === "Linux" ? ` and ${c.monotonic_ns} ns of CLOCK_MONOTONIC` : "";
  return `calibration: a loop of ${c.loop_instructions} instructions reads ${c.tsc_ticks} rdtsc ticks${mono} under ${side}`;
}

const OUR_CALIB = /^\s*# bench: calibration loop_instructions=(\d+) tsc_ticks=(\d+)\s*$/;

/** Our bench's calibration line (bin/bench, under icount), or null if the log has none. */
export function parseOurCalibration(
  lines: readonly string[],
): { loop_instructions: number; tsc_ticks: number } | null {
  for (const line of lines) {
    const m = OUR_CALIB.exec(line.replace(/\r$/, ""));
    if (m) return { loop_instructions: Number(m[1]), tsc_ticks: Number(m[2]) };
  }
  return null;
}

/** Which of our rows measures the same work as a Linux row. */
export const PAIRS: readonly { linux: LinuxOp; ours: string }[] = [
  { linux: "fault_zero", ours: "user_fault_zero" },
  { linux: "populate", ours: "user_populate" },
  { linux: "protect", ours: "user_protect" },
  { linux: "unmap", ours: "user_unmap" },
  { linux: "getpid", ours: "getpid" },
  { linux: "spawn_exit_wait", ours: "spawn_exit_wait" },
  { linux: "fork", ours: "fork" },
  { linux: "cow_fault", ours: "cow_fault" },
];

/** Our figure for a row, as results.json has it. */
export interface OurFigure {
  op: string;
  region_bytes: number;
  instructions_per_page: number;
}

/** One row of the side-by-side table. */
export interface CompareRow {
  op: LinuxOp;
  ours_op: string;
  page_size: number;
  region_bytes: number;
  /** Instructions per page (per operation for getpid and spawn); null: not available on our side. */
  ours: number | null;
  linux: number;
  /** ours / Linux; null when ours is missing. */
  ratio: number | null;
}

/** The ratio the issue sets as the target. */
export const TARGET_RATIO = 0.2;

/** Pair every Linux sample with our figure of the same work and region. */
export function compare(ours: readonly OurFigure[], linux: readonly LinuxSample[]): CompareRow[] {
  return linux.map((l) => {
    const pair = PAIRS.find((p) => p.linux === l.op);
    if (!pair) throw new Error(`no pairing for Linux op ${l.op}`);
    // getpid and spawn are per operation, whatever region size either side prints.
    const perOp = l.op === "getpid" || l.op === "spawn_exit_wait";
    const mine = ours.find((o) =>
      o.op === pair.ours && (perOp || o.region_bytes === l.region_bytes)
    );
    const linuxPer = Math.round((l.ticks / l.pages) * 10) / 10;
    const oursPer = mine ? mine.instructions_per_page : null;
    return {
      op: l.op,
      ours_op: pair.ours,
      page_size: l.page_size,
      region_bytes: l.region_bytes,
      ours: oursPer,
      linux: linuxPer,
      ratio: oursPer === null ? null : Math.round((oursPer / linuxPer) * 1000) / 1000,
    };
  });
}

function size(bytes: number): string {
  for (const [unit, n] of [["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n} ${unit}`;
  }
  return `${bytes} B`;
}

/** The console table: both counts, the ratio, and whether it meets {@link TARGET_RATIO}. */
export function formatCompare(rows: readonly CompareRow[]): string {
  const head = ["op (Linux / ours)", "region", "ours", "Linux", "ours/Linux", "<= 0.2"];
  const body = rows.map((r) => [
    `${r.op} / ${r.ours_op}`,
    size(r.region_bytes),
    r.ours === null ? "n/a" : r.ours.toFixed(1),
    r.linux.toFixed(1),
    r.ratio === null ? "not available on our side" : r.ratio.toFixed(3),
    r.ratio === null ? "-" : r.ratio <= TARGET_RATIO ? "yes" : "no",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const fmt = (r: string[]) =>
    r.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [fmt(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(fmt)].join("\n");
}
