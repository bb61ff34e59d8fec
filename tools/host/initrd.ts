/**
 * Where the initial archive of user programs lies, for every way of booting
 * a kernel: the build writes it next to the kernel ELF (build/initrd.cpio
 * beside build/kernel.elf, tools/build_user.ts); QEMU passes it with
 * -initrd (PVH, and multiboot1's module list), GRUB with `module2`, iPXE
 * with `module`. A kernel without a user/ folder has none, and nothing is
 * passed.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

/** The archive's file name, in the build directory and in ISO and PXE trees. */
export const INITRD_NAME = "initrd.cpio";

/** The initrd built next to `kernel`, or undefined when there is none. */
export function initrdBeside(kernel: string): string | undefined {
  const path = join(dirname(kernel), INITRD_NAME);
  return existsSync(path) ? path : undefined;
}

/**
 * The initrd a boot request asks for: its own, else (for our own kernel only,
 * never for a foreign `image`) the one beside its kernel.
 */
export function requestInitrd(
  request: { kernel: string; initrd?: string; image?: unknown },
): string | undefined {
  if (request.initrd !== undefined || request.image !== undefined) return request.initrd;
  return request.kernel ? initrdBeside(request.kernel) : undefined;
}
