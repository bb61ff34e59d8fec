/**
 * `deno task pxe serve`: dnsmasq's arguments and the command line (cheap,
 * by default), then the real thing (with `--config boot-paths`): a network
 * namespace with a bridge, `deno task pxe serve` running dnsmasq on it, and
 * QEMU PXE-booting the kernel through a tap device, for BIOS with full DHCP
 * and for UEFI with proxy DHCP beside a site DHCP server. Where namespaces
 * cannot be made (not root) those two are skipped with the reason.
 */
import assert from "node:assert/strict";
import { execa } from "execa";
import { join } from "node:path";
import { BOOT_FILE, PXE_FILES } from "../tools/image/pxe.ts";
import { ROOT } from "../tools/paths.ts";
import { dnsmasqArgs, isIpv4, networkOf, ServeUsageError } from "../tools/machines/pxe_serve.ts";
import { parseServeArgs } from "../tools/app/image.ts";
import { runOnTarget } from "../tools/run/run.ts";
import { namespaceSupport } from "../tools/machines/netns.ts";
import { LanPxeTarget, type ServerCommand } from "../tools/machines/pxe_lan.ts";
import { bootPathsRequested, NOT_REQUESTED } from "../tools/app/requested.ts";
import { builtKernel, tempDir } from "./support.ts";

const flag = (args: string[], name: string) => args.filter((a) => a.startsWith(`--${name}=`));

Deno.test("pxe serve: full DHCP hands each kind of client its file, nothing else", () => {
  const args = dnsmasqArgs({
    interface: "eth1",
    root: "/srv/tftp",
    mode: { kind: "full", first: "10.0.0.100", last: "10.0.0.199" },
  });
  for (
    const a of [
      "--keep-in-foreground",
      "--conf-file=/dev/null",
      "--port=0",
      "--interface=eth1",
      "--bind-interfaces",
      "--enable-tftp",
      "--tftp-root=/srv/tftp",
      "--leasefile-ro",
      "--dhcp-range=10.0.0.100,10.0.0.199,1h",
    ]
  ) assert.ok(args.includes(a), a);
  assert.deepEqual(flag(args, "dhcp-boot").sort(), [
    `--dhcp-boot=tag:!ipxe,tag:!efi64,${PXE_FILES.undionly}`,
    `--dhcp-boot=tag:efi64,${BOOT_FILE.uefi}`,
    `--dhcp-boot=tag:ipxe,tag:!efi64,${BOOT_FILE.bios}`,
  ]);
  assert.deepEqual(flag(args, "dhcp-match"), [
    "--dhcp-match=set:efi64,option:client-arch,7",
    "--dhcp-match=set:efi64,option:client-arch,9",
  ]);
  assert.ok(args.includes("--dhcp-userclass=set:ipxe,iPXE"));
  assert.equal(flag(args, "pxe-service").length, 0);
});

Deno.test("pxe serve: proxy DHCP offers boot services only, UEFI the server-bound GRUB", () => {
  const args = dnsmasqArgs({
    interface: "eth1",
    root: "/srv/tftp",
    mode: { kind: "proxy", subnet: "10.0.0.0", server: "10.0.0.5" },
  });
  assert.deepEqual(flag(args, "dhcp-range"), ["--dhcp-range=10.0.0.0,proxy"]);
  assert.equal(flag(args, "dhcp-boot").length, 0);
  assert.deepEqual(flag(args, "pxe-service"), [
    `--pxe-service=tag:ipxe,x86PC,ouroboros,${BOOT_FILE.bios}`,
    `--pxe-service=tag:!ipxe,x86PC,iPXE,${PXE_FILES.undionly}`,
    `--pxe-service=BC_EFI,ouroboros,${PXE_FILES.uefiProxyBootFile}`,
    `--pxe-service=X86-64_EFI,ouroboros,${PXE_FILES.uefiProxyBootFile}`,
  ]);
});

Deno.test("pxe serve: the command line needs an interface and exactly one DHCP mode", () => {
  const full = parseServeArgs([
    "--interface",
    "eth1",
    "--dhcp-range",
    "10.0.0.10,10.0.0.20",
    "a=1",
  ]);
  assert.deepEqual(full, {
    interface: "eth1",
    root: null,
    range: { first: "10.0.0.10", last: "10.0.0.20" },
    proxy: false,
    cmdline: "a=1",
  });
  assert.equal(parseServeArgs(["--proxy", "--interface", "x", "--root", "t"]).root, "t");
  const bad: [string[], RegExp][] = [
    [["--proxy"], /--interface is required/],
    [["--interface", "x"], /choose one of --dhcp-range/],
    [["--interface", "x", "--proxy", "--dhcp-range", "1.2.3.4,1.2.3.5"], /choose one of/],
    [["--interface", "x", "--dhcp-range", "1.2.3.4"], /two IPv4 addresses/],
    [["--interface", "x", "--dhcp-range", "1.2.3.4,1.2.3.256"], /two IPv4 addresses/],
    [["--interface", "x", "--proxy", "--port", "1"], /unknown option --port/],
  ];
  for (const [argv, message] of bad) {
    assert.throws(() => parseServeArgs(argv), (e: unknown) => {
      assert.ok(e instanceof ServeUsageError, String(e));
      assert.match(e.message, message);
      return true;
    });
  }
});

