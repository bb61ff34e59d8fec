/**
 * The Linux side of `deno task bench --vs-linux`: Debian's kernel (the package
 * linux-image-amd64 depends on, fetched with `apt-get download` into a cache
 * outside the repository), bench/linux/bench.c built static with the system
 * gcc and packed as /init with /true into a cpio newc initramfs
 * (tools/core/cpio.ts), booted in the same QEMU as our bench: microvm, 2 GiB,
 * TCG, `-icount shift=0`, `console=ttyS0 quiet transparent_hugepage=never panic=-1`.
 * The program powers the machine off with reboot(RB_POWER_OFF); its serial
 * log is parsed by compare.ts.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeCpio } from "../../core/cpio.ts";
import { buildQemuArgs, DEFAULT_QEMU, qemuEnv } from "../../machines/qemu.ts";
import { LOG_DIR, ROOT } from "../../paths.ts";
import { type LinuxRun, parseLinux } from "../compare.ts";

/** The metapackage whose dependency names the kernel. */
export const METAPACKAGE = "linux-image-amd64";

/** Where downloaded kernels live: $XDG_CACHE_HOME or ~/.cache, then ouroboros/linux. */
export function linuxCacheDir(): string {
  const base = Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/tmp", ".cache");
  return join(base, "ouroboros", "linux");
}

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${text.decode(out.stderr).trim()}`);
  }
  return text.decode(out.stdout);
}

/** The package the metapackage depends on, from `apt-cache depends` output. */
export function kernelPackage(depends: string): string {
  const m = /Depends:\s*(linux-image-[0-9][^\s]*)/.exec(depends);
  if (!m) throw new Error(`${METAPACKAGE} names no linux-image-<version> package`);
  return m[1];
}

/** A Linux kernel ready to boot: its version and its vmlinuz. */
export interface LinuxKernel {
  version: string;
  vmlinuz: string;
}

/** The kernel, downloaded and extracted once into the cache. */
export async function ensureLinuxKernel(): Promise<LinuxKernel> {
  const cache = linuxCacheDir();
  await Deno.mkdir(cache, { recursive: true });
  const pkg = kernelPackage(await run("apt-cache", ["depends", METAPACKAGE]));
  const version = pkg.replace(/^linux-image-/, "");
  const dir = join(cache, version);
  const vmlinuz = join(dir, "boot", `vmlinuz-${version}`);
  if (existsSync(vmlinuz)) return { version, vmlinuz };
  await run("apt-get", ["download", pkg], cache);
  const deb = [...Deno.readDirSync(cache)].map((e) => e.name).find((n) =>
    n.startsWith(`${pkg}_`) && n.endsWith(".deb")
  );
  if (!deb) throw new Error(`apt-get download ${pkg} left no .deb in ${cache}`);
  await run("dpkg-deb", ["-x", join(cache, deb), dir]);
  if (!existsSync(vmlinuz)) throw new Error(`${deb} has no boot/vmlinuz-${version}`);
  return { version, vmlinuz };
}

/** bench/linux's programs built static, packed as /init and /true; returns the archive's path. */
export async function buildLinuxInitramfs(outDir: string, small: boolean): Promise<string> {
  await Deno.mkdir(outDir, { recursive: true });
  const src = join(ROOT, "bench", "linux");
  const init = join(outDir, "init");
  const tru = join(outDir, "true");
  await run("gcc", [
    "-static",
    "-O2",
    "-Wall",
    "-Werror",
    ...(small ? ["-DBENCH_SMALL"] : []),
    "-o",
    init,
    join(src, "bench.c"),
  ]);
  await run("gcc", ["-static", "-nostdlib", "-O2", "-o", tru, join(src, "true.c")]);
  const archive = writeCpio([
    { name: "init", data: await Deno.readFile(init) },
    { name: "true", data: await Deno.readFile(tru) },
  ]);
  const file = join(outDir, "initramfs.cpio");
  await Deno.writeFile(file, archive);
  return file;
}

/** Options of {@link runLinuxBench}. */
export interface LinuxBenchOptions {
  /** Where the program and initramfs go. */
  outDir: string;
  /** Only the smallest region (the pipeline's test). */
  small?: boolean;
  /** The serial log; default build/logs/bench-linux.log. */
  logFile?: string;
  /** Give up after this long; default 20 minutes. */
  timeoutMs?: number;
}

/**
 * Run QEMU (`qemu`, default qemu-system-x86_64) with `args` and the
 * environment the runner gives it ({@link qemuEnv}: glibc's heap in huge
 * pages, as for our kernel's runs, so both sides of a pair run the same
 * QEMU), killed after `timeoutMs`; its output and exit.
 */
export async function runQemu(
  args: string[],
  timeoutMs: number,
  qemu = DEFAULT_QEMU,
): Promise<Deno.CommandOutput> {
  const child = new Deno.Command(qemu, {
    args,
    env: qemuEnv(),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    return await child.output();
  } finally {
    clearTimeout(timer);
  }
}

/** The whole Linux side: kernel, program, boot, parse. */
export async function runLinuxBench(
  o: LinuxBenchOptions,
): Promise<{ kernel: LinuxKernel; run: LinuxRun; log: string }> {
  const kernel = await ensureLinuxKernel();
  const initrd = await buildLinuxInitramfs(o.outDir, o.small ?? false);
  const args = buildQemuArgs({
    kernel: kernel.vmlinuz,
    initrd,
    // 4 KiB pages as ours: Debian's kernel puts THP "always", which would map the large
    // regions with 2 MiB pages and make the pairs measure different work.
    // panic=-1: a kernel panic (no /init, a crash) reboots at once, which -no-reboot turns
    // into QEMU's exit, instead of a hang until the timeout.
    append: "console=ttyS0 quiet transparent_hugepage=never panic=-1",
    memory: "2G",
    accel: "tcg",
    extraArgs: ["-icount", "shift=0"],
  });
  const out = await runQemu(args, o.timeoutMs ?? 20 * 60_000);
  const text = new TextDecoder().decode(out.stdout);
  const log = o.logFile ?? join(LOG_DIR, "bench-linux.log");
  await Deno.mkdir(dirname(log), { recursive: true });
  await Deno.writeTextFile(log, text);
  if (!out.success && !text.includes("# LINUX done")) {
    throw new Error(
      `Linux's QEMU ended with ${out.signal ?? out.code} before '# LINUX done' (log: ${log}): ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
  return { kernel, run: parseLinux(text.split("\n")), log };
}
