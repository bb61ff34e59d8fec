/**
 * The facts the build remembers about its inputs (tools/build/input_facts.ts):
 * a change to a source or a tool is seen, and rebuilds, even when the fact
 * was kept. The clock is moved on (setFactClock) so that files these tests
 * have just written count as aged: their facts are kept, and it is the kept
 * fact that must not hide the change.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { build } from "../tools/build/build.ts";
import {
  FACTS_FORMAT,
  factsFile,
  factsPartPid,
  fileHash,
  fileIdentity,
  loadFacts,
  programName,
  saveFacts,
  sha256Hex,
  toolFactsFile,
} from "../tools/build/input_facts.ts";
import { toolIdentity } from "../tools/build/steps.ts";
import { LEFTOVER_AGE_MS } from "../tools/host/leftovers.ts";
import type { Answer, Question } from "./fixtures/next_process.ts";
import { aged, executable, smallKernel, tempDir } from "./support.ts";

/**
 * Rewrite `path` with `text` (same size as before) and set its modification
 * time back: only the change time tells. The rewrite is done again until the
 * change time moved on (timestamps are coarse): facts are kept only of files
 * older than RACY_MS, so a real change comes at least a tick after the fact.
 */
async function rewriteKeepingTimes(path: string, text: string): Promise<void> {
  const info = await Deno.stat(path);
  const id = fileIdentity(path);
  assert.equal(new TextEncoder().encode(text).length, info.size, "same size");
  for (let i = 0; i < 300; i++) {
    await Deno.writeTextFile(path, text);
    await Deno.utime(path, info.atime!, info.mtime!);
    const now = await Deno.stat(path);
    assert.equal(now.mtime!.getTime(), info.mtime!.getTime());
    assert.equal(now.size, info.size);
    if (fileIdentity(path) !== id) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail("the change time never moved on");
}

/**
 * Write `path` (`first`, which also reads it once), then rewrite it
 * (`rewrite`, its times put back) until the rewrite leaves the file's
 * identity as it was: a change within one timestamp tick, the case only the
 * racy rule covers. Fails after 200 tries.
 */
async function withinOneTick(
  path: string,
  first: () => Promise<void>,
  rewrite: () => Promise<void>,
): Promise<void> {
  for (let i = 0; i < 200; i++) {
    await first();
    const before = await Deno.stat(path);
    const id = fileIdentity(path);
    await rewrite();
    await Deno.utime(path, before.atime!, before.mtime!);
    if (fileIdentity(path) === id) return;
  }
  assert.fail(`never rewrote ${path} within one timestamp tick`);
}

Deno.test("input facts: a kept file hash is not used once the file changed (same size and mtime)", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const f = join(dir, "a.h");
    await Deno.writeTextFile(f, "#define A 1\n");
    await aged(async () => {
      assert.equal(await fileHash(f), await sha256Hex("#define A 1\n"));
      await rewriteKeepingTimes(f, "#define A 2\n");
      assert.equal(await fileHash(f), await sha256Hex("#define A 2\n"));
      await Deno.remove(f);
      assert.equal(await fileHash(f), null);
    });
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: a file changed within the timestamp's tick is hashed again", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const f = join(dir, "b.h");
    // The real clock: the file is younger than RACY_MS, so no fact of it may be kept. Tried
    // until the rewrite leaves the file's identity as it was (within one tick), the case only
    // that rule covers.
    await withinOneTick(
      f,
      async () => {
        await Deno.writeTextFile(f, "#define B 1\n");
        assert.equal(await fileHash(f), await sha256Hex("#define B 1\n"));
      },
      () => Deno.writeTextFile(f, "#define B 2\n"),
    );
    assert.equal(await fileHash(f), await sha256Hex("#define B 2\n"));
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: kept facts are read back from the build directory", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const f = join(dir, "c.h");
    await Deno.writeTextFile(f, "c\n");
    // A fact for the file's present identity, with a value no read would give: if it is
    // returned, the kept fact was used (and the file not read).
    const id = fileIdentity(f);
    await Deno.writeTextFile(
      factsFile(dir),
      JSON.stringify({ format: FACTS_FORMAT, hashes: { [f]: { id, value: "kept" } } }),
    );
    loadFacts(dir);
    assert.equal(await fileHash(f), "kept");
    await Deno.writeTextFile(f, "c2\n");
    assert.equal(await fileHash(f), await sha256Hex("c2\n"));
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: a changed tool is asked again, and what it says rebuilds", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await smallKernel(dir);
    const cc = join(dir, "cc-wrapper");
    const wrapper = (v: string) =>
      `#!/bin/sh\nif [ "$1" = --version ]; then echo "wrapper ${v}"; exit 0; fi\nexec gcc "$@"\n`;
    await executable(cc, wrapper("1"));
    await aged(async () => {
      assert.equal(await toolIdentity(cc), `${cc}: wrapper 1`);
      const first = await build({ root: dir, cc });
      assert.ok(first.compiled.includes("kernel/main.c"));
      const again = await build({ root: dir, cc });
      assert.deepEqual(again.compiled, []);
      // Same size, same modification time: only the change time tells.
      await rewriteKeepingTimes(cc, wrapper("2"));
      assert.equal(await toolIdentity(cc), `${cc}: wrapper 2`);
      const r = await build({ root: dir, cc });
      assert.ok(r.compiled.includes("kernel/main.c"), r.compiled.join(", "));
    });
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: a tool asked twice at once runs once, and says the same to both", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const tool = join(dir, "slow-tool");
    const count = join(dir, "runs");
    await executable(tool, `#!/bin/sh\necho run >> "${count}"\nsleep 0.2\necho "slow tool 1"\n`);
    await aged(async () => {
      const [a, b] = await Promise.all([toolIdentity(tool), toolIdentity(tool)]);
      assert.equal(a, `${tool}: slow tool 1`);
      assert.equal(b, a);
      assert.equal((await Deno.readTextFile(count)).trim().split("\n").length, 1);
    });
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: a tool that cannot run fails the build's question, saying why", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const tool = join(dir, "broken-tool");
    await executable(tool, "#!/bin/sh\nexit 3\n");
    await assert.rejects(
      toolIdentity(tool),
      (e: Error) => e.message.includes(`Command failed with exit code 3: ${tool} --version`),
    );
    await assert.rejects(
      toolIdentity(join(dir, "no-such-tool")),
      (e: Error) =>
        /Command failed with ENOENT: .*no-such-tool --version\nspawn .*ENOENT/.test(e.message),
    );
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: a changed source rebuilds though its size and mtime are the same", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await smallKernel(dir);
    await Deno.writeTextFile(join(dir, "kernel/include/probe.h"), "#define PROBE 1\n");
    await Deno.writeTextFile(
      join(dir, "kernel/probe.c"),
      '#include "probe.h"\nint probe_value(void) { return PROBE; }\n',
    );
    await aged(async () => {
      await build({ root: dir });
      assert.deepEqual((await build({ root: dir })).compiled, []);
      await rewriteKeepingTimes(join(dir, "kernel/include/probe.h"), "#define PROBE 2\n");
      const r = await build({ root: dir });
      assert.deepEqual(r.compiled, ["kernel/probe.c"]);
      assert.ok(r.linked);
      await rewriteKeepingTimes(
        join(dir, "kernel/probe.c"),
        '#include "probe.h"\nint probe_value(void) { return -PROBE;}\n',
      );
      const s = await build({ root: dir });
      assert.deepEqual(s.compiled, ["kernel/probe.c"]);
    });
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: a tool name that leads to another file is asked again", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const script = (v: string) => `#!/bin/sh\necho "tool ${v}"\n`;
    for (const v of ["1", "2"]) {
      await Deno.mkdir(join(dir, v));
      await executable(join(dir, v, "tool"), script(v));
    }
    const link = join(dir, "tool");
    await Deno.symlink(join(dir, "1", "tool"), link);
    await aged(async () => {
      assert.equal(await toolIdentity(link), `${link}: tool 1`);
      assert.equal(await toolIdentity(link), `${link}: tool 1`);
      await Deno.remove(link);
      await Deno.symlink(join(dir, "2", "tool"), link);
      assert.equal(await toolIdentity(link), `${link}: tool 2`);
    });
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: a tool changed within the timestamp's tick is asked again", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const tool = join(dir, "tool");
    const script = (v: string) => `#!/bin/sh\necho "tool ${v}"\n`;
    // The real clock, as for files: a tool younger than RACY_MS is asked every time.
    await withinOneTick(
      tool,
      async () => {
        await executable(tool, script("1"));
        assert.equal(await toolIdentity(tool), `${tool}: tool 1`);
      },
      () => Deno.writeTextFile(tool, script("2")),
    );
    assert.equal(await toolIdentity(tool), `${tool}: tool 2`);
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: a build directory keeps no launcher script's facts (its compiler may change)", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await smallKernel(dir);
    // A launcher that stays the same file while the compiler it runs changes (ccache, a shim):
    // what the compiler says must be asked again by the next process, so none is kept.
    const cc = join(dir, "cc-launcher");
    await executable(cc, '#!/bin/sh\nexec gcc "$@"\n');
    await aged(() => build({ root: dir, cc }));
    const kept = JSON.parse(await Deno.readTextFile(factsFile(join(dir, "build"))));
    assert.equal(kept.format, FACTS_FORMAT);
    assert.ok(Object.keys(kept.hashes).length > 0, "no file facts kept");
    assert.deepEqual(Object.keys(kept).sort(), ["format", "hashes"]);
    assert.doesNotMatch(JSON.stringify(kept), /cc-launcher/);
    const tools = JSON.parse(await Deno.readTextFile(toolFactsFile(join(dir, "build"))));
    assert.equal(tools.format, FACTS_FORMAT);
    assert.doesNotMatch(JSON.stringify(tools), /cc-launcher/);
  } finally {
    await cleanup();
  }
});

