import assert from "node:assert/strict";
import { combine, formatTable, parseBench, parseBenchArgs } from "../tools/bench.ts";

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

Deno.test("bench: options (--membench, --membench-only); --machine and unknown ones are refused by name", () => {
  assert.deepEqual(parseBenchArgs([]), { membench: "no" });
  assert.deepEqual(parseBenchArgs(["--membench"]), { membench: "also" });
  assert.deepEqual(parseBenchArgs(["--membench-only"]), { membench: "only" });
  assert.match(
    parseBenchArgs(["--machine", "lab.json"]) as string,
    /--machine: the bench runs under QEMU only/,
  );
  assert.equal(parseBenchArgs(["--fast"]), "unknown option '--fast'");
});
