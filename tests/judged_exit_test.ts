/**
 * run/run.ts's judgedExit: which exit a run is judged by. Our kernel's
 * QEMU exit status counts (isa-debug-exit); a foreign kernel's does not (a
 * reset, a power-off or a triple fault all exit 0 under -no-reboot): it is
 * judged by its TAP alone, except when QEMU itself failed or someone else
 * killed it.
 */
import assert from "node:assert/strict";
import { judgedExit } from "../tools/run/run.ts";
import type { ExitInfo } from "../tools/core/classify.ts";

const exited = (status: number): ExitInfo => ({ kind: "exited", status });
const how = { exitless: true, reportsExit: true, stoppedAtEnd: false, serialBytes: 100 };

Deno.test("judgedExit: ours keeps QEMU's status; a target without one has none", () => {
  assert.deepEqual(
    judgedExit({ exit: exited(0), stderr: "" }, { ...how, exitless: false }),
    exited(0),
  );
  assert.deepEqual(
    judgedExit({ exit: exited(0), stderr: "" }, { ...how, reportsExit: false }),
    { kind: "none" },
  );
});

Deno.test("judgedExit: a foreign kernel's reset, power-off or the runner's stop: TAP alone", () => {
  assert.deepEqual(judgedExit({ exit: exited(0), stderr: "" }, how), { kind: "none" });
  assert.deepEqual(judgedExit({ exit: exited(33), stderr: "" }, how), { kind: "none" });
  const stopped = { exit: exited(0), stderr: "qemu: terminating on signal 15 from pid 1" };
  assert.deepEqual(judgedExit(stopped, { ...how, stoppedAtEnd: true }), { kind: "none" });
  const killed: ExitInfo = { kind: "signaled", signal: "SIGKILL" };
  assert.deepEqual(judgedExit({ exit: killed, stderr: "" }, { ...how, stoppedAtEnd: true }), {
    kind: "none",
  });
});

Deno.test("judgedExit: kept for a foreign kernel when QEMU failed or was killed by another", () => {
  const spawn: ExitInfo = { kind: "spawn-error", code: "ENOENT", message: "no qemu" };
  assert.deepEqual(judgedExit({ exit: spawn, stderr: "" }, how), spawn);
  const failed = { exit: exited(1), stderr: "qemu: could not load kernel 'x'" };
  assert.deepEqual(judgedExit(failed, { ...how, serialBytes: 0 }), exited(1));
  const term = { exit: exited(0), stderr: "qemu: terminating on signal 15 from pid 9" };
  assert.deepEqual(judgedExit(term, how), exited(0));
  const killed: ExitInfo = { kind: "signaled", signal: "SIGKILL" };
  assert.deepEqual(judgedExit({ exit: killed, stderr: "" }, how), killed);
});
