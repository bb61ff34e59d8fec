/**
 * The test command end to end, on kernels made broken on purpose: what a
 * user sees must name the failure, and the command must fail.
 */
import assert from "node:assert/strict";
import { execa } from "execa";
import { join } from "node:path";
import { ROOT } from "../tools/paths.ts";
import { smallKernel, tempDir } from "./support.ts";

/**
 * Run `deno task test`'s script on tests/kernel_test.ts against the kernel
 * tree at `root`. Its `deno test` does not type-check again what `deno task
 * check` and the whole run check: after a change to the toolchain that was
 * seconds of CPU time in each run, and it is not what these tests are about.
 */
function testCommand(root: string) {
  return execa(
    Deno.execPath(),
    ["run", "-A", join(ROOT, "tools/test.ts"), "tests/kernel_test.ts", "--", "--no-check"],
    {
      cwd: ROOT,
      env: { OUROBOROS_ROOT: root, OUROBOROS_BUILD_DIR: join(root, "build"), NO_COLOR: "1" },
      reject: false,
      all: true,
    },
  );
}

Deno.test("e2e: a kernel that does not compile is a failed test named 'kernel: build'", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await smallKernel(dir);
    await Deno.writeTextFile(join(dir, "kernel/broken.c"), "int broken(void) { return nope; }\n");
    const r = await testCommand(dir);
    assert.notEqual(r.exitCode, 0);
    assert.match(r.all, /kernel: build => /);
    assert.match(r.all, /build failure in kernel\/broken\.c/);
    assert.match(r.all, /kernel\/broken\.c:1:\d+: error: .nope. undeclared/);
    assert.match(r.all, /^tests: 0 passed, 1 failed, 0 skipped$/m);
  } finally {
    await cleanup();
  }
});

Deno.test("e2e: a kernel that never prints TAP fails the run, by name", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    // Boots fine, says hello, leaves QEMU with the pass code: without TAP that is no pass.
    await smallKernel(
      dir,
      `#include <layout.h>
static void out(unsigned short port, unsigned char v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
void kmain(void) {
  for (const char *s = "hello, not TAP\\n"; *s; s++) out(0x3f8, *s);
  out(DEBUG_EXIT_PORT, DEBUG_EXIT_PASS);
  for (;;) { }
}
`,
    );
    const r = await testCommand(dir);
    assert.notEqual(r.exitCode, 0);
    assert.match(r.all, /kernel: no-tap => /);
    assert.match(r.all, /hello, not TAP/);
    assert.match(r.all, /^tests: 1 passed, 1 failed, 0 skipped$/m);
  } finally {
    await cleanup();
  }
});
