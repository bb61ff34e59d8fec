/**
 * The key of a cached clean build (support.ts cachedBuild): a tool changed
 * behind the same name, or an environment that changes what the tools do,
 * must give another cached build, as it gives the build's own steps other
 * keys. Cheap: the keys' inputs are computed, no kernel is built, and the
 * facts are taken as if the files had aged (support.ts aged), so a tool
 * unchanged is not asked again: a change must be seen through kept facts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildToolIds, compilerIdentity } from "../tools/build/steps.ts";
import { aged, cachedBuildInputs, executable, tempDir, uncachedHeaderVars } from "./support.ts";

/**
 * A GCC driver at `<dir>/gcc` that says its version and runs the compiler
 * proper `<dir>/libexec/cc1` and the assembler `<dir>/bin/as`.
 */
async function fakeDriver(dir: string): Promise<string> {
  await Deno.mkdir(join(dir, "libexec"));
  await Deno.mkdir(join(dir, "bin"));
  await executable(join(dir, "libexec", "cc1"), "#!/bin/sh\necho cc1 1\n");
  await executable(join(dir, "bin", "as"), "#!/bin/sh\necho as 1\n");
  const gcc = join(dir, "gcc");
  await executable(
    gcc,
    `#!/bin/sh
case "$1" in
  --version) echo "gcc (Fake) 12.2.0";;
  -print-prog-name=cc1) echo "${join(dir, "libexec", "cc1")}";;
  -print-prog-name=as) echo "${join(dir, "bin", "as")}";;
  *) exit 1;;
esac
`,
  );
  return gcc;
}

/** The inputs of the cached build with `cc`, as JSON (what its key hashes besides the tree). */
async function keyOf(cc: string, env: Record<string, string | undefined>): Promise<string> {
  return JSON.stringify(await cachedBuildInputs({ cc }, env));
}

Deno.test("cached build: its key changes with the compiler proper or the assembler behind the same driver", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await aged(async () => {
      const gcc = await fakeDriver(dir);
      const env = Deno.env.toObject();
      const first = await keyOf(gcc, env);
      assert.equal(await keyOf(gcc, env), first, "the same tools gave another key");
      // Another cc1 (another size: another file identity), the driver unchanged.
      await executable(join(dir, "libexec", "cc1"), "#!/bin/sh\necho cc1 2 patched\n");
      const cc1 = await keyOf(gcc, env);
      assert.notEqual(cc1, first, "cc1 changed, the key did not");
      await executable(join(dir, "bin", "as"), "#!/bin/sh\necho as 2 patched\n");
      assert.notEqual(await keyOf(gcc, env), cc1, "as changed, the key did not");
    });
  } finally {
    await cleanup();
  }
});

Deno.test("cached build: its key changes with the environment that changes what the tools do", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await aged(async () => {
      const gcc = await fakeDriver(dir);
      const env = Deno.env.toObject();
      const base = await keyOf(gcc, env);
      for (
        const v of [
          "CPATH",
          "C_INCLUDE_PATH",
          "COMPILER_PATH",
          "GCC_EXEC_PREFIX",
          "LIBRARY_PATH",
          "NASMENV",
          "LDEMULATION",
        ]
      ) {
        assert.notEqual(await keyOf(gcc, { ...env, [v]: join(dir, "elsewhere") }), base, v);
      }
      // And a variable no tool reads gives the same key.
      assert.equal(await keyOf(gcc, { ...env, OUROBOROS_UNRELATED: "1" }), base);
    });
  } finally {
    await cleanup();
  }
});

