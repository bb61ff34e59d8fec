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
