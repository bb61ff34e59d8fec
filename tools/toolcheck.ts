/**
 * Checks that the system tools the toolchain runs are installed. Missing
 * ones are installed with apt-get when that is possible without a password
 * (running as root, or `sudo -n` works); otherwise the exact command is
 * given and the run stops.
 *
 * OUROBOROS_INSTALL=never turns the install off (the command is printed).
 */
import { execa } from "execa";
import { stat } from "node:fs/promises";
import { delimiter, join } from "node:path";
import process from "node:process";

/** A command the toolchain runs, and the Debian package that provides it. */
export interface Tool {
  /** Candidate command names; the first one found is used. */
  commands: string[];
  /** Debian package that installs the first command. */
  debianPackage: string;
  /** Why the toolchain needs it. */
  purpose: string;
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
      `missing ${
        missing.map((t) => t.commands[0]).join(", ")
      }: ${reason}; install with:\n  ${installCommand}`,
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

async function isExecutable(path: string): Promise<boolean> {
  try {
    const s = await stat(path);
    return s.isFile() && (s.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** The real machine. */
export const systemToolEnv: ToolEnv = {
  which: whichOnPath,
  isRoot: () => process.getuid?.() === 0,
  sudoWorks: async () => {
    if (!(await whichOnPath("sudo"))) return false;
    const r = await execa("sudo", ["-n", "true"], { reject: false, stdin: "ignore" });
    return r.exitCode === 0;
  },
  run: async (command) => {
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
};

/** The apt-get command line that installs these packages. */
export function installCommand(packages: string[], sudo: boolean): string {
  const pre = sudo ? "sudo " : "";
  return `${pre}apt-get update && ${pre}apt-get install -y ${packages.join(" ")}`;
}

/** The tools that are not on PATH. */
export async function findMissing(tools: Tool[], env: ToolEnv): Promise<Tool[]> {
  const missing: Tool[] = [];
  for (const t of tools) {
    const found = await Promise.all(t.commands.map((c) => env.which(c)));
    if (!found.some(Boolean)) missing.push(t);
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
      missing.map((t) => `${t.commands[0]}: ${t.purpose}`).join("; ")
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