/**
 * The next build's processes, asked one after another: one process of their
 * own (tests/fixtures/next_process.ts) answers each question with a fresh
 * instance of input_facts.ts, whose state (all a process keeps about facts:
 * the module imports no other of ours) is then as new as a new process's,
 * and its environment as the test process's with the question's variables
 * set. The tests change files only between answers, as between processes.
 * Started by the first question (a run whose filter leaves none of these
 * tests starts nothing), unref'd between answers so it keeps no test
 * waiting, and ended by {@link close} (the file's last test).
 */
/** A next process's answer that is not an error. */
type Said = Exclude<Answer, { error: string }>;

/** The child of {@link NextProcesses} and its pipes. */
interface NextChild {
  child: Deno.ChildProcess;
  input: WritableStreamDefaultWriter<Uint8Array>;
  output: ReadableStreamDefaultReader<string>;
}

class NextProcesses {
  #proc: NextChild | null = null;
  #pending = "";
  /** The question asked last: each waits for the one before (answers come in order). */
  #last: Promise<unknown> = Promise.resolve();

  /** True once the child was started (and until {@link close}). */
  get started(): boolean {
    return this.#proc !== null;
  }

  /**
   * What the next build's process does with the tools' facts kept in `out`
   * (facts taken as if 10 s later, so files just written count as aged):
   * load them, ask `tool`'s version through input_facts.ts with `env` set,
   * keep the facts again; true if the tool had to be asked.
   */
  async asked(out: string, tool: string, env: Record<string, string> = {}): Promise<boolean> {
    return (await this.#queue({ out, tool, env })).said === "asked";
  }

  /**
   * What the next build's process asks of the compiler driver `tool`: what it
   * runs as `prog` (input_facts.ts programName), and whether it had to ask.
   */
  async program(out: string, tool: string, prog: string): Promise<[boolean, string]> {
    const answer = await this.#queue({ out, tool, env: {}, prog });
    return [answer.said === "asked", answer.name ?? ""];
  }

  #queue(question: Question): Promise<Said> {
    const answer = this.#last.catch(() => {}).then(() => this.#ask(question));
    this.#last = answer;
    return answer;
  }

