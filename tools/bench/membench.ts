/**
 * The membench's host side (kernel/bench/membench.c prints the points):
 * parsing, cycles per access, and what the curves say about the machine —
 * the cache sizes (steps of the curve at the cache-line stride) and the TLB
 * reach (the range where touching a new page each access starts costing
 * more than touching a new line) — and an SVG of the curves (Vega-Lite).
 *
 * Under TCG nothing is inferred: QEMU's TCG models no cache and no TLB
 * timing (its own software TLB is a host-side cost), so steps in its curve
 * are the host's, seen through an emulator. The verdict comes from the
 * accelerator the runner used and the hypervisor the kernel saw in CPUID.
 */
import { type TopLevelSpec } from "vega-lite";
import { logTicks, renderSvg, sizeLabel } from "./charts.ts";

/** One point as the kernel printed it. */
export interface MemPoint {
  range_bytes: number;
  stride_bytes: number;
  accesses: number;
  ticks: number;
}

/** A parsed membench run. */
export interface MemRun {
  /** CPUID's hypervisor vendor (`TCGTCGTCGTCG`, `KVMKVMKVM___`...), or null on bare metal. */
  hypervisor: string | null;
  points: MemPoint[];
}

const POINT = /^\s*# MEMBENCH range_bytes=(\d+) stride_bytes=(\d+) accesses=(\d+) ticks=(\d+)\s*$/;
const CPU = /^\s*# MEMBENCH cpu hypervisor=(\S+)\s*$/;

