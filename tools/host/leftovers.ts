/**
 * What a killed process (Ctrl-C, a CI timeout, an OOM kill) left of its own
 * in a directory it shares with others: entries named with its pid, which
 * nothing else removes. One rule for every such directory (a test run's
 * reports and test groups, a build directory's partial facts files).
 */
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";

/** How old a killed process's leftover must be to be removed (see {@link removeDeadLeftovers}). */
export const LEFTOVER_AGE_MS = 6 * 3600_000;

/** True if a process with this pid is running (or may be: one we may not signal). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code !== "ESRCH";
  }
}

/**
 * Remove the entries of `dir` (files or folders) that `pidOf` says a
 * process left (the pid in its name; null: not a leftover), only a dead
 * pid's, and only those older than {@link LEFTOVER_AGE_MS}: a process in
 * another PID namespace (a container sharing the directory) looks dead
 * from here, and nothing that writes them runs that long (CI stops a run at
 * 90 minutes). A pid used again since is taken for alive, and its entries
 * stay. A directory that cannot be read holds none; an entry that cannot be
 * removed stays.
 */
export async function removeDeadLeftovers(
  dir: string,
  pidOf: (name: string) => number | null,
): Promise<void> {
  const now = Date.now();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = pidOf(name);
    if (pid === null || !Number.isSafeInteger(pid) || pid <= 0) continue;
    if (pid === process.pid || alive(pid)) continue;
    const mtime = (await stat(join(dir, name)).catch(() => null))?.mtimeMs;
    if (mtime === undefined || now - mtime < LEFTOVER_AGE_MS) continue;
    await rm(join(dir, name), { recursive: true, force: true }).catch(() => {});
  }
}
