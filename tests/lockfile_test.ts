/**
 * The build's lock between processes (tools/lockfile.ts): one holder at a
 * time, and a lock left by a process that died is taken over.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { acquireLock } from "../tools/host/lockfile.ts";
import { tempDir } from "./support.ts";

Deno.test("lockfile: a second taker waits until the first releases", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const path = join(dir, "lock.pid");
    const first = await acquireLock(path);
    assert.equal(await Deno.readTextFile(path), String(Deno.pid));
    let second = false;
    const notices: string[] = [];
    const waiting = acquireLock(path, { notice: (t) => notices.push(t), noticeMs: 50 }).then(
      (l) => {
        second = true;
        return l;
      },
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(second, false, "the lock was taken twice");
    assert.deepEqual(notices, [
      `waiting for ${path}, held by process ${Deno.pid} (if that process is not a build, remove the file)`,
    ]);
    await first.release();
    await (await waiting).release();
    assert.equal(second, true);
    // Nothing is left behind: no lock, no temporary file.
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await cleanup();
  }
});

Deno.test("lockfile: a lock whose owner is gone is taken over", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const child = new Deno.Command("true").spawn();
    await child.status;
    const path = join(dir, "lock.pid");
    await Deno.writeTextFile(path, String(child.pid));
    const lock = await acquireLock(path);
    assert.equal(await Deno.readTextFile(path), String(Deno.pid));
    await lock.release();
  } finally {
    await cleanup();
  }
});
