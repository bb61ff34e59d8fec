/**
 * tools/core/boot_image.ts on crafted images: a bzImage's setup header, PVH
 * notes in 32- and 64-bit ELFs, multiboot1 (address fields, ELF32, ELF64)
 * and multiboot2 headers; QEMU's order when several are present; broken,
 * truncated and hostile files (every prefix of every image, lying sizes),
 * which are refused with a reason and never throw anything else.
 */
import assert from "node:assert/strict";
import {
  BootImageError,
  describeBootImage,
  LINUX,
  loaderProtocol,
  MB1_SCAN,
  MB2_SCAN,
  whyNotQemuKernel,
} from "../tools/core/boot_image.ts";

function put32(b: Uint8Array, off: number, v: number) {
  new DataView(b.buffer, b.byteOffset).setUint32(off, v >>> 0, true);
}
function put16(b: Uint8Array, off: number, v: number) {
  new DataView(b.buffer, b.byteOffset).setUint16(off, v, true);
}
function put64(b: Uint8Array, off: number, v: number) {
  new DataView(b.buffer, b.byteOffset).setBigUint64(off, BigInt(v), true);
}

/** A bzImage: boot sector and setup header, `sects` setup sectors, `payload` bytes of kernel. */
export function bzImage(
  options: { version?: number; sects?: number; payload?: number; high?: boolean } = {},
): Uint8Array {
  const sects = options.sects ?? 4;
  const payload = options.payload ?? 4096;
  const b = new Uint8Array((sects + 1) * 512 + payload);
  b[LINUX.setupSects] = sects;
  put32(b, LINUX.syssize, payload / 16);
  put16(b, LINUX.bootFlag, 0xaa55);
  put32(b, LINUX.headerMagicAt, LINUX.headerMagic);
  put16(b, LINUX.version, options.version ?? 0x20f);
  b[LINUX.loadflags] = options.high === false ? 0 : 1;
  put16(b, LINUX.xloadflags, 1);
  put32(b, LINUX.cmdlineSize, 2047);
  return b;
}

/** An x86 ELF with one PT_LOAD at 1 MiB (`size` bytes) and, if `note`, a PT_NOTE holding it. */
export function elf(
  cls: 32 | 64,
  options: { note?: Uint8Array; size?: number; extra?: (b: Uint8Array) => void } = {},
): Uint8Array {
  const size = options.size ?? 0x3000;
  const ehsize = cls === 64 ? 64 : 52;
  const phentsize = cls === 64 ? 56 : 32;
  const phnum = options.note ? 2 : 1;
  const dataOff = 0x1000;
  const b = new Uint8Array(dataOff + size);
  put32(b, 0, 0x464c457f);
  b[4] = cls === 64 ? 2 : 1;
  b[5] = 1;
  b[6] = 1;
  put16(b, 16, 2);
  put16(b, 18, cls === 64 ? 62 : 3);
  if (cls === 64) {
    put64(b, 24, 0x100000);
    put64(b, 32, ehsize);
    put16(b, 52, ehsize);
    put16(b, 54, phentsize);
    put16(b, 56, phnum);
  } else {
    put32(b, 24, 0x100000);
    put32(b, 28, ehsize);
    put16(b, 40, ehsize);
    put16(b, 42, phentsize);
    put16(b, 44, phnum);
  }
  const ph = (i: number, type: number, off: number, addr: number, filesz: number) => {
    const p = ehsize + i * phentsize;
    put32(b, p, type);
    if (cls === 64) {
      put64(b, p + 8, off);
      put64(b, p + 16, addr);
      put64(b, p + 24, addr);
      put64(b, p + 32, filesz);
      put64(b, p + 40, filesz);
    } else {
      put32(b, p + 4, off);
      put32(b, p + 8, addr);
      put32(b, p + 12, addr);
      put32(b, p + 16, filesz);
      put32(b, p + 20, filesz);
    }
  };
  ph(0, 1, dataOff, 0x100000, size);
  if (options.note) {
    const noteOff = 0x800;
    b.set(options.note, noteOff);
    ph(1, 4, noteOff, 0, options.note.length);
  }
  options.extra?.(b);
  return b;
}

