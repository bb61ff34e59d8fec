/**
 * The bench's charts (`deno task bench` writes them to build/bench/): SVG
 * files made with Vega-Lite and Vega (npm, pinned in deno.json), rendered
 * without a browser by Vega's headless View, and report.html, one
 * self-contained page with the SVGs inline and the table.
 *
 * - mapping-cost.svg: instructions per page against region size, log-log,
 *   one line per operation (4 KiB pages), ours solid and Linux dashed when
 *   there are Linux figures (the thesis's "mapping cost" figure);
 * - cost-OP.svg: the same for one operation, every page size of ours and
 *   Linux;
 * - ratios.svg (with Linux figures): ours/Linux per operation and size, as
 *   bars, with the target ratio marked.
 *
 * Linux's figures are optional everywhere: rows of the same shape as ours,
 * matched by operation, page size and region size.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";

/** One measured figure, ours or Linux's (results.json's rows). */
export interface BenchFigure {
  op: string;
  page_size: number;
  region_bytes: number;
  instructions_per_page: number;
  cycles_per_page?: number;
}

/** What the charts show: our figures and, when measured, Linux's. */
export interface ChartInput {
  ours: readonly BenchFigure[];
  linux?: readonly BenchFigure[];
}

/** The ratio ours/Linux the bench aims to stay under. */
export const TARGET_RATIO = 0.2;

/** A chart: its file name and SVG text. */
export interface Chart {
  file: string;
  title: string;
  svg: string;
}

const KIB = 1024;

/** `4 KiB`, `2 MiB`, `1 GiB`. */
export function sizeLabel(bytes: number): string {
  for (const [unit, n] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", KIB]] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n} ${unit}`;
  }
  return `${bytes} B`;
}

/** The same as a Vega expression on `datum.value`, for axis labels. */
const SIZE_EXPR = "datum.value >= 1073741824 ? (datum.value / 1073741824) + ' GiB' : " +
  "datum.value >= 1048576 ? (datum.value / 1048576) + ' MiB' : " +
  "datum.value >= 1024 ? (datum.value / 1024) + ' KiB' : datum.value + ' B'";

interface Row {
  op: string;
  series: string;
  side: "ours" | "Linux";
  page: string;
  region_bytes: number;
  instructions_per_page: number;
}

function rows(input: ChartInput): Row[] {
  const of = (side: "ours" | "Linux", figures: readonly BenchFigure[]) =>
    figures.filter((f) => f.instructions_per_page > 0).map((f) => ({
      op: f.op,
      series: `${side}, ${sizeLabel(f.page_size)} pages`,
      side,
      page: sizeLabel(f.page_size),
      region_bytes: f.region_bytes,
      instructions_per_page: f.instructions_per_page,
    }));
  return [...of("ours", input.ours), ...of("Linux", input.linux ?? [])];
}

/** The operations measured over more than one region size (the ones a curve makes sense for). */
export function curveOps(input: ChartInput): string[] {
  const sizes = new Map<string, Set<number>>();
  for (const f of [...input.ours, ...(input.linux ?? [])]) {
    if (!sizes.has(f.op)) sizes.set(f.op, new Set());
    sizes.get(f.op)!.add(f.region_bytes);
  }
  return [...sizes].filter(([, s]) => s.size > 1).map(([op]) => op);
}

const CONFIG = {
  font: "DejaVu Sans, Helvetica, Arial, sans-serif",
  view: { stroke: "#d0d7de" },
  axis: { gridColor: "#eaeef2", labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 14, anchor: "start" as const },
};

function regionAxis(values: number[]) {
  return {
    field: "region_bytes",
    type: "quantitative" as const,
    title: "region size",
    scale: { type: "log" as const, base: 2 },
    axis: { values, labelExpr: SIZE_EXPR, grid: true },
  };
}

/** Tick values of a log axis over `values`: 1, 3, 10, 30... from below the least to above the most. */
export function logTicks(values: readonly number[]): number[] {
  const pos = values.filter((v) => v > 0);
  if (pos.length === 0) return [1, 10];
  const lo = Math.floor(Math.log10(Math.min(...pos)));
  const hi = Math.ceil(Math.log10(Math.max(...pos)));
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++) {
    ticks.push(10 ** e);
    if (e < hi) ticks.push(3 * 10 ** e);
  }
  return ticks;
}

function perPageAxis(data: readonly Row[]) {
  const ticks = logTicks(data.map((r) => r.instructions_per_page));
  return {
    field: "instructions_per_page",
    type: "quantitative" as const,
    title: "instructions per page",
    scale: { type: "log" as const, domain: [ticks[0], ticks[ticks.length - 1]], nice: false },
    axis: { grid: true, values: ticks, format: "~s" },
  };
}

/** A colour per page size, the same in every chart. */
const PAGE_COLORS: readonly [string, string][] = [
  ["4 KiB", "#0969da"],
  ["2 MiB", "#bc4c00"],
  ["1 GiB", "#8250df"],
];

