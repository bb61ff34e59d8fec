import assert from "node:assert/strict";
import { join } from "node:path";
import { build, BuildError } from "../tools/build/build.ts";
import { C_DEPFILE } from "../tools/build/compile.ts";
import { compilerIdentity } from "../tools/build/steps.ts";
import { ROOT } from "../tools/paths.ts";
import { aged, builtKernel, executable, smallKernel, tempDir } from "./support.ts";

Deno.test("build: a second build with nothing changed compiles and links nothing", async () => {
  await builtKernel();
  const again = await build({ root: ROOT });
  assert.deepEqual(again.compiled, []);
  assert.equal(again.linked, false);
});

Deno.test("build: a changed header recompiles what includes it, and only that", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await smallKernel(dir);
    await Deno.writeTextFile(join(dir, "kernel/include/probe_dep.h"), "#define PROBE 1\n");
    await Deno.writeTextFile(
      join(dir, "kernel/probe_dep.c"),
      '#include "probe_dep.h"\nint probe_value(void) { return PROBE; }\n',
    );
    await build({ root: dir });
    await Deno.writeTextFile(join(dir, "kernel/include/probe_dep.h"), "#define PROBE 2\n");
    const r = await build({ root: dir });
    assert.deepEqual(r.compiled, ["kernel/probe_dep.c"]);
    assert.ok(r.linked);
  } finally {
    await cleanup();
  }
});

Deno.test("build: a compiler error names the file and shows the compiler's own output", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await smallKernel(dir);
    await Deno.writeTextFile(
      join(dir, "kernel/broken.c"),
      "int broken(void) { return missing_symbol; }\n",
    );
    const e = await build({ root: dir }).then(() => undefined, (x) => x);
    assert.ok(e instanceof BuildError, String(e));
    assert.equal(e.file, "kernel/broken.c");
    assert.match(e.output, /^kernel\/broken\.c:1:\d+: error: .missing_symbol. undeclared/m);
  } finally {
    await cleanup();
  }
});

Deno.test("build: a changed compiler proper (cc1) or assembler behind the same driver, or a changed CPATH, rebuilds the C sources", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await smallKernel(dir);
    // A driver that stays the same file while the programs it runs change: cc1 and as are
    // files of this test (what runs is the real gcc's), named by -print-prog-name.
    const [cc, cc1, as] = ["cc-driver", "cc1", "as"].map((f) => join(dir, f));
    await executable(
      cc,
      `#!/bin/sh\ncase "$1" in -print-prog-name=cc1) echo "${cc1}";; ` +
        `-print-prog-name=as) echo "${as}";; *) exec gcc "$@";; esac\n`,
    );
    await Deno.writeTextFile(cc1, "cc1 12\n");
    await Deno.writeTextFile(as, "as 2.40\n");
    const first = await build({ root: dir, cc });
    assert.ok(first.compiled.includes("kernel/main.c"), first.compiled.join(", "));
    assert.deepEqual((await build({ root: dir, cc })).compiled, []);
    await Deno.writeTextFile(cc1, "cc1 13.2\n");
    assert.ok((await build({ root: dir, cc })).compiled.includes("kernel/main.c"), "cc1");
    assert.deepEqual((await build({ root: dir, cc })).compiled, []);
    await Deno.remove(as);
    await Deno.writeTextFile(as, "as 2.41.1\n");
    assert.ok((await build({ root: dir, cc })).compiled.includes("kernel/main.c"), "as");
    assert.deepEqual((await build({ root: dir, cc })).compiled, []);
    // CPATH is in the key (the rebuild that follows a key change is shown above). Not set in this
    // process: test files run in parallel in it, and their builds would see it.
    const cpath = { ...Deno.env.toObject(), CPATH: join(dir, "no-such-include") };
    assert.notEqual(await compilerIdentity(cc, cpath), await compilerIdentity(cc), "CPATH");
  } finally {
    await cleanup();
  }
});