  /**
   * End the child, if started (its input closed: it ends by itself), and
   * wait for it: its exit status, or null if it was never started.
   */
  async close(): Promise<Deno.CommandStatus | null> {
    await this.#last.catch(() => {});
    const proc = this.#proc;
    if (proc === null) return null;
    this.#proc = null;
    this.#pending = "";
    proc.child.ref();
    await proc.input.close();
    await proc.output.cancel();
    return await proc.child.status;
  }

  /** The child, started on first use. */
  #start(): NextChild {
    if (this.#proc !== null) return this.#proc;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--no-config",
        new URL("fixtures/next_process.ts", import.meta.url).pathname,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#proc = {
      child,
      input: child.stdin.getWriter(),
      output: child.stdout.pipeThrough(new TextDecoderStream()).getReader(),
    };
    return this.#proc;
  }

  async #ask(question: Question): Promise<Said> {
    const proc = this.#start();
    // Waited for while it answers (an unref'd child's pipes keep no test waiting).
    proc.child.ref();
    try {
      return await this.#answer(proc, question);
    } finally {
      proc.child.unref();
    }
  }

  async #answer(proc: NextChild, question: Question): Promise<Said> {
    await proc.input.write(new TextEncoder().encode(JSON.stringify(question) + "\n"));
    while (!this.#pending.includes("\n")) {
      const { done, value } = await proc.output.read();
      if (done) assert.fail("the next process ended (its error is above)");
      this.#pending += value;
    }
    const nl = this.#pending.indexOf("\n");
    const answer = JSON.parse(this.#pending.slice(0, nl)) as Answer;
    this.#pending = this.#pending.slice(nl + 1);
    if ("error" in answer) assert.fail(answer.error);
    return answer;
  }
}

const next = new NextProcesses();

/**
 * The specifiers a module's source imports or re-exports: static ones
 * (`import type` too, over several lines), side-effect ones (`import "x";`),
 * dynamic ones (the argument as written, its quotes removed), in either quote.
 */
