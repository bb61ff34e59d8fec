import assert from "node:assert/strict";
import {
  addressOf,
  canonical,
  DEFAULT_LAYOUT_CONFIG,
  deriveLayout,
  isCanonical,
  LayoutError,
  selfMapTableAddress,
  tableIndex,
} from "../linker/layout.ts";
import { renderCHeader, renderNasmInclude } from "../linker/constants.ts";

Deno.test("layout: slot 510 puts the tables at the textbook addresses", () => {
  const l = deriveLayout();
  // Worked by hand: 0x1fe << 39, << 30, << 21, << 12, summed and sign-extended.
  assert.equal(l.tableBase[1], 0xffff_ff00_0000_0000n);
  assert.equal(l.tableBase[2], 0xffff_ff7f_8000_0000n);
  assert.equal(l.tableBase[3], 0xffff_ff7f_bfc0_0000n);
  assert.equal(l.tableBase[4], 0xffff_ff7f_bfdf_e000n);
  assert.equal(l.selfMapEnd - l.selfMapBase, 1n << 39n);
  assert.equal(l.kernelPml4Slot, 511);
});

Deno.test("layout: slot 511 is refused with the reason", () => {
  assert.throws(
    () => deriveLayout({ ...DEFAULT_LAYOUT_CONFIG, recursiveSlot: 511 }),
    (e) => e instanceof LayoutError && /511 is refused.*overflow/.test(e.message),
  );
});

Deno.test("layout: slots outside 256..510 and bad bases are refused", () => {
  for (const recursiveSlot of [-1, 0, 100, 255, 512, 1.5]) {
    assert.throws(() => deriveLayout({ ...DEFAULT_LAYOUT_CONFIG, recursiveSlot }), LayoutError);
  }
  assert.throws(() => deriveLayout({ ...DEFAULT_LAYOUT_CONFIG, kernelPhysBase: 0x1000n }), /1 MiB/);
  assert.throws(
    () => deriveLayout({ ...DEFAULT_LAYOUT_CONFIG, kernelVirtOffset: 0xffff_8000_0000_0000n }),
    /top 2 GiB/,
  );
  assert.throws(() => deriveLayout({ ...DEFAULT_LAYOUT_CONFIG, kernelStackPages: 0 }), /stack/);
  assert.throws(
    () => deriveLayout({ ...DEFAULT_LAYOUT_CONFIG, maxKernelSize: 3n << 20n }),
    /2 MiB/,
  );
  for (const recursiveSlot of [256, 300, 510]) {
    assert.equal(
      deriveLayout({ ...DEFAULT_LAYOUT_CONFIG, recursiveSlot }).recursiveSlot,
      recursiveSlot,
    );
  }
});

Deno.test("layout: canonical form", () => {
  assert.equal(canonical(0x0000_8000_0000_0000n), 0xffff_8000_0000_0000n);
  assert.equal(canonical(0x0000_7fff_ffff_f000n), 0x0000_7fff_ffff_f000n);
  assert.ok(isCanonical(0xffff_ffff_8000_0000n));
  assert.ok(!isCanonical(0x0000_8000_0000_0000n));
  assert.ok(!isCanonical(0x1234_0000_0000_0000n));
});

Deno.test("layout: self-map addresses agree with the shift-by-9 formula", () => {
  // Independent formula: the entry for va at level L sits at
  // base_L + ((va & (2^48-1)) >> (12 + 9(L-1))) * 8, base_L being the window of level L.
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  for (const slot of [256, 300, 510]) {
    const l = deriveLayout({ ...DEFAULT_LAYOUT_CONFIG, recursiveSlot: slot });
    for (let i = 0; i < 200; i++) {
      const va = canonical((BigInt(rnd()) << 17n) ^ BigInt(rnd()));
      for (const level of [1, 2, 3, 4] as const) {
        const entry = l.tableBase[level] +
          (((va & ((1n << 48n) - 1n)) >> BigInt(12 + 9 * (level - 1))) << 3n);
        assert.equal(
          selfMapTableAddress(slot, level, va),
          entry & ~0xfffn,
          `slot ${slot} level ${level}`,
        );
      }
    }
  }
});

Deno.test("layout: tableIndex and addressOf are inverse", () => {
  const va = addressOf(511, 510, 3, 7, 0x123n);
  assert.deepEqual([4, 3, 2, 1].map((l) => tableIndex(va, l)), [511, 510, 3, 7]);
  assert.equal(va, 0xffff_ffff_8060_7123n);
});

