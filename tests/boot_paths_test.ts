/**
 * Boot paths, the cheap checks (run by default): the multiboot1 image iPXE
 * boots (header disarmed in kernel.elf, armed and consistent in the flat
 * image, refused when broken) and one real boot of it under QEMU's
 * multiboot1 loader; the loaders' configuration texts; the ISO's staged
 * tree and the PXE tree's BIOS part; the boot-path configurations' QEMU
 * command lines. The ISO's and the UEFI tree's contents need GRUB's tools:
 * those tests are skipped, saying so, where they are not installed
 * (`--config boot-paths` installs them). The boots themselves run with
 * `deno task test --config boot-paths`.
 */
import assert from "node:assert/strict";
import { execa } from "execa";
import { join } from "node:path";
import { parseElf, PT_LOAD, symbolValue } from "../tools/core/elf.ts";
import { PXE_NIC_ROM } from "../tools/host/firmware.ts";
import {
  buildIso,
  inspectIso,
  ISO_GRUB_CFG,
  ISO_INITRD,
  ISO_KERNEL,
  readIsoFile,
  stageIso,
} from "../tools/image/iso.ts";
import { CmdlineError, grubConfig, ipxeScript, loaderWords } from "../tools/image/loader_config.ts";
import {
  buildMultiboot1Image,
  findArmedMb1Header,
  MB1,
  mb1Checksum,
  Mb1ImageError,
  readMb1Header,
  validateMultiboot1Image,
} from "../tools/image/multiboot1.ts";
import { buildPxeTree, PXE_FILES } from "../tools/image/pxe.ts";
import { BOOT_PATH_CONFIGS, CONFIGS, getConfig, selectConfigs } from "../tools/run/configs.ts";
import { targetFor } from "../tools/run/targets.ts";
import { runOnTarget } from "../tools/run/run.ts";
import {
  findMissing,
  systemToolEnv,
  type ToolGroup,
  toolName,
  toolsOf,
} from "../tools/host/toolcheck.ts";
import { builtKernel, tempDir } from "./support.ts";

const built = await builtKernel();
const elfBytes = await Deno.readFile(built.elf);
const elf = parseElf(elfBytes);
const phys = (name: string) => Number(symbolValue(elf, name) - built.layout.kernelVirtOffset);

/** A test that needs the tools of `groups`: skipped, saying which are missing, without them. */
async function needs(
  groups: ToolGroup[],
  name: string,
): Promise<{ name: string; ignore: boolean }> {
  const missing = await findMissing(toolsOf(groups), systemToolEnv);
  if (missing.length === 0) return { name, ignore: false };
  const what = missing.map(toolName).join(", ");
  return {
    name: `${name} [skipped: ${what} not installed; --config boot-paths installs them]`,
    ignore: true,
  };
}

// ---------------------------------------------------------------- multiboot1

Deno.test("multiboot1: kernel.elf carries the header disarmed (QEMU -kernel keeps booting PVH)", () => {
  assert.equal(findArmedMb1Header(elf.bytes), null);
  // ...but the header is there, with its magic, in the ELF's boot segment.
  const at = Number(symbolValue(elf, "mb1_header") - built.layout.kernelPhysBase);
  const boot = elf.segments.find((s) =>
    s.type === PT_LOAD && s.paddr === built.layout.kernelPhysBase
  )!;
  const h = readMb1Header(elf.bytes, boot.offset + at);
  assert.equal(h.magic, MB1.headerMagic);
  assert.equal(h.checksum, 0);
});

Deno.test("multiboot1: the flat image is the segments at their physical addresses, header armed", () => {
  const { image, header } = buildMultiboot1Image(elf);
  assert.equal(BigInt(header.loadAddr), built.layout.kernelPhysBase);
  assert.equal(header.headerAddr, Number(symbolValue(elf, "mb1_header")));
  assert.equal(header.entryAddr, Number(symbolValue(elf, "boot_entry_mb1")));
  assert.equal(header.loadEndAddr, phys("__data_end"));
  assert.equal(header.bssEndAddr, phys("__image_end"));
  assert.ok(header.flags & MB1.aoutKludge);
  assert.equal(header.offset, header.headerAddr - header.loadAddr);
  assert.ok(header.offset + MB1.headerSize <= MB1.searchLimit);
  assert.equal(image.length, header.loadEndAddr - header.loadAddr);
  // Every byte of every segment is where the loader puts it, but the checksum word.
  const sum = header.offset + 8;
  for (const s of elf.segments.filter((s) => s.type === PT_LOAD && s.filesz > 0)) {
    const at = Number(s.paddr) - header.loadAddr;
    const want = elf.bytes.subarray(s.offset, s.offset + s.filesz);
    for (let i = 0; i < want.length; i++) {
      if (at + i >= sum && at + i < sum + 4) continue;
      if (image[at + i] !== want[i]) assert.fail(`byte ${at + i} differs from the ELF`);
    }
  }
  assert.deepEqual(validateMultiboot1Image(image), header);
});