function importSpecifiers(source: string): string[] {
  const quoted = (re: RegExp) => [...source.matchAll(re)].map((m) => m[1]);
  return [
    ...quoted(/^\s*(?:import|export)\b[^;"'`]*?\bfrom\s*["']([^"']+)["']/gm),
    ...quoted(/^\s*import\s*["']([^"']+)["']/gm),
    ...quoted(/\bimport\s*\(([^)]*)\)/g).map((a) => a.trim().replace(/^(["'`])(.*)\1$/s, "$2")),
  ];
}

/** What a module imports besides node:'s modules. */
function importsOfOurs(source: string): string[] {
  return importSpecifiers(source).filter((s) => !s.startsWith("node:"));
}

Deno.test("input facts: the module imports no other of ours, so a fresh instance stands for a new process", async () => {
  // NextProcesses relies on it: state kept in another module of ours would live on between its
  // answers, and a test could pass that a new process would fail.
  const source = await Deno.readTextFile(new URL("../tools/build/input_facts.ts", import.meta.url));
  assert.ok(importSpecifiers(source).length > 0, "no import found: the pattern no longer reads it");
  assert.deepEqual(importsOfOurs(source), []);
  // The guard sees each form of import, in either quote, added to a copy of the source.
  const forms = [
    'import "../x.ts";',
    "import '../x.ts';",
    "import { y } from '../x.ts';",
    'import type { T } from "../x.ts";',
    "import {\n  a,\n  b,\n} from '../x.ts';",
    'export * from "../x.ts";',
    "const m = await import('../x.ts');",
  ];
  for (const line of forms) {
    assert.deepEqual(importsOfOurs(`${source}\n${line}\n`), ["../x.ts"], line);
  }
  assert.deepEqual(importsOfOurs(`${source}\nawait import(url);\n`), ["url"], "import(url)");
  assert.deepEqual(importsOfOurs("import { a } from 'node:fs';\nimport \"node:path\";"), []);
});

/** A binary (a copy of `true`) at `path`, executable. */
async function binaryTool(path: string): Promise<void> {
  await Deno.copyFile("/bin/true", path);
  await Deno.chmod(path, 0o755);
}

Deno.test("input facts: a tool binary's facts serve the next process, until the binary changes", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    // Named as a compiler is: only a binary of the tool's own name is kept.
    const tool = join(dir, "x86_64-linux-gnu-gcc-12");
    await binaryTool(tool);
    assert.equal(await next.asked(dir, tool), true);
    assert.equal(await next.asked(dir, tool), false, "the kept fact was not used");
    // Touched (a newer modification time): asked again, then kept again.
    const info = await Deno.stat(tool);
    await Deno.utime(tool, info.atime!, new Date(info.mtime!.getTime() + 1000));
    assert.equal(await next.asked(dir, tool), true, "a touched binary was not asked");
    assert.equal(await next.asked(dir, tool), false);
    // Replaced by another file with the same contents, size and modification time.
    const before = await Deno.stat(tool);
    await binaryTool(join(dir, "new-tool"));
    await Deno.utime(join(dir, "new-tool"), before.atime!, before.mtime!);
    await Deno.rename(join(dir, "new-tool"), tool);
    assert.equal(await next.asked(dir, tool), true, "a replaced binary was not asked");
    // Its times set back after a change: the change time tells (set again until it moved on:
    // timestamps are coarse, and the fact was kept as if the file had aged).
    const id = fileIdentity(tool);
    for (let i = 0; i < 40 && fileIdentity(tool) === id; i++) {
      await new Promise((r) => setTimeout(r, 100));
      await Deno.utime(tool, before.atime!, before.mtime!);
    }
    assert.notEqual(fileIdentity(tool), id);
    assert.equal(await next.asked(dir, tool), true, "a changed binary was not asked");
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: each tool a build runs serves the next process as its own binary (gcc, nasm, ld, strip)", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    // The names a build calls its tools by, as Debian installs them (a target prefix).
    for (
      const name of [
        "x86_64-linux-gnu-gcc-12",
        "nasm",
        "x86_64-linux-gnu-ld.bfd",
        "x86_64-linux-gnu-strip",
      ]
    ) {
      const tool = join(dir, name);
      await binaryTool(tool);
      assert.equal(await next.asked(dir, tool), true, name);
      assert.equal(await next.asked(dir, tool), false, `${name}: the kept fact was not used`);
    }
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: a launcher's facts never serve the next process", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    // A script (a shim, a wrapper) and a binary whose real name is a launcher's.
    const script = join(dir, "cc-wrapper");
    await executable(script, '#!/bin/sh\nexec gcc "$@"\n');
    await binaryTool(join(dir, "ccache"));
    const link = join(dir, "gcc");
    await Deno.symlink(join(dir, "ccache"), link);
    // A script installed under the tool's own name (a cross-compiler's wrapper): not a binary.
    const named = join(dir, "x86_64-linux-gnu-gcc-12");
    await executable(named, '#!/bin/sh\nexec gcc "$@"\n');
    for (const tool of [script, link, named]) {
      assert.equal(await next.asked(dir, tool), true);
      assert.equal(await next.asked(dir, tool), true, `${tool}'s fact was kept`);
    }
  } finally {
    await cleanup();
  }
});

/** What {@link launcherLike} builds its binaries' usage text from: replaced in their copies. */
const USAGE = "Usage: placeholder".padEnd(80, "_");

/**
 * Binaries at `paths` built from one C program whose .rodata holds a usage
 * text, as a launcher's does: in each copy, that text replaced by `usages[i]`
 * (the C compiled once: the copies differ only in these bytes).
 */
async function launcherLike(dir: string, paths: string[], usages: string[]): Promise<void> {
  const src = join(dir, "launcher.c");
  const bin = join(dir, "launcher");
  await Deno.writeTextFile(
    src,
    `#include <stdio.h>\nstatic const char usage[] = "${USAGE}";\n` +
      "int main(int argc, char **argv) { (void)argv; if (argc > 1) puts(usage); return 0; }\n",
  );
  const r = await new Deno.Command("gcc", { args: ["-O1", "-o", bin, src], stderr: "piped" })
    .output();
  assert.ok(r.success, new TextDecoder().decode(r.stderr));
  const data = await Deno.readFile(bin);
  const at = new TextDecoder("latin1").decode(data).indexOf(USAGE);
  assert.ok(at > 0, "the usage text is not in the binary");
  for (const [i, path] of paths.entries()) {
    const copy = data.slice();
    const text = usages[i].padEnd(USAGE.length, "\0");
    assert.equal(text.length, USAGE.length, usages[i]);
    copy.set(new TextEncoder().encode(text), at);
    await Deno.writeFile(path, copy, { mode: 0o755 });
  }
}

Deno.test("input facts: a launcher binary copied under the tool's own name (ccache as gcc) is asked every process", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    // ccache, sccache, distcc installed as `gcc` (a copy or a hard link): the own-name rule
    // keeps it, its strings tell it. A binary that differs only by its usage text is kept.
    const cases: [string, string, boolean][] = [
      ["ccache", "Usage: ccache [options] compiler [compiler options]", true],
      ["sccache", "Usage: sccache [OPTIONS] <--dist-auth|--show-stats>", true],
      ["distcc", "distcc[%d] (dcc_build_somewhere) Warning: failed", true],
      ["plain", "Usage: gcc [options] file...", false],
    ];
    const tools = cases.map(([name]) => join(dir, name, "gcc"));
    for (const [name] of cases) await Deno.mkdir(join(dir, name));
    await launcherLike(dir, tools, cases.map(([, usage]) => usage));
    for (const [i, [name, , launcher]] of cases.entries()) {
      assert.equal(await next.asked(dir, tools[i]), true);
      assert.equal(
        await next.asked(dir, tools[i]),
        launcher,
        launcher ? `${name} as gcc: its fact was kept` : `${name}: its fact was not kept`,
      );
    }
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: a tool's kept fact is not used once another file of its name on PATH, or the driver's environment, changed", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    // The one a launcher would run next: the second match on PATH.
    for (const d of ["a", "b"]) {
      await Deno.mkdir(join(dir, d));
      await binaryTool(join(dir, d, "gcc"));
    }
    const env = { PATH: `${join(dir, "a")}:${join(dir, "b")}:${Deno.env.get("PATH")}` };
    assert.equal(await next.asked(dir, "gcc", env), true);
    assert.equal(await next.asked(dir, "gcc", env), false, "the kept fact was not used");
    const info = await Deno.stat(join(dir, "b", "gcc"));
    await Deno.utime(join(dir, "b", "gcc"), info.atime!, new Date(info.mtime!.getTime() + 1000));
    assert.equal(await next.asked(dir, "gcc", env), true, "PATH's second tool changed");
    assert.equal(await next.asked(dir, "gcc", env), false);
    const moved = { ...env, GCC_EXEC_PREFIX: join(dir, "gcc-") };
    assert.equal(await next.asked(dir, "gcc", moved), true, "GCC_EXEC_PREFIX changed");
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: a driver's bare program name serves the next process until the program appears in the driver's own directories", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    // A gcc binary (kept: its own name, ELF) that looks for its programs as gcc does: in the
    // directories its -print-search-dirs names, in order; said bare when none holds it.
    const [a, b] = [join(dir, "progs-a"), join(dir, "progs-b")];
    for (const d of [a, b, join(dir, "bin")]) await Deno.mkdir(d);
    const src = join(dir, "driver.c");
    const gcc = join(dir, "bin", "gcc");
    await Deno.writeTextFile(
      src,
      `#include <stdio.h>\n#include <string.h>\n#include <sys/stat.h>\n#include <unistd.h>\n` +
        `static const char *dirs[] = { "${a}/", "${b}/" };\n` +
        "int main(int argc, char **argv) {\n" +
        "  if (argc < 2) return 1;\n" +
        '  if (!strcmp(argv[1], "-print-search-dirs")) {\n' +
        '    printf("install: %s\\nprograms: =%s:%s\\nlibraries: =/lib/\\n", dirs[0], dirs[0], dirs[1]);\n' +
        "    return 0;\n  }\n" +
        '  if (strncmp(argv[1], "-print-prog-name=", 17)) return 1;\n' +
        "  for (int i = 0; i < 2; i++) {\n" +
        "    char p[4096];\n" +
        '    snprintf(p, sizeof p, "%s%s", dirs[i], argv[1] + 17);\n' +
        // As gcc's access_check: executable, and not a directory.
        "    struct stat st;\n" +
        "    if (!access(p, X_OK) && !stat(p, &st) && !S_ISDIR(st.st_mode)) { puts(p); return 0; }\n" +
        "  }\n" +
        "  puts(argv[1] + 17);\n  return 0;\n}\n",
    );
    const r = await new Deno.Command("gcc", { args: ["-O1", "-o", gcc, src], stderr: "piped" })
      .output();
    assert.ok(r.success, new TextDecoder().decode(r.stderr));
    assert.deepEqual(await next.program(dir, gcc, "as"), [true, "as"]);
    assert.deepEqual(await next.program(dir, gcc, "as"), [false, "as"], "not kept");
    // Not a program: a file without execute permission, a directory.
    await Deno.writeTextFile(join(b, "as"), "");
    await Deno.mkdir(join(a, "as"));
    assert.deepEqual(await next.program(dir, gcc, "as"), [false, "as"], "not a program");
    await Deno.chmod(join(b, "as"), 0o755);
    assert.deepEqual(await next.program(dir, gcc, "as"), [true, join(b, "as")], "appeared");
    assert.deepEqual(await next.program(dir, gcc, "as"), [false, join(b, "as")], "not kept");
    // One in a directory searched before the one it was found in.
    await Deno.remove(join(a, "as"));
    await binaryTool(join(a, "as"));
    assert.deepEqual(await next.program(dir, gcc, "as"), [true, join(a, "as")], "shadowed");
    assert.deepEqual(await next.program(dir, gcc, "as"), [false, join(a, "as")], "not kept");
    // Gone again: the driver looks further.
    await Deno.remove(join(a, "as"));
    assert.deepEqual(await next.program(dir, gcc, "as"), [true, join(b, "as")], "removed");
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: the kept fact of a tool that is gone is dropped when facts are kept again", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const [gone, stays] = [join(dir, "gone-tool", "nasm"), join(dir, "other-tool", "nasm")];
    await Deno.mkdir(join(dir, "gone-tool"));
    await Deno.mkdir(join(dir, "other-tool"));
    await binaryTool(gone);
    await binaryTool(stays);
    assert.equal(await next.asked(dir, gone), true);
    assert.match(await Deno.readTextFile(toolFactsFile(dir)), /gone-tool/);
    await Deno.remove(gone);
    assert.equal(await next.asked(dir, stays), true);
    const kept = await Deno.readTextFile(toolFactsFile(dir));
    assert.match(kept, /other-tool/);
    assert.doesNotMatch(kept, /gone-tool/);
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: a binary that is not the tool's own (a shim, mise, a launcher of another name) is asked every process", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    // mise's shims are symlinks to the mise binary, which picks the compiler from ./mise.toml;
    // a compiled shim may read its choice from any file: what the compiler says may change
    // while the binary stays the same file.
    await Deno.mkdir(join(dir, "bin"));
    for (const shim of ["mise", "gcc-shim", "cc-select"]) {
      await binaryTool(join(dir, shim));
      await Deno.remove(join(dir, "bin", "gcc")).catch(() => {});
      await Deno.symlink(join(dir, shim), join(dir, "bin", "gcc"));
      const env = { PATH: `${join(dir, "bin")}:${Deno.env.get("PATH")}` };
      assert.equal(await next.asked(dir, "gcc", env), true);
      assert.equal(await next.asked(dir, "gcc", env), true, `${shim}'s fact was kept`);
    }
    // The tool's own name (a target prefix, a version suffix) is kept: gcc, ld, nasm as Debian
    // installs them.
    for (
      const [tool, real] of [
        ["gcc", "x86_64-linux-gnu-gcc-12"],
        ["ld", "x86_64-linux-gnu-ld.bfd"],
        ["ld", "ld.gold"],
        ["nasm", "nasm"],
        ["cc", "gcc-13.2.0"],
      ]
    ) {
      const d = join(dir, `own-${real}`);
      await Deno.mkdir(d);
      await binaryTool(join(d, real));
      if (tool !== real) await Deno.symlink(join(d, real), join(d, tool));
      const env = { PATH: `${d}:${Deno.env.get("PATH")}` };
      assert.equal(await next.asked(dir, tool, env), true);
      assert.equal(
        await next.asked(dir, tool, env),
        false,
        `${real} as ${tool} was not kept`,
      );
    }
    // Not the tool's own name: ld's binary as gcc, a prefix that is no target's.
    for (const [tool, real] of [["gcc", "ld"], ["gcc", "ccache-gcc"], ["nasm", "yasm"]]) {
      const d = join(dir, `other-${real}-${tool}`);
      await Deno.mkdir(d);
      await binaryTool(join(d, real));
      await Deno.symlink(join(d, real), join(d, tool));
      const env = { PATH: `${d}:${Deno.env.get("PATH")}` };
      assert.equal(await next.asked(dir, tool, env), true);
      assert.equal(await next.asked(dir, tool, env), true, `${real} as ${tool} was kept`);
    }
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: a PATH entry that cannot be looked at (a symlink loop, a name too long) holds no match, as for execvp", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    for (const d of ["a", "b"]) await Deno.mkdir(join(dir, d));
    await binaryTool(join(dir, "a", "gcc"));
    // After the one that runs: a gcc that loops (ELOOP), a directory whose name is too long.
    await Deno.symlink(join(dir, "b", "gcc"), join(dir, "b", "gcc"));
    const long = join(dir, "x".repeat(5000));
    const env = { PATH: `${join(dir, "a")}:${join(dir, "b")}:${long}:${Deno.env.get("PATH")}` };
    assert.equal(await next.asked(dir, "gcc", env), true);
    assert.equal(await next.asked(dir, "gcc", env), false, "the kept fact was not used");
    // The loop replaced by a binary: another file of the tool's name on PATH.
    await Deno.remove(join(dir, "b", "gcc"));
    await binaryTool(join(dir, "b", "gcc"));
    assert.equal(await next.asked(dir, "gcc", env), true);
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: a kept tool fact whose file cannot be looked at is dropped, and the facts are still kept", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await Deno.symlink(join(dir, "loop"), join(dir, "loop"));
    const bad = {
      loops: join(dir, "loop"),
      nul: join(dir, "a\0b"),
      long: join(dir, "x".repeat(5000)),
    };
    const tools = Object.fromEntries(
      Object.entries(bad).map((
        [k, file],
      ) => [`${k}\0--version`, { id: JSON.stringify({ file }), value: k }]),
    );
    await Deno.writeTextFile(toolFactsFile(dir), JSON.stringify({ format: FACTS_FORMAT, tools }));
    const tool = join(dir, "nasm");
    await binaryTool(tool);
    assert.equal(await next.asked(dir, tool), true);
    const kept = JSON.parse(await Deno.readTextFile(toolFactsFile(dir)));
    assert.deepEqual(Object.keys(kept.tools), [`${tool}\0--version`]);
    assert.equal(await next.asked(dir, tool), false, "the facts were not kept");
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: a facts file that cannot be put in place leaves no partial file behind", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    // A directory where the facts file goes: the rename of the written file fails.
    await Deno.mkdir(join(factsFile(dir), "in-the-way"), { recursive: true });
    await fileHash(join(dir, "no-such-file"));
    await assert.rejects(saveFacts(dir, [dir]), /EISDIR|ENOTEMPTY|EEXIST|directory/i);
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, [".input-facts.json"]);
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: a build removes the partial facts files of killed builds (dead pid, old enough), and only those", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await smallKernel(dir);
    const out = join(dir, "build");
    await Deno.mkdir(out);
    // A pid that has ended: a process that ran and was waited for.
    const gone = new Deno.Command("true").spawn();
    await gone.status;
    const dead = gone.pid;
    // Named as writeFacts names them.
    const part = (file: string, pid: number) => `${file}.${pid}-${crypto.randomUUID()}.part`;
    const old = new Date(Date.now() - LEFTOVER_AGE_MS - 60_000);
    const removed = [part(".input-facts.json", dead), part(".tool-facts.json", dead)];
    const kept = [
      part(".input-facts.json", Deno.pid), // a live build's
      `.input-facts.json.${dead}.part`, // not a facts part's name
      `kernel.elf.${dead}-${crypto.randomUUID()}.part`,
    ];
    for (const name of [...removed, ...kept]) {
      await Deno.writeTextFile(join(out, name), "{");
      await Deno.utime(join(out, name), old, old);
    }
    // A dead build's, but recent: perhaps a live build's in another PID namespace.
    const recent = part(".tool-facts.json", dead);
    await Deno.writeTextFile(join(out, recent), "{");
    assert.equal(factsPartPid(removed[0]), dead);
    await build({ root: dir });
    const names: string[] = [];
    for await (const e of Deno.readDir(out)) names.push(e.name);
    for (const name of removed) assert.ok(!names.includes(name), `${name} was left`);
    for (const name of [...kept, recent]) assert.ok(names.includes(name), `${name} was removed`);
  } finally {
    await cleanup();
  }
});

