/**
 * The bench's charts, made from a results.json fixture (the figures in the
 * README's table) by Vega-Lite and Vega without a browser: the SVG shows
 * what it should where it should (log-log axes, a line per operation), and
 * Linux's figures, here made up as a multiple of ours, add dashed lines and
 * the ratio bars.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  benchCharts,
  type BenchFigure,
  benchReportHtml,
  logTicks,
  ratios,
  writeBenchCharts,
} from "../tools/bench/charts.ts";
import { ROOT } from "../tools/paths.ts";
import { tempDir } from "./support.ts";

const ours: BenchFigure[] = JSON.parse(
  await readFile(join(ROOT, "tests/fixtures/bench/results.json"), "utf8"),
);

/** Synthetic Linux figures: 8 times ours for map/protect, 2 times for unmap, fault_zero alone. */
const linux: BenchFigure[] = ours.filter((r) =>
  ["map", "protect", "unmap", "fault_zero"].includes(r.op)
)
  .map((r) => ({
    ...r,
    instructions_per_page: r.instructions_per_page * (r.op === "unmap" ? 2 : 8),
  }));

/** The SVG of every mark of a kind (`line`, `rect`...): Vega puts each line in a group of its own. */
function markGroup(svg: string, mark: string): string {
  const groups = [
    ...svg.matchAll(new RegExp(`<g class="mark-${mark} role-mark[^>]*>([\\s\\S]*?)</g>`, "g")),
  ];
  assert.ok(groups.length > 0, `no ${mark} mark`);
  return groups.map((g) => g[1]).join("");
}

Deno.test("bench charts: mapping cost on log-log axes, one line per operation", async () => {
  const charts = await benchCharts({ ours });
  assert.deepEqual(charts.map((c) => c.file), [
    "mapping-cost.svg",
    "cost-map.svg",
    "cost-protect.svg",
    "cost-unmap.svg",
    "cost-copy.svg",
    "cost-drop.svg",
  ]);
  const svg = charts[0].svg;
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  for (
    const label of [
      "4 KiB",
      "64 KiB",
      "2 MiB",
      "64 MiB",
      "1 GiB",
      "region size",
      "instructions per page",
    ]
  ) {
    assert.ok(svg.includes(`>${label}<`), label);
  }
  // One path per operation with 4 KiB pages over several sizes: map, protect, unmap, copy, drop.
  const lines = [
    ...markGroup(svg, "line").matchAll(/<path [^>]*d="M([\d.]+),([\d.]+)((?:L[\d.]+,[\d.]+)*)"/g),
  ];
  assert.equal(lines.length, 5);
  // map's line: x is log2 of the region (4 KiB→64 KiB is 4 doublings, 64 KiB→2 MiB 5, 2 MiB→64 MiB
  // 5, 64 MiB→1 GiB 4), y is log10 of the count (2531 → 166.7 → 13.9 → 10.7 → 10.6).
  const map = lines.find((m) => m[3].split("L").length === 5)!;
  const pts = [[map[1], map[2]], ...map[3].split("L").slice(1).map((p) => p.split(","))]
    .map(([x, y]) => [Number(x), Number(y)]);
  const dx = pts.slice(1).map((p, i) => p[0] - pts[i][0]);
  assert.ok(Math.abs(dx[0] / dx[1] - 4 / 5) < 0.01, `x steps ${dx}`);
  assert.ok(Math.abs(dx[1] / dx[2] - 1) < 0.01, `x steps ${dx}`);
  const dy = (a: number, b: number) => pts[b][1] - pts[a][1];
  assert.ok(
    Math.abs(dy(0, 1) / dy(1, 2) - Math.log10(2531 / 166.7) / Math.log10(166.7 / 13.9)) < 0.01,
    `y steps of ${JSON.stringify(pts)}`,
  );
  // Without Linux's figures: no ratios, and the page says how to get them.
  const page = benchReportHtml({ ours }, charts);
  assert.match(page, /No Linux figures in this run/);
  assert.doesNotMatch(page, /<script|<link|src=/);
});

Deno.test("bench charts: Linux's figures add dashed lines and ratio bars", async () => {
  const r = ratios({ ours, linux });
  assert.equal(r.length, linux.length);
  assert.deepEqual(r.find((x) => x.op === "unmap" && x.region_bytes === 4096), {
    op: "unmap",
    page_size: 4096,
    region_bytes: 4096,
    ours: 4467,
    linux: 8934,
    ratio: 0.5,
  });
  const charts = await benchCharts({ ours, linux });
  assert.equal(charts[charts.length - 1].file, "ratios.svg");
  const mapping = charts[0].svg;
  assert.match(mapping, /ours solid, Linux dashed/);
  assert.ok(mapping.includes(">Linux<"));
  assert.ok(/stroke-dasharray="6,4"/.test(markGroup(mapping, "line")), "Linux's lines are dashed");
  const bars = [
    ...markGroup(charts[charts.length - 1].svg, "rect").matchAll(/<path [^>]*fill="(#[0-9a-f]+)"/g),
  ]
    .map((m) => m[1]);
  assert.equal(bars.length, linux.length);
  // unmap at 0.5 is above the 0.2 target (red); map and protect at 0.125 are within (green).
  const unmaps = r.filter((x) => x.op === "unmap").length;
  assert.equal(bars.filter((c) => c === "#cf222e").length, unmaps);
  assert.equal(bars.filter((c) => c === "#1a7f37").length, linux.length - unmaps);
});

Deno.test("bench charts: files are written to the directory", async () => {
  const [dir, done] = await tempDir();
  try {
    const files = await writeBenchCharts(dir, { ours, linux });
    assert.deepEqual(
      files.map((f) => f.slice(dir.length + 1)).sort(),
      [
        "cost-copy.svg",
        "cost-drop.svg",
        "cost-map.svg",
        "cost-protect.svg",
        "cost-unmap.svg",
        "mapping-cost.svg",
        "ratios.svg",
        "report.html",
      ].sort(),
    );
    const page = await readFile(join(dir, "report.html"), "utf8");
    assert.equal(page.match(/<svg /g)?.length, 7);
    assert.match(page, /<td class="num"><span class="bad">0\.500<\/span><\/td>/);
  } finally {
    await done();
  }
});

Deno.test("bench charts: log axis ticks cover the figures", () => {
  assert.deepEqual(logTicks([10.6, 4467]), [10, 30, 100, 300, 1000, 3000, 10000]);
  assert.deepEqual(logTicks([]), [1, 10]);
});
