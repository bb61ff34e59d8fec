/**
 * The single source of truth for Ouroboros' address-space layout and the
 * x86-64 paging formats. Every C header, NASM include, linker script and boot
 * page table is generated from this module; nothing else defines these facts.
 *
 * Formats follow the Intel SDM, Vol. 3A, §4.5 (4-level paging).
 */

/** log2 of the base page size. */
export const PAGE_SHIFT = 12;
/** Base page size: 4 KiB. */
export const PAGE_SIZE = 1n << BigInt(PAGE_SHIFT);
/** Entries in every paging structure (each is one 4 KiB page of 8-byte entries). */
export const TABLE_ENTRIES = 512;
/** Bits of a virtual address consumed by each level's index. */
export const INDEX_BITS = 9;
/** Paging levels: PML4 (4) down to PT (1). */
export const LEVELS = 4;
/** Linear-address width: the page offset and one index per level (48). */
export const VA_BITS = PAGE_SHIFT + INDEX_BITS * LEVELS;

/** Bits of an address below the index of `level` (1 = PT: 12, 2: 21, 3: 30, 4 = PML4: 39). */
export function levelShift(level: number): bigint {
  return BigInt(PAGE_SHIFT + INDEX_BITS * (level - 1));
}

/** A 2 MiB page, mapped by a PD entry with PS set. */
export const LARGE_PAGE_SIZE = 1n << levelShift(2);
/** A 1 GiB page, mapped by a PDPT entry with PS set (only if CPUID says so). */
export const HUGE_PAGE_SIZE = 1n << levelShift(3);
/** The widest physical address an entry can hold (MAXPHYADDR is at most 52, SDM Vol. 3A §4.1.4). */
export const PHYS_ADDR_BITS = 52;
/** The physical-address field of an entry: bits PAGE_SHIFT..PHYS_ADDR_BITS-1 (12..51). */
export const PTE_ADDR_MASK = ((1n << BigInt(PHYS_ADDR_BITS)) - 1n) & ~(PAGE_SIZE - 1n);

/** Bit positions of the flags of a paging-structure entry. */
export const PTE_BITS = {
  P: 0, // present
  W: 1, // writable
  U: 2, // user-accessible
  PWT: 3, // write-through
  PCD: 4, // cache disable
  A: 5, // accessed
  D: 6, // dirty (leaf only)
  PS: 7, // page size (PDPT/PD: leaf is a 1 GiB/2 MiB page)
  G: 8, // global (leaf only; never on the self-map entry)
  NX: 63, // no-execute (needs EFER.NXE)
} as const;

/** Name of a flag of a paging-structure entry. */
export type PteFlag = keyof typeof PTE_BITS;

/** The flag as a 64-bit mask. */
export function pteFlag(name: PteFlag): bigint {
  return 1n << BigInt(PTE_BITS[name]);
}

/** Names of the four table levels, indexed by level number (1 = PT). */
export const LEVEL_NAMES = ["", "PT", "PD", "PDPT", "PML4"] as const;

/** QEMU's isa-debug-exit device: the kernel writes a code, QEMU exits (code << 1) | 1. */
export const DEBUG_EXIT = {
  port: 0xf4,
  /** Written when every selected test passed (QEMU exits 33). */
  pass: 0x10,
  /** Written when at least one test failed (QEMU exits 35). */
  fail: 0x11,
  /** Written by panic() and the exception handlers (QEMU exits 37). */
  panic: 0x12,
} as const;

/**
 * The oracle channel: a second UART (COM2's address) backed by a QEMU ringbuf
 * that the runner writes through QMP to let the kernel go on after a checkpoint.
 */
export const ORACLE_UART = { port: 0x2f8, irq: 3, chardev: "oracle" } as const;

/** QEMU's process exit status for a value the kernel wrote to isa-debug-exit. */
export function qemuExitStatus(code: number): number {
  return (code << 1) | 1;
}

/** How the 32-bit entry tells the C entry which loader started the kernel. */
export const BOOT_PROTOCOL = { pvh: 1, multiboot2: 2, multiboot1: 3 } as const;

/** Size of the early window: one page table's worth of 4 KiB pages. */
export const EARLY_WINDOW_SIZE = LARGE_PAGE_SIZE;