Deno.test("cached build: the identities of NASM and ld change with their files, though they say the same version", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await aged(async () => {
      const gcc = await fakeDriver(dir);
      const [nasm, ld] = [join(dir, "nasm"), join(dir, "ld")];
      await executable(nasm, "#!/bin/sh\necho 'NASM version 2.16.01'\n");
      await executable(ld, "#!/bin/sh\necho 'GNU ld (GNU Binutils for Debian) 2.40'\n");
      const env = Deno.env.toObject();
      const first = await buildToolIds(gcc, env, { nasm, ld });
      assert.deepEqual(await buildToolIds(gcc, env, { nasm, ld }), first);
      // Rebuilt binaries: the same version line, another file.
      await executable(nasm, "#!/bin/sh\n# rebuilt\necho 'NASM version 2.16.01'\n");
      const second = await buildToolIds(gcc, env, { nasm, ld });
      assert.notEqual(second.nasm, first.nasm, "NASM changed, its identity did not");
      assert.equal(second.ld, first.ld);
      await executable(ld, "#!/bin/sh\n# rebuilt\necho 'GNU ld (GNU Binutils for Debian) 2.40'\n");
      assert.notEqual((await buildToolIds(gcc, env, { nasm, ld })).ld, first.ld, "ld changed");
    });
  } finally {
    await cleanup();
  }
});

Deno.test("cached build: the C driver's identity changes with its own file (clang: the driver is the compiler), though it says the same version", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await aged(async () => {
      // As clang answers: a bare name for cc1 and as, the same version line after a rebuild.
      const clang = join(dir, "clang");
      const body = (note: string) =>
        `#!/bin/sh
# ${note}
case "$1" in
  --version) echo "Debian clang version 14.0.6";;
  -print-prog-name=*) echo "\${1#-print-prog-name=}";;
  *) exit 1;;
esac
`;
      await executable(clang, body("build 1"));
      const env = Deno.env.toObject();
      const first = await compilerIdentity(clang, env);
      assert.equal(await compilerIdentity(clang, env), first);
      await executable(clang, body("build 2: a patched compiler"));
      assert.notEqual(
        await compilerIdentity(clang, env),
        first,
        "the driver changed, its identity did not",
      );
    });
  } finally {
    await cleanup();
  }
});

Deno.test("cached build: the identity of strip changes with its file, though it says the same version", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await aged(async () => {
      const gcc = await fakeDriver(dir);
      const [nasm, ld, strip] = [join(dir, "nasm"), join(dir, "ld"), join(dir, "strip")];
      await executable(nasm, "#!/bin/sh\necho 'NASM version 2.16.01'\n");
      await executable(ld, "#!/bin/sh\necho 'GNU ld (GNU Binutils for Debian) 2.40'\n");
      await executable(strip, "#!/bin/sh\necho 'GNU strip (GNU Binutils for Debian) 2.40'\n");
      const names = { nasm, ld, strip };
      const env = Deno.env.toObject();
      const first = await buildToolIds(gcc, env, names);
      assert.match(first.strip, /GNU strip/);
      assert.deepEqual(await buildToolIds(gcc, env, names), first);
      await executable(
        strip,
        "#!/bin/sh\n# rebuilt\necho 'GNU strip (GNU Binutils for Debian) 2.40'\n",
      );
      const second = await buildToolIds(gcc, env, names);
      assert.notEqual(second.strip, first.strip, "strip changed, its identity did not");
      assert.equal(second.ld, first.ld);
    });
  } finally {
    await cleanup();
  }
});

Deno.test("cached build: with CPATH or C_INCLUDE_PATH set it is not reused (the headers there are inputs its key does not hold)", () => {
  const env = Deno.env.toObject();
  delete env.CPATH;
  delete env.C_INCLUDE_PATH;
  assert.deepEqual(uncachedHeaderVars(env), []);
  assert.deepEqual(uncachedHeaderVars({ ...env, CPATH: "", C_INCLUDE_PATH: "" }), []);
  assert.deepEqual(uncachedHeaderVars({ ...env, CPATH: "/opt/include" }), ["CPATH"]);
  assert.deepEqual(uncachedHeaderVars({ ...env, C_INCLUDE_PATH: "/opt/include" }), [
    "C_INCLUDE_PATH",
  ]);
});

Deno.test("cached build: a missing strip is an identity, not a failure (a tree without user programs needs none)", async () => {
  const env = Deno.env.toObject();
  const ids = await buildToolIds("gcc", env, {
    nasm: "nasm",
    ld: "ld",
    strip: "ouroboros-no-such-strip",
  });
  assert.match(ids.strip, /ouroboros-no-such-strip/);
  // And it is another identity than a strip that runs: one installed later rebuilds.
  assert.notEqual((await buildToolIds("gcc", env)).strip, ids.strip);
});