// Last of the file: tests run in the order they are declared.
Deno.test("input facts: the next processes' child, if started, ends cleanly once its input closes", async () => {
  const started = next.started;
  const status = await next.close();
  if (!started) assert.equal(status, null);
  else assert.equal(status?.code, 0, "the next process failed (its error is above)");
});

Deno.test("input facts: a driver that names no program directories (-print-search-dirs fails, or prints no programs: line) is asked every process", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    // A gcc binary (kept: its own name, ELF) whose -print-search-dirs does what the file
    // `search` says: fail, print no programs: line, or name one directory.
    await Deno.mkdir(join(dir, "bin"));
    const [src, gcc, mode] = [join(dir, "driver.c"), join(dir, "bin", "gcc"), join(dir, "search")];
    await Deno.writeTextFile(
      src,
      `#include <stdio.h>\n#include <string.h>\n` +
        "int main(int argc, char **argv) {\n" +
        '  char m[16] = "";\n' +
        `  FILE *f = fopen("${mode}", "r");\n` +
        "  if (f) { fgets(m, sizeof m, f); fclose(f); }\n" +
        "  if (argc < 2) return 1;\n" +
        '  if (!strcmp(argv[1], "-print-search-dirs")) {\n' +
        '    if (!strncmp(m, "fail", 4)) return 1;\n' +
        '    if (!strncmp(m, "none", 4)) { puts("install: /nowhere/"); return 0; }\n' +
        `    puts("programs: =${dir}/progs/");\n    return 0;\n  }\n` +
        '  if (strncmp(argv[1], "-print-prog-name=", 17)) return 1;\n' +
        "  puts(argv[1] + 17);\n  return 0;\n}\n",
    );
    const r = await new Deno.Command("gcc", { args: ["-O1", "-o", gcc, src], stderr: "piped" })
      .output();
    assert.ok(r.success, new TextDecoder().decode(r.stderr));
    for (const m of ["fail", "none"]) {
      await Deno.writeTextFile(mode, m);
      assert.deepEqual(await next.program(dir, gcc, "as"), [true, "as"], m);
      assert.deepEqual(await next.program(dir, gcc, "as"), [true, "as"], `${m}: kept`);
    }
    // With its directories named, the answer serves the next process (the driver unchanged).
    await Deno.writeTextFile(mode, "ok");
    assert.deepEqual(await next.program(dir, gcc, "as"), [true, "as"]);
    assert.deepEqual(await next.program(dir, gcc, "as"), [false, "as"], "not kept");
  } finally {
    await cleanup();
  }
});

