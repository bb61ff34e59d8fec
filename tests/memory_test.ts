/**
 * The memory map and the frame allocator across RAM sizes and machines: the
 * kernel boots with only the `memmap` and `pmm` suites on microvm at 32M,
 * 128M, 1G and 4G, and on pc and q35 at 128M and 4G (at 4G those two put
 * RAM above the PCI hole, so the map has two RAM ranges). Every run must
 * pass, and the allocator's init line must count a plausible amount of
 * free RAM in the expected number of ranges.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { initrdBeside } from "../tools/host/initrd.ts";
import { LOG_DIR } from "../tools/paths.ts";
import { runKernel, type RunResult } from "../tools/run/run.ts";
import { builtKernel } from "./support.ts";

/** One machine and RAM size. */
interface MemoryConfig {
  machine: "microvm" | "pc" | "q35";
  /** Guest RAM in MiB. */
  mib: number;
  /** RAM ranges the allocator should find (RAM split by the hole below 4 GiB). */
  ranges: number;
}

const CONFIGS: readonly MemoryConfig[] = [
  { machine: "microvm", mib: 32, ranges: 1 },
  { machine: "microvm", mib: 128, ranges: 1 },
  { machine: "microvm", mib: 1024, ranges: 1 },
  { machine: "microvm", mib: 4096, ranges: 2 },
  { machine: "pc", mib: 128, ranges: 1 },
  { machine: "pc", mib: 4096, ranges: 2 },
  { machine: "q35", mib: 128, ranges: 1 },
  { machine: "q35", mib: 4096, ranges: 2 },
];

/** QEMUs at once: the machine has two cores, and other test files boot kernels too. */
const PARALLEL = 2;
/** What the kernel keeps below and in its image, at most: first MiB, image, boot data, tables. */
const KEPT_MAX_MIB = 16;
const SILENCE_MS = 20_000;

/** What the allocator's two init lines say. */
interface PmmInit {
  frames: number;
  mib: number;
  ranges: number;
  stackPages: number;
  perPage: number;
}

/** Parse `# pmm: N frames (X MiB) free in K ranges, stack uses P pages` and its companion line. */
function parsePmmInit(serial: string): PmmInit | null {
  const m = /^# pmm: (\d+) frames \((\d+) MiB\) free in (\d+) ranges, stack uses (\d+) pages$/m
    .exec(serial);
  const p = /^# pmm: .* (\d+) entries per stack page$/m.exec(serial);
  if (m === null || p === null) return null;
  return {
    frames: Number(m[1]),
    mib: Number(m[2]),
    ranges: Number(m[3]),
    stackPages: Number(m[4]),
    perPage: Number(p[1]),
  };
}

function label(c: MemoryConfig): string {
  return `${c.machine} -m ${c.mib >= 1024 ? `${c.mib / 1024}G` : `${c.mib}M`}`;
}

/** Map items through fn with at most `limit` calls in flight, started in order. */
function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R>[] {
  let active = 0;
  const waiting: (() => void)[] = [];
  const acquire = (): Promise<void> => {
    if (active < limit) {
      active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => waiting.push(resolve));
  };
  // A finished call hands its slot straight to the next waiting one.
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else active--;
  };
  return items.map(async (item) => {
    await acquire();
    try {
      return await fn(item);
    } finally {
      release();
    }
  });
}

async function boot(c: MemoryConfig): Promise<RunResult> {
  const { elf } = await builtKernel();
  return runKernel({
    kernel: elf,
    machine: c.machine,
    memory: `${c.mib}M`,
    // pmm.exhaust: the exhaustion test runs at every size here, not only on small machines.
    append: "ktest.filter=pmm.*,memmap.* pmm.exhaust",
    logFile: join(LOG_DIR, `memory-${c.machine}-${c.mib}M.log`),
    silenceTimeoutMs: SILENCE_MS,
  });
}

const runs = pool(CONFIGS, PARALLEL, boot);
// Each test awaits its own run; until then a failure must not count as unhandled.
for (const r of runs) r.catch(() => {});

CONFIGS.forEach((c, i) => {
  Deno.test(`memory: ${label(c)}: memmap and pmm pass, free RAM counted`, async () => {
    const r = await runs[i];
    assert.equal(r.classification.kind, "pass", r.classification.message);
    const init = parsePmmInit(r.serial.raw);
    assert.ok(init !== null, "the pmm init lines are missing from the serial log");
    assert.equal(init.mib, Math.floor(init.frames * 4 / 1024), "MiB agrees with the frames");
    assert.ok(init.mib < c.mib, `${init.mib} MiB free of ${c.mib} MiB`);
    assert.ok(init.mib >= c.mib - KEPT_MAX_MIB, `only ${init.mib} MiB free of ${c.mib} MiB`);
    // QEMU puts the initrd just below the top of low RAM; carved out, it splits that range
    // unless it reaches the range's last page (that depends on the initrd's size).
    const initrd = initrdBeside((await builtKernel()).elf) === undefined ? 0 : 1;
    assert.ok(
      init.ranges === c.ranges || init.ranges === c.ranges + initrd,
      `RAM ranges: ${init.ranges}, expected ${c.ranges} (+1 when the initrd splits one)`,
    );
    // Init makes one stack page per perPage + 1 frames (each page is a free frame too).
    assert.equal(init.stackPages, Math.ceil(init.frames / (init.perPage + 1)), "stack pages");
    // The exhaustion test took every frame: the init line's count, less what vmm_init took since.
    const took = /# took (\d+) frames/.exec(r.serial.raw);
    assert.ok(took !== null, "the exhaustion test did not report");
    const vmm = /^# vmm: .* took (\d+) frames/m.exec(r.serial.raw);
    assert.ok(vmm !== null, "the vmm init line is missing from the serial log");
    const windows = /^# boot: .* took (\d+) frames/m.exec(r.serial.raw);
    assert.ok(windows !== null, "the boot windows line is missing from the serial log");
    assert.equal(
      Number(took[1]),
      init.frames - Number(vmm[1]) - Number(windows[1]),
      "frames taken by the exhaustion test",
    );
  });
});
