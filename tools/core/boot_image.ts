/**
 * What a prebuilt kernel image is, read from its own bytes: the boot
 * protocols it offers and the one QEMU's `-kernel` would use. Pure: bytes
 * in, a description or a refusal with its reasons out.
 *
 * The protocols, and where each is found:
 * - Linux bzImage: the setup header at 0x1f1 ("HdrS" at 0x202, the boot
 *   protocol version at 0x206; Documentation/x86/boot.rst);
 * - PVH: an ELF (32- or 64-bit) with a Xen note of type
 *   XEN_ELFNOTE_PHYS32_ENTRY (18) in a PT_NOTE segment, the 32-bit entry;
 * - multiboot1: the header (magic 0x1BADB002, flags, checksum) at a 4-byte
 *   aligned offset in the first 8 KiB (Multiboot 0.6.96 §3.1);
 * - multiboot2: the header (magic 0xE85250D6, architecture, length,
 *   checksum, tags ending in an end tag) at an 8-byte aligned offset in the
 *   first 32 KiB (Multiboot2 1.0 §3.1).
 *
 * QEMU's -kernel (hw/i386/x86.c, QEMU 7.2) tries them in this order: the
 * Linux header, then multiboot1 (its scan stops 48 bytes short of 8 KiB,
 * and it refuses a 64-bit ELF without the address fields), then a PVH ELF.
 * QEMU has no multiboot2 loader: such an image needs GRUB.
 */

/** A boot protocol a kernel image can offer. */
export type BootProtocol = "linux" | "multiboot1" | "pvh" | "multiboot2";

/** The protocols in the order QEMU's -kernel tries them (multiboot2 last: QEMU has none). */
export const PROTOCOL_ORDER: readonly BootProtocol[] = ["linux", "multiboot1", "pvh", "multiboot2"];

/** What each protocol is called in messages. */
export const PROTOCOL_NAMES: Readonly<Record<BootProtocol, string>> = {
  linux: "Linux bzImage",
  multiboot1: "multiboot1",
  pvh: "PVH ELF",
  multiboot2: "multiboot2",
};

/** One protocol an image offers. */
export interface ProtocolOffer {
  protocol: BootProtocol;
  /** Byte offset of its header (or note) in the file. */
  offset: number;
  /** One line: "Linux boot protocol 2.15, 64-bit entry". */
  detail: string;
  /** The longest command line it takes, in bytes without the NUL (Linux: cmdline_size). */
  cmdlineMax?: number;
  /** Whether QEMU's -kernel can boot it through this protocol, and if not why. */
  qemuKernel: { ok: true } | { ok: false; why: string };
}

/** A kernel image described. */
export interface BootImage {
  /** Every valid protocol found, in {@link PROTOCOL_ORDER}. */
  offers: ProtocolOffer[];
  /** The offer QEMU's -kernel takes (QEMU's order), or null if -kernel cannot boot it. */
  qemuKernel: ProtocolOffer | null;
  /** Headers found but unusable (a bad checksum, a truncated note), for messages. */
  ignored: string[];
  /** The ELF class (32 or 64) if the file is an ELF, else null. */
  elfClass: 32 | 64 | null;
}

/** A file that is no bootable kernel image; `reasons` says what was looked for and found. */
export class BootImageError extends Error {
  constructor(readonly reasons: string[]) {
    super(`not a kernel image QEMU or GRUB can boot: ${reasons.join("; ")}`);
    this.name = "BootImageError";
  }
}

/** Linux's setup header (Documentation/x86/boot.rst). */
export const LINUX = {
  setupSects: 0x1f1,
  syssize: 0x1f4,
  bootFlag: 0x1fe,
  bootFlagValue: 0xaa55,
  headerMagicAt: 0x202,
  headerMagic: 0x53726448, // "HdrS"
  version: 0x206,
  loadflags: 0x211,
  loadedHigh: 0x01,
  xloadflags: 0x236,
  kernel64: 0x01,
  cmdlineSize: 0x238,
  /** Bytes of the header read (through cmdline_size). */
  headerEnd: 0x23c,
} as const;

/** Multiboot1 (0.6.96 §3.1.1): magic, search window, alignment, known flag bits. */
export const MB1_SCAN = {
  magic: 0x1badb002,
  searchLimit: 8192,
  /** QEMU reads 8 KiB and scans up to 48 bytes short of its end. */
  qemuLimit: 8192 - 48,
  align: 4,
  /** Bits 0-15 a loader must honour or refuse; 0 (page align), 1 (memory info), 2 (video). */
  knownRequired: 0x7,
  aoutKludge: 1 << 16,
} as const;

