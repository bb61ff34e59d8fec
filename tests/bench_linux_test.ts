/**
 * `deno task bench --vs-linux`: the parsing of Linux's output on fixtures
 * (serial logs written from a real run, and broken ones), the pairing with our
 * rows, and, opt-in (OUROBOROS_VS_LINUX=1; CI's vs-linux job), the whole Linux
 * pipeline on the smallest region: Debian's kernel downloaded, the program
 * built with gcc, the initramfs, the boot under -icount shift=0, the parse.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkCalibration,
  compare,
  formatCompare,
  LINUX_OPS,
  PAIRS,
  parseLinux,
  parseOurCalibration,
} from "../tools/bench/compare.ts";
import { kernelPackage, runLinuxBench, runQemu } from "../tools/bench/linux/run.ts";
import { qemuTunables } from "../tools/machines/qemu.ts";
import { BENCH_OPS } from "../tools/bench.ts";
import { BUILD_DIR, LOG_DIR, ROOT } from "../tools/paths.ts";
import { executable } from "./support.ts";

const FIXTURES = join(ROOT, "tests", "fixtures", "bench-linux");
const fixture = (name: string) => Deno.readTextFileSync(join(FIXTURES, name)).split("\n");

Deno.test("bench vs Linux: a real Linux log is parsed, kernel messages around it ignored", () => {
  const r = parseLinux(fixture("small.log"));
  assert.deepEqual(r.samples.map((s) => s.op), [...LINUX_OPS]);
  assert.deepEqual(r.samples[4], {
    op: "getpid",
    page_size: 4096,
    region_bytes: 4096,
    pages: 20000,
    ticks: 6429420,
  });
  assert.deepEqual(r.calibration, {
    loop_instructions: 2000000,
    tsc_ticks: 2018328,
    monotonic_ns: 2018420,
  });
  // Serial lines may end in CR.
  assert.deepEqual(parseLinux(fixture("small.log").map((l) => l + "\r")), r);
});

Deno.test("bench vs Linux: a failed, truncated or unknown Linux run is an error", () => {
  assert.throws(() => parseLinux(fixture("failed.log")), /Linux bench program failed: .*mmap/);
  assert.throws(() => parseLinux(fixture("truncated.log")), /malformed Linux bench line/);
  const noDone = fixture("small.log").filter((l) => !l.includes("LINUX done"));
  assert.throws(() => parseLinux(noDone), /did not finish/);
  const noCalib = fixture("small.log").filter((l) => !l.includes("calibration"));
  assert.throws(() => parseLinux(noCalib), /no calibration/);
  const unknown = fixture("small.log").map((l) => l.replace("op=protect", "op=teleport"));
  assert.throws(() => parseLinux(unknown), /unknown Linux bench op: teleport/);
  assert.throws(() => parseLinux([]), /no calibration/);
});

Deno.test("bench vs Linux: a clock that does not follow icount is refused", () => {
  const good = parseLinux(fixture("small.log")).calibration;
  assert.match(checkCalibration(good), /2000000 instructions reads 2018328 rdtsc ticks/);
  const ours = parseOurCalibration([
    "# bench: a TSC read pair costs 2 ticks (subtracted)",
    "# bench: calibration loop_instructions=2000000 tsc_ticks=2000003",
  ]);
  assert.deepEqual(ours, { loop_instructions: 2000000, tsc_ticks: 2000003 });
  assert.equal(parseOurCalibration(["# BENCH done"]), null);
  assert.match(checkCalibration({ ...ours!, monotonic_ns: 0 }, 0.02, "ours"), /under ours$/);
  const bad = parseLinux(fixture("no-icount.log")).calibration;
  assert.throws(() => checkCalibration(bad), /rdtsc does not count instructions/);
});

Deno.test("bench vs Linux: every Linux row is paired with one of our bench ops", () => {
  assert.deepEqual(PAIRS.map((p) => p.linux), [...LINUX_OPS]);
  for (const p of PAIRS) assert.ok((BENCH_OPS as readonly string[]).includes(p.ours), p.ours);
});

Deno.test("bench vs Linux: ratios per page, per operation for getpid and spawn; missing is said", () => {
  const linux = parseLinux(fixture("small.log")).samples;
  const ours = [
    { op: "user_fault_zero", region_bytes: 4096, instructions_per_page: 729.5 },
    { op: "user_fault_zero", region_bytes: 65536, instructions_per_page: 1 },
    { op: "getpid", region_bytes: 4096, instructions_per_page: 64.3 },
    { op: "spawn_exit_wait", region_bytes: 4096, instructions_per_page: 30000 },
  ];
  const rows = compare(ours, linux);
  const row = (op: string) => rows.find((r) => r.op === op)!;
  assert.deepEqual(row("fault_zero"), {
    op: "fault_zero",
    ours_op: "user_fault_zero",
    page_size: 4096,
    region_bytes: 4096,
    ours: 729.5,
    linux: 7295,
    ratio: 0.1,
  });
  assert.equal(row("getpid").linux, 321.5);
  assert.equal(row("getpid").ratio, 0.2);
  assert.equal(row("spawn_exit_wait").ratio, 0.129);
  assert.equal(row("cow_fault").ratio, null);
  const table = formatCompare(rows);
  assert.match(table, /fault_zero \/ user_fault_zero\s+4 KiB\s+729\.5\s+7295\.0\s+0\.100\s+yes/);
  assert.match(table, /spawn_exit_wait \/ spawn_exit_wait\s+4 KiB\s+30000\.0\s+231925\.6\s+0\.129/);
  assert.match(
    table,
    /cow_fault \/ cow_fault\s+4 KiB\s+n\/a\s+3914\.0\s+not available on our side/,
  );
});

Deno.test("bench vs Linux: the metapackage's dependency names the kernel", () => {
  const out = "linux-image-amd64\n  Depends: linux-image-6.1.0-57-amd64\n";
  assert.equal(kernelPackage(out), "linux-image-6.1.0-57-amd64");
  assert.throws(() => kernelPackage("linux-image-amd64\n"), /names no linux-image-<version>/);
});

Deno.test("bench vs Linux: Linux's QEMU runs with the runner's environment (the malloc tunable)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ouroboros-bench-linux-" });
  try {
    // A QEMU that writes down the tunables and arguments it was started with.
    const qemu = join(dir, "env-qemu");
    await executable(qemu, `#!/bin/sh\nprintf '%s|%s' "$GLIBC_TUNABLES" "$*"\nexit 3\n`);
    const r = await runQemu(["-icount", "shift=0"], 60_000, qemu);
    assert.equal(r.code, 3);
    const [tunables, args] = new TextDecoder().decode(r.stdout).split("|");
    assert.equal(tunables, qemuTunables(Deno.env.get("GLIBC_TUNABLES")));
    assert.match(tunables, /glibc\.malloc\.hugetlb=/);
    assert.equal(args, "-icount shift=0");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const requested = Deno.env.get("OUROBOROS_VS_LINUX") === "1";
const e2e = "bench vs Linux: Debian's kernel boots the gcc-built /init under -icount shift=0, " +
  "smallest region";
Deno.test({
  name: requested ? e2e : `${e2e} [skipped: downloads a kernel; runs with OUROBOROS_VS_LINUX=1]`,
  ignore: !requested,
  fn: async () => {
    const outDir = join(BUILD_DIR, "bench-test", "linux");
    const logFile = join(LOG_DIR, "bench-linux-test.log");
    const r = await runLinuxBench({ outDir, logFile, small: true });
    assert.match(r.kernel.version, /^\d+\.\d+\.\d+-\d+-amd64$/);
    checkCalibration(r.run.calibration);
    assert.deepEqual(r.run.samples.map((s) => s.op), [...LINUX_OPS]);
    for (const s of r.run.samples) {
      assert.equal(s.region_bytes, 4096);
      assert.ok(s.ticks > s.pages * 50, `${s.op}: ${s.ticks} instructions for ${s.pages}`);
    }
    const getpid = r.run.samples.find((s) => s.op === "getpid")!;
    // A syscall round trip on Linux 6.1 is a few hundred instructions, not thousands.
    assert.ok(getpid.ticks / getpid.pages < 2000, `getpid: ${getpid.ticks / getpid.pages}`);
  },
});
