/**
 * The external oracle, live: the kernel stops at page-table checkpoints and
 * QEMU's own view (over QMP) must equal the kernel's dump at each of them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { OracleSession } from "../tools/machines/oracle/session.ts";
import { BUILD_DIR, LOG_DIR } from "../tools/paths.ts";
import { runKernel } from "../tools/run/run.ts";
import { builtKernel } from "./support.ts";

async function oracleRun(append: string) {
  const { elf } = await builtKernel();
  await Deno.mkdir(join(BUILD_DIR, "run"), { recursive: true });
  const oracle = new OracleSession(join(BUILD_DIR, "run"));
  const run = await runKernel({
    kernel: elf,
    append,
    extraArgs: oracle.qemuArgs(),
    logFile: join(LOG_DIR, "oracle.log"),
    silenceTimeoutMs: 20_000,
    onSerialLine: oracle.onSerialLine,
  });
  return { run, checkpoints: await oracle.finish() };
}

Deno.test("oracle: QEMU's view of the page tables equals the kernel's at every checkpoint", async () => {
  const { run, checkpoints } = await oracleRun("oracle ktest.filter=oracle.*");
  assert.equal(run.classification.kind, "pass", run.classification.message);
  assert.deepEqual(checkpoints.map((c) => c.name), [
    "boot_state",
    "mapped",
    "protected",
    "released",
  ]);
  for (const c of checkpoints) assert.deepEqual(c.problems, [], `checkpoint ${c.name}`);
  assert.equal(run.report.counts.skip, 0, "the oracle tests ran, not skipped");
});

Deno.test("oracle: a kernel whose dump disagrees with QEMU fails the comparison", async () => {
  // selftest=oracle-lie prints a dump with one range QEMU does not have.
  const { run, checkpoints } = await oracleRun("oracle selftest=oracle-lie");
  assert.equal(checkpoints.length, 1);
  assert.equal(run.classification.kind, "pass", "the kernel was let go on after the checkpoint");
  assert.match(checkpoints[0].problems.join("\n"), /the kernel's dump has .*; QEMU does not/);
});

Deno.test("oracle: QEMU agrees with the kernel on a sample of the access matrix's combinations", async () => {
  const { run, checkpoints } = await oracleRun("oracle ktest.filter=access.qmp_oracle_sample");
  assert.equal(run.classification.kind, "pass", run.classification.message);
  // Four levels x six bit patterns, each a checkpoint QEMU answered.
  assert.equal(checkpoints.length, 24);
  assert.ok(checkpoints.every((c) => c.name.startsWith("access-")));
  for (const c of checkpoints) assert.deepEqual(c.problems, [], `checkpoint ${c.name}`);
  assert.equal(run.report.counts.skip, 0, "the sample ran, not skipped");
});