/** Multiboot2 (1.0 §3.1.1). */
export const MB2_SCAN = {
  magic: 0xe85250d6,
  searchLimit: 32768,
  align: 8,
  /** Architecture 0: 32-bit (protected mode) i386. */
  archI386: 0,
} as const;

/** The Xen note that carries the PVH entry. */
export const PVH_NOTE = { name: "Xen", type: 18 } as const;

const ELF_MAGIC = 0x464c457f;
const PT_LOAD = 1;
const PT_NOTE = 4;
const EM_386 = 3;
const EM_X86_64 = 62;

function u16(b: Uint8Array, off: number): number {
  return b[off] | (b[off + 1] << 8);
}

function u32(b: Uint8Array, off: number): number {
  return (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
}

/** A u64 as a number; addresses past 2^53 are not kernels' physical addresses anyway. */
function u64(b: Uint8Array, off: number): number {
  return u32(b, off) + u32(b, off + 4) * 0x1_0000_0000;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** The Linux offer, null if there is no "HdrS"; a problem string if there is one but broken. */
function linuxOffer(b: Uint8Array): ProtocolOffer | string | null {
  if (b.length < LINUX.version + 2 || u32(b, LINUX.headerMagicAt) !== LINUX.headerMagic) {
    return null;
  }
  const version = u16(b, LINUX.version);
  const v = `${version >> 8}.${(version & 0xff).toString().padStart(2, "0")}`;
  if (b.length < LINUX.headerEnd) {
    return `a Linux setup header (boot protocol ${v}) in a file of ${b.length} bytes: truncated`;
  }
  if (u16(b, LINUX.bootFlag) !== LINUX.bootFlagValue) {
    return `a Linux "HdrS" header without the 0xAA55 boot flag at 0x1fe`;
  }
  if (version < 0x200) return `a Linux setup header with boot protocol ${v} (< 2.00)`;
  const sects = b[LINUX.setupSects] === 0 ? 4 : b[LINUX.setupSects];
  const setupBytes = (sects + 1) * 512;
  if (b.length <= setupBytes) {
    return `a Linux setup header promising ${sects} setup sectors, but the file ends ` +
      `at ${b.length} bytes, before the kernel proper (${setupBytes})`;
  }
  if (version >= 0x204) {
    const payload = u32(b, LINUX.syssize) * 16;
    if (payload > b.length - setupBytes) {
      return `a truncated bzImage: the setup header promises ${payload} bytes of kernel after ` +
        `the setup, the file has ${b.length - setupBytes}`;
    }
  }
  if (!(b[LINUX.loadflags] & LINUX.loadedHigh)) {
    return `a Linux zImage (boot protocol ${v}, not loaded high): only bzImages are supported`;
  }
  const bits64 = version >= 0x20c && (u16(b, LINUX.xloadflags) & LINUX.kernel64) !== 0;
  // Before 2.06 the limit was 255 bytes (boot.rst, cmdline_size).
  const cmdlineMax = version >= 0x206 ? u32(b, LINUX.cmdlineSize) : 255;
  return {
    protocol: "linux",
    offset: 0x1f1,
    detail: `Linux boot protocol ${v}${bits64 ? ", 64-bit entry" : ""}`,
    cmdlineMax,
    qemuKernel: { ok: true },
  };
}

/** The ELF's facts this module needs, or null if it is no ELF; a string for a broken one. */
interface ElfFacts {
  class: 32 | 64;
  machine: number;
  loads: { paddr: number; memsz: number }[];
  notes: { offset: number; size: number }[];
}

function elfFacts(b: Uint8Array): ElfFacts | string | null {
  if (b.length < 4 || u32(b, 0) !== ELF_MAGIC) return null;
  if (b.length < 52) return `an ELF of ${b.length} bytes: shorter than its header`;
  const cls = b[4] === 1 ? 32 : b[4] === 2 ? 64 : null;
  if (cls === null) return `an ELF of unknown class ${b[4]}`;
  if (b[5] !== 1) return "a big-endian ELF (x86 kernels are little-endian)";
  if (cls === 64 && b.length < 64) return `a 64-bit ELF of ${b.length} bytes: truncated header`;
  const machine = u16(b, 18);
  const phoff = cls === 64 ? u64(b, 32) : u32(b, 28);
  const phentsize = u16(b, cls === 64 ? 54 : 42);
  const phnum = u16(b, cls === 64 ? 56 : 44);
  const minEntry = cls === 64 ? 56 : 32;
  if (phnum > 0 && phentsize < minEntry) {
    return `an ELF whose program headers are ${phentsize} bytes (< ${minEntry})`;
  }
  if (phoff + phnum * phentsize > b.length) {
    return `an ELF whose ${phnum} program headers at ${hex(phoff)} lie past its end ` +
      `(${b.length} bytes): truncated`;
  }
  const loads: ElfFacts["loads"] = [];
  const notes: ElfFacts["notes"] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const type = u32(b, p);
    const offset = cls === 64 ? u64(b, p + 8) : u32(b, p + 4);
    const paddr = cls === 64 ? u64(b, p + 24) : u32(b, p + 12);
    const filesz = cls === 64 ? u64(b, p + 32) : u32(b, p + 16);
    const memsz = cls === 64 ? u64(b, p + 40) : u32(b, p + 20);
    if (type === PT_LOAD) loads.push({ paddr, memsz });
    if (type === PT_NOTE) {
      if (offset + filesz > b.length) {
        return `an ELF whose note segment ${i} (${filesz} bytes at ${hex(offset)}) lies past ` +
          `its end (${b.length} bytes): truncated`;
      }
      notes.push({ offset, size: filesz });
    }
  }
  return { class: cls, machine, loads, notes };
}

/** The PVH entry from the ELF's notes: an address, null if none, a string if a note is broken. */
function pvhEntry(b: Uint8Array, elf: ElfFacts): { entry: number; at: number } | string | null {
  const pad = (n: number) => (n + 3) & ~3;
  for (const seg of elf.notes) {
    let p = seg.offset;
    const end = seg.offset + seg.size;
    while (p + 12 <= end) {
      const namesz = u32(b, p);
      const descsz = u32(b, p + 4);
      const type = u32(b, p + 8);
      const name = p + 12;
      const desc = name + pad(namesz);
      if (desc + descsz > end || desc + descsz < desc) {
        return `a note at ${hex(p)} runs past its segment (name ${namesz}, desc ${descsz} bytes)`;
      }
      const nameText = new TextDecoder().decode(b.subarray(name, name + namesz)).replace(
        /\0+$/,
        "",
      );
      if (nameText === PVH_NOTE.name && type === PVH_NOTE.type) {
        if (descsz !== 4 && descsz !== 8) {
          return `the PVH note at ${hex(p)} has a ${descsz}-byte entry (4 or 8 expected)`;
        }
        return { entry: descsz === 8 ? u64(b, desc) : u32(b, desc), at: p };
      }
      p = desc + pad(descsz);
    }
  }
  return null;
}

function pvhOffer(b: Uint8Array, elf: ElfFacts): ProtocolOffer | string | null {
  const found = pvhEntry(b, elf);
  if (found === null || typeof found === "string") return found;
  if (elf.machine !== EM_X86_64 && elf.machine !== EM_386) {
    return `an ELF with a PVH note for machine ${elf.machine} (not x86)`;
  }
  const inside = elf.loads.some((l) => found.entry >= l.paddr && found.entry < l.paddr + l.memsz);
  if (!inside) {
    return `a PVH note whose entry ${hex(found.entry)} lies in no loaded segment`;
  }
  return {
    protocol: "pvh",
    offset: found.at,
    detail: `PVH entry ${hex(found.entry)} in a ${elf.class}-bit ELF`,
    qemuKernel: { ok: true },
  };
}

/** Every aligned offset of `magic` in the first `limit` bytes. */
function scan(b: Uint8Array, magic: number, limit: number, align: number): number[] {
  const out: number[] = [];
  const end = Math.min(limit, b.length) - 4;
  for (let off = 0; off <= end; off += align) if (u32(b, off) === magic) out.push(off);
  return out;
}

function mb1Offer(
  b: Uint8Array,
  elf: ElfFacts | null,
  ignored: string[],
): ProtocolOffer | string | null {
  for (const off of scan(b, MB1_SCAN.magic, MB1_SCAN.searchLimit, MB1_SCAN.align)) {
    if (off + 12 > b.length) {
      ignored.push(`a multiboot1 magic at ${hex(off)} with the file ending inside its header`);
      continue;
    }
    const flags = u32(b, off + 4);
    if (((MB1_SCAN.magic + flags + u32(b, off + 8)) >>> 0) !== 0) {
      ignored.push(`a multiboot1 magic at ${hex(off)} with a bad checksum`);
      continue;
    }
    const unknown = flags & 0xffff & ~MB1_SCAN.knownRequired;
    if (unknown !== 0) {
      return `a multiboot1 header at ${hex(off)} requiring unknown features (flags ${
        hex(unknown)
      })`;
    }
    const fits = off < MB1_SCAN.qemuLimit;
    let qemuKernel: ProtocolOffer["qemuKernel"] = fits
      ? { ok: true }
      : { ok: false, why: `QEMU's loader looks only in the first ${MB1_SCAN.qemuLimit} bytes` };
    let how: string;
    if (flags & MB1_SCAN.aoutKludge) {
      if (off + 32 > b.length) return `a multiboot1 header at ${hex(off)} cut off by the file end`;
      const [headerAddr, loadAddr, loadEnd, bssEnd, entry] = [12, 16, 20, 24, 28].map((d) =>
        u32(b, off + d)
      );
      if (loadAddr > headerAddr || headerAddr - loadAddr > off) {
        return `a multiboot1 header at ${hex(off)} whose load_addr ${hex(loadAddr)} does not ` +
          `place it at header_addr ${hex(headerAddr)}`;
      }
      const fileStart = off - (headerAddr - loadAddr);
      const end = loadEnd === 0 ? loadAddr + (b.length - fileStart) : loadEnd;
      if (end < loadAddr || end - loadAddr > b.length - fileStart) {
        return `a multiboot1 header at ${hex(off)} whose load_end_addr ${hex(loadEnd)} lies ` +
          `past the file's end`;
      }
      const top = bssEnd === 0 ? end : bssEnd;
      if (top < end) return `a multiboot1 header whose bss_end_addr ${hex(bssEnd)} < load end`;
      if (entry < loadAddr || entry >= top) {
        return `a multiboot1 header whose entry ${hex(entry)} lies outside ` +
          `${hex(loadAddr)}..${hex(top)}`;
      }
      how = `address fields, entry ${hex(entry)}`;
    } else if (elf === null) {
      return `a multiboot1 header at ${hex(off)} without the address fields (flag 16) in a ` +
        `file that is no ELF: a loader cannot tell where to put it`;
    } else {
      how = `${elf.class}-bit ELF`;
      if (elf.class === 64 && qemuKernel.ok) {
        qemuKernel = {
          ok: false,
          why: "QEMU's multiboot loader refuses a 64-bit ELF without the address fields (flag 16)",
        };
      }
    }
    return {
      protocol: "multiboot1",
      offset: off,
      detail: `multiboot1 header at ${hex(off)} (${how})`,
      qemuKernel,
    };
  }
  return null;
}

/** End, information request, ... framebuffer, module align, EFI boot services, relocatable. */
const MB2_MAX_TAG = 10;

function mb2Offer(b: Uint8Array, ignored: string[]): ProtocolOffer | string | null {
  for (const off of scan(b, MB2_SCAN.magic, MB2_SCAN.searchLimit, MB2_SCAN.align)) {
    if (off + 16 > b.length) {
      ignored.push(`a multiboot2 magic at ${hex(off)} with the file ending inside its header`);
      continue;
    }
    const arch = u32(b, off + 4);
    const length = u32(b, off + 8);
    if (((MB2_SCAN.magic + arch + length + u32(b, off + 12)) >>> 0) !== 0) {
      ignored.push(`a multiboot2 magic at ${hex(off)} with a bad checksum`);
      continue;
    }
    if (arch !== MB2_SCAN.archI386) {
      return `a multiboot2 header at ${hex(off)} for architecture ${arch} (0, i386, expected)`;
    }
    if (length < 24 || off + length > b.length) {
      return `a multiboot2 header at ${hex(off)} of length ${length}: ` +
        (length < 24 ? "too short for its end tag" : "past the file's end (truncated)");
    }
    // Tags, each 8-byte aligned, until the end tag (type 0, size 8).
    let p = off + 16;
    let ended = false;
    while (p + 8 <= off + length) {
      const type = u16(b, p);
      const size = u32(b, p + 4);
      if (type === 0) {
        ended = size === 8;
        break;
      }
      if (size < 8 || p + size > off + length) {
        return `a multiboot2 header at ${hex(off)} with a tag of type ${type} and size ${size} ` +
          `that does not fit in the header`;
      }
      const optional = (u16(b, p + 2) & 1) !== 0;
      if (type > MB2_MAX_TAG && !optional) {
        return `a multiboot2 header at ${hex(off)} requiring an unknown tag (type ${type})`;
      }
      p += (size + 7) & ~7;
    }
    if (!ended) return `a multiboot2 header at ${hex(off)} without an end tag`;
    return {
      protocol: "multiboot2",
      offset: off,
      detail: `multiboot2 header at ${hex(off)}`,
      qemuKernel: {
        ok: false,
        why: "QEMU's -kernel has no multiboot2 loader (GRUB boots it: --config iso-bios, iso-uefi)",
      },
    };
  }
  return null;
}

/**
 * Describe a kernel image from its bytes; throws {@link BootImageError}
 * saying what was found when it offers no protocol at all. A broken header
 * of one protocol does not hide a valid one of another, but is listed.
 */
export function describeBootImage(bytes: Uint8Array): BootImage {
  const ignored: string[] = [];
  const offers: ProtocolOffer[] = [];
  const take = (r: ProtocolOffer | string | null) => {
    if (typeof r === "string") ignored.push(r);
    else if (r !== null) offers.push(r);
  };
  if (bytes.length === 0) throw new BootImageError(["the file is empty"]);
  const elf = elfFacts(bytes);
  take(linuxOffer(bytes));
  take(mb1Offer(bytes, typeof elf === "object" ? elf : null, ignored));
  if (typeof elf === "string") ignored.push(elf);
  else if (elf !== null) take(pvhOffer(bytes, elf));
  take(mb2Offer(bytes, ignored));
  offers.sort((a, b) => PROTOCOL_ORDER.indexOf(a.protocol) - PROTOCOL_ORDER.indexOf(b.protocol));
  if (offers.length === 0) {
    const looked = elf !== null && typeof elf === "object"
      ? [`a ${elf.class}-bit ELF without a PVH note (Xen note type 18) or multiboot header`]
      : [
        `no Linux setup header ("HdrS" at 0x202), no ELF, no multiboot1 header in the first ` +
        `8 KiB, no multiboot2 header in the first 32 KiB`,
      ];
    throw new BootImageError([...looked, ...ignored]);
  }
  // QEMU's order: "HdrS" decides for Linux even when broken; then a multiboot1 header in
  // its scan window decides (even one it then refuses); then PVH.
  const find = (p: BootProtocol) => offers.find((o) => o.protocol === p) ?? null;
  const hdrS = bytes.length >= LINUX.version &&
    u32(bytes, LINUX.headerMagicAt) === LINUX.headerMagic;
  const mb1 = find("multiboot1");
  let qemuKernel: ProtocolOffer | null;
  if (hdrS) qemuKernel = find("linux");
  else if (mb1 !== null && mb1.offset < MB1_SCAN.qemuLimit) {
    qemuKernel = mb1.qemuKernel.ok ? mb1 : null;
  } else qemuKernel = find("pvh");
  return {
    offers,
    qemuKernel,
    ignored,
    elfClass: typeof elf === "object" && elf !== null ? elf.class : null,
  };
}

/** Why QEMU's -kernel cannot boot this image (null if it can). */
export function whyNotQemuKernel(image: BootImage): string | null {
  if (image.qemuKernel !== null) return null;
  const reasons = image.offers.map((o) =>
    `${PROTOCOL_NAMES[o.protocol]}: ${o.qemuKernel.ok ? "not reached" : o.qemuKernel.why}`
  );
  return reasons.join("; ");
}

/** One line for messages: "Linux bzImage (Linux boot protocol 2.15, 64-bit entry)". */
export function describeOffer(offer: ProtocolOffer): string {
  return `${PROTOCOL_NAMES[offer.protocol]} (${offer.detail})`;
}

/** A boot loader that can deliver a kernel image: GRUB (ISO, UEFI PXE) or iPXE (BIOS PXE). */
export type Loader = "grub" | "ipxe";

/**
 * The protocol `loader` boots `image` with, or why it cannot. GRUB loads
 * Linux (`linux`), multiboot2 and multiboot1, but has no PVH loader; iPXE
 * loads Linux and multiboot1 (an ELF32 or the address fields), not
 * multiboot2 or PVH. Linux first, then multiboot2, then multiboot1.
 */
export function loaderProtocol(
  image: BootImage,
  loader: Loader,
): { protocol: BootProtocol } | { why: string } {
  const has = (p: BootProtocol) => image.offers.find((o) => o.protocol === p);
  if (has("linux")) return { protocol: "linux" };
  if (loader === "grub" && has("multiboot2")) return { protocol: "multiboot2" };
  const mb1 = has("multiboot1");
  if (
    mb1 !== undefined && (loader === "grub" || image.elfClass !== 64 || /address/.test(mb1.detail))
  ) {
    return { protocol: "multiboot1" };
  }
  const offers = image.offers.map((o) => PROTOCOL_NAMES[o.protocol]).join(", ");
  return {
    why: loader === "grub"
      ? `GRUB boots Linux, multiboot2 and multiboot1 kernels; this image offers ${offers}`
      : `iPXE boots Linux and multiboot1 (ELF32 or address fields) kernels; this image offers ${offers}`,
  };
}