Deno.test("layout: the PMM stack and heap regions take slots of their own", () => {
  const l = deriveLayout();
  assert.equal(l.pmmStackBase, 0xffff_c000_0000_0000n);
  assert.equal(l.heapBase, 0xffff_c080_0000_0000n);
  assert.throws(
    () => deriveLayout({ ...DEFAULT_LAYOUT_CONFIG, recursiveSlot: 384 }),
    /PMM stack slot 384 collides with the self-map/,
  );
  assert.throws(
    () => deriveLayout({ ...DEFAULT_LAYOUT_CONFIG, heapSlot: 384 }),
    /different PML4 slots/,
  );
  assert.throws(
    () => deriveLayout({ ...DEFAULT_LAYOUT_CONFIG, otherSlot: 510 }),
    /other-space window slot 510 collides with the self-map/,
  );
  assert.throws(() => deriveLayout({ ...DEFAULT_LAYOUT_CONFIG, heapSlot: 12 }), /kernel-half/);
});

Deno.test("layout: the user half's regions derive from the paging facts", () => {
  const l = deriveLayout();
  const slot = 1n << 39n; // one PML4 entry covers 512 GiB
  assert.equal(l.userProgramBase, 0x40_0000n);
  assert.equal(l.userProgramEnd, 0x4000_0000n);
  assert.equal(l.userMmapBase, slot);
  assert.equal(l.userMmapEnd, 255n * slot);
  assert.equal(l.userStackTop, 0x7fff_ffff_f000n);
  assert.equal(l.userStackTop - l.userStackBottom, 256n * 4096n);
  assert.equal(l.userStackBottom - l.userStackGuard, 4096n);
  assert.ok(l.userMmapEnd <= l.userStackGuard, "mmap region below the stack guard");
  assert.ok(l.userProgramEnd <= l.userMmapBase, "program area below the mmap region");
  assert.equal(l.initrdBase, 0xffff_c100_0000_0000n);
  assert.equal(tableIndex(l.initrdBase, 4), 386);
});

Deno.test("layout: user-half configurations that cannot work are refused", () => {
  const bad = (over: Partial<typeof DEFAULT_LAYOUT_CONFIG>, re: RegExp) =>
    assert.throws(() => deriveLayout({ ...DEFAULT_LAYOUT_CONFIG, ...over }), re);
  bad({ userProgramBase: 0n }, /NULL guard/);
  bad({ userProgramBase: 0x40_1000n }, /2 MiB-aligned/);
  bad({ userProgramEnd: 0x40_0000n }, /above the program base/);
  bad({ userProgramEnd: 1n << 40n }, /mmap region overlaps the program area/);
  bad({ userMmapSlot: 256 }, /user mmap slot 256 is not a user-half PML4 slot/);
  bad({ userMmapSlots: 256 }, /last slot 256 is not a user-half/);
  bad({ userMmapSlots: 255 }, /user stack slot 255 lies in the mmap region/);
  bad({ userStackSlot: 100 }, /user stack slot 100 lies in the mmap region/);
  bad({ userStackPages: 0 }, /at least one page/);
  bad({ userStackPages: 1 << 27 }, /do not fit in the stack slot/);
  bad({ initrdSlot: 384 }, /initrd window slot 384 collides with the PMM stack/);
  bad({ initrdSlot: 510 }, /collides with the self-map/);
  bad({ initrdSlot: 3 }, /not a kernel-half PML4 slot/);
  assert.throws(() => deriveLayout({ ...DEFAULT_LAYOUT_CONFIG, userStackPages: 0 }), LayoutError);
});

// The manuals' numbers, written out here, not taken from linker/arch.ts: EFER (Intel SDM Vol. 4
// Table 2-2; AMD APM Vol. 2 §3.1.7: TCE is bit 15) and CPUID 80000001H ECX[17], TCE's presence
// (APM Vol. 3 E.4.2). A wrong TCE bit would clear some other EFER bit at boot, or skip
// smp.efer_tce_clear_on_every_cpu on the CPUs that have TCE.
Deno.test("layout: the generated EFER bits and CPUID's TCE bit are the manuals'", () => {
  const expected: [string, bigint][] = [
    ["MSR_EFER", 0xc000_0080n],
    ["EFER_SCE", 1n << 0n],
    ["EFER_LME", 1n << 8n],
    ["EFER_NXE", 1n << 11n],
    ["EFER_TCE", 1n << 15n],
    ["CPUID_ECX_TCE", 1n << 17n],
  ];
  const layout = deriveLayout();
  const c = renderCHeader(layout), nasm = renderNasmInclude(layout);
  for (const [name, value] of expected) {
    const hex = "0x" + value.toString(16);
    assert.match(c, new RegExp(`^#define ${name} ${hex}ULL$`, "m"), `layout.h: ${name}`);
    assert.match(nasm, new RegExp(`^%define ${name} ${hex} ;`, "m"), `layout.inc: ${name}`);
  }
});
