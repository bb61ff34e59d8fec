/**
 * `deno task start`: boot the kernel with its serial console on this
 * terminal, and say what QEMU's exit status means.
 */
import { DEBUG_EXIT, qemuExitStatus } from "../../linker/layout.ts";
import { configIn, CONFIGS, DEFAULT_CONFIG, type MachineConfig } from "../run/configs.ts";
import { targetFor } from "../run/targets.ts";
import { DEFAULT_QEMU, qemuEnv } from "../machines/qemu.ts";
import { BootPathTarget } from "../machines/boot_path.ts";
import { BootImageError } from "../core/boot_image.ts";
import { UsageError } from "../core/usage.ts";
import { cannotBoot, describeForeign, readForeignImage } from "../run/foreign.ts";
import { userPath } from "./options.ts";

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

/** `start --image`: a kernel image that is not ours, with its command line and initrd. */
export interface StartImage {
  image: string;
  /** `--append`; else the words of the command line. */
  append: string | undefined;
  initrd: string | undefined;
}

/** The image of `start --image`, `--append` and `--initrd` options (null without --image). */
export function startImageOf(
  options: { image?: string; append?: string; initrd?: string },
  words: readonly string[],
): StartImage | null {
  if (options.image === undefined) {
    const stray = options.append !== undefined ? "--append" : options.initrd ? "--initrd" : null;
    if (stray !== null) throw new UsageError(`${stray} applies to --image FILE`);
    return null;
  }
  if (options.append !== undefined && words.length > 0) {
    throw new UsageError("give the image's command line as --append or as words, not both");
  }
  return {
    image: userPath(options.image),
    append: options.append ?? words.join(" "),
    initrd: options.initrd === undefined ? undefined : userPath(options.initrd),
  };
}

/**
 * Boot a kernel image that is not ours on a configuration, serial on the
 * terminal: its protocol read from the image (a refusal says why), its end
 * said as QEMU's exit (it need not know isa-debug-exit). Resolves to an
 * exit code: 1 if the image cannot boot there or QEMU failed, else 0.
 */
export async function startImage(
  start: StartImage,
  config = DEFAULT_CONFIG,
  table: readonly MachineConfig[] = CONFIGS,
): Promise<number> {
  const machine = configIn(table, config);
  let boot;
  try {
    boot = await readForeignImage(start.image);
  } catch (e) {
    if (!(e instanceof BootImageError)) throw e;
    console.error(`error: --image ${start.image}: ${e.message}`);
    return 1;
  }
  const image = { path: start.image, append: start.append ?? "", initrd: null, boot };
  const why = cannotBoot(machine, image);
  if (why !== null) {
    console.error(`error: ${why}`);
    return 1;
  }
  const target = targetFor(machine);
  console.error(
    `start: ${describeForeign(image)} on ${target.description} (${target.accel.reason}); ` +
      "Ctrl-C stops QEMU",
  );
  const request = { kernel: start.image, cmdline: image.append, initrd: start.initrd, image: boot };
  // Loaded when used: the npm CLI imports this module for every command.
  const { execa } = await import("execa");
  const r = await execa(DEFAULT_QEMU, target.args(request), {
    stdio: "inherit",
    reject: false,
    env: qemuEnv(),
  });
  const text = r.exitCode === 0
    ? "QEMU exited 0: the guest reset or powered off (or triple-faulted, under -no-reboot)"
    : `QEMU exited with status ${r.exitCode ?? r.signal}`;
  console.error(text);
  return r.exitCode === 0 ? 0 : 1;
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
  // Loaded when used: the npm CLI imports this module for every command.
  const { execa } = await import("execa");
  const r = await execa(DEFAULT_QEMU, args, { stdio: "inherit", reject: false, env: qemuEnv() });
  const { ok, text } = describeExit(r.exitCode);
  console.error(text);
  return ok ? 0 : 1;
}
