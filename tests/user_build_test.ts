/**
 * The user programs' build: what it makes (ELF programs in the program area,
 * an initrd the system cpio reads back byte for byte), that it is
 * incremental, that errors name the file, and the C library's formatting
 * run on the host.
 */
import assert from "node:assert/strict";
import { execa } from "execa";
import { cp, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { build, BuildError } from "../tools/build/build.ts";
import { parseElf, PT_LOAD, symbolValue } from "../tools/core/elf.ts";
import { initrdBeside } from "../tools/host/initrd.ts";
import { ROOT } from "../tools/paths.ts";
import { builtKernel, smallKernel, tempDir } from "./support.ts";

Deno.test("user build: each program is an ELF in the program area, RX/R/RW, with no SSE", async () => {
  const built = await builtKernel();
  assert.ok(built.user, "this repository has user programs");
  const names = built.user.programs.map((p) => p.name);
  for (const n of ["bin/hello", "tests/basic", "tests/mmap"]) assert.ok(names.includes(n), n);
  const { layout } = built;
  for (const p of built.user.programs) {
    const image = parseElf(await Deno.readFile(p.elf));
    const loads = image.segments.filter((s) => s.type === PT_LOAD);
    assert.deepEqual(loads.map((s) => s.flags), [5, 4, 6], `${p.name}: text RX, rodata R, data RW`);
    for (const s of loads) {
      assert.ok(s.vaddr >= layout.userProgramBase, p.name);
      assert.ok(s.vaddr + BigInt(s.memsz) <= layout.userProgramEnd, p.name);
    }
    assert.equal(image.entry, symbolValue(image, "_start"), `${p.name}: entry is _start`);
    // The kernel switches general registers only: an SSE instruction would corrupt another process.
    const dis = (await execa("objdump", ["-d", "--no-show-raw-insn", p.elf])).stdout;
    assert.doesNotMatch(dis, /%xmm|%ymm/, `${p.name} uses no vector registers`);
  }
});

Deno.test("user build: the system cpio lists the initrd and extracts the programs byte for byte", async () => {
  const built = await builtKernel();
  assert.equal(initrdBeside(built.elf), built.user!.initrd);
  const [dir, cleanup] = await tempDir();
  try {
    const listed = (await execa("cpio", ["-t", "--quiet"], { inputFile: built.user!.initrd }))
      .stdout.split("\n");
    for (const p of built.user!.programs) assert.ok(listed.includes(p.name), p.name);
    await execa("cpio", ["-i", "-d", "--quiet"], { inputFile: built.user!.initrd, cwd: dir });
    for (const p of built.user!.programs) {
      assert.deepEqual(
        await Deno.readFile(join(dir, p.name)),
        await Deno.readFile(p.packed),
        p.name,
      );
    }
  } finally {
    await cleanup();
  }
});

/** A kernel tree with this repository's user library and one program of its own. */
async function userTree(dir: string, program: string): Promise<void> {
  await smallKernel(dir);
  await mkdir(join(dir, "user/bin"), { recursive: true });
  await cp(join(ROOT, "user/lib"), join(dir, "user/lib"), { recursive: true });
  await cp(join(ROOT, "user/include"), join(dir, "user/include"), { recursive: true });
  await writeFile(join(dir, "user/bin/one.c"), program);
}

const ONE = '#include "ulib.h"\nint main(int argc, char **argv) { (void)argv; return argc; }\n';

Deno.test("user build: incremental; a changed program rebuilds itself and the initrd only", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await userTree(dir, ONE);
    const first = await build({ root: dir });
    assert.deepEqual(first.user!.programs.map((p) => p.name), ["bin/one"]);
    assert.ok(first.compiled.includes("user/lib/printf.c"));
    assert.ok(first.compiled.includes("initrd"));
    const again = await build({ root: dir });
    assert.deepEqual(again.compiled, []);
    await writeFile(join(dir, "user/bin/one.c"), ONE.replace("return argc", "return argc + 1"));
    const third = await build({ root: dir });
    assert.deepEqual(third.compiled.sort(), [
      "initrd",
      "link user/bin/one",
      "strip user/bin/one",
      "user/bin/one.c",
    ]);
  } finally {
    await cleanup();
  }
});