/** An ELF note: name, type, 4-byte aligned desc. */
export function note(name: string, type: number, desc: Uint8Array): Uint8Array {
  const n = new TextEncoder().encode(name + "\0");
  const pad = (x: number) => (x + 3) & ~3;
  const b = new Uint8Array(12 + pad(n.length) + pad(desc.length));
  put32(b, 0, n.length);
  put32(b, 4, desc.length);
  put32(b, 8, type);
  b.set(n, 12);
  b.set(desc, 12 + pad(n.length));
  return b;
}

function entry32(addr: number): Uint8Array {
  const d = new Uint8Array(4);
  put32(d, 0, addr);
  return d;
}

const PVH = (addr = 0x100010) => note("Xen", 18, entry32(addr));

/** A multiboot1 header at `off` of `b` (address fields when `aout`). */
export function putMb1(b: Uint8Array, off: number, aout: boolean, fields?: number[]) {
  const flags = aout ? MB1_SCAN.aoutKludge | 3 : 3;
  put32(b, off, MB1_SCAN.magic);
  put32(b, off + 4, flags);
  put32(b, off + 8, -(MB1_SCAN.magic + flags));
  if (aout) {
    // Loaded from file offset 0 at 1 MiB: header_addr = 1 MiB + off.
    const f = fields ?? [0x100000 + off, 0x100000, 0, 0, 0x100000 + off + 32];
    f.forEach((v, i) => put32(b, off + 12 + 4 * i, v));
  }
}

/** A multiboot2 header at `off` of `b`, with an information-request tag and the end tag. */
export function putMb2(b: Uint8Array, off: number, tags?: Uint8Array) {
  const body = tags ?? new Uint8Array([1, 0, 0, 0, 12, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]);
  const length = 16 + body.length + 8;
  put32(b, off, MB2_SCAN.magic);
  put32(b, off + 4, 0);
  put32(b, off + 8, length);
  put32(b, off + 12, -(MB2_SCAN.magic + length));
  b.set(body, off + 16);
  put16(b, off + 16 + body.length, 0);
  put32(b, off + 16 + body.length + 4, 8);
}

function refusal(bytes: Uint8Array): string {
  try {
    describeBootImage(bytes);
  } catch (e) {
    assert.ok(e instanceof BootImageError, `not a BootImageError: ${e}`);
    return e.message;
  }
  assert.fail("accepted");
}

Deno.test("a bzImage: its boot protocol version, 64-bit entry and command-line size", () => {
  const d = describeBootImage(bzImage());
  assert.equal(d.qemuKernel?.protocol, "linux");
  assert.equal(d.qemuKernel?.detail, "Linux boot protocol 2.15, 64-bit entry");
  assert.equal(d.qemuKernel?.cmdlineMax, 2047);
  assert.equal(describeBootImage(bzImage({ version: 0x205 })).qemuKernel?.cmdlineMax, 255);
});

Deno.test("broken bzImages are refused by what is wrong", () => {
  assert.match(refusal(bzImage({ high: false })), /zImage.*only bzImages/);
  assert.match(refusal(bzImage({ version: 0x1ff })), /boot protocol 1\.255|< 2\.00/);
  const short = bzImage().slice(0, 5 * 512 + 100);
  assert.match(refusal(short), /truncated bzImage: .* promises 4096 bytes .* has 100/);
  const noFlag = bzImage();
  put16(noFlag, LINUX.bootFlag, 0);
  assert.match(refusal(noFlag), /without the 0xAA55 boot flag/);
  assert.match(refusal(bzImage({ sects: 8 }).slice(0, 9 * 512)), /ends at 4608 bytes/);
});

Deno.test("a PVH note in a 64-bit and in a 32-bit ELF", () => {
  for (const cls of [32, 64] as const) {
    const d = describeBootImage(elf(cls, { note: PVH() }));
    assert.equal(d.qemuKernel?.protocol, "pvh");
    assert.equal(d.qemuKernel?.detail, `PVH entry 0x100010 in a ${cls}-bit ELF`);
    assert.equal(d.elfClass, cls);
  }
  // Other notes before it are skipped.
  const two = new Uint8Array([...note("GNU", 3, new Uint8Array(20)), ...PVH()]);
  assert.equal(describeBootImage(elf(64, { note: two })).qemuKernel?.protocol, "pvh");
});