Deno.test("multiboot1: a broken image or kernel header is refused, saying what is wrong", () => {
  const { image, header } = buildMultiboot1Image(elf);
  const patched = (offset: number, value: number, rearm = false) => {
    const copy = image.slice();
    const v = new DataView(copy.buffer);
    v.setUint32(header.offset + offset, value, true);
    if (rearm) {
      const h = readMb1Header(copy, header.offset);
      v.setUint32(header.offset + 8, mb1Checksum(h.magic, h.flags), true);
    }
    return copy;
  };
  assert.throws(
    () => validateMultiboot1Image(patched(8, 0)),
    /no multiboot1 header with a valid checksum/,
  );
  assert.throws(
    () => validateMultiboot1Image(patched(4, header.flags & ~MB1.aoutKludge, true)),
    /a\.out kludge flag/,
  );
  assert.throws(
    () => validateMultiboot1Image(patched(12, header.headerAddr + 4, true)),
    /header at file offset/,
  );
  assert.throws(
    () => validateMultiboot1Image(image.subarray(0, image.length - 1)),
    /less than load_end_addr/,
  );
  assert.throws(
    () => validateMultiboot1Image(patched(28, header.loadEndAddr, true)),
    /entry_addr .* outside/,
  );

  // The kernel's own header must agree with its segments, and must not be armed.
  const inElf = (offset: number, value: number) => {
    const copy = elfBytes.slice();
    const boot = elf.segments.find((s) =>
      s.type === PT_LOAD && s.paddr === built.layout.kernelPhysBase
    )!;
    const at = boot.offset + header.offset + offset;
    new DataView(copy.buffer).setUint32(at, value, true);
    return parseElf(copy);
  };
  assert.throws(() => buildMultiboot1Image(inElf(20, header.loadEndAddr + 4)), (e: unknown) => {
    assert.ok(e instanceof Mb1ImageError);
    assert.match(e.message, /load_end_addr is 0x[0-9a-f]+, the ELF says 0x[0-9a-f]+/);
    return true;
  });
  assert.throws(
    () => buildMultiboot1Image(inElf(8, mb1Checksum(header.magic, header.flags))),
    /armed: QEMU -kernel would boot it as multiboot1/,
  );
});

const grubFile = await needs(["pxe-tree"], "multiboot1: GRUB's own parser (grub-file) agrees");
Deno.test({
  ...grubFile,
  fn: async () => {
    const [dir, cleanup] = await tempDir();
    try {
      const mb1 = join(dir, "kernel.mb1");
      await Deno.writeFile(mb1, buildMultiboot1Image(elf).image);
      const is = async (kind: string, file: string) =>
        (await execa("grub-file", [`--is-x86-${kind}`, file], { reject: false })).exitCode === 0;
      assert.equal(await is("multiboot", mb1), true, "the flat image is multiboot1");
      assert.equal(await is("multiboot", built.elf), false, "kernel.elf is not (disarmed)");
      assert.equal(await is("multiboot2", built.elf), true, "kernel.elf is multiboot2");
    } finally {
      await cleanup();
    }
  },
});

Deno.test("multiboot1: QEMU's loader boots the image; the kernel keeps the command line and the map", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const cmdline = "ktest.filter=bootinfo.*,memmap.*,pmm.*";
    const target = targetFor(getConfig("multiboot1"));
    const r = await runOnTarget(target, { kernel: built.elf, cmdline }, {
      logFile: join(dir, "serial.log"),
      deadlines: { silenceMs: 10_000 },
    });
    assert.ok(r.classification.ok, `${r.classification.message}\n${r.serial.raw.slice(0, 2000)}`);
    // The image's name, which QEMU puts first like every multiboot1 loader, is dropped.
    assert.match(
      r.serial.raw,
      new RegExp(`booted by multiboot1, command line '${cmdline.replace(/[.*]/g, "\\$&")}'`),
    );
    assert.match(r.serial.raw, /# memmap: .* RAM\n/);
    const passed = r.report.suites.flatMap((s) => s.tests).filter((t) => t.ok && !t.skip).map((t) =>
      t.name
    );
    for (const t of ["protocol_known", "memmap_holds_kernel", "cmdline_has_filter"]) {
      assert.ok(passed.includes(t), `${t} passed`);
    }
  } finally {
    await cleanup();
  }
});

// ------------------------------------------------------------ loader configs

