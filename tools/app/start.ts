/**
 * `deno task start`: boot the kernel with its serial console on this
 * terminal, and say what QEMU's exit status means.
 */
import { execa } from "execa";
import { DEBUG_EXIT, qemuExitStatus } from "../../linker/layout.ts";
import { configIn, CONFIGS, DEFAULT_CONFIG, type MachineConfig } from "../run/configs.ts";
import { targetFor } from "../run/targets.ts";
import { DEFAULT_QEMU } from "../machines/qemu.ts";
import { BootPathTarget } from "../machines/boot_path.ts";

/** What an exit status of QEMU running our kernel means. */
export function describeExit(status: number | undefined): { ok: boolean; text: string } {
  switch (status) {
    case qemuExitStatus(DEBUG_EXIT.pass):
      return { ok: true, text: "kernel: every selected test passed" };
    case qemuExitStatus(DEBUG_EXIT.fail):
      return { ok: false, text: "kernel: a test failed" };
    case qemuExitStatus(DEBUG_EXIT.panic):
      return { ok: false, text: "kernel: panic or unexpected exception" };
    case 0:
      return {
        ok: false,
        text: "QEMU exited 0: the guest reset (a triple fault under -no-reboot)",
      };
    default:
      return { ok: false, text: `QEMU exited with status ${status}` };
  }
}

/**
 * Boot `elf` with `cmdline` on a named configuration of `table`
 * (run/configs.ts), serial on the terminal; resolves to an exit code.
 */
export async function startInteractive(
  elf: string,
  cmdline: string,
  config = DEFAULT_CONFIG,
  table: readonly MachineConfig[] = CONFIGS,
): Promise<number> {
  const target = targetFor(configIn(table, config));
  console.error(
    `start: ${target.description} (${target.accel.reason}); Ctrl-C stops QEMU`,
  );
  // A boot path first makes its image or tree (machines/boot_path.ts).
  if (target instanceof BootPathTarget) await target.prepare({ kernel: elf, cmdline });
  const args = target.args({ kernel: elf, cmdline });
  const r = await execa(DEFAULT_QEMU, args, { stdio: "inherit", reject: false });
  const { ok, text } = describeExit(r.exitCode);
  console.error(text);
  return ok ? 0 : 1;
}
