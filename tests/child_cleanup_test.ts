/**
 * A runner ended by a signal takes its children with it: a process that
 * registered a child (as QEMU's are) and is sent SIGTERM kills the child
 * and ends with the signal's status.
 */
import assert from "node:assert/strict";
import process from "node:process";
import { join } from "node:path";
import { ROOT } from "../tools/paths.ts";
import { tempDir } from "./support.ts";

/** True once `pid` is gone (a killed orphan is reaped by init soon after). */
async function gone(pid: number, waitMs: number): Promise<boolean> {
  const end = Date.now() + waitMs;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("child cleanup: SIGTERM to the parent kills the child it registered, exit 143", async () => {
  const [dir, cleanup] = await tempDir();
  let childPid = 0;
  try {
    const script = join(dir, "parent.ts");
    await Deno.writeTextFile(
      script,
      `import { spawn } from "node:child_process";
import { killWithThisProcess } from ${JSON.stringify(join(ROOT, "tools/host/child_cleanup.ts"))};
const child = spawn("sleep", ["60"], { stdio: "ignore" });
killWithThisProcess(child.pid!);
console.log(child.pid);
await new Promise(() => {});
`,
    );
    const parent = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-check", script],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = parent.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    childPid = Number(out.trim());
    assert.ok(childPid > 0, `the parent printed its child's pid: ${JSON.stringify(out)}`);
    assert.equal(await gone(childPid, 0), false, "the child runs");
    parent.kill("SIGTERM");
    const status = await parent.status;
    await reader.cancel();
    assert.equal(status.code, 143);
    assert.ok(await gone(childPid, 5000), "the child was killed with its parent");
  } finally {
    if (childPid > 0 && !await gone(childPid, 0)) process.kill(childPid, "SIGKILL");
    await cleanup();
  }
});
