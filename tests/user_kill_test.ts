/**
 * A user test program killed in the middle of its TAP: the kernel reports a
 * failure naming the kill reason, and the runner puts the program's own
 * source line at the faulting rip. Made to happen for real: bin/crash is
 * packed into an initrd of its own as tests/crash-midtap, which prints a plan
 * and one result, then executes ud2.
 */
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeCpio } from "../tools/core/cpio.ts";
import { LOG_DIR, ROOT } from "../tools/paths.ts";
import { runKernel } from "../tools/run/run.ts";
import { symbolizeUserKills } from "../tools/host/symbolize.ts";
import { builtKernel, tempDir } from "./support.ts";

Deno.test("user tests: a program killed mid-TAP fails by name, its rip in its own source", async () => {
  const built = await builtKernel();
  const crash = join(built.elf, "..", "user", "bin", "crash.elf");
  const [dir, cleanup] = await tempDir();
  try {
    const initrd = join(dir, "initrd.cpio");
    await writeFile(
      initrd,
      writeCpio([{ name: "tests/crash-midtap", data: await readFile(crash) }]),
    );
    const r = await runKernel({
      kernel: built.elf,
      append: "ktest.filter=user_crash-midtap.*",
      extraArgs: ["-initrd", initrd],
      logFile: join(LOG_DIR, "user-kill.log"),
    });
    assert.equal(r.classification.kind, "assertion-failure", r.classification.message);
    assert.match(r.classification.message, /user_crash-midtap/);
    const suite = r.report.suites.find((s) => s.name === "user_crash-midtap");
    assert.ok(suite, "the suite user_crash-midtap is reported");
    assert.equal(suite.tests[0]?.ok, true, "the result before the crash counts");
    const killed = suite.tests.find((t) => !t.ok);
    assert.ok(killed, "a failed result stands for the kill");
    const message = killed.diagnostic?.message ?? "";
    assert.match(message, /killed: #UD \(invalid opcode\) at rip 0x[0-9a-f]+/);
    await symbolizeUserKills([{ name: suite.name, tests: [killed] }], () => crash, { root: ROOT });
    assert.match(killed.diagnostic?.at ?? "", /midtap \(user\/bin\/crash\.c:\d+\)/);
  } finally {
    await cleanup();
  }
});