/** Bytes one PML4 slot covers (512 GiB). */
export const PML4_SLOT_SIZE = 1n << levelShift(4);

/** First address above the user half (canonical lower half ends below it): bit VA_BITS - 1. */
export const USER_END = 1n << BigInt(VA_BITS - 1);

/** First PML4 slot of the kernel half (256): the slots at and above it are shared by every space. */
export const KERNEL_FIRST_SLOT = TABLE_ENTRIES / 2;

// ---------------------------------------------------------------------------
// The user half and the initrd window (issue 12). Kept as one block: the
// fields below join LayoutConfig/Layout through `extends`, and
// deriveUserLayout checks them against the kernel facts derived above.
// ---------------------------------------------------------------------------

/** What a project may choose about the user half and the initrd window. */
export interface UserLayoutConfig {
  /** Lowest address a program may be linked at; [0, it) is never mapped (NULL guard). */
  userProgramBase: bigint;
  /** One past the highest address a program's segments may use. */
  userProgramEnd: bigint;
  /** First PML4 slot of the anonymous-mapping (mmap) region. */
  userMmapSlot: number;
  /** PML4 slots the mmap region spans, from userMmapSlot. */
  userMmapSlots: number;
  /** User PML4 slot holding the user stack (its top lies one page below the slot's end). */
  userStackSlot: number;
  /** Largest user stack, in pages; one unmapped guard page lies below it. */
  userStackPages: number;
  /** Kernel-half PML4 slot where the first boot module (the initrd) is mapped read-only. */
  initrdSlot: number;
}

/** The defaults: programs at 4 MiB..1 GiB, mmap in slots 1..254, stack at the top of slot 255. */
export const DEFAULT_USER_LAYOUT_CONFIG: UserLayoutConfig = {
  userProgramBase: 0x40_0000n,
  userProgramEnd: 0x4000_0000n,
  userMmapSlot: 1,
  userMmapSlots: 254,
  userStackSlot: 255,
  userStackPages: 256,
  initrdSlot: 386,
};

/** The user half's regions as addresses, derived from a {@link UserLayoutConfig}. */
export interface UserLayout {
  /** [userMmapBase, userMmapEnd): where anonymous mappings go. */
  userMmapBase: bigint;
  userMmapEnd: bigint;
  /** Initial stack pointer region: the stack is [userStackBottom, userStackTop). */
  userStackTop: bigint;
  userStackBottom: bigint;
  /** The unmapped page below the stack: [userStackGuard, userStackBottom). */
  userStackGuard: bigint;
  /** Base of the initrd window (one PML4 slot, kernel half). */
  initrdBase: bigint;
}