Deno.test("loader configs: grub.cfg and the iPXE script carry the command line word for word", () => {
  const cmdline = "ktest.filter=pmm.*,vmm.?  selftest=panic";
  const cfg = grubConfig("/boot/kernel.elf", cmdline);
  assert.match(cfg, /^set timeout=0$/m);
  assert.match(
    cfg,
    /^\s+multiboot2 \/boot\/kernel\.elf 'ktest\.filter=pmm\.\*,vmm\.\?' 'selftest=panic'$/m,
  );
  assert.match(cfg, /^\s+boot$/m);
  const script = ipxeScript("kernel.mb1", cmdline);
  assert.ok(script.startsWith("#!ipxe\n"));
  assert.match(
    script,
    /^kernel kernel\.mb1 ktest\.filter=pmm\.\*,vmm\.\? selftest=panic \|\| goto failed$/m,
  );
  assert.match(script, /^boot \|\| goto failed$/m);
  assert.equal(grubConfig("/k", "").match(/multiboot2 \/k$/m)?.length, 1);
  // The initrd, when there is one, is the first module of both.
  assert.doesNotMatch(cfg, /module2/);
  assert.match(
    grubConfig("/k", "", { initrd: "/boot/initrd.cpio" }),
    /^\s+multiboot2 \/k\n\s+module2 \/boot\/initrd\.cpio initrd\n\s+boot$/m,
  );
  assert.match(
    ipxeScript("kernel.mb1", "a=1", "initrd.cpio"),
    /^kernel kernel\.mb1 a=1 \|\| goto failed\nmodule initrd\.cpio initrd \|\| goto failed\nboot/m,
  );
});

Deno.test("loader configs: words neither language can carry are refused, by word", () => {
  assert.deepEqual(loaderWords("  a=1\tb "), ["a=1", "b"]);
  for (const bad of ["x=${net0/ip}", "a='q'", "a;b", "#c", "a\\b", "é"]) {
    assert.throws(() => grubConfig("/k", `ok ${bad}`), (e: unknown) => {
      assert.ok(e instanceof CmdlineError);
      assert.ok(e.message.includes(`'${bad}'`), e.message);
      return true;
    });
  }
});

// --------------------------------------------------------------- ISO and PXE

Deno.test("iso: the staged tree holds the kernel and a grub.cfg that boots it with multiboot2", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const files = await stageIso(built.elf, "ktest.filter=layout.*", dir);
    assert.deepEqual(files.sort(), ["boot/grub/grub.cfg", "boot/initrd.cpio", "boot/kernel.elf"]);
    assert.deepEqual(await Deno.readFile(join(dir, ISO_KERNEL)), elfBytes);
    assert.deepEqual(
      await Deno.readFile(join(dir, ISO_INITRD)),
      await Deno.readFile(built.user!.initrd),
    );
    const cfg = await Deno.readTextFile(join(dir, ISO_GRUB_CFG));
    assert.match(cfg, /multiboot2 \/boot\/kernel\.elf 'ktest\.filter=layout\.\*'/);
    assert.match(cfg, /module2 \/boot\/initrd\.cpio initrd/);
  } finally {
    await cleanup();
  }
});

Deno.test("pxe: the BIOS part of the tree is iPXE's script and the multiboot1 image", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const tree = await buildPxeTree({
      kernel: built.elf,
      cmdline: "ktest.filter=pmm.*",
      out: dir,
      firmware: ["bios"],
    });
    assert.deepEqual(tree.firmware, ["bios"]);
    for (const f of [PXE_FILES.ipxeScript, PXE_FILES.mb1Image]) {
      assert.ok(tree.files.includes(f), f);
    }
    assert.equal(tree.files.includes(PXE_FILES.uefiBootFile), false);
    const script = await Deno.readTextFile(join(dir, PXE_FILES.ipxeScript));
    assert.match(script, /^kernel kernel\.mb1 ktest\.filter=pmm\.\* /m);
    assert.match(script, /^module initrd\.cpio initrd /m);
    assert.deepEqual(
      await Deno.readFile(join(dir, PXE_FILES.initrd)),
      await Deno.readFile(built.user!.initrd),
    );
    validateMultiboot1Image(await Deno.readFile(join(dir, PXE_FILES.mb1Image)));
    // World-readable: dnsmasq serves files as an unprivileged user.
    assert.equal((await Deno.stat(join(dir, PXE_FILES.ipxeScript))).mode! & 0o444, 0o444);
  } finally {
    await cleanup();
  }
});

