/**
 * `deno task debug`: QEMU halted with a gdb stub, and a gdb command whose
 * breakpoints stop the kernel at the selected test. Checked for real over
 * the gdb remote protocol (no gdb needed), and with gdb itself when it is
 * installed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { execa, type ResultPromise } from "execa";
import { parseElf, symbolValue } from "../tools/core/elf.ts";
import { ROOT } from "../tools/paths.ts";
import { gdbCommand, shellQuote, testSymbol } from "../tools/app/debug.ts";
import { systemToolEnv } from "../tools/host/toolcheck.ts";
import { builtKernel, tempDir } from "./support.ts";

Deno.test("debug: a test's function symbol, and gdb's command line", () => {
  assert.equal(testSymbol("pmm.alloc_one"), "ktest_fn_pmm_alloc_one");
  assert.deepEqual(gdbCommand("k.elf", 1234, ["f", "g"]), [
    "gdb",
    "-q",
    "k.elf",
    "-ex",
    "target remote 127.0.0.1:1234",
    "-ex",
    "hbreak f",
    "-ex",
    "hbreak g",
    "-ex",
    "continue",
  ]);
  // More functions than debug registers: software breakpoints.
  assert.ok(gdbCommand("k", 1, ["a", "b", "c", "d", "e"]).includes("break e"));
  assert.equal(shellQuote("target remote 127.0.0.1:1"), "'target remote 127.0.0.1:1'");
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
  assert.equal(shellQuote("/a/b.elf"), "/a/b.elf");
});

/** Start `deno task debug --print` and wait for the gdb command it prints. */
async function startDebug(filter: string, logDir: string) {
  const child = execa(
    Deno.execPath(),
    ["run", "-A", join(ROOT, "tools/app/debug.ts"), "--filter", filter, "--print"],
    { cwd: ROOT, env: { NO_COLOR: "1", OUROBOROS_LOG_DIR: logDir }, reject: false },
  );
  let err = "";
  const command = await new Promise<string>((resolve, reject) => {
    child.stderr!.on("data", (d: Uint8Array) => {
      err += new TextDecoder().decode(d);
      const m = /run:\n(gdb .*)\n/.exec(err);
      if (m) resolve(m[1]);
    });
    child.then(() => reject(new Error(`debug exited: ${err}`)), reject);
  });
  const port = Number(/target remote 127\.0\.0\.1:(\d+)/.exec(command)![1]);
  return { child, command, port, stderr: () => err };
}

async function stopDebug(child: ResultPromise) {
  child.kill("SIGTERM");
  await child;
}

/** A minimal gdb remote-protocol client: enough to break and read RIP. */
class Rsp {
  readonly #conn: Deno.Conn;
  #buf = "";
  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }
  static async connect(port: number): Promise<Rsp> {
    return new Rsp(await Deno.connect({ hostname: "127.0.0.1", port }));
  }
  async request(data: string): Promise<string> {
    let sum = 0;
    for (const c of new TextEncoder().encode(data)) sum = (sum + c) % 256;
    await this.#conn.write(
      new TextEncoder().encode(`$${data}#${sum.toString(16).padStart(2, "0")}`),
    );
    return await this.#reply();
  }
  async #reply(): Promise<string> {
    const chunk = new Uint8Array(4096);
    for (;;) {
      const m = /\$([^#]*)#[0-9a-f]{2}/.exec(this.#buf);
      if (m) {
        this.#buf = this.#buf.slice(m.index + m[0].length);
        await this.#conn.write(new TextEncoder().encode("+"));
        return m[1];
      }
      const n = await this.#conn.read(chunk);
      if (n === null) throw new Error("gdb stub closed the connection");
      this.#buf += new TextDecoder().decode(chunk.subarray(0, n));
    }
  }
  close() {
    this.#conn.close();
  }
}

/** Little-endian hex (as the stub sends registers) to a number. */
function leHex(hex: string): bigint {
  const bytes = hex.match(/../g)!.reverse().join("");
  return BigInt(`0x${bytes}`);
}

Deno.test("debug (QEMU): halted; a breakpoint from the printed command stops at the test", async () => {
  const [dir, cleanup] = await tempDir();
  const { elf } = await builtKernel();
  const { child, command, port } = await startDebug("ktest.glob_star", dir);
  try {
    assert.match(command, new RegExp(`^gdb -q ${elf} `));
    assert.match(command, / -ex 'hbreak ktest_fn_ktest_glob_star' -ex continue$/);
    const address = symbolValue(parseElf(await Deno.readFile(elf)), "ktest_fn_ktest_glob_star");
    const rsp = await Rsp.connect(port);
    try {
      assert.match(await rsp.request("?"), /^[ST]05/, "halted before the first instruction");
      assert.equal(await rsp.request(`Z1,${address.toString(16)},1`), "OK");
      assert.match(await rsp.request("c"), /^T05|^S05/);
      // All registers: RIP is the 17th, after 16 general-purpose ones of 8 bytes.
      const regs = await rsp.request("g");
      assert.equal(leHex(regs.slice(16 * 16, 17 * 16)), address);
    } finally {
      rsp.close();
    }
  } finally {
    await stopDebug(child);
    await cleanup();
  }
});

// Looked up on PATH, not started: `gdb --version` costs ~0.15 CPU-s (its Python starts), and a
// gdb that is there but cannot run fails the test below rather than skipping it.
const hasGdb = await systemToolEnv.which("gdb") !== undefined;

Deno.test({
  name: "debug (QEMU + gdb): the printed command, run in batch, stops in the test",
  ignore: !hasGdb,
  fn: async () => {
    const [dir, cleanup] = await tempDir();
    const { child, command } = await startDebug("ktest.glob_list", dir);
    try {
      const r = await execa("sh", [
        "-c",
        `${command.replace(/^gdb /, "gdb -batch ")} -ex 'info registers rip' -ex kill`,
      ], { reject: false, timeout: 30_000 });
      assert.match(r.stdout, /rip\s+0x[0-9a-f]+\s+0x[0-9a-f]+ <ktest_fn_ktest_glob_list>/);
      assert.match(r.stdout, /kernel\/tests\/test_ktest\.c/);
    } finally {
      await stopDebug(child);
      await cleanup();
    }
  },
});
