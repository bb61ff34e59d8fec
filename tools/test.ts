/**
 * `deno task test`: checks the system tools, then runs every test (the
 * toolchain's Deno tests and the kernel's in-kernel tests, which appear as
 * Deno test steps) with `deno test`, and ends with one line:
 * `tests: N passed, N failed, N skipped`, counted from the JUnit report.
 *
 * Arguments are passed on to `deno test` (e.g. `--filter kernel/`).
 */
import { join } from "node:path";
import { REPORT_DIR, ROOT } from "./paths.ts";
import { ensureTools, MissingToolsError } from "./toolcheck.ts";

/** Counts of leaf test cases. */
export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

interface Case {
  name: string;
  classname: string;
  failure?: string;
  skipped: boolean;
}

const STEP_FAILED = /^\d+ test steps? failed/;

/**
 * Count a Deno JUnit report. Deno lists a test with steps as a test case of
 * its own next to one case per step ("parent > step"): such a parent is only
 * a container and is counted only if it failed for a reason of its own.
 */
export function countJunit(xml: string): Counts {
  const cases: Case[] = [];
  const re =
    /<testcase\s+name="([^"]*)"\s+classname="([^"]*)"[^>]*?(?:\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const body = m[3] ?? "";
    const failure = /<failure\s+message="([^"]*)"/.exec(body)?.[1] ??
      (/<(failure|error)\b/.test(body) ? "" : undefined);
    cases.push({ name: m[1], classname: m[2], failure, skipped: /<skipped\b/.test(body) });
  }
  const counts: Counts = { passed: 0, failed: 0, skipped: 0 };
  for (const c of cases) {
    const isParent = cases.some((o) =>
      o.classname === c.classname && o.name.startsWith(c.name + " &gt; ")
    );
    if (isParent && (c.failure === undefined || STEP_FAILED.test(c.failure))) continue;
    if (c.failure !== undefined) counts.failed++;
    else if (c.skipped) counts.skipped++;
    else counts.passed++;
  }
  return counts;
}

/** The closing line. */
export function summaryLine(c: Counts): string {
  return `tests: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`;
}

async function main(args: string[]): Promise<number> {
  try {
    await ensureTools();
  } catch (e) {
    if (!(e instanceof MissingToolsError)) throw e;
    console.error(`error: ${e.message}`);
    console.log(summaryLine({ passed: 0, failed: 1, skipped: 0 }));
    return 1;
  }
  await Deno.mkdir(REPORT_DIR, { recursive: true });
  const junit = join(REPORT_DIR, "deno-test.xml");
  await Deno.remove(junit).catch(() => {});
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--parallel", `--junit-path=${junit}`, ...args],
    cwd: ROOT,
    stdin: "null",
  }).spawn();
  const { code } = await child.status;
  let xml: string;
  try {
    xml = await Deno.readTextFile(junit);
  } catch {
    console.error(`error: deno test exited with ${code} and wrote no report`);
    console.log(summaryLine({ passed: 0, failed: 1, skipped: 0 }));
    return code || 1;
  }
  const counts = countJunit(xml);
  console.log(summaryLine(counts));
  // A run that counted a failure fails, even if deno test said otherwise.
  return code !== 0 ? code : counts.failed > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