Deno.test("boot paths: their own group, outside `all`; each boots through its firmware", () => {
  const names = BOOT_PATH_CONFIGS.map((c) => c.name);
  assert.deepEqual(selectConfigs("boot-paths").map((c) => c.name), names);
  assert.deepEqual(names, ["multiboot1", "iso-bios", "iso-uefi", "pxe-bios", "pxe-uefi"]);
  assert.equal(selectConfigs("all").length, CONFIGS.length);
  assert.ok(selectConfigs("all").every((c) => c.boot === undefined));
  const request = { kernel: built.elf, cmdline: "ktest.filter=x" };
  const argsOf = (name: string) => targetFor(getConfig(name), { accel: "tcg" }).args(request);
  const mb1 = argsOf("multiboot1");
  assert.match(mb1[mb1.indexOf("-kernel") + 1], /kernel\.mb1$/);
  assert.equal(mb1[mb1.indexOf("-append") + 1], "ktest.filter=x");
  assert.equal(
    mb1[mb1.indexOf("-initrd") + 1],
    built.user!.initrd,
    "multiboot1: QEMU loads the module",
  );
  for (const name of ["iso-bios", "iso-uefi", "pxe-bios", "pxe-uefi"]) {
    const args = argsOf(name);
    assert.equal(args.includes("-kernel"), false, `${name}: firmware loads the kernel`);
    assert.equal(args.includes("-append"), false, name);
    assert.equal(args.includes("-initrd"), false, `${name}: the loader loads the initrd`);
    const uefi = name.endsWith("uefi");
    assert.equal(
      args.some((a) => a.startsWith("if=pflash") && a.includes("OVMF_CODE")),
      uefi,
      name,
    );
    assert.equal(
      args.some((a) => a.startsWith("if=pflash") && a.includes("readonly=on")),
      uefi,
      name,
    );
  }
  assert.match(argsOf("iso-uefi")[argsOf("iso-uefi").indexOf("-cdrom") + 1], /\.iso$/);
  const pxe = argsOf("pxe-uefi");
  const netdev = pxe[pxe.indexOf("-netdev") + 1];
  assert.match(netdev, /^user,id=net0,restrict=on,tftp=.*,bootfile=grub\/x86_64-efi\/core\.efi$/);
  assert.ok(pxe.includes(`e1000,netdev=net0,romfile=${PXE_NIC_ROM}`));
  assert.equal(pxe[pxe.indexOf("-boot") + 1], "n");
  assert.match(
    argsOf("pxe-bios")[argsOf("pxe-bios").indexOf("-netdev") + 1],
    /bootfile=boot\.ipxe$/,
  );
});

const isoTools = await needs(
  ["iso"],
  "iso: hybrid: El Torito for BIOS and UEFI, MBR and GPT, our grub.cfg",
);
Deno.test({
  ...isoTools,
  fn: async () => {
    const [dir, cleanup] = await tempDir();
    try {
      const iso = join(dir, "test.iso");
      await buildIso({ kernel: built.elf, cmdline: "ktest.filter=pmm.*", out: iso });
      const info = await inspectIso(iso);
      assert.deepEqual(info.bootImages.map((b) => b.platform).sort(), ["BIOS", "UEFI"]);
      assert.ok(info.hybrid, "MBR and GPT in the system area");
      assert.ok(info.files.includes(ISO_KERNEL) && info.files.includes(ISO_GRUB_CFG));
      for (const p of ["i386-pc", "x86_64-efi"]) {
        assert.ok(info.files.includes(`/boot/grub/${p}/multiboot2.mod`), `${p} multiboot2.mod`);
      }
      await readIsoFile(iso, ISO_GRUB_CFG, join(dir, "grub.cfg"));
      assert.equal(
        await Deno.readTextFile(join(dir, "grub.cfg")),
        grubConfig(ISO_KERNEL, "ktest.filter=pmm.*", { initrd: ISO_INITRD }),
      );
      assert.ok(info.files.includes(ISO_INITRD));
      await readIsoFile(iso, ISO_KERNEL, join(dir, "kernel.elf"));
      assert.deepEqual(await Deno.readFile(join(dir, "kernel.elf")), elfBytes);
    } finally {
      await cleanup();
    }
  },
});

const uefiTree = await needs(
  ["pxe-tree"],
  "pxe: the UEFI part is GRUB's netboot image, its grub.cfg, the kernel",
);
Deno.test({
  ...uefiTree,
  fn: async () => {
    const [dir, cleanup] = await tempDir();
    try {
      const tree = await buildPxeTree({ kernel: built.elf, cmdline: "a=1", out: dir });
      assert.deepEqual(tree.firmware, ["bios", "uefi"]);
      const core = await Deno.readFile(join(dir, PXE_FILES.uefiBootFile));
      assert.equal(new TextDecoder().decode(core.subarray(0, 2)), "MZ", "a PE image");
      assert.ok((await Deno.stat(join(dir, "grub/x86_64-efi/multiboot2.mod"))).isFile);
      assert.equal(
        await Deno.readTextFile(join(dir, PXE_FILES.grubCfg)),
        grubConfig("/kernel.elf", "a=1", { initrd: "/initrd.cpio" }),
      );
      assert.deepEqual(await Deno.readFile(join(dir, PXE_FILES.kernel)), elfBytes);
    } finally {
      await cleanup();
    }
  },
});
