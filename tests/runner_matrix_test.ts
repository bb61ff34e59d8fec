/**
 * Configurations and selection: the named machines (each booted for real),
 * runs in parallel but never more than asked, the kernel's own test list,
 * shards that are stable and balanced, and filters that fit the kernel's
 * command line (split over several boots when they do not).
 */
import assert from "node:assert/strict";
import { ROOT } from "../tools/paths.ts";
import {
  CONFIGS,
  DEFAULT_CONFIG,
  getConfig,
  selectConfigs,
  UnknownConfigError,
} from "../tools/run/configs.ts";
import { cpuArgument, targetFor } from "../tools/run/targets.ts";
import {
  durationsOf,
  filterCheck,
  labelFor,
  listKernelTests,
  longestFirst,
  pool,
  runMatrix,
  TestTimer,
} from "../tools/run/matrix.ts";
import {
  globsFor,
  kernelCmdlineMax,
  listedTests,
  packFilters,
  parseShard,
  shardOf,
} from "../tools/run/plan.ts";
import { REPORT_SCHEMA, type RunRecord } from "../tools/core/record.ts";
import { TapIngest } from "../tools/core/tap.ts";
import { builtKernel, tempDir } from "./support.ts";

const LOG_DIR = Deno.makeTempDirSync({ prefix: "ouroboros-matrix-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(LOG_DIR, { recursive: true }));

function argOf(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

const testsOf = (runs: RunRecord[]) => runs.flatMap((r) => r.suites.flatMap((s) => s.tests));

// ------------------------------------------------------------ configurations

Deno.test("configs: one table, unique names, the default in it", () => {
  const names = CONFIGS.map((c) => c.name);
  assert.equal(new Set(names).size, names.length);
  assert.ok(names.includes(DEFAULT_CONFIG));
  for (
    const want of [
      "pc",
      "q35",
      "qemu64",
      "max",
      "no-nx",
      "haswell",
      "smp2",
      "smp4",
      "mem-32m",
      "mem-4g",
    ]
  ) {
    assert.ok(names.includes(want), want);
  }
  assert.ok(CONFIGS.every((c) => c.description.length > 0));
});

Deno.test("configs: --config selects by name, in order, once each; all is every one", () => {
  assert.deepEqual(selectConfigs(undefined).map((c) => c.name), [DEFAULT_CONFIG]);
  assert.deepEqual(selectConfigs("q35, pc,q35").map((c) => c.name), ["q35", "pc"]);
  assert.equal(selectConfigs("all").length, CONFIGS.length);
  assert.throws(() => selectConfigs("q35,nope"), UnknownConfigError);
  assert.throws(() => selectConfigs("nope"), /unknown configuration 'nope' \(known: microvm, pc/);
});

Deno.test("configs: the QEMU arguments say what the configuration says", () => {
  const args = (name: string) =>
    targetFor(getConfig(name), { accel: "tcg" }).args({ kernel: "k", cmdline: "" });
  assert.equal(argOf(args("q35"), "-machine"), "q35");
  assert.equal(argOf(args("mem-4g"), "-m"), "4G");
  assert.equal(argOf(args("mem-32m"), "-m"), "32M");
  assert.equal(argOf(args("smp2"), "-smp"), "2");
  assert.equal(argOf(args("smp4"), "-smp"), "4");
  assert.equal(argOf(args("max"), "-cpu"), "max");
  // NX off in the model itself, so it is off under KVM too.
  assert.equal(argOf(args("no-nx"), "-cpu"), "max,-nx");
  assert.equal(cpuArgument(getConfig("no-nx"), "kvm"), "max,-nx");
  assert.equal(argOf(args("microvm"), "-cpu"), undefined);
  // TCG does not emulate these four: they are turned off rather than warned about.
  assert.equal(
    argOf(args("haswell"), "-cpu"),
    "Haswell-noTSX,-pcid,-x2apic,-tsc-deadline,-invpcid",
  );
  assert.equal(cpuArgument(getConfig("haswell"), "kvm"), "Haswell-noTSX");
});

Deno.test("configs: tests are named per configuration unless only the default runs", () => {
  const q35 = getConfig("q35"), microvm = getConfig("microvm");
  assert.equal(labelFor(microvm, [microvm]), "kernel");
  assert.equal(labelFor(microvm, [microvm, q35]), "kernel[microvm]");
  assert.equal(labelFor(q35, [q35]), "kernel[q35]");
});

Deno.test("configs (QEMU): every configuration boots the kernel and runs a test", async () => {
  const { elf } = await builtKernel();
  const runs = await runMatrix({
    elf,
    root: ROOT,
    configs: CONFIGS,
    filter: "layout.constants",
    shard: null,
    retries: 0,
    deadlines: {},
    logDir: LOG_DIR,
  });
  assert.deepEqual(runs.map((r) => r.label), CONFIGS.map((c) => `kernel[${c.name}]`));
  for (const r of runs) {
    assert.equal(r.status, "pass", `${r.label}: ${r.message}`);
    assert.deepEqual(r.suites.flatMap((s) => s.tests.map((t) => t.fullName)), ["layout.constants"]);
  }
  assert.equal(new Set(runs.map((r) => r.target.command.join(" "))).size, CONFIGS.length);
});

Deno.test("pool: runs everything, never more at once than the limit", async () => {
  let running = 0, most = 0;
  const tasks = Array.from({ length: 9 }, (_, i) => async () => {
    most = Math.max(most, ++running);
    await new Promise((r) => setTimeout(r, 5 + (i % 3)));
    running--;
    return i;
  });
  assert.deepEqual(await pool(2, tasks), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(most, 2);
});

Deno.test("timer: a test's time runs from its start event to its result", () => {
  const timer = new TestTimer();
  const result = {
    suite: "s",
    name: "t",
    fullName: "s.t",
    id: 1,
    ok: true,
    skip: null,
    todo: null,
  };
  timer.event({ type: "test-start", suite: "s", name: "t", fullName: "s.t" }, 100);
  timer.event({
    type: "test-result",
    result: { ...result, directive: null, note: null, diagnostic: null, log: [] },
  }, 142.25);
  assert.deepEqual(timer.durations, { "s.t": 42.3 });
});

Deno.test("filter check: fails only when nothing was selected and nothing else failed", () => {
  const run = (tests: number, status: RunRecord["status"]) =>
    ({ status, suites: [{ tests: Array(tests).fill({}) }] }) as unknown as RunRecord;
  assert.equal(filterCheck("x.*", [run(0, "pass")], null).ok, false);
  assert.equal(filterCheck("x.*", [run(2, "pass")], null).ok, true);
  assert.equal(filterCheck("x.*", [run(0, "fail")], null).ok, true, "a crash says it itself");
  assert.equal(filterCheck("x.*", [], ["x.a"]).ok, true, "an empty shard of a real selection");
  assert.equal(filterCheck("x.*", [], []).ok, false);
  assert.equal(filterCheck("x.*", [], []).category, "assertion");
});

Deno.test("pool: the longest runs of the last report start first", async () => {
  const ids = ["microvm", "pc", "mem-4g", "q35", "new"];
  const order = longestFirst(ids, { microvm: 500, pc: 700, "mem-4g": 11_000, q35: 700 });
  assert.deepEqual(order.map((i) => ids[i]), ["mem-4g", "pc", "q35", "microvm", "new"]);
  assert.deepEqual(longestFirst(ids), [0, 1, 2, 3, 4], "no history: plan order");
  const started: number[] = [];
  const results = await pool(
    1,
    ids.map((_, i) => () => {
      started.push(i);
      return Promise.resolve(i);
    }),
    order,
  );
  assert.deepEqual(started, order);
  assert.deepEqual(results, [0, 1, 2, 3, 4], "results stay in plan order");
});

Deno.test("pool: run times come from an earlier report of this schema, or none", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const file = `${dir}/kernel.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({ schema: REPORT_SCHEMA, runs: [{ id: "q35", durationMs: 9 }] }),
    );
    assert.deepEqual(durationsOf(file), { q35: 9 });
    await Deno.writeTextFile(file, JSON.stringify({ schema: "other", runs: [] }));
    assert.deepEqual(durationsOf(file), {});
    assert.deepEqual(durationsOf(`${dir}/none.json`), {});
  } finally {
    await cleanup();
  }
});

// ------------------------------------------------------------------- shards

Deno.test("shard: I/N is parsed 1-based and checked", () => {
  assert.deepEqual(parseShard("2/4"), { index: 2, count: 4 });
  for (const bad of ["0/4", "5/4", "1/0", "x", "1/2/3", "-1/2"]) {
    assert.throws(() => parseShard(bad), /--shard/, bad);
  }
});

Deno.test("shard: balanced, never empty with enough work, disjoint, complete, stable", () => {
  for (const n of [0, 1, 5, 7, 81, 100]) {
    for (const count of [1, 2, 3, 4, 7, 16]) {
      const units = Array.from({ length: n }, (_, i) => i);
      const shards = Array.from(
        { length: count },
        (_, i) => shardOf(units, { index: i + 1, count }),
      );
      assert.deepEqual(shards.flat(), units, `${n}/${count}: complete, in order`);
      const sizes = shards.map((s) => s.length);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${n}/${count}: balanced ${sizes}`);
      if (n >= count) assert.ok(sizes.every((s) => s > 0), `${n}/${count}: none empty`);
      assert.deepEqual(shardOf(units, { index: 1, count }), shards[0], "stable");
    }
  }
});

Deno.test("filters: whole suites become suite.*, the rest are named, packed to fit", () => {
  const all = ["a.x", "a.y", "b.x", "b.y", "b.z", "c.x"];
  assert.deepEqual(globsFor(["a.x", "a.y", "b.y", "c.x"], all), ["a.*", "b.y", "c.*"]);
  assert.deepEqual(packFilters(["a.*", "b.y", "c.*"], 7), ["a.*,b.y", "c.*"]);
  assert.deepEqual(packFilters(["a.*", "b.y", "c.*"], 100), ["a.*,b.y,c.*"]);
  assert.throws(() => packFilters(["much.too.long"], 5), /longer than the command line/);
});

Deno.test("filters: the command-line size is the kernel's CMDLINE_MAX", async () => {
  const header = await Deno.readTextFile(`${ROOT}/kernel/include/bootinfo.h`);
  const max = await kernelCmdlineMax(ROOT);
  assert.ok(header.includes(`#define CMDLINE_MAX ${max}`));
});

Deno.test("list: a list that is not whole, or tests that ran, are refused", () => {
  const parse = (text: string) => {
    const tap = new TapIngest();
    for (const l of text.split("\n")) tap.push(l);
    return tap.end();
  };
  const listed = "TAP version 14\n1..1\n# Subtest: s\n    1..2\n    ok 1 - a # SKIP listed\n" +
    "    ok 2 - b # SKIP listed\nok 1 - s # SKIP listed";
  assert.deepEqual(listedTests(parse(listed)), ["s.a", "s.b"]);
  assert.throws(() => listedTests(parse(listed.split("\n").slice(0, 5).join("\n"))), /incomplete/);
  assert.throws(
    () => listedTests(parse(listed.replace("ok 2 - b # SKIP listed", "ok 2 - b"))),
    /ran s\.b/,
  );
});

Deno.test("list (QEMU): the kernel lists what its filter selects, in its order", async () => {
  const { elf } = await builtKernel();
  const { tests } = await listKernelTests(elf, "ktest.glob_*", { logDir: LOG_DIR });
  assert.deepEqual(tests, [
    "ktest.glob_exact",
    "ktest.glob_star",
    "ktest.glob_question",
    "ktest.glob_empty",
    "ktest.glob_list",
  ]);
});

Deno.test("shard (QEMU): shards run disjoint parts whose union is the kernel's list", async () => {
  const { elf } = await builtKernel();
  const filter = "ktest.*,layout.*";
  const configs = [getConfig("microvm"), getConfig("q35")];
  const count = 3;
  // Each shard lists the kernel's tests itself (listKernelTests on the first configuration, as
  // CI's separate shard processes do); the lists they planned from are the reference.
  const lists: string[][] = [];
  const shards = await Promise.all(Array.from({ length: count }, (_, i) =>
    runMatrix({
      elf,
      root: ROOT,
      configs,
      filter,
      shard: { index: i + 1, count },
      retries: 0,
      deadlines: {},
      logDir: LOG_DIR,
      logPrefix: `shard${i + 1}`,
      onList: (listed) => lists.push(listed),
    })));
  assert.equal(lists.length, count, "every shard listed the kernel's tests");
  const tests = lists[0];
  for (const l of lists) assert.deepEqual(l, tests, "every shard got the same list");
  assert.ok(
    tests.some((t) => t.startsWith("ktest.")) && tests.some((t) => t.startsWith("layout.")),
  );
  // The list is the filter's: a listing without it, or with another, would agree with itself.
  for (const t of tests) assert.match(t, /^(ktest|layout)\./, "listed outside the filter");
  const ran = shards.map((runs) =>
    runs.flatMap((r) => testsOf([r]).map((t) => `${r.config} ${t.fullName}`))
  );
  for (const [i, r] of ran.entries()) assert.ok(r.length > 0, `shard ${i + 1} is not empty`);
  const sizes = ran.map((r) => r.length);
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `balanced: ${sizes}`);
  const everything = configs.flatMap((c) => tests.map((t) => `${c.name} ${t}`));
  assert.deepEqual(ran.flat().sort(), everything.sort(), "disjoint and complete");
  assert.ok(shards.flat().every((r) => r.status === "pass"));
});

Deno.test("shard (QEMU): a filter too long for one command line is split over boots", async () => {
  const { elf } = await builtKernel();
  const tests: string[] = [];
  const runs = await runMatrix({
    elf,
    root: ROOT,
    configs: [getConfig("microvm")],
    filter: "ktest.*",
    shard: { index: 1, count: 1 },
    retries: 0,
    deadlines: {},
    logDir: LOG_DIR,
    logPrefix: "split",
    cmdlineMax: 120,
    // The kernel's list of ktest.* on microvm (listKernelTests), as the plan got it.
    onList: (listed) => tests.push(...listed),
  });
  assert.ok(runs.length > 1, `${runs.length} boots`);
  assert.deepEqual(runs.map((r) => r.id), runs.map((_, i) => `microvm#${i + 1}`));
  assert.ok(runs.every((r) => r.cmdline.length < 120), runs.map((r) => r.cmdline).join("\n"));
  assert.ok(tests.length > 0 && tests.every((t) => t.startsWith("ktest.")), tests.join(" "));
  assert.deepEqual(testsOf(runs).map((t) => t.fullName), tests);
});
