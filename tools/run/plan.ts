/**
 * Selecting kernel tests without rebuilding: the kernel's own list
 * (`ktest.list`), shards of the work for a CI matrix, and the
 * `ktest.filter=` values that make a boot run exactly a given set of tests.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { TapReport } from "../core/tap.ts";

/** The SKIP reason the kernel gives every test it lists (kernel/ktest/ktest.c). */
export const LISTED_REASON = "listed";

/** `--shard I/N`: the I-th of N shards, 1-based as written. */
export interface Shard {
  index: number;
  count: number;
}

/** Parse `I/N` (1 ≤ I ≤ N); throws with the reason otherwise. */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (m === null) throw new Error(`--shard takes I/N (e.g. 2/4), not '${text}'`);
  const index = Number(m[1]), count = Number(m[2]);
  if (count < 1 || index < 1 || index > count) {
    throw new Error(`--shard ${text}: I must be between 1 and N`);
  }
  return { index, count };
}

/**
 * The tests of a `ktest.list` boot, `suite.test` in the kernel's order.
 * Throws if the list is not whole (the plans are not met) or a test was not
 * marked as listed (the kernel ran tests instead of listing them).
 */
export function listedTests(report: TapReport): string[] {
  if (!report.planComplete) throw new Error("the kernel's test list is incomplete");
  const out: string[] = [];
  for (const suite of report.suites) {
    for (const t of suite.tests) {
      if (t.skip !== LISTED_REASON) {
        throw new Error(`the kernel ran ${t.fullName} instead of listing it (no ktest.list?)`);
      }
      out.push(t.fullName);
    }
  }
  return out;
}

/**
 * The I-th of N contiguous, balanced parts of `units`: sizes differ by at
 * most one, so no shard is empty when there are at least N units, and the
 * split depends only on the list (stable from run to run and machine to
 * machine). Contiguous parts keep suites together, which keeps filters short.
 */
export function shardOf<T>(units: readonly T[], shard: Shard): T[] {
  const n = units.length, i = shard.index - 1;
  return units.slice(Math.floor((i * n) / shard.count), Math.floor(((i + 1) * n) / shard.count));
}

/**
 * Globs selecting exactly `tests` out of `all` (both `suite.test`): a suite
 * whose every test is wanted becomes `suite.*`, any other test is named.
 */
export function globsFor(tests: readonly string[], all: readonly string[]): string[] {
  const suiteOf = (t: string) => t.slice(0, t.indexOf("."));
  const total = new Map<string, number>();
  for (const t of all) total.set(suiteOf(t), (total.get(suiteOf(t)) ?? 0) + 1);
  const wanted = new Map<string, string[]>();
  for (const t of tests) {
    const s = suiteOf(t);
    if (!wanted.has(s)) wanted.set(s, []);
    wanted.get(s)!.push(t);
  }
  const globs: string[] = [];
  for (const [suite, names] of wanted) {
    if (names.length === total.get(suite)) globs.push(`${suite}.*`);
    else globs.push(...names);
  }
  return globs;
}

/**
 * Comma-joined filter values of at most `budget` characters each, in order:
 * one boot per value. Throws if a single glob is longer than the budget.
 */
export function packFilters(globs: readonly string[], budget: number): string[] {
  const out: string[] = [];
  let current = "";
  for (const g of globs) {
    if (g.length > budget) throw new Error(`filter glob longer than the command line: ${g}`);
    const next = current === "" ? g : `${current},${g}`;
    if (next.length <= budget) {
      current = next;
    } else {
      out.push(current);
      current = g;
    }
  }
  if (current !== "") out.push(current);
  return out;
}

/**
 * The kernel's command-line buffer size, CMDLINE_MAX in
 * `<kernelDir>/include/bootinfo.h` (kernelDir relative to root).
 */
export async function kernelCmdlineMax(root: string, kernelDir = "kernel"): Promise<number> {
  const file = join(kernelDir, "include/bootinfo.h");
  const header = await readFile(join(root, file), "utf8");
  const m = /^#define\s+CMDLINE_MAX\s+(\d+)/m.exec(header);
  if (m === null) throw new Error(`CMDLINE_MAX not found in ${file}`);
  return Number(m[1]);
}