const DASH = {
  field: "side",
  type: "nominal" as const,
  title: "kernel",
  scale: { domain: ["ours", "Linux"], range: [[1, 0], [6, 4]] },
};

const DASH_LEGEND = { symbolType: "stroke", symbolStrokeWidth: 2, symbolSize: 300 };

/** The Vega-Lite spec of the mapping-cost figure (4 KiB pages, every curve operation). */
export function mappingCostSpec(input: ChartInput): TopLevelSpec {
  const ops = curveOps(input);
  const data = rows(input).filter((r) => r.page === "4 KiB" && ops.includes(r.op));
  const values = [...new Set(data.map((r) => r.region_bytes))].sort((a, b) => a - b);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: input.linux?.length
      ? "Mapping cost: instructions per 4 KiB page (ours solid, Linux dashed)"
      : "Mapping cost: instructions per 4 KiB page",
    width: 560,
    height: 340,
    data: { values: data },
    mark: { type: "line", point: { filled: true, size: 45 }, strokeWidth: 2 },
    encoding: {
      x: regionAxis(values),
      y: perPageAxis(data),
      color: { field: "op", type: "nominal", title: "operation", sort: ops },
      strokeDash: { ...DASH, legend: input.linux?.length ? DASH_LEGEND : null },
      tooltip: [{ field: "op" }, { field: "side" }, { field: "region_bytes" }, {
        field: "instructions_per_page",
      }],
    },
    config: CONFIG,
  };
}

/** The Vega-Lite spec of one operation's curves (every page size, ours and Linux). */
export function opSpec(input: ChartInput, op: string): TopLevelSpec {
  const data = rows(input).filter((r) => r.op === op);
  const values = [...new Set(data.map((r) => r.region_bytes))].sort((a, b) => a - b);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: `${op}: instructions per page`,
    width: 360,
    height: 240,
    data: { values: data },
    mark: { type: "line", point: { filled: true, size: 45 }, strokeWidth: 2 },
    encoding: {
      x: regionAxis(values),
      y: perPageAxis(data),
      color: {
        field: "page",
        type: "nominal",
        title: "pages",
        scale: {
          domain: PAGE_COLORS.map(([p]) => p).filter((p) => data.some((r) => r.page === p)),
          range: PAGE_COLORS.filter(([p]) => data.some((r) => r.page === p)).map(([, c]) => c),
        },
      },
      strokeDash: { ...DASH, legend: input.linux?.length ? DASH_LEGEND : null },
    },
    config: CONFIG,
  };
}

/** One bar per measurement both sides made: ours / Linux. */
export interface Ratio {
  op: string;
  page_size: number;
  region_bytes: number;
  ours: number;
  linux: number;
  ratio: number;
}

/** Our figures divided by Linux's, where both measured the same operation, page and region. */
export function ratios(input: ChartInput): Ratio[] {
  const key = (f: BenchFigure) => `${f.op}/${f.page_size}/${f.region_bytes}`;
  const linux = new Map((input.linux ?? []).map((f) => [key(f), f]));
  return input.ours.flatMap((o) => {
    const l = linux.get(key(o));
    if (l === undefined || l.instructions_per_page <= 0) return [];
    return [{
      op: o.op,
      page_size: o.page_size,
      region_bytes: o.region_bytes,
      ours: o.instructions_per_page,
      linux: l.instructions_per_page,
      ratio: Math.round((o.instructions_per_page / l.instructions_per_page) * 1000) / 1000,
    }];
  });
}

/** The Vega-Lite spec of the ratio bars, with the target as a rule. */
export function ratioSpec(input: ChartInput): TopLevelSpec {
  const data = ratios(input).map((r) => ({
    ...r,
    label: `${r.op} ${sizeLabel(r.region_bytes)}${
      r.page_size === 4096 ? "" : ` (${sizeLabel(r.page_size)} pages)`
    }`,
    within: r.ratio <= TARGET_RATIO ? "at most the target" : "above the target",
  }));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: `Instructions, ours / Linux (target ≤ ${TARGET_RATIO})`,
    width: 560,
    data: { values: data },
    layer: [
      {
        mark: { type: "bar", height: { band: 0.7 } },
        encoding: {
          y: {
            field: "label",
            type: "nominal",
            title: null,
            sort: null,
            axis: { labelLimit: 260 },
          },
          x: { field: "ratio", type: "quantitative", title: "ours / Linux" },
          color: {
            field: "within",
            type: "nominal",
            title: null,
            scale: {
              domain: ["at most the target", "above the target"],
              range: ["#1a7f37", "#cf222e"],
            },
          },
        },
      },
      {
        mark: { type: "rule", strokeDash: [4, 3], color: "#57606a" },
        encoding: { x: { datum: TARGET_RATIO } },
      },
      {
        mark: { type: "text", align: "left", dx: 4, fontSize: 10 },
        encoding: {
          y: { field: "label", type: "nominal", sort: null },
          x: { field: "ratio", type: "quantitative" },
          text: { field: "ratio", type: "quantitative", format: ".3~f" },
        },
      },
    ],
    config: CONFIG,
  };
}

