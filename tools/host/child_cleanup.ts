/**
 * Child processes that must not outlive this one: when it is ended by
 * SIGTERM, SIGINT or SIGHUP (CI cancelling a job, `timeout`, a parent
 * stopping the run) or exits, they are killed first, so a hung guest does
 * not keep a core busy after its runner is gone (execa does the same for
 * the children it starts). A detached child is its owner's business (the
 * debug command's QEMU) and is not registered here.
 */
import process from "node:process";

const SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP"] as const;
const EXIT_STATUS = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;

const live = new Set<number>();
let installed = false;

function killAll(): void {
  for (const pid of live) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  live.clear();
}

/** The signal ends this process, as it would without a listener, once the children are killed. */
function onSignal(signal: (typeof SIGNALS)[number]): void {
  killAll();
  process.exit(EXIT_STATUS[signal]);
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on("exit", killAll);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  for (const s of SIGNALS) process.off(s, onSignal);
  process.off("exit", killAll);
}

/**
 * Kill `pid` if this process ends while it runs; call the returned function
 * once it has ended. The signal listeners are there only while such a child
 * lives.
 */
export function killWithThisProcess(pid: number): () => void {
  live.add(pid);
  install();
  return () => {
    live.delete(pid);
    if (live.size === 0) uninstall();
  };
}
