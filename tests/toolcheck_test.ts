import assert from "node:assert/strict";
import { execa } from "execa";
import { join } from "node:path";
import {
  ensureTools,
  installCommand,
  MissingToolsError,
  requiredTools,
  type ToolEnv,
} from "../tools/host/toolcheck.ts";
import { ROOT } from "../tools/paths.ts";
import { tempDir } from "./support.ts";

/** A machine where `present` commands exist; records what it was asked to run. */
function fakeEnv(
  present: string[],
  opts: { root?: boolean; sudo?: boolean; allowed?: boolean; installs?: string[] } = {},
) {
  const have = new Set(present);
  const ran: string[][] = [];
  const env: ToolEnv = {
    which: (c) => Promise.resolve(have.has(c) ? `/usr/bin/${c}` : undefined),
    isRoot: () => opts.root ?? false,
    sudoWorks: () => Promise.resolve(opts.sudo ?? false),
    installAllowed: () => opts.allowed ?? true,
    run: (cmd) => {
      ran.push(cmd);
      if (cmd.includes("install")) { for (const c of opts.installs ?? []) have.add(c); }
      return Promise.resolve(0);
    },
  };
  return { env, ran };
}

const all = ["qemu-system-x86_64", "nasm", "gcc", "ld", "addr2line"];
const quiet = () => {};

Deno.test("toolcheck: nothing to do when every tool is there", async () => {
  const { env, ran } = fakeEnv(all);
  await ensureTools(requiredTools(""), env, quiet);
  assert.deepEqual(ran, []);
});

Deno.test("toolcheck: not root, no sudo: the exact command and a one-line reason", async () => {
  const { env, ran } = fakeEnv(["gcc", "ld", "addr2line"]);
  try {
    await ensureTools(requiredTools(""), env, quiet);
    assert.fail("should have thrown");
  } catch (err) {
    assert.ok(err instanceof MissingToolsError);
    assert.equal(
      err.installCommand,
      "sudo apt-get update && sudo apt-get install -y nasm qemu-system-x86",
    );
    assert.match(
      err.message,
      /^missing qemu-system-x86_64, nasm: not root and sudo needs a password;/,
    );
  }
  assert.deepEqual(ran, []);
});

Deno.test("toolcheck: as root, missing tools are installed with apt-get", async () => {
  const { env, ran } = fakeEnv(["gcc", "ld", "addr2line"], {
    root: true,
    installs: ["nasm", "qemu-system-x86_64"],
  });
  await ensureTools(requiredTools(""), env, quiet);
  assert.deepEqual(ran, [
    ["apt-get", "update"],
    ["apt-get", "install", "-y", "--no-install-recommends", "nasm", "qemu-system-x86"],
  ]);
});

Deno.test("toolcheck: with passwordless sudo, apt-get runs under sudo -n", async () => {
  const { env, ran } = fakeEnv(["qemu-system-x86_64", "gcc", "ld", "addr2line"], {
    sudo: true,
    installs: ["nasm"],
  });
  await ensureTools(requiredTools(""), env, quiet);
  assert.deepEqual(ran[0], ["sudo", "-n", "apt-get", "update"]);
});

Deno.test("toolcheck: an install that does not provide the tool is an error", async () => {
  const { env } = fakeEnv(["gcc", "ld", "addr2line", "qemu-system-x86_64"], { root: true });
  await assert.rejects(
    ensureTools(requiredTools(""), env, quiet),
    /nasm: still missing after apt-get install/,
  );
});

Deno.test("toolcheck: a compiler named by CC is the one checked", () => {
  const cc = requiredTools("clang-14").find((t) => t.purpose.includes("compiles"))!;
  assert.deepEqual(cc.commands, ["clang-14"]);
  assert.equal(cc.debianPackage, "clang");
  assert.equal(installCommand(["a", "b"], false), "apt-get update && apt-get install -y a b");
});

/**
 * The real CLI's `command` with an empty PATH (nothing is found) and installing
 * turned off, as for a user without sudo: its exit status and stderr.
 */
async function withoutTools(command: string): Promise<{ exitCode?: number; stderr: string }> {
  const [dir, cleanup] = await tempDir();
  try {
    return await execa(Deno.execPath(), ["run", "-A", join(ROOT, "tools/cli.ts"), command], {
      env: { PATH: dir, OUROBOROS_INSTALL: "never", CC: "" },
      extendEnv: false,
      reject: false,
    });
  } finally {
    await cleanup();
  }
}

Deno.test("toolcheck: the real CLI stops with the command when tools are missing", async () => {
  const r = await withoutTools("doctor");
  assert.equal(r.exitCode, 1);
  assert.match(
    r.stderr,
    /^error: missing qemu-system-x86_64, nasm, gcc, ld, addr2line: installing is turned off/m,
  );
  assert.match(r.stderr, /apt-get install -y binutils gcc nasm qemu-system-x86$/m);
});

Deno.test("toolcheck: an image command stops with the command when its tools are missing", async () => {
  // iso checks grub-mkrescue and xorriso itself, before the build: the same clean error, no stack.
  const r = await withoutTools("iso");
  assert.equal(r.exitCode, 1);
  assert.match(
    r.stderr,
    /^error: missing grub-mkrescue, xorriso, mformat: installing is turned off/m,
  );
  assert.doesNotMatch(r.stderr, /Uncaught/);
});