Deno.test("input facts: a driver's relative program directory is taken from where it compiles, and -print-search-dirs is asked once for cc1 and as", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const driver = join(dir, "gcc");
    await executable(driver, "#!/bin/sh\nexit 1\n");
    const runs: string[] = [];
    const run = (args: string[]) => {
      runs.push(args[0]);
      const arg = args[0];
      if (arg === "-print-search-dirs") {
        return Promise.resolve({ failed: false, stdout: "programs: =progs/\n" });
      }
      const name = arg.slice("-print-prog-name=".length);
      const inDir = join(dir, "progs", name);
      let found = false;
      try {
        found = Deno.statSync(inDir).isFile;
      } catch {
        // Not there: said bare.
      }
      return Promise.resolve({ failed: false, stdout: found ? `progs/${name}\n` : `${name}\n` });
    };
    await aged(async () => {
      const names = await Promise.all([
        programName(driver, "cc1", run, dir),
        programName(driver, "as", run, dir),
      ]);
      assert.deepEqual(names, ["cc1", "as"]);
      assert.equal(runs.filter((a) => a === "-print-search-dirs").length, 1, runs.join(" "));
      // An assembler appears in progs/ under the directory the driver compiles in (not this
      // process's): asked again, and named from there.
      await Deno.mkdir(join(dir, "progs"));
      await executable(join(dir, "progs", "as"), "#!/bin/sh\n");
      assert.equal(await programName(driver, "as", run, dir), `${dir}/progs/as`);
    });
  } finally {
    await cleanup();
  }
});
