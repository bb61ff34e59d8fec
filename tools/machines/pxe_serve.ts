/**
 * `deno task pxe serve --interface IF (--dhcp-range FIRST,LAST | --proxy)`:
 * serve the PXE tree (image/pxe.ts) with dnsmasq on one network interface,
 * as DHCP and TFTP server for a lab network.
 *
 * - full DHCP (`--dhcp-range`): dnsmasq hands out addresses and boot files;
 *   only on a network without another DHCP server;
 * - proxy DHCP (`--proxy`): the network's DHCP server keeps handing out
 *   addresses; dnsmasq answers PXE clients with the boot file only.
 *
 * One of the two must be chosen: a second DHCP server on an office network
 * breaks it. Which file a client gets (RFC 4578 client architecture, RFC
 * 3004 user class):
 *   UEFI x86-64 (arch 7 or 9)         grub/x86_64-efi/core.efi (proxy: core-proxy.efi,
 *                                     image/pxe.ts's writeProxyUefiImage says why)
 *   BIOS client running iPXE          boot.ipxe (the script: kernel.mb1)
 *   BIOS PXE ROM that is not iPXE     undionly.kpxe (iPXE), which asks again
 *
 * dnsmasq runs in the foreground, logs to stderr, does no DNS (port 0),
 * keeps no lease file and reads no configuration file but its arguments.
 */
import { execa } from "execa";
import process from "node:process";
import { BOOT_FILE, PXE_FILES } from "../image/pxe.ts";
import { UsageError } from "../core/usage.ts";

/** How dnsmasq hands out addresses. */
export type DhcpMode =
  | { kind: "full"; first: string; last: string; leaseTime?: string }
  /** `server`: this server's address on the interface (UEFI clients' GRUB asks it by name). */
  | { kind: "proxy"; subnet: string; server: string };

/** What to serve. */
export interface ServeOptions {
  /** The network interface (it must have an IPv4 address). */
  interface: string;
  /** The TFTP root: a PXE tree. */
  root: string;
  mode: DhcpMode;
  /** dnsmasq binary; default `dnsmasq`. */
  dnsmasq?: string;
}

/** The tags dnsmasq sets on a client. */
const TAG = { ipxe: "ipxe", efi: "efi64" } as const;
/** RFC 4578 client architectures of x86-64 UEFI: 7 (EFI BC, what firmware sends) and 9. */
const UEFI_ARCHES = [7, 9] as const;

/** IPv4 address check (dotted quad). */
export function isIpv4(text: string): boolean {
  const parts = text.split(".");
  return parts.length === 4 &&
    parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255 && String(Number(p)) === p);
}

/** dnsmasq's arguments for `options`. */
export function dnsmasqArgs(options: ServeOptions): string[] {
  const args = [
    "--keep-in-foreground",
    "--conf-file=/dev/null",
    "--port=0",
    `--interface=${options.interface}`,
    "--bind-interfaces",
    "--log-facility=-",
    "--log-dhcp",
    "--leasefile-ro",
    "--enable-tftp",
    `--tftp-root=${options.root}`,
    `--dhcp-userclass=set:${TAG.ipxe},iPXE`,
    ...UEFI_ARCHES.map((a) => `--dhcp-match=set:${TAG.efi},option:client-arch,${a}`),
  ];
  if (options.mode.kind === "full") {
    const m = options.mode;
    args.push(
      `--dhcp-range=${m.first},${m.last},${m.leaseTime ?? "1h"}`,
      // iPXE's "no ProxyDHCP" setting (encapsulated option 175.176): there is no proxy to
      // wait for, and iPXE would otherwise wait seconds for one.
      `--dhcp-option=tag:${TAG.ipxe},encap:175,176,1b`,
      // Mutually exclusive tags: dnsmasq's choice among matching lines never matters.
      `--dhcp-boot=tag:${TAG.efi},${BOOT_FILE.uefi}`,
      `--dhcp-boot=tag:${TAG.ipxe},tag:!${TAG.efi},${BOOT_FILE.bios}`,
      `--dhcp-boot=tag:!${TAG.ipxe},tag:!${TAG.efi},${PXE_FILES.undionly}`,
    );
  } else {
    // Proxy DHCP answers with PXE boot services (option 43), one per client kind.
    args.push(
      `--dhcp-range=${options.mode.subnet},proxy`,
      `--pxe-service=tag:${TAG.ipxe},x86PC,ouroboros,${BOOT_FILE.bios}`,
      `--pxe-service=tag:!${TAG.ipxe},x86PC,iPXE,${PXE_FILES.undionly}`,
      `--pxe-service=BC_EFI,ouroboros,${PXE_FILES.uefiProxyBootFile}`,
      `--pxe-service=X86-64_EFI,ouroboros,${PXE_FILES.uefiProxyBootFile}`,
    );
  }
  return args;
}

/** The network (address with host bits cleared) of `address/prefix`. */
export function networkOf(address: string, prefix: number): string {
  const n = address.split(".").reduce((a, p) => (a << 8) | Number(p), 0) >>> 0;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const net = (n & mask) >>> 0;
  return [24, 16, 8, 0].map((s) => (net >>> s) & 0xff).join(".");
}

/** The interface's first IPv4 address and prefix length (`ip -j addr`), or an Error. */
export async function interfaceAddress(name: string): Promise<{ address: string; prefix: number }> {
  const r = await execa("ip", ["-j", "-4", "addr", "show", "dev", name], { reject: false });
  if (r.exitCode !== 0) throw new Error(`no interface ${name}: ${r.stderr.trim()}`);
  const info = JSON.parse(r.stdout) as { addr_info?: { local: string; prefixlen: number }[] }[];
  const a = info[0]?.addr_info?.[0];
  if (a === undefined) throw new Error(`interface ${name} has no IPv4 address`);
  return { address: a.local, prefix: a.prefixlen };
}

/** What `pxe serve` was asked. */
export interface ServeArgs {
  interface: string;
  /** Serve this tree as is (no build); null: build build/pxe first. */
  root: string | null;
  /** Full DHCP range, or null. */
  range: { first: string; last: string } | null;
  proxy: boolean;
  /** The kernel command line for a tree built here. */
  cmdline: string;
}

/** A malformed `pxe serve` command line. */
export class ServeUsageError extends UsageError {
  constructor(message: string) {
    super(message);
    this.name = "ServeUsageError";
  }
}

/** The DHCP mode for parsed arguments (proxy: the interface's own network). */
export async function dhcpModeOf(args: ServeArgs): Promise<DhcpMode> {
  if (args.range !== null) return { kind: "full", ...args.range };
  try {
    const { address, prefix } = await interfaceAddress(args.interface);
    return { kind: "proxy", subnet: networkOf(address, prefix), server: address };
  } catch (e) {
    throw new ServeUsageError(`--proxy: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Run dnsmasq in the foreground until it exits or this process is told to
 * stop (SIGINT, SIGTERM: dnsmasq is stopped too). Resolves to its exit code.
 */
export async function serve(options: ServeOptions): Promise<number> {
  const binary = options.dnsmasq ?? "dnsmasq";
  const args = dnsmasqArgs(options);
  console.error(`pxe serve: ${binary} ${args.join(" ")}`);
  const child = execa(binary, args, {
    reject: false,
    stdin: "ignore",
    stdout: "inherit",
    stderr: "inherit",
  });
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM"];
  const handlers = signals.map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  try {
    const r = await child;
    return r.exitCode ?? 1;
  } finally {
    for (const [s, h] of handlers) process.off(s, h);
  }
}
