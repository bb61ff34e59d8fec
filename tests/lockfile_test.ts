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
  const path = join(dir, "lock.pid");
  const first = await acquireLock(path);
  let second = false;
  const notices: string[] = [];
  let noticed = () => {};
  const notice = new Promise<void>((resolve) => noticed = resolve);
  const waiting = acquireLock(path, {
    notice: (t) => {
      notices.push(t);
      noticed();
    },
    noticeMs: 50,
  }).then((l) => {
    second = true;
    return l;
  });
  try {
    assert.equal(await Deno.readTextFile(path), String(Deno.pid));
    // The notice comes once the second taker has waited 50 ms (however long that takes on a
    // loaded machine, not after a fixed sleep): the first must still hold the lock then.
    // A second taker that got the lock at once would never give notice: whichever comes first.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("no notice and no lock after 30 s")), 30_000);
    });
    await Promise.race([notice, waiting, late]).finally(() => clearTimeout(timer));
    assert.equal(second, false, "the lock was taken twice");
    assert.deepEqual(notices, [
      `waiting for ${path}, held by process ${Deno.pid} (if that process is not a build, remove the file)`,
    ]);
  } finally {
    // Released and taken over before the directory goes, even when a check above failed: a
    // taker still polling a removed directory would fail outside this test.
    await first.release();
    await (await waiting).release();
  }
  try {
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

Deno.test("lockfile: module instances in one process (deno test's workers) wait in turn", async () => {
  // Two more instances of the module, as other isolates of this process have: counts of their own.
  type Lockfile = { acquireLock: typeof acquireLock };
  const instance = () =>
    import(`../tools/host/lockfile.ts?instance=${crypto.randomUUID()}`) as Promise<Lockfile>;
  const [b, c] = await Promise.all([instance(), instance()]);
  const [dir, cleanup] = await tempDir();
  try {
    const path = join(dir, "lock.pid");
    const first = await acquireLock(path);
    let holders = 0;
    let most = 0;
    const take = async (acquire: typeof acquireLock) => {
      const lock = await acquire(path, { notice: () => {} });
      most = Math.max(most, ++holders);
      await new Promise((r) => setTimeout(r, 20));
      holders--;
      await lock.release();
    };
    // Both wait while the first holds it; neither loses its temporary file to the other.
    const waiting = Promise.all([take(b.acquireLock), take(c.acquireLock)]);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(holders, 0);
    await first.release();
    await waiting;
    assert.equal(most, 1, "held by two at once");
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await cleanup();
  }
});