/** Check the user half's configuration against the kernel's and derive its addresses. */
export function deriveUserLayout(
  c: UserLayoutConfig,
  kernelSlots: { name: string; slot: number }[],
): UserLayout {
  const half = TABLE_ENTRIES / 2;
  const userSlot = (name: string, s: number) => {
    if (!Number.isInteger(s) || s < 0 || s >= half) {
      throw new LayoutError(`${name} slot ${s} is not a user-half PML4 slot (0..${half - 1})`);
    }
  };
  if (c.userProgramBase % LARGE_PAGE_SIZE !== 0n || c.userProgramBase < LARGE_PAGE_SIZE) {
    throw new LayoutError(
      "user program base must be 2 MiB-aligned and at least 2 MiB, so a NULL guard lies below it",
    );
  }
  if (c.userProgramEnd % PAGE_SIZE !== 0n || c.userProgramEnd <= c.userProgramBase) {
    throw new LayoutError("user program end must be page-aligned and above the program base");
  }
  userSlot("user mmap", c.userMmapSlot);
  userSlot("user stack", c.userStackSlot);
  if (!Number.isInteger(c.userMmapSlots) || c.userMmapSlots < 1) {
    throw new LayoutError("the user mmap region needs at least one PML4 slot");
  }
  const mmapLast = c.userMmapSlot + c.userMmapSlots - 1;
  userSlot("user mmap region's last", mmapLast);
  const mmapBase = BigInt(c.userMmapSlot) * PML4_SLOT_SIZE;
  if (mmapBase < c.userProgramEnd) {
    throw new LayoutError("the user mmap region overlaps the program area: move it up a slot");
  }
  if (c.userStackSlot >= c.userMmapSlot && c.userStackSlot <= mmapLast) {
    throw new LayoutError(`user stack slot ${c.userStackSlot} lies in the mmap region`);
  }
  if (BigInt(c.userStackSlot + 1) * PML4_SLOT_SIZE <= c.userProgramEnd) {
    throw new LayoutError("the user stack slot lies in the program area");
  }
  if (!Number.isInteger(c.userStackPages) || c.userStackPages < 1) {
    throw new LayoutError("the user stack needs at least one page");
  }
  // One page is left unmapped above the stack, so nothing user-visible ends at a slot boundary.
  const stackTop = BigInt(c.userStackSlot + 1) * PML4_SLOT_SIZE - PAGE_SIZE;
  const stackBottom = stackTop - BigInt(c.userStackPages) * PAGE_SIZE;
  const guard = stackBottom - PAGE_SIZE;
  if (guard < BigInt(c.userStackSlot) * PML4_SLOT_SIZE) {
    throw new LayoutError("the user stack and its guard page do not fit in the stack slot");
  }
  const s = c.initrdSlot;
  if (!Number.isInteger(s) || s < half || s >= TABLE_ENTRIES) {
    throw new LayoutError(`initrd window slot ${s} is not a kernel-half PML4 slot (256..511)`);
  }
  const clash = kernelSlots.find((k) => k.slot === s);
  if (clash) throw new LayoutError(`initrd window slot ${s} collides with ${clash.name}`);
  return {
    userMmapBase: mmapBase,
    userMmapEnd: BigInt(mmapLast + 1) * PML4_SLOT_SIZE,
    userStackTop: stackTop,
    userStackBottom: stackBottom,
    userStackGuard: guard,
    initrdBase: addressOf(s, 0, 0, 0),
  };
}

/** What a project may choose about its layout. */
export interface LayoutConfig extends UserLayoutConfig {
  /** Physical address the image is loaded at (the 32-bit boot code lives here). */
  kernelPhysBase: bigint;
  /** Added to a physical address of the image to get its higher-half virtual address. */
  kernelVirtOffset: bigint;
  /** PML4 slot that points back at the PML4 (the self-map). */
  recursiveSlot: number;
  /** Pages of kernel stack; one unmapped guard page lies below them. */
  kernelStackPages: number;
  /** Largest image (boot code to end of bss) the boot page tables can map. */
  maxKernelSize: bigint;
  /** PML4 slot of the physical frame allocator's free-frame stack (512 GiB of virtual space). */
  pmmStackSlot: number;
  /** PML4 slot of the kernel heap, a demand-zero region. */
  heapSlot: number;
  /**
   * Second recursive slot: while another address space is copied or dropped,
   * PML4[otherSlot] of the current one points at that space's PML4, so its
   * tables appear in a second window (MetalSVM's "other" self-reference).
   */
  otherSlot: number;
  /** PML4 slot of the threads' kernel stacks (each with an unmapped guard page below it). */
  kernelStacksSlot: number;
  /** PML4 slot where device registers (the local APIC) are mapped. */
  mmioSlot: number;
}

/** The defaults: image at 1 MiB, kernel at -2 GiB, self-map in slot 510. */
export const DEFAULT_LAYOUT_CONFIG: LayoutConfig = {
  kernelPhysBase: 0x10_0000n,
  kernelVirtOffset: 0xffff_ffff_8000_0000n,
  recursiveSlot: 510,
  kernelStackPages: 4,
  maxKernelSize: 8n << 20n,
  pmmStackSlot: 384,
  heapSlot: 385,
  otherSlot: 509,
  ...DEFAULT_USER_LAYOUT_CONFIG,
  kernelStacksSlot: 387,
  mmioSlot: 388,
};

