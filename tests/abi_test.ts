/**
 * The generated ABI: error numbers, system calls and the user linker script,
 * checked by compiling, disassembling and linking the generated files with
 * the real tools (not by reading the generators' own strings back).
 */
import assert from "node:assert/strict";
import { execa } from "execa";
import { join } from "node:path";
import { checkErrors, ERRORS, renderKernelErrors } from "../linker/errors.ts";
import { deriveLayout } from "../linker/layout.ts";
import {
  checkSyscalls,
  renderKernelSyscalls,
  renderNasmSyscalls,
  renderUserSyscalls,
  RESERVED_SYSCALLS,
  SYSCALL_CONSTANTS,
  SYSCALL_TABLE_SIZE,
  SYSCALLS,
} from "../linker/syscalls.ts";
import { renderUserLinkerScript } from "../linker/user_linker_script.ts";
import { parseElf, PT_LOAD, symbolValue } from "../tools/core/elf.ts";
import { ROOT } from "../tools/paths.ts";
import { tempDir } from "./support.ts";

const layout = deriveLayout();

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const [dir, cleanup] = await tempDir();
  try {
    await fn(dir);
  } finally {
    await cleanup();
  }
}

Deno.test("abi: the error numbers the kernel used before the table keep their values", () => {
  // Compiled kernels and tests relied on these numbers: the table must not move them.
  const before = {
    INVAL: 1,
    NOSPC: 2,
    NOENT: 3,
    RANGE: 4,
    NOMEM: 5,
    DOUBLE: 6,
    EXIST: 7,
    ALIGN: 8,
    CANON: 9,
    SELFMAP: 10,
    HUGE: 11,
    NOTMAPPED: 12,
  };
  for (const [name, nr] of Object.entries(before)) {
    assert.equal(ERRORS.find((e) => e.name === name)?.nr, nr, name);
  }
  checkErrors();
  assert.throws(() => checkErrors([...ERRORS, { name: "X", nr: 1, doc: "" }]), /given twice/);
  assert.throws(() => checkErrors([...ERRORS, { name: "INVAL", nr: 999, doc: "" }]), /twice/);
});

Deno.test("abi: the syscall table is consistent and refuses clashes", () => {
  checkSyscalls();
  const nrs = [...SYSCALLS, ...RESERVED_SYSCALLS].map((c) => c.nr);
  assert.equal(new Set(nrs).size, nrs.length);
  for (
    const n of [
      "exit",
      "wait",
      "spawn",
      "getpid",
      "yield",
      "sleep",
      "write",
      "mmap",
      "munmap",
      "mprotect",
      "clock",
      "fork",
      "exec",
    ]
  ) assert.ok(SYSCALLS.some((c) => c.name === n), n);
  assert.throws(
    () => checkSyscalls([...SYSCALLS, { ...SYSCALLS[0], name: "dup" }]),
    /number 1 is given twice/,
  );
  assert.throws(
    () => checkSyscalls([{ ...SYSCALLS[0], nr: SYSCALL_TABLE_SIZE }]),
    /not in 1\.\.63/,
  );
});

