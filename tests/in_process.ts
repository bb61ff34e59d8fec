/**
 * A command run in the test's own process: what it prints, captured. For
 * tests that check what a command decides (its exit status, its messages)
 * without starting a process for each case; each kind of behaviour is still
 * checked once through the real command's process by the tests that use it.
 * Each test module runs in an isolate of its own, so the console swapped
 * here is this module's only.
 */
import process from "node:process";

/** What a command run in this process printed, and its exit status. */
export interface Captured {
  exitCode: number;
  /** console.log lines and writes to process.stdout (the runner's console), in order. */
  stdout: string;
  /** console.error lines. */
  stderr: string;
}

/** Run `command` (resolving to an exit status) with its output captured. */
export async function captured(command: () => Promise<number>): Promise<Captured> {
  const stdout: string[] = [], stderr: string[] = [];
  const { log, error } = console;
  const write = process.stdout.write;
  const line = (to: string[]) => (...a: unknown[]) => void to.push(a.map(String).join(" ") + "\n");
  console.log = line(stdout);
  console.error = line(stderr);
  process.stdout.write = ((text: string | Uint8Array) => {
    stdout.push(typeof text === "string" ? text : new TextDecoder().decode(text));
    return true;
  }) as typeof process.stdout.write;
  try {
    const exitCode = await command();
    return { exitCode, stdout: stdout.join(""), stderr: stderr.join("") };
  } finally {
    console.log = log;
    console.error = error;
    process.stdout.write = write;
  }
}