/** Everything derived from a validated {@link LayoutConfig}. */
export interface Layout extends LayoutConfig, UserLayout {
  /** Virtual address of the first byte of the self-map window (the PT window). */
  selfMapBase: bigint;
  /** One past the last byte of the self-map window (512 GiB after its base). */
  selfMapEnd: bigint;
  /** Where each level's tables appear through the self-map, by level (1 = PT .. 4 = PML4). */
  tableBase: { 1: bigint; 2: bigint; 3: bigint; 4: bigint };
  /** PML4 slot of the kernel's higher-half mapping. */
  kernelPml4Slot: number;
  /**
   * The early window: the last 2 MiB below -1 GiB. Its page table exists from
   * boot but is empty, so the kernel can map boot-info pages through the
   * self-map before the memory manager runs.
   */
  earlyWindowBase: bigint;
  /** Base of the PMM's free-frame stack region (one PML4 slot). */
  pmmStackBase: bigint;
  /** Base of the demand-zero kernel heap region (one PML4 slot). */
  heapBase: bigint;
  /** Base of the threads' kernel stacks (one PML4 slot). */
  kernelStacksBase: bigint;
  /** Base of the device-register window (one PML4 slot). */
  mmioBase: bigint;
}

/** A layout that cannot work, with the reason. */
export class LayoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LayoutError";
  }
}

const U64 = (1n << 64n) - 1n;

/** The bits of an address the paging structures translate. */
const VA_MASK = (1n << BigInt(VA_BITS)) - 1n;

/** Sign-extend a VA_BITS-wide virtual address to its canonical 64-bit form. */
export function canonical(addr: bigint): bigint {
  const low = addr & VA_MASK;
  return (low & USER_END) ? (low | (U64 ^ VA_MASK)) : low;
}

/** True when bits 63..VA_BITS-1 of the address are all equal. */
export function isCanonical(addr: bigint): boolean {
  return canonical(addr) === (addr & U64);
}

/** The PML4 (level 4) .. PT (level 1) index of a virtual address. */
export function tableIndex(addr: bigint, level: number): number {
  return Number((addr >> levelShift(level)) & BigInt(TABLE_ENTRIES - 1));
}

/** The virtual address built from four table indices and a page offset. */
export function addressOf(
  pml4: number,
  pdpt: number,
  pd: number,
  pt: number,
  offset = 0n,
): bigint {
  const raw = (BigInt(pml4) << levelShift(4)) | (BigInt(pdpt) << levelShift(3)) |
    (BigInt(pd) << levelShift(2)) | (BigInt(pt) << levelShift(1)) | offset;
  return canonical(raw);
}

/**
 * Virtual address, through the self-map, of the table at `level` that
 * translates `addr` (level 1: the PT holding addr's PTE, 4: the PML4).
 */
export function selfMapTableAddress(
  slot: number,
  level: number,
  addr: bigint,
): bigint {
  // Each level of the self-map shifts the address's indices down by one
  // table and puts the slot in the freed top index.
  let idx = [
    tableIndex(addr, 4),
    tableIndex(addr, 3),
    tableIndex(addr, 2),
    tableIndex(addr, 1),
  ];
  for (let l = 0; l < level; l++) idx = [slot, ...idx.slice(0, 3)];
  return addressOf(idx[0], idx[1], idx[2], idx[3]);
}

