/**
 * Whether the slow boot-path tests (a full PXE boot through dnsmasq in a
 * network namespace, a lab machine over PXE) run in this `deno test`: when
 * `deno task test --config boot-paths` (or any boot path) selected the
 * kernel runs, which the runner's report says, or when
 * OUROBOROS_BOOT_PATHS=1 asks for them by hand. Otherwise they are skipped
 * with that reason, so the default run stays fast.
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { BOOT_PATH_CONFIGS, BOOT_PATHS_GROUP } from "../run/configs.ts";

/** The environment variable that asks for the boot-path tests by hand. */
export const BOOT_PATHS_ENV = "OUROBOROS_BOOT_PATHS";

/** The report's field this reads (core/record.ts's KernelReport). */
interface ReportSelection {
  selection?: { configs?: string[] };
}

/** True if the boot-path tests should run (see the module comment). */
export function bootPathsRequested(env: Record<string, string | undefined> = process.env): boolean {
  if (env[BOOT_PATHS_ENV] === "1") return true;
  const report = env.OUROBOROS_KERNEL_REPORT;
  if (report === undefined) return false;
  try {
    const r = JSON.parse(readFileSync(report, "utf8")) as ReportSelection;
    const names = new Set(BOOT_PATH_CONFIGS.map((c) => c.name));
    return (r.selection?.configs ?? []).some((c) => names.has(c));
  } catch {
    return false;
  }
}

/** Why a boot-path test is skipped when not requested. */
export const NOT_REQUESTED =
  `slow boot path: runs with deno task test --config ${BOOT_PATHS_GROUP} (or ${BOOT_PATHS_ENV}=1)`;

/** The environment variable that asks for the Linux KUnit test (a Linux build: minutes). */
export const LINUX_KUNIT_ENV = "OUROBOROS_LINUX_KUNIT";

/** True if the Linux KUnit test (tests/linux_kunit_test.ts) should run: it builds Linux. */
export function linuxKunitRequested(
  env: Record<string, string | undefined> = process.env,
): boolean {
  return env[LINUX_KUNIT_ENV] === "1";
}

/** Why the Linux KUnit test is skipped when not requested. */
export const LINUX_KUNIT_NOT_REQUESTED =
  `builds Linux (minutes): runs with ${LINUX_KUNIT_ENV}=1 (CI's linux-kunit job)`;