Deno.test("abi: kernel and user headers give gcc the same error, syscall and constant values", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "errors.h"), renderKernelErrors());
    await Deno.writeTextFile(join(dir, "syscalls.h"), renderKernelSyscalls());
    await Deno.mkdir(join(dir, "user"));
    await Deno.writeTextFile(join(dir, "user", "syscall.h"), renderUserSyscalls());
    const names = [
      ...ERRORS.map((e) => `E_${e.name}`),
      ...[...SYSCALLS, ...RESERVED_SYSCALLS].map((c) => `SYS_${c.name}`),
      ...SYSCALL_CONSTANTS.map((k) => k.name),
      "SYSCALL_TABLE_SIZE",
    ];
    const dump = (header: string) =>
      `#include <stdio.h>\n#include ${header}\nint main(void) {\n` +
      names.map((n) => `  printf("%s %lld\\n", "${n}", (long long)(${n}));`).join("\n") +
      `\n  printf("name %s\\n", error_name(-E_FAULT));\n  return 0;\n}\n`;
    const run = async (name: string, header: string, includes: string[]) => {
      const src = join(dir, `${name}.c`);
      await Deno.writeTextFile(src, dump(header));
      await execa("gcc", ["-Wall", "-Wextra", "-Werror", ...includes, "-o", join(dir, name), src]);
      return (await execa(join(dir, name))).stdout;
    };
    const kernel = await run("k", "<syscalls.h>", [
      `-I${dir}`,
      `-I${join(ROOT, "kernel/include")}`,
    ]);
    const user = await run("u", '"user/syscall.h"', [`-I${dir}`]);
    assert.equal(kernel, user);
    const seen = new Map(kernel.split("\n").map((l) => l.split(" ") as [string, string]));
    for (const e of ERRORS) assert.equal(seen.get(`E_${e.name}`), String(e.nr));
    for (const c of SYSCALLS) assert.equal(seen.get(`SYS_${c.name}`), String(c.nr));
    assert.equal(seen.get("WAIT_ANY"), "-1");
    assert.equal(seen.get("name"), "E_FAULT");
  });
});

Deno.test("abi: SYSCALL_DEFINE_TABLE dispatches each number to its handler with the registers in order", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "errors.h"), renderKernelErrors());
    await Deno.writeTextFile(join(dir, "syscalls.h"), renderKernelSyscalls());
    // Each handler prints its name and arguments: the table must call the right one, in order.
    const handlers = SYSCALLS.map((c) => {
      const params = c.args.map((a, i) =>
        `${a.kind === "int" ? "int" : a.kind === "i64" ? "i64" : "u64"} x${i}`
      );
      const fmt = c.args.map(() => " %lld").join("");
      const vals = c.args.map((_, i) => `, (long long)x${i}`).join("");
      return `i64 sys_${c.name}(${
        params.join(", ") || "void"
      }) { printf("${c.name}${fmt}\\n"${vals}); return ${c.nr}; }`;
    });
    const src = `#include <stdio.h>\n#include <syscalls.h>\n${handlers.join("\n")}\n` +
      `SYSCALL_DEFINE_TABLE(table);\nint main(void) {\n` +
      `  for (u64 nr = 0; nr < SYSCALL_TABLE_SIZE; nr++) {\n` +
      `    if (!table[nr]) { if (syscall_name(nr)) printf("null %s\\n", syscall_name(nr)); continue; }\n` +
      `    i64 r = table[nr](11, 22, 33, 44, 55, 66);\n` +
      `    printf("ret %lld %s %d\\n", r, syscall_name(nr), syscall_nargs(nr));\n  }\n  return 0;\n}\n`;
    await Deno.writeTextFile(join(dir, "t.c"), src);
    await execa("gcc", [
      "-Wall",
      "-Wextra",
      "-Werror",
      `-I${dir}`,
      `-I${join(ROOT, "kernel/include")}`,
      "-o",
      join(dir, "t"),
      join(dir, "t.c"),
    ]);
    const out = (await execa(join(dir, "t"))).stdout.split("\n");
    const want: string[] = [];
    for (const c of [...SYSCALLS].sort((a, b) => a.nr - b.nr)) {
      want.push(
        [c.name, ...[11, 22, 33, 44, 55, 66].slice(0, c.args.length)].join(" "),
        `ret ${c.nr} ${c.name} ${c.args.length}`,
      );
    }
    const reserved = RESERVED_SYSCALLS.map((c) => `null ${c.name}`);
    assert.deepEqual(out.filter((l) => !l.startsWith("null")), want);
    assert.deepEqual(out.filter((l) => l.startsWith("null")), reserved);
  });
});