/** Check a configuration and derive the full layout, or throw a LayoutError. */
export function deriveLayout(
  config: LayoutConfig = DEFAULT_LAYOUT_CONFIG,
): Layout {
  const c = config;
  const slot = c.recursiveSlot;
  if (!Number.isInteger(slot) || slot < 0 || slot >= TABLE_ENTRIES) {
    throw new LayoutError(
      `recursive slot ${slot} is not a PML4 index (0..${TABLE_ENTRIES - 1})`,
    );
  }
  if (slot === TABLE_ENTRIES - 1) {
    throw new LayoutError(
      "recursive slot 511 is refused: it puts the PML4 at 0xfffffffffffff000, " +
        "the last page of the address space, so pointer arithmetic past any " +
        "table window overflows to 0; it also takes the slot of the -2 GiB kernel",
    );
  }
  if (slot < KERNEL_FIRST_SLOT) {
    throw new LayoutError(
      `recursive slot ${slot} is in the user half: the self-map must live in ` +
        "the kernel half (256..510) so every address space shares it and user code cannot reach it",
    );
  }
  if (c.kernelPhysBase % PAGE_SIZE !== 0n || c.kernelPhysBase < (1n << 20n)) {
    throw new LayoutError(
      "kernel physical base must be page-aligned and at or above 1 MiB",
    );
  }
  if (c.kernelPhysBase + c.maxKernelSize > HUGE_PAGE_SIZE - EARLY_WINDOW_SIZE) {
    throw new LayoutError(
      "the image must fit below 1 GiB - 2 MiB: one boot PD maps it, and its last entry is the early window",
    );
  }
  if (c.kernelVirtOffset !== canonical(c.kernelVirtOffset)) {
    throw new LayoutError("kernel virtual offset is not canonical");
  }
  if (c.kernelVirtOffset < 0xffff_ffff_8000_0000n) {
    throw new LayoutError(
      "kernel virtual offset must be in the top 2 GiB so -mcmodel=kernel can address it",
    );
  }
  if (c.kernelVirtOffset % HUGE_PAGE_SIZE !== 0n) {
    throw new LayoutError("kernel virtual offset must be 1 GiB-aligned");
  }
  const kernelPml4Slot = tableIndex(c.kernelVirtOffset, 4);
  if (slot === kernelPml4Slot) {
    throw new LayoutError(
      `recursive slot ${slot} is the kernel's own PML4 slot`,
    );
  }
  const regions: [string, number][] = [
    ["the PMM stack", c.pmmStackSlot],
    ["the kernel heap", c.heapSlot],
    ["the other-space window", c.otherSlot],
    ["the kernel stacks", c.kernelStacksSlot],
    ["the device window", c.mmioSlot],
  ];
  for (const [name, s] of regions) {
    if (!Number.isInteger(s) || s < KERNEL_FIRST_SLOT || s >= TABLE_ENTRIES) {
      throw new LayoutError(`${name} slot ${s} is not a kernel-half PML4 slot (256..511)`);
    }
    if (s === slot || s === kernelPml4Slot) {
      throw new LayoutError(
        `${name} slot ${s} collides with the ${s === slot ? "self-map" : "kernel image"}`,
      );
    }
  }
  if (new Set(regions.map(([, s]) => s)).size !== regions.length) {
    throw new LayoutError(
      "the PMM stack, the kernel heap, the other-space window, the kernel stacks and the " +
        "device window need different PML4 slots",
    );
  }
  if (!Number.isInteger(c.kernelStackPages) || c.kernelStackPages < 1) {
    throw new LayoutError("kernel stack needs at least one page");
  }
  if (c.maxKernelSize <= 0n || c.maxKernelSize % LARGE_PAGE_SIZE !== 0n) {
    throw new LayoutError("max kernel size must be a positive multiple of 2 MiB");
  }
  const selfMapBase = addressOf(slot, 0, 0, 0);
  const user = deriveUserLayout(c, [
    { name: "the self-map", slot },
    { name: "the kernel image", slot: kernelPml4Slot },
    ...regions.map(([name, s]) => ({ name, slot: s })),
  ]);
  return {
    ...c,
    ...user,
    selfMapBase,
    selfMapEnd: (selfMapBase + PML4_SLOT_SIZE) & U64,
    tableBase: {
      1: selfMapBase,
      2: addressOf(slot, slot, 0, 0),
      3: addressOf(slot, slot, slot, 0),
      4: addressOf(slot, slot, slot, slot),
    },
    kernelPml4Slot,
    earlyWindowBase: c.kernelVirtOffset + HUGE_PAGE_SIZE - EARLY_WINDOW_SIZE,
    pmmStackBase: addressOf(c.pmmStackSlot, 0, 0, 0),
    heapBase: addressOf(c.heapSlot, 0, 0, 0),
    kernelStacksBase: addressOf(c.kernelStacksSlot, 0, 0, 0),
    mmioBase: addressOf(c.mmioSlot, 0, 0, 0),
  };
}

/** Number of page tables the boot tables reserve for the image. */
export function bootPageTableCount(layout: Layout): number {
  const first = layout.kernelPhysBase / LARGE_PAGE_SIZE;
  const last = (layout.kernelPhysBase + layout.maxKernelSize - 1n) /
    LARGE_PAGE_SIZE;
  return Number(last - first + 1n);
}