Deno.test("ELFs QEMU cannot boot: no note, an entry outside the image, a lying note", () => {
  assert.match(refusal(elf(64)), /64-bit ELF without a PVH note/);
  assert.match(refusal(elf(64, { note: PVH(0x900000) })), /entry 0x900000 lies in no loaded/);
  const liar = PVH();
  put32(liar, 4, 0xfffffff0);
  assert.match(refusal(elf(64, { note: liar })), /runs past its segment/);
  const wrongSize = note("Xen", 18, new Uint8Array(2));
  assert.match(refusal(elf(64, { note: wrongSize })), /2-byte entry/);
  const phnum = elf(64, { note: PVH() });
  put16(phnum, 56, 0xffff);
  assert.match(refusal(phnum), /program headers .* lie past its end/);
});

Deno.test("multiboot1: address fields, ELF32, and QEMU's refusal of an ELF64", () => {
  const flat = new Uint8Array(0x2000);
  putMb1(flat, 0x40, true);
  const d = describeBootImage(flat);
  assert.equal(d.qemuKernel?.protocol, "multiboot1");
  assert.match(d.qemuKernel!.detail, /address fields, entry 0x100060/);

  const e32 = elf(32);
  putMb1(e32, 0x1000, false);
  assert.equal(describeBootImage(e32).qemuKernel?.protocol, "multiboot1");

  // QEMU takes multiboot1 before PVH, and exits on a 64-bit ELF without the address fields.
  const e64 = elf(64, { note: PVH() });
  putMb1(e64, 0x1000, false);
  const d64 = describeBootImage(e64);
  assert.equal(d64.qemuKernel, null);
  assert.match(whyNotQemuKernel(d64)!, /refuses a 64-bit ELF without the address fields/);
  assert.deepEqual(d64.offers.map((o) => o.protocol), ["multiboot1", "pvh"]);
});

