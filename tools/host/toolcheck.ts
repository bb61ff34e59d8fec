/**
 * Checks that the system tools the toolchain runs are installed. Missing
 * ones are installed with apt-get when that is possible without a password
 * (running as root, or `sudo -n` works); otherwise the exact command is
 * given and the run stops.
 *
 * OUROBOROS_INSTALL=never turns the install off (the command is printed).
 */
import { statSync } from "node:fs";
import { delimiter, join } from "node:path";
import process from "node:process";
import {
  type GrubPlatform,
  grubPlatformMarker,
  OVMF_PAIRS,
  PXE_NIC_ROM,
  UNDIONLY_KPXE,
} from "./firmware.ts";

/** A command the toolchain runs (or a file it reads), and the Debian package that provides it. */
export interface Tool {
  /** Candidate command names; the first one found is used. */
  commands: string[];
  /**
   * Candidate files (firmware, GRUB modules): the tool is also present if
   * one of them exists.
   */
  files?: string[];
  /** Debian package that installs the first command (or file). */
  debianPackage: string;
  /** Why the toolchain needs it. */
  purpose: string;
}

/** The name a tool goes by in messages: its first command, else its first file. */
export function toolName(tool: Tool): string {
  return tool.commands[0] ?? tool.files?.[0] ?? tool.debianPackage;
}

/** The tools building and booting the kernel needs. */
export function requiredTools(cc = process.env.CC): Tool[] {
  const compilers = cc ? [cc] : ["gcc", "cc", "clang"];
  const ccPackage = cc?.includes("clang") ? "clang" : "gcc";
  return [
    {
      commands: ["qemu-system-x86_64"],
      debianPackage: "qemu-system-x86",
      purpose: "boots the kernel",
    },
    { commands: ["nasm"], debianPackage: "nasm", purpose: "assembles the boot code" },
    { commands: compilers, debianPackage: ccPackage, purpose: "compiles the kernel" },
    { commands: ["ld"], debianPackage: "binutils", purpose: "links the kernel" },
    { commands: ["addr2line"], debianPackage: "binutils", purpose: "symbolizes crash addresses" },
  ];
}

/**
 * Tools only some commands need, by group: they are checked (and installed)
 * when those commands run, not by every build or test.
 * - `iso`: grub-mkrescue and both GRUB platforms (deno task iso, the ISO boot paths);
 * - `pxe-tree`: grub-mknetdir and GRUB's UEFI platform (the PXE tree's UEFI part);
 * - `undionly`: iPXE for PXE ROMs that are not iPXE (the PXE tree, for labs);
 * - `uefi`: OVMF, UEFI firmware for QEMU;
 * - `pxe-qemu`: iPXE option ROMs for QEMU's NICs (QEMU's PXE boots);
 * - `serve`: dnsmasq and ip (deno task pxe serve, the network-namespace test);
 * - `cpio`: the system cpio, the independent reader the initrd writer is tested against
 *   (tools/core/cpio.ts makes the archive itself; CI installs it with the default packages);
 * - `linux-kunit`: Debian's Linux source and what building it takes (the
 *   opt-in Linux KUnit test, tools/build/linux_kunit.ts);
 * - `browser`: headless Chromium (the HTML report's test looks at the page in it).
 */
export type ToolGroup =
  | "iso"
  | "pxe-tree"
  | "undionly"
  | "uefi"
  | "pxe-qemu"
  | "serve"
  | "cpio"
  | "linux-kunit"
  | "browser";