Deno.test("abi: a user stub puts number and arguments in rax, rdi, rsi, rdx, r10 (objdump)", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "syscall.h"), renderUserSyscalls());
    await Deno.writeTextFile(
      join(dir, "t.c"),
      '#include "syscall.h"\n' +
        "long f(void) { return sys_mmap((void *)0x1111, 0x2222, 0x3333, 0x4444); }\n",
    );
    await execa("gcc", [
      "-O2",
      "-ffreestanding",
      "-nostdlib",
      "-Wall",
      "-Werror",
      "-c",
      "-o",
      join(dir, "t.o"),
      join(dir, "t.c"),
    ]);
    const { stdout } = await execa("objdump", ["-d", "--no-show-raw-insn", join(dir, "t.o")]);
    const body = stdout.slice(stdout.indexOf("<f>:"));
    const sys = SYSCALLS.find((c) => c.name === "mmap")!.nr;
    for (
      const [value, reg] of [
        [sys, "eax"],
        [0x1111, "edi"],
        [0x2222, "esi"],
        [0x3333, "edx"],
        [0x4444, "r10d"],
      ] as const
    ) {
      assert.match(body, new RegExp(`mov\\s+\\$0x${value.toString(16)},%${reg}`), `${reg}`);
    }
    assert.match(body, /syscall/);
  });
});

Deno.test("abi: the NASM include carries the syscall numbers", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "syscalls.inc"), renderNasmSyscalls());
    const all = [...SYSCALLS, ...RESERVED_SYSCALLS];
    const src = `%include "syscalls.inc"\n` + all.map((c) => `dq SYS_${c.name}`).join("\n") +
      "\ndq SYSCALL_TABLE_SIZE\n";
    await Deno.writeTextFile(join(dir, "t.asm"), src);
    await execa("nasm", ["-f", "bin", `-I${dir}/`, "-o", join(dir, "t.bin"), join(dir, "t.asm")]);
    const v = new DataView((await Deno.readFile(join(dir, "t.bin"))).buffer);
    all.forEach((c, i) => assert.equal(v.getBigUint64(i * 8, true), BigInt(c.nr), c.name));
    assert.equal(v.getBigUint64(all.length * 8, true), BigInt(SYSCALL_TABLE_SIZE));
  });
});

Deno.test("abi: a program linked with the user script has RX text, R rodata, RW data in the program area", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "user.ld"), renderUserLinkerScript(layout));
    await Deno.writeTextFile(
      join(dir, "p.c"),
      'const char msg[] = "hi";\nint counter = 3;\nint zeros[4096];\n' +
        "void _start(void) { zeros[1] = counter + msg[0]; for (;;) { } }\n",
    );
    await execa("gcc", [
      "-ffreestanding",
      "-nostdlib",
      "-static",
      "-fno-pic",
      "-no-pie",
      "-Wl,-z,max-page-size=0x1000",
      "-Wl,--build-id=none",
      "-T",
      join(dir, "user.ld"),
      "-o",
      join(dir, "p.elf"),
      join(dir, "p.c"),
    ]);
    const image = parseElf(await Deno.readFile(join(dir, "p.elf")));
    const loads = image.segments.filter((s) => s.type === PT_LOAD);
    assert.deepEqual(loads.map((s) => s.flags), [5, 4, 6]);
    for (const s of loads) {
      assert.ok(
        s.vaddr >= layout.userProgramBase && s.vaddr + BigInt(s.memsz) <= layout.userProgramEnd,
      );
      assert.equal(s.vaddr % 4096n, 0n);
    }
    assert.equal(loads[0].vaddr, layout.userProgramBase);
    assert.equal(image.entry, symbolValue(image, "_start"));
    assert.ok(loads[2].memsz > loads[2].filesz, "bss is memory beyond the file");
  });
});

Deno.test("abi: a program larger than the program area fails to link with the reason", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "user.ld"), renderUserLinkerScript(layout));
    const big = layout.userProgramEnd - layout.userProgramBase;
    await Deno.writeTextFile(
      join(dir, "p.c"),
      `char huge[${big}];\nvoid _start(void) { huge[0] = 1; for (;;) { } }\n`,
    );
    const r = await execa("gcc", [
      "-ffreestanding",
      "-nostdlib",
      "-static",
      "-no-pie",
      "-mcmodel=large",
      "-T",
      join(dir, "user.ld"),
      "-o",
      join(dir, "p.elf"),
      join(dir, "p.c"),
    ], { reject: false, all: true });
    assert.notEqual(r.exitCode, 0);
    assert.match(String(r.all), /user program exceeds USER_PROGRAM_END/);
  });
});
