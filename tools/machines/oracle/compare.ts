/**
 * The external oracle: QEMU's view of the guest's page tables (`info mem`,
 * `info tlb`, `gva2gpa`), which no one here wrote, against the kernel's own
 * page dump. Parsers for both sides and the comparison; all pure.
 */

/** A virtually contiguous range with one set of rights. */
export interface Range {
  start: bigint;
  end: bigint;
  user: boolean;
  write: boolean;
}

/** A kernel dump range (rights include NX). */
export interface KernelRange extends Range {
  nx: boolean;
}

/** What the kernel printed at a checkpoint. */
export interface KernelDump {
  ranges: KernelRange[];
  /** `virt_to_phys` answers for probe addresses; null = not mapped. */
  probes: Map<bigint, bigint | null>;
}

const HEX = "([0-9a-fA-F]+)";

/** Parse QEMU's `info mem` (x86-64): `START-END SIZE urw` per line. */
export function parseInfoMem(text: string): Range[] {
  const re = new RegExp(`^${HEX}-${HEX} ${HEX} ([u-])([r-])([w-])\\s*$`);
  const out: Range[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim()) continue;
    const m = re.exec(line.trim());
    if (!m) throw new Error(`info mem: unreadable line '${line}'`);
    out.push({
      start: BigInt("0x" + m[1]),
      end: BigInt("0x" + m[2]),
      user: m[4] === "u",
      write: m[6] === "w",
    });
  }
  return out;
}

/** Parse QEMU's `info tlb` (x86-64): `VA: PA FLAGS` per mapped page; the VAs. */
export function parseInfoTlb(text: string): bigint[] {
  const re = new RegExp(`^${HEX}: ${HEX} [-XGPSLDACTUW]+$`);
  const out: bigint[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim()) continue;
    const m = re.exec(line.trim());
    if (!m) throw new Error(`info tlb: unreadable line '${line}'`);
    out.push(BigInt("0x" + m[1]));
  }
  return out;
}

/** Parse `gva2gpa` output: the physical address, or null when unmapped. */
export function parseGva2gpa(text: string): bigint | null {
  const m = /gpa: 0x([0-9a-fA-F]+)/.exec(text);
  if (m) return BigInt("0x" + m[1]);
  if (/unmapped/i.test(text)) return null;
  throw new Error(`gva2gpa: unreadable answer '${text.trim()}'`);
}

/**
 * Parse the kernel's checkpoint lines: `# map START-END SIZE urw nx|x` and
 * `# v2p VA PA|none` (leading indentation and `# ` allowed).
 */
export function parseKernelDump(lines: string[]): KernelDump {
  const map = new RegExp(`^#\\s*map ${HEX}-${HEX} ${HEX} ([u-])([r-])([w-]) (nx|x)$`);
  const v2p = new RegExp(`^#\\s*v2p ${HEX} (?:${HEX}|none)$`);
  const dump: KernelDump = { ranges: [], probes: new Map() };
  for (const raw of lines) {
    const line = raw.trim();
    let m = map.exec(line);
    if (m) {
      const start = BigInt("0x" + m[1]), end = BigInt("0x" + m[2]);
      if (end - start !== BigInt("0x" + m[3])) {
        throw new Error(`kernel dump: size mismatch in '${line}'`);
      }
      dump.ranges.push({ start, end, user: m[4] === "u", write: m[6] === "w", nx: m[7] === "nx" });
      continue;
    }
    m = v2p.exec(line);
    if (m) dump.probes.set(BigInt("0x" + m[1]), m[2] ? BigInt("0x" + m[2]) : null);
  }
  return dump;
}

/** Merge virtually contiguous ranges with equal user/write rights, as `info mem` does. */
export function mergeByRights(ranges: Range[]): Range[] {
  const out: Range[] = [];
  for (
    const r of [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))
  ) {
    const last = out[out.length - 1];
    if (last && last.end === r.start && last.user === r.user && last.write === r.write) {
      last.end = r.end;
    } else {
      out.push({ start: r.start, end: r.end, user: r.user, write: r.write });
    }
  }
  return out;
}

const hex = (v: bigint) => v.toString(16).padStart(16, "0");
const show = (r: Range) =>
  `${hex(r.start)}-${hex(r.end)} ${r.user ? "u" : "-"}r${r.write ? "w" : "-"}`;

/** QEMU's answers at a checkpoint. */
export interface QemuView {
  infoMem: Range[];
  tlbPages: bigint[];
  gva2gpa: Map<bigint, bigint | null>;
}

/** Every disagreement between the kernel's dump and QEMU's view; [] when they agree. */
export function compareWithQemu(kernel: KernelDump, qemu: QemuView): string[] {
  const problems: string[] = [];
  const mine = mergeByRights(kernel.ranges).map(show);
  const theirs = qemu.infoMem.map(show);
  const mineSet = new Set(mine), theirSet = new Set(theirs);
  for (const r of theirs) {
    if (!mineSet.has(r)) problems.push(`QEMU maps ${r}; the kernel's dump does not`);
  }
  for (const r of mine) {
    if (!theirSet.has(r)) problems.push(`the kernel's dump has ${r}; QEMU does not`);
  }
  if (mine.length === 0) problems.push("the kernel printed no page dump");
  // info tlb walks the same tables page by page: every page must be inside an info mem range.
  for (const va of qemu.tlbPages) {
    if (!qemu.infoMem.some((r) => va >= r.start && va < r.end)) {
      problems.push(`info tlb page ${hex(va)} lies outside every info mem range`);
    }
  }
  for (const [va, pa] of kernel.probes) {
    const q = qemu.gva2gpa.get(va);
    if (q === undefined) problems.push(`no gva2gpa answer for ${hex(va)}`);
    else if (q !== pa) {
      problems.push(
        `virt_to_phys(${hex(va)}) = ${pa === null ? "unmapped" : hex(pa)}, QEMU says ${
          q === null ? "unmapped" : hex(q)
        }`,
      );
    }
  }
  return problems;
}
