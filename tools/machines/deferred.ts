/**
 * A machine that needs work before it can start (an image to build, a
 * network to set up, a power command to run) and after it is gone (a
 * server to stop, a namespace to delete), while Target.start() must return
 * at once: the preparation runs inside the machine's life, so the runner's
 * deadlines and stop() cover it.
 *
 * A preparation that fails ends the machine with a spawn error naming it:
 * the run is the infrastructure's failure, never the kernel's.
 */
import type { Machine, MachineEnd } from "./target.ts";

/** The stages of a deferred machine. */
export interface DeferredSteps {
  /** Everything before the machine starts. */
  prepare(): Promise<void>;
  /** Start the machine itself (called once `prepare` has resolved, unless stopped). */
  launch(): Machine;
  /**
   * After the machine is gone, whatever happened. Text it returns (a
   * server's log) and its errors are added to the machine's stderr.
   */
  cleanup?(): Promise<string | void>;
  /** The command reported for the run. */
  command: { binary: string; args: string[] };
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A machine that runs `steps` in order; stop() and kill() work in every stage. */
export function deferredMachine(steps: DeferredSteps): Machine {
  let inner: Machine | null = null;
  let cancelled = false;
  const run = async (): Promise<MachineEnd> => {
    try {
      await steps.prepare();
    } catch (e) {
      return {
        exit: {
          kind: "spawn-error",
          code: null,
          message: `preparing the machine failed: ${message(e)}`,
        },
        stderr: "",
      };
    }
    if (cancelled) return { exit: { kind: "none" }, stderr: "stopped before the machine started" };
    inner = steps.launch();
    return await inner.done;
  };
  const done = run().then(async (end) => {
    if (steps.cleanup === undefined) return end;
    try {
      const text = await steps.cleanup();
      return text ? { ...end, stderr: `${end.stderr}\n${text}`.trim() } : end;
    } catch (e) {
      return { ...end, stderr: `${end.stderr}\ncleanup failed: ${message(e)}`.trim() };
    }
  });
  return {
    done,
    get pid() {
      return inner?.pid ?? null;
    },
    command: steps.command,
    kill: () => {
      cancelled = true;
      inner?.kill();
    },
    stop: async (graceMs: number) => {
      cancelled = true;
      await inner?.stop(graceMs);
      await done;
    },
  };
}