/** The tools of a group (see {@link ToolGroup}). */
export function extraTools(group: ToolGroup): Tool[] {
  const grub = (platform: GrubPlatform, debianPackage: string): Tool => ({
    commands: [],
    files: [grubPlatformMarker(platform)],
    debianPackage,
    purpose: `GRUB for ${platform}`,
  });
  switch (group) {
    case "iso":
      return [
        {
          commands: ["grub-mkrescue"],
          debianPackage: "grub-common",
          purpose: "builds the hybrid GRUB ISO",
        },
        { commands: ["xorriso"], debianPackage: "xorriso", purpose: "writes the ISO" },
        { commands: ["mformat"], debianPackage: "mtools", purpose: "makes the ISO's EFI image" },
        grub("i386-pc", "grub-pc-bin"),
        grub("x86_64-efi", "grub-efi-amd64-bin"),
      ];
    case "pxe-tree":
      return [
        {
          commands: ["grub-mknetdir"],
          debianPackage: "grub-common",
          purpose: "makes GRUB's UEFI netboot directory",
        },
        grub("x86_64-efi", "grub-efi-amd64-bin"),
      ];
    case "undionly":
      return [{
        commands: [],
        files: [UNDIONLY_KPXE],
        debianPackage: "ipxe",
        purpose: "iPXE for BIOS PXE ROMs that are not iPXE",
      }];
    case "uefi":
      return [{
        commands: [],
        files: OVMF_PAIRS.map((p) => p.code),
        debianPackage: "ovmf",
        purpose: "UEFI firmware for QEMU",
      }];
    case "pxe-qemu":
      return [{
        commands: [],
        files: [PXE_NIC_ROM],
        debianPackage: "ipxe-qemu",
        purpose: "iPXE option ROMs for QEMU's network cards",
      }];
    case "serve":
      return [
        { commands: ["dnsmasq"], debianPackage: "dnsmasq-base", purpose: "DHCP and TFTP server" },
        { commands: ["ip"], debianPackage: "iproute2", purpose: "network namespaces and links" },
      ];
    case "cpio":
      return [{ commands: ["cpio"], debianPackage: "cpio", purpose: "lists initrd archives" }];
    case "linux-kunit":
      return [
        {
          commands: [],
          files: ["/usr/src/linux-source-6.1.tar.xz"],
          debianPackage: "linux-source-6.1",
          purpose: "Linux's source, for the KUnit test",
        },
        { commands: ["make"], debianPackage: "make", purpose: "builds Linux" },
        { commands: ["bc"], debianPackage: "bc", purpose: "builds Linux (timeconst)" },
        { commands: ["flex"], debianPackage: "flex", purpose: "builds Linux's Kconfig" },
        { commands: ["bison"], debianPackage: "bison", purpose: "builds Linux's Kconfig" },
        { commands: ["python3"], debianPackage: "python3", purpose: "runs kunit.py" },
        { commands: ["patch"], debianPackage: "patch", purpose: "makes one KUnit test fail" },
        { commands: ["xz"], debianPackage: "xz-utils", purpose: "unpacks Linux's source" },
        {
          commands: [],
          files: ["/usr/include/libelf.h"],
          debianPackage: "libelf-dev",
          purpose: "builds Linux's objtool",
        },
        {
          commands: [],
          files: ["/usr/include/openssl/ssl.h"],
          debianPackage: "libssl-dev",
          purpose: "builds Linux's signing tools",
        },
      ];
    case "browser":
      return [{
        commands: ["chromium"],
        debianPackage: "chromium",
        purpose: "a real browser for the HTML test report's test",
      }];
  }
}