Deno.test("user build: a compiler error in a program names the file", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await userTree(dir, "int main(int argc, char **argv) { return nope; }\n");
    const e = await build({ root: dir }).then(() => undefined, (x) => x);
    assert.ok(e instanceof BuildError, String(e));
    assert.equal(e.file, "user/bin/one.c");
    assert.match(e.output, /.nope. undeclared/);
  } finally {
    await cleanup();
  }
});

Deno.test("user build: a kernel without user/ builds no programs and no initrd", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await smallKernel(dir);
    const r = await build({ root: dir });
    assert.equal(r.user, null);
    assert.equal(initrdBeside(r.elf), undefined);
  } finally {
    await cleanup();
  }
});

Deno.test("user library: snprintf and the string functions, run on the host", async () => {
  const built = await builtKernel();
  const [dir, cleanup] = await tempDir();
  try {
    // Each case: the format call and what it must give (C's own printf agrees on each).
    const cases: [string, string][] = [
      ['"%d|%i|%u", -42, 7, 4000000000U', "-42|7|4000000000"],
      ['"%5d|%-5d|%05d", 42, 42, -42', "   42|42   |-0042"],
      ['"%x|%X|%o|%lx", 255, 255, 8, 0xdeadbeefcafeUL', "ff|FF|10|deadbeefcafe"],
      [
        '"%lld|%llu", -9223372036854775807LL - 1, 18446744073709551615ULL',
        "-9223372036854775808|18446744073709551615",
      ],
      ['"%hhd|%hd|%zu", 300, 70000, (size_t)12', "44|4464|12"],
      ['"%s|%6s|%-6s|%c", "ab", "ab", "ab", 65', "ab|    ab|ab    |A"],
      ['"%p", (void *)0x1234', "0x0000000000001234"],
      ['"100%%"', "100%"],
    ];
    const checks = cases.map(([call, want], i) =>
      `  n = snprintf(buf, sizeof(buf), ${call});\n` +
      `  if (strcmp(buf, ${JSON.stringify(want)}) != 0 || n != ${want.length}) ` +
      `{ report(${i}, buf); bad++; }`
    );
    const src = `#include "ulib.h"
long write(int fd, const void *buf, unsigned long n);
static void report(int i, const char *got) {
  char line[200];
  int n = snprintf(line, sizeof(line), "case %d gave '%s'\\n", i, got);
  write(2, line, n);
}
int main(int argc, char **argv) {
  (void)argc; (void)argv;
  char buf[128];
  int n, bad = 0;
${checks.join("\n")}
  n = snprintf(buf, 4, "%s", "truncated");
  if (n != 9 || strcmp(buf, "tru") != 0) { report(100, buf); bad++; }
  memmove(buf + 1, buf, 3);
  if (memcmp(buf, "ttru", 4) != 0) { report(101, buf); bad++; }
  if (strncmp("abc", "abd", 2) != 0 || strchr("abc", 'c') == 0 || strnlen("abc", 2) != 2) bad++;
  return bad;
}
`;
    await writeFile(join(dir, "t.c"), src);
    const gen = join(ROOT, "build", "gen", "user");
    const r = await execa("gcc", [
      "-fno-builtin",
      "-Wall",
      "-Werror",
      "-Wno-format",
      `-I${gen}`,
      `-I${join(ROOT, "user/include")}`,
      "-o",
      join(dir, "t"),
      join(dir, "t.c"),
      join(ROOT, "user/lib/printf.c"),
      join(ROOT, "user/lib/string.c"),
    ], { reject: false, all: true });
    assert.equal(r.exitCode, 0, String(r.all));
    const run = await execa(join(dir, "t"), { reject: false, all: true });
    assert.equal(run.exitCode, 0, String(run.all));
    assert.ok(built.user);
  } finally {
    await cleanup();
  }
});