Deno.test("build: an assembler put in one of the driver's program directories rebuilds the C sources (the driver said a bare `as`)", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await smallKernel(dir);
    // As Debian's gcc does: `as` is looked for in the program directories -print-search-dirs
    // names, and said bare (run from PATH) when none holds one. What runs is the real gcc's.
    const [cc, progs] = [join(dir, "cc-driver"), join(dir, "progs")];
    await Deno.mkdir(progs);
    await executable(
      cc,
      `#!/bin/sh
case "$1" in -print-search-dirs) echo "programs: =${progs}/";; ` +
        `-print-prog-name=as) if [ -x "${progs}/as" ]; then echo "${progs}/as"; else echo as; fi;; ` +
        `*) exec gcc "$@";; esac
`,
    );
    // The driver counts as aged: its answers are kept in this process, as a later build's.
    await aged(async () => {
      assert.ok((await build({ root: dir, cc })).compiled.includes("kernel/main.c"));
      assert.deepEqual((await build({ root: dir, cc })).compiled, []);
      await Deno.writeTextFile(join(progs, "as"), "as 2.42\n", { mode: 0o755 });
      assert.ok(
        (await build({ root: dir, cc })).compiled.includes("kernel/main.c"),
        "the driver's own `as` did not rebuild",
      );
      assert.deepEqual((await build({ root: dir, cc })).compiled, []);
    });
  } finally {
    await cleanup();
  }
});

Deno.test("build: the C dependency file lists a header found through C_INCLUDE_PATH", async () => {
  // A system directory's header (C_INCLUDE_PATH, -isystem) is an input like any other: left out
  // of the dependency file, an edit of it would rebuild nothing. The compile runs in a child
  // process with the variable set, so no other test's build sees it.
  const [dir, cleanup] = await tempDir();
  try {
    const inc = join(dir, "sysinc");
    await Deno.mkdir(inc);
    await Deno.writeTextFile(join(inc, "answer.h"), "#define ANSWER 42\n");
    await Deno.writeTextFile(join(dir, "main.c"), "#include <answer.h>\nint answer = ANSWER;\n");
    const d = join(dir, "main.o.d");
    const { success, stderr } = await new Deno.Command(Deno.env.get("CC") ?? "gcc", {
      args: [C_DEPFILE, "-MF", d, "-c", "main.c", "-o", "main.o"],
      cwd: dir,
      env: { C_INCLUDE_PATH: inc },
      stdin: "null",
    }).output();
    assert.ok(success, new TextDecoder().decode(stderr));
    assert.match(await Deno.readTextFile(d), /sysinc\/answer\.h/);
  } finally {
    await cleanup();
  }
});

Deno.test("build: a driver is asked its programs where the build runs it, so a relative program directory is the build's", async () => {
  // GCC_EXEC_PREFIX=progs/ (or -B progs/) is relative to where gcc runs: the build's root, not
  // this process's directory. Asked from elsewhere, the driver would name PATH's as instead of
  // the one it runs, and the key would not follow the assembler the compiles use.
  const [dir, cleanup] = await tempDir();
  try {
    await Deno.mkdir(join(dir, "progs"));
    await executable(join(dir, "progs", "as"), "#!/bin/sh\nexit 0\n");
    const cc = join(dir, "cc-relative");
    await executable(
      cc,
      `#!/bin/sh\ncase "$1" in\n` +
        `-print-prog-name=as) if [ -x progs/as ]; then echo progs/as; else echo as; fi;;\n` +
        `-print-prog-name=*) echo "\${1#-print-prog-name=}";;\n` +
        `-print-search-dirs) echo "programs: =progs/";;\n` +
        `*) echo "cc-relative 1";;\nesac\n`,
    );
    assert.notEqual(Deno.cwd(), dir);
    const id = await compilerIdentity(cc, Deno.env.toObject(), dir);
    assert.ok(id.includes(`as ${dir}/progs/as:`), id);
  } finally {
    await cleanup();
  }
});

Deno.test("build: a relative C driver path is the one where the build compiles, for every question", async () => {
  // CC=sub/cc with the build's root elsewhere than this process's directory: the compiles run
  // the root's sub/cc, so its version, its file and its programs make the identity.
  const [dir, cleanup] = await tempDir();
  try {
    await Deno.mkdir(join(dir, "sub"));
    const cc = join(dir, "sub", "cc");
    await executable(
      cc,
      `#!/bin/sh\ncase "$1" in\n-print-prog-name=*) echo "\${1#-print-prog-name=}";;\n` +
        `-print-search-dirs) echo "programs: =/nonexistent/";;\n*) echo "root's cc 1";;\nesac\n`,
    );
    assert.notEqual(Deno.cwd(), dir);
    const id = await compilerIdentity("sub/cc", Deno.env.toObject(), dir);
    assert.ok(id.includes("root's cc 1") && id.includes(`driver ${cc}:`), id);
  } finally {
    await cleanup();
  }
});