/** Render a Vega-Lite spec to SVG with Vega's headless view (no browser, no canvas). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Every chart of the input: the mapping-cost figure, one per operation, and the ratios. */
export async function benchCharts(input: ChartInput): Promise<Chart[]> {
  const charts: Chart[] = [{
    file: "mapping-cost.svg",
    title: "Mapping cost",
    svg: await renderSvg(mappingCostSpec(input)),
  }];
  for (const op of curveOps(input)) {
    charts.push({ file: `cost-${op}.svg`, title: op, svg: await renderSvg(opSpec(input, op)) });
  }
  if (ratios(input).length > 0) {
    charts.push({
      file: "ratios.svg",
      title: "Ours / Linux",
      svg: await renderSvg(ratioSpec(input)),
    });
  }
  return charts;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The table under the charts: every figure, with Linux's and the ratio when there are any. */
function tableHtml(input: ChartInput): string {
  const linux = new Map(
    (input.linux ?? []).map((f) => [`${f.op}/${f.page_size}/${f.region_bytes}`, f]),
  );
  const withLinux = linux.size > 0;
  const head = ["op", "page", "region", "ours: instructions/page", "cycles/page"]
    .concat(withLinux ? ["Linux: instructions/page", "ours / Linux"] : []);
  const body = input.ours.map((o) => {
    const l = linux.get(`${o.op}/${o.page_size}/${o.region_bytes}`);
    const cells = [
      esc(o.op),
      sizeLabel(o.page_size),
      sizeLabel(o.region_bytes),
      o.instructions_per_page.toFixed(1),
      o.cycles_per_page?.toFixed(1) ?? "–",
    ];
    if (withLinux) {
      cells.push(l ? l.instructions_per_page.toFixed(1) : "–");
      const r = l ? o.instructions_per_page / l.instructions_per_page : null;
      cells.push(
        r === null
          ? "–"
          : `<span class="${r <= TARGET_RATIO ? "ok" : "bad"}">${r.toFixed(3)}</span>`,
      );
    }
    return `<tr>${
      cells.map((c, i) => `<td${i > 2 ? ' class="num"' : ""}>${c}</td>`).join("")
    }</tr>`;
  });
  return `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>${
    body.join("")
  }</tbody></table>`;
}

/** A part of the page beyond the memory manager's figures (the membench): a chart and its text. */
export interface Section {
  title: string;
  svg: string;
  /** Plain text, shown as preformatted lines. */
  text: string;
}

/** The page: the charts inline and the table; nothing loaded from anywhere. */
export function benchReportHtml(
  input: ChartInput,
  charts: readonly Chart[],
  extra: readonly Section[] = [],
): string {
  const [main, ...rest] = charts;
  const perOp = rest.filter((c) => c.file.startsWith("cost-"));
  const ratio = rest.find((c) => c.file === "ratios.svg");
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Ouroboros memory-manager benchmark</title>
<style>
body{font:14px/1.45 system-ui,"DejaVu Sans",sans-serif;color:#1f2328;margin:24px 28px;background:#fff}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
.grid{display:flex;flex-wrap:wrap;gap:18px}
figure{margin:0;border:1px solid #d0d7de;border-radius:6px;padding:8px}
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 10px;border-bottom:1px solid #eaeef2;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:600}
.note{color:#57606a}pre.text{background:#f6f8fa;padding:10px;border-radius:6px;font-size:12.5px}
</style></head><body>
<h1>Memory-manager benchmark</h1>
<p class="note">Instructions are counted under QEMU's <code>-icount shift=0</code> (one per guest
instruction: exact and repeatable); cycles are the guest TSC of a plain TCG run and follow host time.</p>
${main ? `<figure>${main.svg}</figure>` : ""}
${
    ratio
      ? `<h2>Ours / Linux</h2><figure>${ratio.svg}</figure>`
      : `<p class="note">No Linux figures in this run (<code>deno task bench --vs-linux</code> adds them).</p>`
  }
<h2>Per operation</h2>
<div class="grid">${perOp.map((c) => `<figure>${c.svg}</figure>`).join("\n")}</div>
<h2>Figures</h2>
${tableHtml(input)}
${
    extra.map((x) =>
      `<h2>${esc(x.title)}</h2><figure>${x.svg}</figure><pre class="text">${esc(x.text)}</pre>`
    ).join("\n")
  }
</body></html>
`;
}

/** Write every chart and report.html into `dir`; returns the files written. */
export async function writeBenchCharts(
  dir: string,
  input: ChartInput,
  extra: readonly Section[] = [],
): Promise<string[]> {
  const charts = await benchCharts(input);
  const files: string[] = [];
  for (const c of charts) {
    await writeFile(join(dir, c.file), c.svg);
    files.push(join(dir, c.file));
  }
  const page = join(dir, "report.html");
  await writeFile(page, benchReportHtml(input, charts, extra));
  files.push(page);
  return files;
}
