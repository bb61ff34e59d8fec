/**
 * A short command run for its output with node:child_process (Deno and Node
 * both have it), for what every run asks even with nothing to build: a
 * tool's `--version`, the compiler's include directory. Loading execa for
 * that costs each process about 0.15 s of CPU time and more of wall time
 * under Deno; execa stays for the commands that need more of it (a build
 * step, a boot path's tools). Failures are described as execa describes
 * them (`Command failed with exit code 1: gcc --version`).
 */
import { execFile } from "node:child_process";

/** What a command did: its standard output (the final newline dropped) and, if it failed, why. */
export interface CommandText {
  failed: boolean;
  stdout: string;
  /** Empty when it did not fail. */
  shortMessage: string;
}

/** `file args...` as a shell would read it back (arguments with special characters quoted). */
function shown(file: string, args: readonly string[]): string {
  return [file, ...args].map((a) =>
    /^[\w./:=@%+,-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`
  )
    .join(" ");
}

/** Run `file args...` (no shell, stdin closed) and collect its output; never rejects. */
export function commandText(
  file: string,
  args: readonly string[],
  options: { cwd?: string } = {},
): Promise<CommandText> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      [...args],
      { encoding: "utf8", cwd: options.cwd },
      (error, stdout) => {
        const out = String(stdout).replace(/\r?\n$/, "");
        if (error === null) {
          resolve({ failed: false, stdout: out, shortMessage: "" });
          return;
        }
        const e = error as NodeJS.ErrnoException & { code?: unknown; signal?: string | null };
        const command = shown(file, args);
        let shortMessage: string;
        if (typeof e.code === "string") {
          shortMessage = `Command failed with ${e.code}: ${command}\n${e.message}`;
        } else if (typeof e.signal === "string" && e.signal !== "") {
          shortMessage = `Command was killed with ${e.signal}: ${command}`;
        } else if (typeof e.code === "number") {
          shortMessage = `Command failed with exit code ${e.code}: ${command}`;
        } else {
          shortMessage = `Command failed: ${command}`;
        }
        resolve({ failed: true, stdout: out, shortMessage });
      },
    );
    child.stdin?.end();
  });
}