Deno.test("multiboot1 headers that are not there or cannot load", () => {
  const bad = new Uint8Array(0x2000);
  putMb1(bad, 0x40, true);
  put32(bad, 0x48, 1); // checksum
  assert.match(refusal(bad), /multiboot1 magic at 0x40 with a bad checksum/);

  const late = new Uint8Array(0x4000);
  putMb1(late, 0x2000, true);
  assert.match(refusal(late), /no multiboot1 header in the first 8 KiB/);

  const plain = new Uint8Array(0x2000);
  putMb1(plain, 0x40, false);
  assert.match(refusal(plain), /without the address fields .* no ELF/);

  const past = new Uint8Array(0x200);
  putMb1(past, 0x40, true, [0x100040, 0x100000, 0x110000, 0, 0x100060]);
  assert.match(refusal(past), /load_end_addr 0x110000 lies past the file's end/);

  const entry = new Uint8Array(0x200);
  putMb1(entry, 0x40, true, [0x100040, 0x100000, 0, 0, 0x200000]);
  assert.match(refusal(entry), /entry 0x200000 lies outside/);

  const unknown = new Uint8Array(0x200);
  put32(unknown, 0, MB1_SCAN.magic);
  put32(unknown, 4, 0x8);
  put32(unknown, 8, -(MB1_SCAN.magic + 8));
  assert.match(refusal(unknown), /requiring unknown features \(flags 0x8\)/);

  // Just inside the 8 KiB of the specification, outside QEMU's 8 KiB - 48.
  const edge = new Uint8Array(0x3000);
  putMb1(edge, 8192 - 40, true, [0x100000 + 8152, 0x100000, 0, 0, 0x100000 + 8152 + 32]);
  const de = describeBootImage(edge);
  assert.equal(de.offers[0].protocol, "multiboot1");
  assert.equal(de.qemuKernel, null);
  assert.match(whyNotQemuKernel(de)!, /first 8144 bytes/);
});

Deno.test("multiboot2: found and checked, never QEMU's -kernel", () => {
  const b = new Uint8Array(0x1000);
  putMb2(b, 0x100);
  const d = describeBootImage(b);
  assert.equal(d.offers[0].protocol, "multiboot2");
  assert.equal(d.qemuKernel, null);
  assert.match(whyNotQemuKernel(d)!, /no multiboot2 loader \(GRUB/);

  const zeroTag = new Uint8Array(0x1000);
  putMb2(zeroTag, 0, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]));
  assert.match(refusal(zeroTag), /tag of type 1 and size 0/);
  const required = new Uint8Array(0x1000);
  putMb2(required, 0, new Uint8Array([99, 0, 0, 0, 8, 0, 0, 0]));
  assert.match(refusal(required), /unknown tag \(type 99\)/);
  const optional = new Uint8Array(0x1000);
  putMb2(optional, 0, new Uint8Array([99, 0, 1, 0, 8, 0, 0, 0]));
  assert.equal(describeBootImage(optional).offers[0].protocol, "multiboot2");
  const cut = new Uint8Array(0x1000);
  putMb2(cut, 0);
  assert.match(refusal(cut.slice(0, 30)), /past the file's end \(truncated\)/);
  const odd = new Uint8Array(0x1000);
  putMb2(odd, 4);
  assert.match(refusal(odd), /no multiboot2 header in the first 32 KiB/);
});

Deno.test("several protocols: QEMU's -kernel order decides, every one is listed", () => {
  const b = bzImage();
  putMb1(b, 0x1000, true, [0x101000, 0x100000, 0, 0, 0x101020]);
  putMb2(b, 0x1100);
  const d = describeBootImage(b);
  assert.deepEqual(d.offers.map((o) => o.protocol), ["linux", "multiboot1", "multiboot2"]);
  assert.equal(d.qemuKernel?.protocol, "linux");
  const e = elf(64, { note: PVH() });
  putMb2(e, 0x1000);
  assert.equal(describeBootImage(e).qemuKernel?.protocol, "pvh");
});

Deno.test("empty, foreign and random files are refused with what was looked for", () => {
  assert.match(refusal(new Uint8Array(0)), /the file is empty/);
  assert.match(refusal(new TextEncoder().encode("#!/bin/sh\necho hi\n")), /no Linux setup header/);
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16 & 0xff;
  for (let n = 0; n < 20; n++) {
    const b = Uint8Array.from({ length: 9000 }, rand);
    try {
      describeBootImage(b);
    } catch (e) {
      assert.ok(e instanceof BootImageError);
    }
  }
});

Deno.test("every prefix of every crafted image is described or refused, nothing else", () => {
  const mb1 = new Uint8Array(0x300);
  putMb1(mb1, 0x40, true);
  const mb2 = new Uint8Array(0x200);
  putMb2(mb2, 0x40);
  const images = [bzImage({ payload: 256 }), elf(64, { note: PVH(), size: 0x100 }), mb1, mb2];
  for (const image of images) {
    for (let n = 0; n <= image.length; n++) {
      try {
        describeBootImage(image.subarray(0, n));
      } catch (e) {
        assert.ok(e instanceof BootImageError, `prefix ${n}: ${e}`);
      }
    }
  }
});

Deno.test("loaders: GRUB takes Linux, multiboot2, multiboot1; iPXE Linux and loadable multiboot1", () => {
  const mb2 = new Uint8Array(0x1000);
  putMb2(mb2, 0);
  const flat = new Uint8Array(0x2000);
  putMb1(flat, 0x40, true);
  const e64 = elf(64, { note: PVH() });
  putMb1(e64, 0x1000, false);
  const cases: [Uint8Array, string, string][] = [
    [bzImage(), "linux", "linux"],
    [mb2, "multiboot2", "iPXE boots Linux and multiboot1"],
    [flat, "multiboot1", "multiboot1"],
    [e64, "multiboot1", "offers multiboot1, PVH ELF"],
    [elf(64, { note: PVH() }), "GRUB boots Linux", "iPXE boots"],
  ];
  for (const [bytes, grub, ipxe] of cases) {
    const image = describeBootImage(bytes);
    for (const [loader, want] of [["grub", grub], ["ipxe", ipxe]] as const) {
      const got = loaderProtocol(image, loader);
      const text = "protocol" in got ? got.protocol : got.why;
      assert.ok(text.includes(want), `${loader}: ${text}`);
    }
  }
});
