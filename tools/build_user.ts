/**
 * The build's user-space half (issue 12): the generated ABI files (error
 * numbers, system calls, the user linker script) next to layout.h. Kept out
 * of build.ts so the kernel build only calls in here.
 */
import { renderKernelErrors } from "../linker/errors.ts";
import type { Layout } from "../linker/layout.ts";
import {
  renderKernelSyscalls,
  renderNasmSyscalls,
  renderUserSyscalls,
} from "../linker/syscalls.ts";
import { renderUserLinkerScript } from "../linker/user_linker_script.ts";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

/** Write a file only if its content differs, so what depends on it is not rebuilt. */
async function writeIfChanged(path: string, content: string): Promise<void> {
  const old = await readFile(path, "utf8").catch(() => null);
  if (old === content) return;
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, content);
}

/** Directory of the user programs' generated headers and linker script, under gen/. */
export function userGenDir(gen: string): string {
  return join(gen, "user");
}

/**
 * Write the generated ABI files into `gen` (the kernel's include directory):
 * errors.h, syscalls.h, syscalls.inc; and into gen/user: syscall.h, user.ld.
 */
export async function writeAbiFiles(gen: string, layout: Layout): Promise<void> {
  await writeIfChanged(join(gen, "errors.h"), renderKernelErrors());
  await writeIfChanged(join(gen, "syscalls.h"), renderKernelSyscalls());
  await writeIfChanged(join(gen, "syscalls.inc"), renderNasmSyscalls());
  const user = userGenDir(gen);
  await writeIfChanged(join(user, "syscall.h"), renderUserSyscalls());
  await writeIfChanged(join(user, "user.ld"), renderUserLinkerScript(layout));
}
