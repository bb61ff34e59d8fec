/**
 * An exclusive lock between processes: a lock file that holds its owner's
 * process id. It is made with node:fs only, so a Deno task and the npm
 * package's CLI under Node that build into one directory exclude each other
 * (Node has no flock).
 *
 * The file is written in full under a temporary name and then hard-linked
 * to the lock's name: link(2) fails if the name exists, so taking the lock
 * is atomic and a lock file is never seen half-written. A lock whose owner
 * is no longer running (it crashed) is removed and taken. Two processes
 * that find the same dead owner at the same instant could both take it;
 * that needs a crash and a race, and costs a rebuild at worst.
 */
import { link, readFile, rm, writeFile } from "node:fs/promises";
import process from "node:process";
import { alive } from "./leftovers.ts";

/** How often a waiting process looks at the lock again. */
const POLL_MS = 25;
/** After this long, a waiting process says whom it waits for (once). */
const NOTICE_MS = 5_000;

/** How to wait for a lock. */
export interface LockOptions {
  /** Says whom a long wait is for; default: a line on stderr. */
  notice?: (text: string) => void;
  /** How long a wait is before it is reported; default 5 s. */
  noticeMs?: number;
}
/**
 * Makes temporary names unique when one process waits for a lock twice; the
 * random part when several isolates of one process do (deno test's workers
 * share a process id, each with its own count).
 */
let attempts = 0;
// Web Crypto (Node and Deno): node:crypto costs every command ~60 ms of CPU to load.
const ISOLATE = crypto.randomUUID().slice(0, 8);

/** A lock held by this process. */
export interface HeldLock {
  /** Give the lock up (removes the file if it is still ours). */
  release(): Promise<void>;
}

function errorCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

/**
 * Take the lock at `path`, waiting while a running process holds it. A long
 * wait is reported once, naming the holder: a process id can be reused by
 * another program, and then only the user can tell.
 */
export async function acquireLock(path: string, options: LockOptions = {}): Promise<HeldLock> {
  const notice = options.notice ?? ((t: string) => console.error(t));
  const noticeMs = options.noticeMs ?? NOTICE_MS;
  const mine = String(process.pid);
  const temp = `${path}.${mine}.${ISOLATE}.${attempts++}.tmp`;
  const started = Date.now();
  let noticed = false;
  await writeFile(temp, mine);
  try {
    for (;;) {
      try {
        await link(temp, path);
        break;
      } catch (e) {
        if (errorCode(e) !== "EEXIST") throw e;
      }
      const owner = Number(await readFile(path, "utf8").catch(() => ""));
      if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
        await rm(path, { force: true });
        continue;
      }
      if (!noticed && Date.now() - started >= noticeMs) {
        noticed = true;
        const hint = "if that process is not a build, remove the file";
        notice(`waiting for ${path}, held by process ${owner} (${hint})`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    await rm(temp, { force: true });
  }
  return {
    release: async () => {
      const owner = await readFile(path, "utf8").catch(() => "");
      if (owner === mine) await rm(path, { force: true });
    },
  };
}
