import assert from "node:assert/strict";
import {
  combine,
  formatIpis,
  formatTable,
  nameBootRow,
  parseBench,
  parseBenchArgs,
  parseIpis,
} from "../tools/bench.ts";

const RUN = [
  "TAP version 14",
  "# BENCH op=pmm_alloc page_size=4096 region_bytes=4096 pages=1000 ticks=25000",
  "    # BENCH op=map page_size=4096 region_bytes=2097152 pages=512 ticks=20480",
  "# BENCH leak-check ok",
  "# BENCH done",
];

Deno.test("bench: kernel lines are parsed", () => {
  assert.deepEqual(parseBench(RUN)[1], {
    op: "map",
    page_size: 4096,
    region_bytes: 2097152,
    pages: 512,
    ticks: 20480,
  });
});

Deno.test("bench: a run without 'done', a malformed line or an unknown op is an error", () => {
  assert.throws(() => parseBench(RUN.slice(0, 3)), /did not finish/);
  assert.throws(() => parseBench(["# BENCH op=map pages=x", "# BENCH done"]), /malformed/);
  assert.throws(
    () =>
      parseBench([
        "# BENCH op=teleport page_size=1 region_bytes=1 pages=1 ticks=1",
        "# BENCH done",
      ]),
    /unknown bench op/,
  );
});

Deno.test("bench: a leak check that failed or is missing is an error", () => {
  const failed = RUN.map((l) => l.replace("leak-check ok", "leak-check failed: 3 frames"));
  assert.throws(() => parseBench(failed), /leak check failed: # BENCH leak-check failed: 3/);
  assert.throws(
    () => parseBench(RUN.filter((l) => !l.includes("leak-check"))),
    /did not report '# BENCH leak-check ok'/,
  );
});

Deno.test("bench: cycles and instructions are joined per measurement", () => {
  const cycles = parseBench(RUN);
  const instr = parseBench(RUN.map((l) => l.replace("ticks=25000", "ticks=31000")));
  const r = combine(cycles, instr);
  assert.deepEqual(r[0], {
    op: "pmm_alloc",
    page_size: 4096,
    region_bytes: 4096,
    cycles_per_page: 25,
    instructions_per_page: 31,
  });
  assert.throws(() => combine(cycles, instr.slice(1)), /no icount sample for pmm_alloc/);
  assert.match(formatTable(r), /map\s+4 KiB\s+2 MiB\s+40\.0\s+40\.0/);
});

Deno.test("bench: options (--vs-linux, --membench, --membench-only); --machine and unknown ones are refused by name", () => {
  assert.deepEqual(parseBenchArgs([]), { membench: "no", vsLinux: false });
  assert.deepEqual(parseBenchArgs(["--membench"]), { membench: "also", vsLinux: false });
  assert.deepEqual(parseBenchArgs(["--membench-only"]), { membench: "only", vsLinux: false });
  assert.deepEqual(parseBenchArgs(["--vs-linux", "--membench"]), {
    membench: "also",
    vsLinux: true,
  });
  assert.match(
    parseBenchArgs(["--machine", "lab.json"]) as string,
    /--machine: the bench runs under QEMU only/,
  );
  assert.equal(parseBenchArgs(["--fast"]), "unknown option '--fast'");
});

Deno.test("bench: the SMP run's IPI lines are parsed; malformed or unknown ones are errors", () => {
  const lines = [
    "# BENCH op=unmap_notify3 page_size=4096 region_bytes=4096 pages=200 ticks=308600",
    "# BENCH-IPIS op=unmap_notify3 ops=200 rounds=200 ipis=600 full=0",
    "# BENCH-IPIS op=unmap64_notify3 ops=200 rounds=200 ipis=600 full=200",
  ];
  const r = parseIpis(lines);
  assert.deepEqual(r[0], { op: "unmap_notify3", ops: 200, rounds: 200, ipis: 600, full: 0 });
  assert.match(formatIpis(r), /unmap_notify3\s+1\.00\s+3\.00\s+0\.00/);
  assert.match(formatIpis(r), /unmap64_notify3\s+1\.00\s+3\.00\s+1\.00/);
  assert.throws(() => parseIpis(["# BENCH-IPIS op=unmap_notify3 ops=x"]), /malformed IPI line/);
  assert.throws(
    () => parseIpis(["# BENCH-IPIS op=warp ops=1 rounds=1 ipis=1 full=0"]),
    /unknown bench op: warp/,
  );
  assert.throws(
    () => parseIpis(["# BENCH-IPIS op=unmap_notify1 ops=0 rounds=0 ipis=0 full=0"]),
    /no operations/,
  );
});

Deno.test("bench: the SMP boot row is named for its machine, and only that row", () => {
  const lines = nameBootRow([
    "# BENCH op=smp_boot page_size=4096 region_bytes=4096 pages=1 ticks=60004245",
    "# BENCH op=unmap_notify0 page_size=4096 region_bytes=4096 pages=200 ticks=155400",
    "# BENCH leak-check ok",
    "# BENCH done",
  ], "q35");
  const r = parseBench(lines);
  assert.equal(r[0].op, "smp_boot_q35");
  assert.equal(r[1].op, "unmap_notify0");
  // Unnamed, the kernel's smp_boot is no op of the table.
  assert.throws(
    () =>
      parseBench([
        "# BENCH op=smp_boot page_size=4096 region_bytes=4096 pages=1 ticks=1",
        "# BENCH leak-check ok",
        "# BENCH done",
      ]),
    /unknown bench op: smp_boot/,
  );
});