/** Parse the kernel's membench lines; throws on a malformed line, no points, or no `done`. */
export function parseMembench(lines: readonly string[]): MemRun {
  const points: MemPoint[] = [];
  let hypervisor: string | null | undefined;
  let done = false;
  for (const line of lines) {
    if (!/^\s*# MEMBENCH /.test(line)) continue;
    if (/^\s*# MEMBENCH done\s*$/.test(line)) {
      done = true;
      continue;
    }
    const cpu = CPU.exec(line);
    if (cpu) {
      hypervisor = cpu[1] === "none" ? null : cpu[1];
      continue;
    }
    const m = POINT.exec(line);
    if (!m) throw new Error(`malformed membench line: ${line.trim()}`);
    const [range_bytes, stride_bytes, accesses, ticks] = m.slice(1).map(Number);
    if (accesses <= 0) throw new Error(`membench line with no accesses: ${line.trim()}`);
    points.push({ range_bytes, stride_bytes, accesses, ticks });
  }
  if (!done) throw new Error("the kernel did not finish the membench (no '# MEMBENCH done')");
  if (points.length === 0) throw new Error("the membench printed no points");
  if (hypervisor === undefined) throw new Error("the membench did not say what CPU it ran on");
  return { hypervisor, points };
}

/** A point of a curve: cycles (TSC ticks) per access at one range. */
export interface CurvePoint {
  range: number;
  cycles: number;
}

/** The curve of one stride, by increasing range. */
export function curve(points: readonly MemPoint[], stride: number): CurvePoint[] {
  return points.filter((p) => p.stride_bytes === stride)
    .map((p) => ({ range: p.range_bytes, cycles: p.ticks / p.accesses }))
    .sort((a, b) => a.range - b.range);
}

/** A rise of a curve: the range where a level ends, and the levels on either side. */
export interface Step {
  /** The largest range still on the lower level (a capacity). */
  size: number;
  before: number;
  after: number;
}

/** How much a level must rise to count as a step (25 %, above run-to-run noise). */
export const STEP_RATIO = 1.25;

/**
 * The steps of a curve. Going up in range, a point that costs at least
 * `ratio` times the current level (the median of the level's points so
 * far), confirmed by the next point (or being the last one), ends the level
 * at the range before it; a single spike the next point does not confirm is
 * noise. A rise spread over several points (each `ratio` above the one
 * before) is one step; the new level starts where the rise stops.
 */
export function findSteps(points: readonly CurvePoint[], ratio = STEP_RATIO): Step[] {
  const found: { end: number; next: number }[] = [];
  let start = 0;
  let i = 1;
  while (i < points.length) {
    const level = median(points.slice(start, i).map((p) => p.cycles));
    const high = (k: number) => k >= points.length || points[k].cycles >= level * ratio;
    if (high(i) && high(i + 1)) {
      let j = i;
      while (j + 1 < points.length && points[j + 1].cycles >= points[j].cycles * ratio) j++;
      found.push({ end: i - 1, next: j });
      start = j;
      i = j + 1;
    } else i++;
  }
  const levelOf = (from: number, to: number) =>
    median(points.slice(from, to + 1).map((p) => p.cycles));
  return found.map((f, k) => ({
    size: points[f.end].range,
    before: levelOf(k === 0 ? 0 : found[k - 1].next, f.end),
    after: levelOf(f.next, k + 1 < found.length ? found[k + 1].end : points.length - 1),
  }));
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** What the curves say. */
export interface MemInference {
  /** False under TCG (or when the curves are missing): then nothing below is inferred. */
  modelled: boolean;
  /** Why, in one sentence. */
  reason: string;
  /** Cache capacities, smallest first, with the levels around them. */
  caches: Step[];
  /** The range 4 KiB pages stop being covered by the TLB; null if no such step was seen. */
  tlbReach: Step | null;
  /** The stride the cache steps were read at (the cache line). */
  lineStride: number;
}

/** The stride the cache curve is read at: one access per 64-byte line. */
export const LINE_STRIDE = 64;
/** The stride the TLB curve is read at: one access per 4 KiB page. */
export const PAGE_STRIDE = 4096;

/** What the accelerator and the CPU's hypervisor leaf say about the timings. */
export function timingVerdict(
  accel: string | null,
  hypervisor: string | null,
): { modelled: boolean; reason: string } {
  if (accel === "tcg" || hypervisor === "TCGTCGTCGTCG") {
    return {
      modelled: false,
      reason: "QEMU's TCG (no hardware acceleration) models no caches and no TLB timing: " +
        "the curve is the host's emulation cost, so no cache size or TLB reach is inferred",
    };
  }
  if (hypervisor === null) return { modelled: true, reason: "bare metal: real caches and TLBs" };
  return {
    modelled: true,
    reason: `hardware-assisted virtual machine (${hypervisor}): real caches and TLBs, ` +
      "shared with the host",
  };
}

/**
 * Infer cache sizes and the TLB reach from a run. Caches: the steps of the
 * curve at one access per line. TLB reach: the first step of the ratio of
 * the per-page curve to the per-line curve (new page each access against new
 * line each access), which cancels what both share (capacity misses).
 */
export function inferMemory(run: MemRun, accel: string | null): MemInference {
  const verdict = timingVerdict(accel, run.hypervisor);
  const none = { caches: [], tlbReach: null, lineStride: LINE_STRIDE };
  if (!verdict.modelled) return { ...verdict, ...none };
  const line = curve(run.points, LINE_STRIDE);
  const page = curve(run.points, PAGE_STRIDE);
  if (line.length < 3 || page.length < 3) {
    return { modelled: false, reason: "too few points at 64 B and 4 KiB strides", ...none };
  }
  const caches = findSteps(line);
  const byRange = new Map(line.map((p) => [p.range, p.cycles]));
  const ratio = page.filter((p) => byRange.has(p.range))
    .map((p) => ({ range: p.range, cycles: p.cycles / byRange.get(p.range)! }));
  const tlb = findSteps(ratio)[0] ?? null;
  return { ...verdict, caches, tlbReach: tlb, lineStride: LINE_STRIDE };
}

/** The report's text: the verdict, then what was inferred. */
export function formatInference(inf: MemInference): string {
  const out = [`membench: ${inf.reason}.`];
  if (!inf.modelled) return out.join("\n");
  if (inf.caches.length === 0) out.push("caches: no step in the 64 B-stride curve");
  inf.caches.forEach((s, i) =>
    out.push(
      `cache level ${i + 1}: ${sizeLabel(s.size)} (${s.before.toFixed(1)} → ${
        s.after.toFixed(1)
      } cycles per access beyond it)`,
    )
  );
  if (inf.tlbReach === null) out.push("TLB reach: no step in the 4 KiB-stride curve");
  else {
    out.push(
      `TLB reach (4 KiB pages): ${sizeLabel(inf.tlbReach.size)} = ${
        inf.tlbReach.size / 4096
      } entries (a new page per access costs ${inf.tlbReach.before.toFixed(2)}× a new line ` +
        `within it, ${inf.tlbReach.after.toFixed(2)}× beyond)`,
    );
  }
  return out.join("\n");
}

/** The table: cycles per access, a row per range and a column per stride. */
export function formatMemTable(points: readonly MemPoint[]): string {
  const strides = [...new Set(points.map((p) => p.stride_bytes))].sort((a, b) => a - b);
  const ranges = [...new Set(points.map((p) => p.range_bytes))].sort((a, b) => a - b);
  const head = ["range", ...strides.map((s) => `${s} B`)];
  const rows = ranges.map((r) => [
    sizeLabel(r),
    ...strides.map((s) => {
      const p = points.find((x) => x.range_bytes === r && x.stride_bytes === s);
      return p ? (p.ticks / p.accesses).toFixed(1) : "–";
    }),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [`cycles per access (TSC ticks) by range and stride`, fmt(head), ...rows.map(fmt)]
    .join("\n");
}

/** The Vega-Lite spec of the curves: cycles per access against range, one line per stride. */
export function membenchSpec(run: MemRun, inf: MemInference): TopLevelSpec {
  const data = run.points.map((p) => ({
    range_bytes: p.range_bytes,
    stride: `${p.stride_bytes} B`,
    stride_bytes: p.stride_bytes,
    cycles: p.ticks / p.accesses,
  }));
  const ranges = [...new Set(data.map((d) => d.range_bytes))].sort((a, b) => a - b)
    .filter((_, i) => i % 2 === 0);
  const yTicks = logTicks(data.map((d) => d.cycles));
  const marks = inf.caches.map((s, i) => ({ size: s.size, label: `L${i + 1}` }))
    .concat(inf.tlbReach ? [{ size: inf.tlbReach.size, label: "TLB" }] : []);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: inf.modelled
      ? "Membench: cycles per access"
      : "Membench: cycles per access (TCG: no cache model, nothing inferred)",
    width: 560,
    height: 320,
    layer: [
      {
        data: { values: data },
        mark: { type: "line", point: { size: 20 }, strokeWidth: 1.5 },
        encoding: {
          x: {
            field: "range_bytes",
            type: "quantitative",
            title: "range",
            scale: { type: "log", base: 2 },
            axis: {
              values: ranges,
              labelExpr: "datum.value >= 1048576 ? (datum.value / 1048576) + ' MiB' : " +
                "(datum.value / 1024) + ' KiB'",
            },
          },
          y: {
            field: "cycles",
            type: "quantitative",
            title: "cycles per access",
            scale: { type: "log", domain: [yTicks[0], yTicks[yTicks.length - 1]], nice: false },
            axis: { values: yTicks, format: "~s" },
          },
          color: {
            field: "stride",
            type: "ordinal",
            title: "stride",
            sort: { field: "stride_bytes" },
            scale: { scheme: "viridis" },
          },
        },
      },
      ...(marks.length
        ? [{
          data: { values: marks },
          layer: [
            {
              mark: { type: "rule" as const, strokeDash: [4, 3], color: "#57606a" },
              encoding: { x: { field: "size", type: "quantitative" as const } },
            },
            {
              mark: { type: "text" as const, dy: -6, align: "left" as const, dx: 3 },
              encoding: {
                x: { field: "size", type: "quantitative" as const },
                y: { value: 0 },
                text: { field: "label", type: "nominal" as const },
              },
            },
          ],
        }]
        : []),
    ],
    config: { font: "DejaVu Sans, Helvetica, Arial, sans-serif", title: { anchor: "start" } },
  };
}

/** The curves as SVG. */
export function membenchSvg(run: MemRun, inf: MemInference): Promise<string> {
  return renderSvg(membenchSpec(run, inf));
}
