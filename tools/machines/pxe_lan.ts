/**
 * PXE over a real DHCP/TFTP server: the kernel reaches QEMU exactly as it
 * reaches a lab machine. start() makes a private test network (netns.ts),
 * writes the PXE tree, starts the PXE server on the bridge (by default
 * dnsmasq with the arguments `deno task pxe serve` uses; a caller may run
 * the CLI itself) and, for proxy DHCP, a plain "site" DHCP server in a
 * second namespace, then boots QEMU inside the namespace with its NIC on
 * the tap device. Everything is torn down when the machine is gone; the
 * servers' logs are added to the run's stderr.
 */
import process from "node:process";
import { join } from "node:path";
import { type Firmware, writeProxyUefiImage } from "../image/pxe.ts";
import { type DhcpMode, dnsmasqArgs } from "./pxe_serve.ts";
import { DEFAULT_QEMU } from "./qemu.ts";
import type { BootRequest } from "./target.ts";
import { ensureToolGroups } from "../host/toolcheck.ts";
import {
  type BootPathOptions,
  BootPathTarget,
  pxeNicArgs,
  toolGroupsFor,
  WORK_FILES,
} from "./boot_path.ts";
import {
  createTestNetwork,
  deleteTestNetwork,
  inNamespace,
  namespaceSupport,
  TEST_DEVICES,
  TEST_NET,
  type TestNetwork,
} from "./netns.ts";
import { type Server, startServer } from "./server.ts";

/** The PXE server's command (run inside the namespace) for an interface, a tree and a mode. */
export type ServerCommand = (iface: string, root: string, mode: DhcpMode) => string[];

/** dnsmasq itself, with `deno task pxe serve`'s arguments. */
export const dnsmasqCommand: ServerCommand = (iface, root, mode) => [
  "dnsmasq",
  ...dnsmasqArgs({ interface: iface, root, mode }),
];

/** dnsmasq's log line once its TFTP server is up (it comes after the DHCP lines). */
export const PXE_SERVER_READY = /TFTP root is /;
/** The site's dnsmasq log line once it advertises (after its DHCP lines, if any). */
const SITE_READY = /IPv6 router advertisement enabled/;
/** How long a server may take to come up. */
const SERVER_START_MS = 20_000;

/** Options of a LAN PXE target. */
export type LanPxeOptions = BootPathOptions & {
  firmware: Firmware;
  /** Full DHCP from the PXE server, or proxy DHCP next to a site DHCP server. */
  dhcp: "full" | "proxy";
  /** The PXE server; default {@link dnsmasqCommand}. */
  serverCommand?: ServerCommand;
};

let instances = 0;

/** QEMU PXE-booting from dnsmasq on a private bridge (see the module comment). */
export class LanPxeTarget extends BootPathTarget {
  readonly dhcp: "full" | "proxy";
  readonly ns: string;
  readonly #serverCommand: ServerCommand;
  #net: TestNetwork | null = null;
  #servers: Server[] = [];

  constructor(options: LanPxeOptions) {
    super({ via: "pxe", firmware: options.firmware }, { ...options, qemu: "ip" });
    this.dhcp = options.dhcp;
    this.ns = `ouro-pxe-${process.pid}-${++instances}`;
    this.#serverCommand = options.serverCommand ?? dnsmasqCommand;
  }

  override get description(): string {
    return `${super.description}; dnsmasq (${this.dhcp} DHCP) on a private bridge`;
  }

  protected override mediaArgs(_dir: string): string[] {
    const tap = `tap,id=net0,ifname=${TEST_DEVICES.tap},script=no,downscript=no`;
    return ["-netdev", tap, ...pxeNicArgs("net0")];
  }

  override args(request: BootRequest): string[] {
    return inNamespace(this.ns, [DEFAULT_QEMU, ...super.args(request)]).slice(1);
  }

  override async prepare(request: BootRequest): Promise<void> {
    await ensureToolGroups(["serve", ...toolGroupsFor(this.path)]);
    const support = await namespaceSupport();
    if (!support.ok) throw new Error(support.reason);
    await super.prepare(request);
    this.#net = await createTestNetwork(this.ns);
    this.#servers.push(
      await startServer(
        inNamespace(this.#net.siteNs, this.siteCommand()),
        SITE_READY,
        SERVER_START_MS,
      ),
    );
    const mode: DhcpMode = this.dhcp === "full"
      ? { kind: "full", first: TEST_NET.first, last: TEST_NET.last }
      : { kind: "proxy", subnet: TEST_NET.subnet, server: TEST_NET.server };
    const root = join(this.workDir(request), WORK_FILES.tftp);
    if (mode.kind === "proxy") await writeProxyUefiImage(root, mode.server);
    const command = this.#serverCommand(TEST_DEVICES.bridge, root, mode);
    this.#servers.push(
      await startServer(inNamespace(this.ns, command), PXE_SERVER_READY, SERVER_START_MS),
    );
  }

  /**
   * The rest of the LAN, one dnsmasq: IPv6 router advertisements always,
   * addresses too in proxy mode (the PXE server then hands out none).
   */
  siteCommand(): string[] {
    const { siteVeth } = TEST_DEVICES;
    return [
      "dnsmasq",
      "--keep-in-foreground",
      "--conf-file=/dev/null",
      "--port=0",
      `--interface=${siteVeth}`,
      "--bind-interfaces",
      "--log-facility=-",
      "--leasefile-ro",
      "--enable-ra",
      `--dhcp-range=::,constructor:${siteVeth},ra-only`,
      ...(this.dhcp === "proxy" ? [`--dhcp-range=${TEST_NET.first},${TEST_NET.last},1h`] : []),
    ];
  }

  override async cleanup(_request: BootRequest): Promise<string> {
    const logs: string[] = [];
    for (const s of this.#servers.splice(0)) {
      await s.stop();
      logs.push(s.output.trim());
    }
    if (this.#net !== null) {
      const net = this.#net;
      this.#net = null;
      await deleteTestNetwork(net);
    }
    return logs.filter((l) => l !== "").map((l) => `--- server log ---\n${l}`).join("\n");
  }
}