Deno.test("pxe serve: addresses and networks", () => {
  assert.equal(networkOf("192.168.7.31", 24), "192.168.7.0");
  assert.equal(networkOf("10.213.7.1", 20), "10.213.0.0");
  assert.equal(networkOf("10.1.2.3", 0), "0.0.0.0");
  assert.ok(isIpv4("10.0.0.1"));
  for (const bad of ["10.0.0", "10.0.0.01", "1.2.3.4.5", "a.b.c.d"]) assert.ok(!isIpv4(bad), bad);
});

Deno.test("pxe serve: no mode chosen is a usage error before anything runs", async () => {
  const r = await execa(Deno.execPath(), [
    "run",
    "-A",
    "tools/cli.ts",
    "pxe",
    "serve",
    "--interface",
    "lo",
  ], {
    cwd: ROOT,
    reject: false,
    env: { NO_COLOR: "1" },
  });
  assert.equal(r.exitCode, 2);
  assert.match(r.stderr, /error: choose one of --dhcp-range FIRST,LAST \(full DHCP\) and --proxy/);
  assert.match(r.stderr, /usage: deno task pxe serve/);
});

// ------------------------------------------------------------ end to end

/** `deno task pxe serve` itself (tools/cli.ts), as a user runs it, inside the namespace. */
const cliServer: ServerCommand = (iface, root, mode) => [
  Deno.execPath(),
  "run",
  "-A",
  join(ROOT, "tools/cli.ts"),
  "pxe",
  "serve",
  "--interface",
  iface,
  "--root",
  root,
  ...(mode.kind === "full" ? ["--dhcp-range", `${mode.first},${mode.last}`] : ["--proxy"]),
];

const support = await namespaceSupport();
const requested = bootPathsRequested();
const skip = !requested ? NOT_REQUESTED : support.ok ? null : support.reason;
if (requested && !support.ok) console.error(`pxe_test: dnsmasq boots skipped: ${support.reason}`);

for (
  const { firmware, dhcp } of [
    { firmware: "bios", dhcp: "full" },
    { firmware: "uefi", dhcp: "proxy" },
  ] as const
) {
  const name = `pxe serve: QEMU (${firmware}) boots the kernel from dnsmasq, ${dhcp} DHCP, ` +
    `in a network namespace`;
  Deno.test({
    name: skip === null ? name : `${name} [skipped: ${skip}]`,
    ignore: skip !== null,
    fn: async () => {
      const built = await builtKernel();
      const [dir, cleanup] = await tempDir();
      try {
        await Deno.chmod(dir, 0o755); // dnsmasq serves files as an unprivileged user
        const target = new LanPxeTarget({
          name: `lan-${firmware}-${dhcp}`,
          workRoot: dir,
          firmware,
          dhcp,
          machine: firmware === "bios" ? "pc" : "q35",
          memory: firmware === "bios" ? "128M" : "256M",
          serverCommand: cliServer,
        });
        const cmdline = "ktest.filter=bootinfo.*";
        const r = await runOnTarget(target, { kernel: built.elf, cmdline }, {
          logFile: join(dir, "serial.log"),
          deadlines: { bootMs: 120_000, silenceMs: 20_000 },
        });
        assert.ok(r.classification.ok, `${r.classification.message}\n${r.stderr}`);
        const protocol = firmware === "bios" ? "multiboot1" : "multiboot2";
        assert.match(
          r.serial.raw,
          new RegExp(`booted by ${protocol}, command line '${cmdline.replace(/[.*]/g, "\\$&")}'`),
        );
        // The files came from dnsmasq over TFTP, to an address in the test network.
        const sent = firmware === "bios" ? PXE_FILES.mb1Image : PXE_FILES.kernel;
        assert.match(
          r.stderr,
          new RegExp(`dnsmasq-tftp\\[\\d+\\]: sent \\S+/${sent} to 10\\.213\\.7\\.`),
        );
        assert.match(
          r.stderr,
          dhcp === "full" ? /DHCPACK\(br0\) 10\.213\.7\./ : /proxy on subnet 10\.213\.7\.0/,
        );
        assert.match(r.stderr, /pxe serve: dnsmasq /, "served by deno task pxe serve");
        // Nothing is left behind.
        const left = await execa("ip", ["netns", "list"]);
        assert.ok(!left.stdout.includes(target.ns), `namespace ${target.ns} deleted`);
      } finally {
        await cleanup();
      }
    },
  });
}
