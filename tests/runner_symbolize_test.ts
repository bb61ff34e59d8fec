/**
 * Crash addresses to source: what is read from the kernel's dump, how
 * addr2line's answer is read, return addresses looked up one byte back.
 * (Real crashes of the real kernel are symbolized in selftest_test.ts.)
 */
import assert from "node:assert/strict";
import { ROOT } from "../tools/paths.ts";
import {
  type Addr2line,
  annotateDump,
  crashAddresses,
  formatLocations,
  parseAddr2line,
  symbolizeCrash,
} from "../tools/host/symbolize.ts";

/** The dump trap.c prints for an unexpected exception (shortened). */
const EXCEPTION_DUMP = [
  "# exception 14 #PF (page fault)",
  "# rip 0xffffffff801032a4  cs  0x0008  rflags 0x0000000000000046",
  "# rbx 0xffffffff80112268  rcx 0x0000000000000000",
  "# backtrace:",
  "#   [0] 0xffffffff801032a4",
  "#   [1] 0xffffffff801030a3",
];

/** The dump panic.c prints. */
const PANIC_DUMP = [
  "# panic: selftest: deliberate panic",
  "# backtrace:",
  "#   [0] 0xffffffff801032c2",
  "#   [1] 0xffffffff80102ace",
];

Deno.test("symbolize: the RIP and the backtrace are read from the dump, nothing else", () => {
  assert.deepEqual(crashAddresses(EXCEPTION_DUMP), {
    rip: 0xffffffff801032a4n,
    backtrace: [
      { index: 0, address: 0xffffffff801032a4n },
      { index: 1, address: 0xffffffff801030a3n },
    ],
  });
  assert.deepEqual(crashAddresses(PANIC_DUMP).rip, null);
  // Only the Bail out! line has it: the RIP comes from there.
  assert.equal(
    crashAddresses([], "exception #GP (general protection) at rip 0xffffffff80101000").rip,
    0xffffffff80101000n,
  );
});

Deno.test("symbolize: addr2line's pretty output, inlining and unknowns", () => {
  const out = [
    "0xffffffff801032a3: st_panic at /repo/kernel/ktest/selftest.c:41",
    "0xffffffff801030a2: run_suite at /repo/kernel/ktest/ktest.c:258",
    " (inlined by) run_set at /repo/kernel/ktest/ktest.c:304",
    "0x0000000000000010: ?? ??:0",
    "0xffffffff80100000: start at ??:?",
    "0xffffffff80100001: f at /repo/a.c:7 (discriminator 3)",
  ].join("\n");
  const t = parseAddr2line(out, "/repo");
  assert.deepEqual(t.get(0xffffffff801032a3n), [
    { function: "st_panic", file: "kernel/ktest/selftest.c", line: 41 },
  ]);
  assert.deepEqual(t.get(0xffffffff801030a2n)?.map((l) => l.function), ["run_suite", "run_set"]);
  assert.deepEqual(t.get(0x10n), []);
  assert.deepEqual(t.get(0xffffffff80100000n), [{ function: "start", file: null, line: null }]);
  assert.deepEqual(t.get(0xffffffff80100001n), [{ function: "f", file: "a.c", line: 7 }]);
});

Deno.test("symbolize: return addresses are looked up one byte back, an exception's RIP as is", async () => {
  const asked: string[] = [];
  const fake: Addr2line = (_elf, addresses) => {
    asked.push(...addresses);
    return Promise.resolve(
      addresses.map((a) => `0x${BigInt(a).toString(16).padStart(16, "0")}: fn_${a} at x.c:1`)
        .join("\n"),
    );
  };
  const exception = await symbolizeCrash(crashAddresses(EXCEPTION_DUMP), "k.elf", {
    addr2line: fake,
  });
  assert.deepEqual(asked, ["0xffffffff801032a4", "0xffffffff801030a2"]);
  assert.deepEqual(exception.map((f) => [f.index, f.returnAddress]), [
    [null, false],
    [0, false],
    [1, true],
  ]);
  asked.length = 0;
  const panic = await symbolizeCrash(crashAddresses(PANIC_DUMP), "k.elf", { addr2line: fake });
  // panic's [0] is __builtin_return_address(0): a return address too.
  assert.deepEqual(asked, ["0xffffffff801032c1", "0xffffffff80102acd"]);
  assert.equal(panic[0].locations[0].function, "fn_0xffffffff801032c1");
});

Deno.test("symbolize: a name NASM doubled is found in the repository by its tail", async () => {
  const fake: Addr2line = () =>
    Promise.resolve(
      `0x0000000000100118: boot_long_mode at ${ROOT}/kernel/arch/x86_64/kernel/arch/x86_64/boot.asm:174`,
    );
  const [frame] = await symbolizeCrash(
    { rip: null, backtrace: [{ index: 1, address: 0x100119n }] },
    "k.elf",
    { addr2line: fake, root: ROOT },
  );
  assert.equal(frame.locations[0].file, "kernel/arch/x86_64/boot.asm");
});

Deno.test("symbolize: the dump is annotated line by line", () => {
  const frames = [
    {
      index: null,
      address: "0xffffffff801032a4",
      returnAddress: false,
      locations: [{ function: "st_fault", file: "kernel/ktest/selftest.c", line: 47 }],
    },
    {
      index: 1,
      address: "0xffffffff801030a3",
      returnAddress: true,
      locations: [
        { function: "run_suite", file: "kernel/ktest/ktest.c", line: 258 },
        { function: "run_set", file: "kernel/ktest/ktest.c", line: 304 },
      ],
    },
  ];
  const out = annotateDump(EXCEPTION_DUMP, frames);
  assert.equal(out[1], `${EXCEPTION_DUMP[1]}  at st_fault (kernel/ktest/selftest.c:47)`);
  assert.equal(out[2], EXCEPTION_DUMP[2], "registers other than rip are left alone");
  assert.equal(out[4], EXCEPTION_DUMP[4], "a frame with no resolution is left alone");
  assert.equal(
    out[5],
    `${
      EXCEPTION_DUMP[5]
    }  run_suite (kernel/ktest/ktest.c:258) ← run_set (kernel/ktest/ktest.c:304)`,
  );
  assert.equal(formatLocations([]), "?");
});
