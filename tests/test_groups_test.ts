/**
 * The groups `deno task test` runs the Deno test files in (tools/app/test_groups.ts):
 * every file in exactly one group, balanced by the last run's times, and the
 * generated modules import exactly those files.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  balance,
  fileTimes,
  groupModule,
  namedTestPaths,
  writeTestGroups,
} from "../tools/app/test_groups.ts";
import { removeLeftovers } from "../tools/app/test_command.ts";
import { LEFTOVER_AGE_MS } from "../tools/host/leftovers.ts";
import { ROOT } from "../tools/paths.ts";
import { tempDir } from "./support.ts";

Deno.test("test groups: files named apart from options' values", () => {
  assert.deepEqual(namedTestPaths([]), []);
  assert.deepEqual(namedTestPaths(["--fail-fast", "--filter", "kernel/", "--reporter=dot"]), []);
  assert.deepEqual(namedTestPaths(["tests/a_test.ts", "--filter", "x", "tests/"]), [
    "tests/a_test.ts",
    "tests/",
  ]);
});

Deno.test("test groups: each file once, longest first to the least loaded group", () => {
  const files = ["a", "b", "c", "d", "e"];
  const secs: Record<string, number> = { a: 1, b: 10, c: 4, d: 5, e: 1 };
  const groups = balance(files, 2, (f) => secs[f]);
  assert.deepEqual(groups, [["b", "e"], ["a", "c", "d"]]);
  assert.deepEqual(groups.flat().sort(), files);
  // Never an empty group, never more groups than files.
  assert.deepEqual(balance(["a"], 4, () => 1), [["a"]]);
  assert.deepEqual(balance(files, 1, () => 1), [files]);
});

Deno.test("test groups: a JUnit report's time per file, steps not counted twice", () => {
  const xml = [
    '<testcase name="x" classname="./tests/a_test.ts" time="1.5">',
    '<testcase name="y" classname="./tests/a_test.ts" time="0.5">',
    '<testcase name="y &gt; s" classname="./tests/a_test.ts" time="0.4">',
    '<testcase name="z" classname="./tests/b_test.ts" time="3">',
  ].join("\n");
  assert.deepEqual(
    [...fileTimes(xml, ROOT)],
    [["tests/a_test.ts", 2], ["tests/b_test.ts", 3]],
  );
});

Deno.test("test groups: the modules import every test file once, and load", async () => {
  assert.equal(
    groupModule("/r/build/g", ["/r/tests/a_test.ts"]).split("\n")[1],
    'import "../../tests/a_test.ts";',
  );
  const [dir, cleanup] = await tempDir();
  try {
    const tests = join(dir, "tests");
    await Deno.mkdir(tests);
    for (const name of ["a_test.ts", "b_test.ts", "c_test.ts", "support.ts"]) {
      await Deno.writeTextFile(
        join(tests, name),
        `(globalThis as Record<string, unknown>)[${JSON.stringify(name)}] = true;\n`,
      );
    }
    const out = join(dir, "build/groups");
    const paths = await writeTestGroups(dir, tests, out, 2, null);
    assert.equal(paths.length, 2);
    const imported: string[] = [];
    for (const p of paths) {
      imported.push(
        ...(await Deno.readTextFile(p)).matchAll(/^import "(.*)";$/gm).map((m) => m[1]),
      );
      await import(p);
    }
    assert.deepEqual(imported.sort(), [
      "../../tests/a_test.ts",
      "../../tests/b_test.ts",
      "../../tests/c_test.ts",
    ]);
    const seen = globalThis as Record<string, unknown>;
    assert.ok(seen["a_test.ts"] && seen["b_test.ts"] && seen["c_test.ts"] && !seen["support.ts"]);
    // A file to run alone gets a module of its own, last; the others are grouped as before.
    const apart = await writeTestGroups(dir, tests, out, 2, null, ["tests/c_test.ts"]);
    const texts = await Promise.all(apart.map((p) => Deno.readTextFile(p)));
    assert.equal(texts.length, 3);
    assert.match(texts[2], /^import "\.\.\/\.\.\/tests\/c_test\.ts";$/m);
    assert.equal(texts[2].match(/^import /gm)?.length, 1);
    assert.ok(texts.slice(0, 2).every((t) => !t.includes("c_test")));
  } finally {
    await cleanup();
  }
});

Deno.test("test groups: a killed run's handed-over report, JUnit file and groups are removed, a live run's kept", async () => {
  const [dir, cleanup] = await tempDir();
  // A run under way: another process, running (this process's own files are never looked at).
  const running = new Deno.Command("sleep", { args: ["60"] }).spawn();
  try {
    // A pid that has ended: a process that ran and was waited for.
    const gone = new Deno.Command("true").spawn();
    await gone.status;
    const [dead, live] = [gone.pid, running.pid];
    const reports = join(dir, "reports");
    const groups = join(dir, "test-groups");
    for (const pid of [dead, live]) {
      await Deno.mkdir(join(groups, String(pid)), { recursive: true });
      await Deno.writeTextFile(join(groups, String(pid), "group1_test.ts"), "");
      await Deno.mkdir(reports, { recursive: true });
      for (
        const f of [
          `kernel-${pid}.json`,
          `kernel-${pid}.json.part`,
          `kernel.json.${pid}.part`,
          `deno-test-${pid}.xml`,
        ]
      ) {
        await Deno.writeTextFile(join(reports, f), "");
      }
    }
    // Not a run's own: kept whatever the numbers in their names.
    for (const f of ["kernel.json", "deno-test.xml", `kernel-${dead}.html`, "linux-kunit-1.json"]) {
      await Deno.writeTextFile(join(reports, f), "");
    }
    // A dead run's entry made within LEFTOVER_AGE_MS: perhaps a live run in another PID
    // namespace, kept. Everything else is as old as a killed run's leftovers may be.
    const recent = `kernel-${dead}.json.part`;
    const old = new Date(Date.now() - LEFTOVER_AGE_MS - 60_000);
    for (const d of [reports, groups]) {
      for await (const e of Deno.readDir(d)) {
        if (e.name !== recent) await Deno.utime(join(d, e.name), old, old);
      }
    }
    await removeLeftovers(reports, groups);
    const names = async (d: string) =>
      (await Array.fromAsync(Deno.readDir(d))).map((e) => e.name).sort();
    assert.deepEqual(await names(groups), [String(live)]);
    assert.deepEqual(
      await names(reports),
      [
        `deno-test-${live}.xml`,
        "deno-test.xml",
        `kernel-${dead}.html`,
        recent,
        `kernel-${live}.json`,
        `kernel-${live}.json.part`,
        "kernel.json",
        `kernel.json.${live}.part`,
        "linux-kunit-1.json",
      ].sort(),
    );
    // Nothing there: nothing to do, no error.
    await removeLeftovers(join(dir, "none"), join(dir, "none-either"));
  } finally {
    running.kill();
    await running.status;
    await cleanup();
  }
});