/** The tools of several groups, each once. */
export function toolsOf(groups: readonly ToolGroup[]): Tool[] {
  const seen = new Set<string>();
  return groups.flatMap(extraTools).filter((t) => {
    const key = `${t.debianPackage} ${toolName(t)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** What the check may ask of the machine (replaceable in tests). */
export interface ToolEnv {
  /** Full path of a command on PATH, or undefined. */
  which(command: string): Promise<string | undefined>;
  /** True when running as root. */
  isRoot(): boolean;
  /** True when `sudo -n true` succeeds (sudo without a password). */
  sudoWorks(): Promise<boolean>;
  /** Run a command with the terminal's output; resolves to its exit code. */
  run(command: string[]): Promise<number>;
  /** Whether installing is allowed at all. */
  installAllowed(): boolean;
  /** True if the file exists (default: asks the file system). */
  exists?(path: string): Promise<boolean>;
}

/** Tools are missing and could not be installed; the message says what to run. */
export class MissingToolsError extends Error {
  constructor(
    readonly missing: Tool[],
    /** The exact command that installs them. */
    readonly installCommand: string,
    reason: string,
  ) {
    super(
      `missing ${missing.map(toolName).join(", ")}: ${reason}; install with:\n  ${installCommand}`,
    );
    this.name = "MissingToolsError";
  }
}

async function whichOnPath(command: string): Promise<string | undefined> {
  if (command.includes("/")) return (await isExecutable(command)) ? command : undefined;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, command);
    if (await isExecutable(p)) return p;
  }
  return undefined;
}

// Synchronously: under Deno, node:fs's promise stat costs several times the call.
function isExecutable(path: string): Promise<boolean> {
  try {
    const s = statSync(path, { throwIfNoEntry: false });
    return Promise.resolve(s !== undefined && s.isFile() && (s.mode & 0o111) !== 0);
  } catch {
    return Promise.resolve(false);
  }
}

/** The real machine. */
export const systemToolEnv: ToolEnv = {
  which: whichOnPath,
  isRoot: () => process.getuid?.() === 0,
  sudoWorks: async () => {
    if (!(await whichOnPath("sudo"))) return false;
    // Loaded when used: most commands never run it.
    const { execa } = await import("execa");
    const r = await execa("sudo", ["-n", "true"], { reject: false, stdin: "ignore" });
    return r.exitCode === 0;
  },
  run: async (command) => {
    // Loaded when used: most commands never run it.
    const { execa } = await import("execa");
    const r = await execa(command[0], command.slice(1), {
      reject: false,
      stdin: "ignore",
      stdout: ["inherit"],
      stderr: ["inherit"],
      env: { DEBIAN_FRONTEND: "noninteractive" },
    });
    return r.exitCode ?? 1;
  },
  installAllowed: () => process.env.OUROBOROS_INSTALL !== "never",
  exists: fileExists,
};

function fileExists(path: string): Promise<boolean> {
  try {
    return Promise.resolve(statSync(path, { throwIfNoEntry: false }) !== undefined);
  } catch {
    return Promise.resolve(false);
  }
}

/** The apt-get command line that installs these packages. */
export function installCommand(packages: string[], sudo: boolean): string {
  const pre = sudo ? "sudo " : "";
  return `${pre}apt-get update && ${pre}apt-get install -y ${packages.join(" ")}`;
}

/** The tools that are not on PATH. */
export async function findMissing(tools: Tool[], env: ToolEnv): Promise<Tool[]> {
  const missing: Tool[] = [];
  const exists = env.exists ?? fileExists;
  for (const t of tools) {
    const found = await Promise.all(t.commands.map((c) => env.which(c)));
    const files = await Promise.all((t.files ?? []).map((f) => exists(f)));
    if (!found.some(Boolean) && !files.some(Boolean)) missing.push(t);
  }
  return missing;
}

/**
 * Make sure every tool is there: install missing ones with apt-get when
 * allowed and possible, else throw MissingToolsError with the command.
 */
export async function ensureTools(
  tools: Tool[] = requiredTools(),
  env: ToolEnv = systemToolEnv,
  log: (line: string) => void = (l) => console.error(l),
): Promise<void> {
  const missing = await findMissing(tools, env);
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((t) => t.debianPackage))].sort();
  const root = env.isRoot();
  const sudo = !root && env.installAllowed() && await env.sudoWorks();
  const command = installCommand(packages, !root);
  if (!env.installAllowed()) {
    throw new MissingToolsError(
      missing,
      command,
      "installing is turned off (OUROBOROS_INSTALL=never)",
    );
  }
  if (!root && !sudo) {
    throw new MissingToolsError(missing, command, "not root and sudo needs a password");
  }
  log(
    `installing ${packages.join(" ")} (${
      missing.map((t) => `${toolName(t)}: ${t.purpose}`).join("; ")
    })`,
  );
  const pre = root ? [] : ["sudo", "-n"];
  for (
    const step of [["apt-get", "update"], [
      "apt-get",
      "install",
      "-y",
      "--no-install-recommends",
      ...packages,
    ]]
  ) {
    const code = await env.run([...pre, ...step]);
    if (code !== 0) {
      throw new MissingToolsError(
        missing,
        command,
        `${step.slice(0, 2).join(" ")} failed with exit code ${code}`,
      );
    }
  }
  const still = await findMissing(tools, env);
  if (still.length) {
    throw new MissingToolsError(still, command, "still missing after apt-get install");
  }
}

/** The queue of group checks: apt-get must not run twice at once in one process. */
let groupQueue: Promise<void> = Promise.resolve();

/**
 * {@link ensureTools} for the tools of `groups`, one call at a time in this
 * process (boot paths prepared in parallel share one apt-get).
 */
export function ensureToolGroups(
  groups: readonly ToolGroup[],
  env: ToolEnv = systemToolEnv,
  log?: (line: string) => void,
): Promise<void> {
  const run = groupQueue.then(() => ensureTools(toolsOf(groups), env, log));
  groupQueue = run.catch(() => {});
  return run;
}

/**
 * Package groups for CI's installs: the default run (which opens the HTML
 * report in Chromium), and everything the boot paths need.
 */
export const PACKAGE_GROUPS: Readonly<Record<string, () => Tool[]>> = {
  default: () => [...requiredTools(), ...toolsOf(["cpio", "browser"])],
  "boot-paths": () => [
    ...requiredTools(),
    ...toolsOf(["iso", "pxe-tree", "undionly", "uefi", "pxe-qemu", "serve", "cpio", "browser"]),
  ],
  "linux-kunit": () => [...requiredTools(), ...toolsOf(["linux-kunit"])],
};

/** The Debian packages of package groups, sorted, each once. */
export function packagesOf(groups: readonly string[]): string[] {
  const tools = groups.flatMap((g) => {
    const of = PACKAGE_GROUPS[g];
    if (of === undefined) {
      throw new Error(`unknown package group '${g}' (${Object.keys(PACKAGE_GROUPS).join(", ")})`);
    }
    return of();
  });
  return [...new Set(tools.map((t) => t.debianPackage))].sort();
}

// `deno run tools/host/toolcheck.ts packages GROUP...`: the packages, one line (ci/install-packages.sh).
if (import.meta.main && process.argv[2] === "packages") {
  console.log(packagesOf(process.argv.slice(3)).join(" "));
}
