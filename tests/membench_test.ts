/**
 * The membench's inference on synthetic curves with known steps: cache
 * sizes where the 64 B-stride curve rises, the TLB reach where a new page
 * per access starts costing more than a new line; noise and smeared rises
 * do not make steps; under TCG nothing is inferred and the report says why.
 */
import assert from "node:assert/strict";
import {
  type CurvePoint,
  findSteps,
  formatInference,
  inferMemory,
  membenchSvg,
  type MemPoint,
  type MemRun,
  parseMembench,
} from "../tools/bench/membench.ts";

const KIB = 1024;
const MIB = 1024 * KIB;
const RANGES = Array.from({ length: 17 }, (_, i) => 4 * KIB * 2 ** i);
const STRIDES = Array.from({ length: 10 }, (_, i) => 8 * 2 ** i);

/** A machine: L1 32 KiB (4 cycles), L2 1 MiB (12), L3 16 MiB (40), memory (200); 64 TLB entries. */
const L1 = 32 * KIB, L2 = MIB, L3 = 16 * MIB, TLB_REACH = 64 * 4 * KIB;

function latency(range: number): number {
  return range <= L1 ? 4 : range <= L2 ? 12 : range <= L3 ? 40 : 200;
}

/** Cycles per access: lines cost by level; a stride under a line shares it; pages beyond reach walk. */
function synthetic(range: number, stride: number, noise = 0): number {
  const perLine = Math.min(stride, 64) / 64;
  const tlbMiss = stride >= 4096 && range > TLB_REACH ? 2.5 : 1;
  return latency(range) * perLine * tlbMiss + 1 + noise;
}

function machine(noise: (range: number, stride: number) => number = () => 0): MemRun {
  const points: MemPoint[] = [];
  for (const range of RANGES) {
    for (const stride of STRIDES) {
      const accesses = 1 << 17;
      const cycles = synthetic(range, stride, noise(range, stride));
      points.push({ range_bytes: range, stride_bytes: stride, accesses, ticks: cycles * accesses });
    }
  }
  return { hypervisor: "KVMKVMKVM___", points };
}

Deno.test("membench: cache sizes and TLB reach from curves with known steps", () => {
  const inf = inferMemory(machine(), "kvm");
  assert.equal(inf.modelled, true);
  assert.deepEqual(inf.caches.map((s) => s.size), [L1, L2, L3]);
  assert.deepEqual(inf.caches.map((s) => [s.before, s.after]), [[5, 13], [13, 41], [41, 201]]);
  assert.equal(inf.tlbReach?.size, TLB_REACH);
  const text = formatInference(inf);
  assert.match(text, /cache level 1: 32 KiB \(5\.0 → 13\.0 cycles per access beyond it\)/);
  assert.match(text, /cache level 3: 16 MiB/);
  assert.match(text, /TLB reach \(4 KiB pages\): 256 KiB = 64 entries/);
});

Deno.test("membench: noise, a lone spike and a rise over two points are not extra steps", () => {
  // ±5 % noise everywhere, a 30x spike at 128 KiB on the line curve, and L2→L3 spread over 2 MiB (20 cycles, between 13 and 41).
  const wobble = (range: number, stride: number) =>
    ((range / KIB + stride) % 7 - 3) / 60 * synthetic(range, stride) +
    (range === 128 * KIB && stride === 64 ? 300 : 0) +
    (range === 2 * MIB ? -21 * Math.min(stride, 64) / 64 : 0);
  const inf = inferMemory(machine(wobble), "kvm");
  assert.deepEqual(inf.caches.map((s) => s.size), [L1, L2, L3]);
  assert.equal(inf.tlbReach?.size, TLB_REACH);
});

Deno.test("membench: a flat curve has no steps; the last point alone can be a step", () => {
  const flat: CurvePoint[] = RANGES.map((range) => ({ range, cycles: 3 }));
  assert.deepEqual(findSteps(flat), []);
  const last = flat.map((p, i) => ({ ...p, cycles: i === flat.length - 1 ? 9 : 3 }));
  assert.deepEqual(findSteps(last), [{ size: 128 * MIB, before: 3, after: 9 }]);
});

Deno.test("membench: under TCG nothing is inferred, and the report says so", async () => {
  const run = machine();
  for (const [accel, hypervisor] of [["tcg", "KVMKVMKVM___"], [null, "TCGTCGTCGTCG"]] as const) {
    const inf = inferMemory({ ...run, hypervisor }, accel);
    assert.equal(inf.modelled, false);
    assert.deepEqual(inf.caches, []);
    assert.equal(inf.tlbReach, null);
    assert.match(formatInference(inf), /TCG .* models no caches and no TLB timing/);
  }
  const svg = await membenchSvg(run, inferMemory({ ...run, hypervisor: "TCGTCGTCGTCG" }, "tcg"));
  assert.match(svg, /TCG: no cache model, nothing inferred/);
  assert.doesNotMatch(svg, />L1</);
  const real = await membenchSvg(run, inferMemory(run, "kvm"));
  for (const label of ["L1", "L2", "L3", "TLB"]) assert.ok(real.includes(`>${label}<`), label);
  // Bare metal: no hypervisor leaf at all.
  assert.match(inferMemory({ ...run, hypervisor: null }, null).reason, /bare metal/);
});

Deno.test("membench: the kernel's lines are parsed; missing or malformed ones are errors", () => {
  const lines = [
    "# MEMBENCH cpu hypervisor=TCGTCGTCGTCG",
    "# MEMBENCH range_bytes=4096 stride_bytes=8 accesses=131072 ticks=524288",
    "# MEMBENCH done",
  ];
  assert.deepEqual(parseMembench(lines), {
    hypervisor: "TCGTCGTCGTCG",
    points: [{ range_bytes: 4096, stride_bytes: 8, accesses: 131072, ticks: 524288 }],
  });
  assert.equal(
    parseMembench(["# MEMBENCH cpu hypervisor=none", ...lines.slice(1)]).hypervisor,
    null,
  );
  assert.throws(() => parseMembench(lines.slice(0, 2)), /no '# MEMBENCH done'/);
  assert.throws(() => parseMembench(lines.slice(1)), /did not say what CPU/);
  assert.throws(() => parseMembench([lines[0], lines[2]]), /no points/);
  assert.throws(
    () => parseMembench([lines[0], "# MEMBENCH range_bytes=x", lines[2]]),
    /malformed membench line/,
  );
});
