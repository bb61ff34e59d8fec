/**
 * Crash dumps in source terms, the pure half: the addresses a panic or an
 * exception dump prints (the faulting RIP, the return addresses of the
 * frame-pointer backtrace), addr2line's answer read back, and the dump
 * annotated with it. Running addr2line is host/symbolize.ts's.
 *
 * The kernel prints (kernel/lib/panic.c, kernel/arch/x86_64/trap.c):
 *   `# rip 0x…  cs …`                    the faulting instruction (exceptions)
 *   `#   [i] 0x…`                          backtrace; [0] is the faulting RIP
 *                                          after an exception, else a return address
 *   `Bail out! exception … at rip 0x…`
 * A return address is the instruction after the call, which may belong to
 * the next line or even the next function: it is looked up one byte back.
 */
import { relative } from "node:path";

/** A source location. */
export interface SourceLocation {
  function: string;
  /** Repository-relative when under the root given to the symbolizer; null if unknown. */
  file: string | null;
  line: number | null;
}

/** One address of a crash report, resolved. */
export interface Frame {
  /** The backtrace index `[i]`, or null for the RIP of an exception. */
  index: number | null;
  /** As printed, `0x` and 16 hex digits. */
  address: string;
  /** True for a return address (looked up one byte back). */
  returnAddress: boolean;
  /** Innermost first: the function the address is in, then the ones it was inlined into. */
  locations: SourceLocation[];
}

/** The addresses of a crash report, before resolution. */
export interface CrashAddresses {
  rip: bigint | null;
  backtrace: { index: number; address: bigint }[];
}

const RIP_LINE = /^#\s*rip\s+(0x[0-9a-f]+)/i;
const RIP_IN_REASON = /\bat rip (0x[0-9a-f]+)/i;
const FRAME_LINE = /^#\s+\[(\d+)\]\s+(0x[0-9a-f]+)\s*$/i;

/** Find the RIP and the backtrace in a dump (comment lines) and a bail-out reason. */
export function crashAddresses(dump: readonly string[], reason = ""): CrashAddresses {
  let rip: bigint | null = null;
  const backtrace: CrashAddresses["backtrace"] = [];
  for (const line of dump) {
    const r = RIP_LINE.exec(line.trim());
    if (r !== null) rip ??= BigInt(r[1]);
    const f = FRAME_LINE.exec(line.trim());
    if (f !== null) backtrace.push({ index: Number(f[1]), address: BigInt(f[2]) });
  }
  const inReason = RIP_IN_REASON.exec(reason);
  if (rip === null && inReason !== null) rip = BigInt(inReason[1]);
  return { rip, backtrace };
}

/** `0x` and 16 hex digits. */
export function hex64(a: bigint): string {
  return `0x${a.toString(16).padStart(16, "0")}`;
}

/**
 * Parse `addr2line -a -f -i -p` output: per address a line
 * `0xADDR: func at file:line`, then ` (inlined by) func at file:line` lines.
 * Unknowns are `??` (function) and `??:0` or `??:?` (place).
 */
export function parseAddr2line(output: string, root?: string): Map<bigint, SourceLocation[]> {
  const out = new Map<bigint, SourceLocation[]>();
  let current: SourceLocation[] | null = null;
  for (const raw of output.split("\n")) {
    const line = raw.trimEnd();
    const head = /^(0x[0-9a-f]+): (.*)$/i.exec(line);
    const inlined = /^\s*\(inlined by\) (.*)$/.exec(line);
    if (head !== null) {
      current = [];
      out.set(BigInt(head[1]), current);
      const loc = parseLocation(head[2], root);
      if (loc !== null) current.push(loc);
    } else if (inlined !== null && current !== null) {
      const loc = parseLocation(inlined[1], root);
      if (loc !== null) current.push(loc);
    }
  }
  return out;
}

function parseLocation(text: string, root?: string): SourceLocation | null {
  const m = /^(.*?) at (.*?):(\d+|\?)(?: \(discriminator \d+\))?$/.exec(text.trim());
  if (m === null) return null;
  if (m[1] === "??") return null;
  let file: string | null = m[2] === "??" ? null : m[2];
  if (file !== null && root !== undefined && file.startsWith(root + "/")) {
    file = relative(root, file);
  }
  const line = m[3] === "?" || m[3] === "0" ? null : Number(m[3]);
  return { function: m[1], file, line };
}

/** `func (file:line)`, inlined callers after `←`; `?` if unknown. */
export function formatLocations(locations: readonly SourceLocation[]): string {
  if (locations.length === 0) return "?";
  return locations.map((l) =>
    l.file === null ? l.function : `${l.function} (${l.file}${l.line === null ? "" : `:${l.line}`})`
  ).join(" ← ");
}

/**
 * The dump with each address line followed by where it is:
 * `#   [1] 0xffffffff80102e33  run_set (kernel/ktest/ktest.c:297)`.
 */
export function annotateDump(dump: readonly string[], frames: readonly Frame[]): string[] {
  const byIndex = new Map(frames.filter((f) => f.index !== null).map((f) => [f.index, f]));
  const rip = frames.find((f) => f.index === null);
  return dump.map((line) => {
    const f = FRAME_LINE.exec(line.trim());
    if (f !== null) {
      const frame = byIndex.get(Number(f[1]));
      return frame ? `${line}  ${formatLocations(frame.locations)}` : line;
    }
    if (rip !== undefined && RIP_LINE.test(line.trim())) {
      return `${line}  at ${formatLocations(rip.locations)}`;
    }
    return line;
  });
}
