/**
 * The pinned Deno version is written once, in ci/deno-version: the ci/
 * scripts and the workflow read it from there, and the commands README.md
 * and .ci/run spell out (`npx -y deno@X.Y.Z task test`) must name that very
 * version.
 */
import assert from "node:assert/strict";
import { execa } from "execa";
import { join } from "node:path";
import { ROOT } from "../tools/paths.ts";

const PINNED = (await Deno.readTextFile(join(ROOT, "ci/deno-version"))).trim();

/** Every `deno@VERSION` a text names. */
function versionsIn(text: string): string[] {
  return [...text.matchAll(/deno@(\d+\.\d+\.\d+)/g)].map((m) => m[1]);
}

/** The files of a directory, by path. */
function filesIn(dir: string): string[] {
  return [...Deno.readDirSync(join(ROOT, dir))].filter((e) => e.isFile).map((e) =>
    join(ROOT, dir, e.name)
  );
}

Deno.test("deno version: ci/deno-version holds one version", () => {
  assert.match(PINNED, /^\d+\.\d+\.\d+$/);
});

Deno.test("deno version: README.md and .ci/run name the pinned version", async () => {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  assert.ok(readme.includes(`npx -y deno@${PINNED} task test`), "README's test command");
  assert.deepEqual([...new Set(versionsIn(readme))], [PINNED], "every deno@ in README.md");
  const run = await Deno.readTextFile(join(ROOT, ".ci/run"));
  assert.match(run, new RegExp(`^npx -y deno@${PINNED.replaceAll(".", "\\.")} task test$`, "m"));
  assert.deepEqual(versionsIn(run), [PINNED]);
});

Deno.test("deno version: the ci/ scripts and workflows read it, and write no version", async () => {
  for (const f of [...filesIn("ci"), ...filesIn(".github/workflows")]) {
    if (f.endsWith("deno-version")) continue;
    const text = await Deno.readTextFile(f);
    assert.deepEqual(versionsIn(text), [], `${f} names no deno@ version`);
    assert.doesNotMatch(text, /DENO_VERSION=\d/, `${f} pins no version of its own`);
  }
  const r = await execa("bash", ["-c", 'source ci/common.sh && printf %s "$DENO_VERSION"'], {
    cwd: ROOT,
  });
  assert.equal(r.stdout, PINNED, "ci/common.sh's DENO_VERSION is the file's");
});
