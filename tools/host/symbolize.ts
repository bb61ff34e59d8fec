/**
 * Crash reports in source terms: the addresses of a crash dump
 * (core/crash.ts) become function and file:line, read from the kernel ELF's
 * debug information with binutils' addr2line (one process for all addresses).
 */
import { statSync } from "node:fs";
import {
  type CrashAddresses,
  formatLocations,
  type Frame,
  hex64,
  parseAddr2line,
} from "../core/crash.ts";

export {
  annotateDump,
  type CrashAddresses,
  crashAddresses,
  formatLocations,
  type Frame,
  hex64,
  parseAddr2line,
  type SourceLocation,
} from "../core/crash.ts";
/** How to run addr2line; replaceable in tests. */
export type Addr2line = (elf: string, addresses: string[]) => Promise<string>;

/** binutils' addr2line: function names demangled, inlining shown, one line per location. */
export const systemAddr2line: Addr2line = async (elf, addresses) => {
  // Loaded when used: most commands never run it.
  const { execa } = await import("execa");
  const r = await execa("addr2line", ["-e", elf, "-a", "-f", "-i", "-p", "-C", ...addresses], {
    reject: false,
  });
  if (r.exitCode !== 0) throw new Error(`addr2line failed: ${r.stderr || r.exitCode}`);
  return r.stdout;
};

/** Resolve a crash's addresses against `elf`. Unknown addresses get no locations. */
export async function symbolizeCrash(
  crash: CrashAddresses,
  elf: string,
  options: { root?: string; addr2line?: Addr2line } = {},
): Promise<Frame[]> {
  const frames: Omit<Frame, "locations">[] = [];
  if (crash.rip !== null) {
    frames.push({ index: null, address: hex64(crash.rip), returnAddress: false });
  }
  for (const f of crash.backtrace) {
    // After an exception [0] is the faulting RIP itself; after a panic a return address.
    const exact = f.index === 0 && crash.rip !== null && f.address === crash.rip;
    frames.push({ index: f.index, address: hex64(f.address), returnAddress: !exact });
  }
  if (frames.length === 0) return [];
  const lookup = (f: Omit<Frame, "locations">) =>
    f.returnAddress ? BigInt(f.address) - 1n : BigInt(f.address);
  const addresses = [...new Set(frames.map(lookup))].map((a) => `0x${a.toString(16)}`);
  const table = parseAddr2line(
    await (options.addr2line ?? systemAddr2line)(elf, addresses),
    options.root,
  );
  const fix = options.root === undefined ? (f: string) => f : existingPath(options.root);
  return frames.map((f) => ({
    ...f,
    locations: (table.get(lookup(f)) ?? []).map((l) => ({
      ...l,
      file: l.file === null ? null : fix(l.file),
    })),
  }));
}

/**
 * A file name as the repository has it. Debug information may join a
 * relative name to a directory that already holds it (NASM records
 * `kernel/arch/x86_64/kernel/arch/x86_64/boot.asm`): when the name does not
 * exist under `root`, its longest tail that does is used.
 */
function existingPath(root: string): (file: string) => string {
  const cache = new Map<string, string>();
  const exists = (p: string) => {
    try {
      return statSync(p.startsWith("/") ? p : `${root}/${p}`).isFile();
    } catch {
      return false;
    }
  };
  return (file) => {
    let fixed = cache.get(file);
    if (fixed === undefined) {
      fixed = file;
      const parts = file.split("/");
      if (!exists(file)) {
        for (let i = 1; i < parts.length; i++) {
          const tail = parts.slice(i).join("/");
          if (exists(tail)) {
            fixed = tail;
            break;
          }
        }
      }
      cache.set(file, fixed);
    }
    return fixed;
  };
}

/** The prefix of a kernel suite that runs a user test program (`user_X` runs `tests/X`). */
export const USER_SUITE_PREFIX = "user_";

const USER_RIP = /\brip (0x[0-9a-f]+)/i;

/** A test of a `user_X` suite, as far as symbolizing its kill needs. */
export interface UserKilledTest {
  diagnostic: { message?: string; at?: string } | null;
}

/**
 * A user test program killed by the kernel fails with a result whose
 * message names the fault and `rip 0x…` (kernel/ktest/user_tests.c): put
 * where that is in the program's own source into the diagnostic's `at`,
 * read from `elfOf(X)` (its ELF with debug information). Tests without such
 * a message, or programs without an ELF, are left as they are.
 */
export async function symbolizeUserKills(
  suites: readonly { name: string; tests: readonly UserKilledTest[] }[],
  elfOf: (program: string) => string,
  options: { root?: string; addr2line?: Addr2line } = {},
): Promise<void> {
  for (const s of suites) {
    if (!s.name.startsWith(USER_SUITE_PREFIX)) continue;
    const elf = elfOf(s.name.slice(USER_SUITE_PREFIX.length));
    try {
      if (!statSync(elf).isFile()) continue;
    } catch {
      continue;
    }
    for (const t of s.tests) {
      const m = t.diagnostic?.message ? USER_RIP.exec(t.diagnostic.message) : null;
      if (m === null || t.diagnostic === null || t.diagnostic.at) continue;
      const [frame] = await symbolizeCrash({ rip: BigInt(m[1]), backtrace: [] }, elf, options);
      if (frame && frame.locations.length > 0) {
        t.diagnostic.at = `${formatLocations(frame.locations)} (rip ${frame.address})`;
      }
    }
  }
}
