import assert from "node:assert/strict";
import {
  compareWithQemu,
  mergeByRights,
  parseGva2gpa,
  parseInfoMem,
  parseInfoTlb,
  parseKernelDump,
} from "../tools/machines/oracle/compare.ts";

const fixture = (name: string) =>
  Deno.readTextFileSync(new URL(`./fixtures/oracle/${name}`, import.meta.url));

// The kernel's dump of the same address space, split by NX as the kernel does.
const DUMP = [
  "# oracle-begin boot",
  "    # map 0000000000100000-0000000000101000 0000000000001000 -rw x",
  "    # map ffffff0000000000-ffffff0000001000 0000000000001000 -rw nx",
  "    # map ffffffff80101000-ffffffff80105000 0000000000004000 -r- x",
  "    # map ffffffff80105000-ffffffff8010e000 0000000000009000 -r- nx",
  "    # map ffffffff8010e000-ffffffff8012b000 000000000001d000 -rw nx",
  "    # map ffffffff8012c000-ffffffff80130000 0000000000004000 -rw nx",
  "    # v2p ffffffff80101000 0000000000101000",
  "    # v2p ffffffff8012b000 none",
];

Deno.test("oracle: QEMU's info mem and info tlb are read", () => {
  const mem = parseInfoMem(fixture("info_mem.txt"));
  assert.equal(mem.length, 5);
  assert.deepEqual(mem[2], {
    start: 0xffffffff80101000n,
    end: 0xffffffff8010e000n,
    user: false,
    write: false,
  });
  assert.deepEqual(parseInfoTlb(fixture("info_tlb.txt")).slice(0, 2), [
    0x100000n,
    0xffffff0000000000n,
  ]);
  assert.equal(parseGva2gpa("gpa: 0x101000\r\n"), 0x101000n);
  assert.equal(parseGva2gpa("Unmapped\r\n"), null);
  assert.throws(() => parseInfoMem("garbage line\n"), /unreadable/);
});

Deno.test("oracle: a dump that matches QEMU's view has no problems", () => {
  const kernel = parseKernelDump(DUMP);
  assert.equal(kernel.ranges.length, 6);
  assert.equal(mergeByRights(kernel.ranges).length, 5);
  const problems = compareWithQemu(kernel, {
    infoMem: parseInfoMem(fixture("info_mem.txt")),
    tlbPages: parseInfoTlb(fixture("info_tlb.txt")).filter((va) => va !== 0xffffff7fbfdfe000n),
    gva2gpa: new Map([[0xffffffff80101000n, 0x101000n], [0xffffffff8012b000n, null]]),
  });
  assert.deepEqual(problems, []);
});

Deno.test("oracle: every kind of disagreement is reported", () => {
  const dump = DUMP.map((l) =>
    l.replace(
      "ffffffff8012c000-ffffffff80130000 0000000000004000 -rw",
      "ffffffff8012c000-ffffffff80131000 0000000000005000 -rw",
    )
  );
  const problems = compareWithQemu(parseKernelDump(dump), {
    infoMem: parseInfoMem(fixture("info_mem.txt")),
    tlbPages: [0xffffffff90000000n],
    gva2gpa: new Map([[0xffffffff80101000n, 0x999000n]]),
  }).join("\n");
  assert.match(
    problems,
    /QEMU maps ffffffff8012c000-ffffffff80130000 -rw; the kernel's dump does not/,
  );
  assert.match(
    problems,
    /the kernel's dump has ffffffff8012c000-ffffffff80131000 -rw; QEMU does not/,
  );
  assert.match(problems, /info tlb page ffffffff90000000 lies outside/);
  assert.match(
    problems,
    /virt_to_phys\(ffffffff80101000\) = 0000000000101000, QEMU says 0000000000999000/,
  );
  assert.match(problems, /no gva2gpa answer for ffffffff8012b000/);
});

Deno.test("oracle: an empty dump is a problem, not an agreement", () => {
  const problems = compareWithQemu(parseKernelDump([]), {
    infoMem: [],
    tlbPages: [],
    gva2gpa: new Map(),
  });
  assert.deepEqual(problems, ["the kernel printed no page dump"]);
});
