/**
 * A private test network: a network namespace holding a bridge (where the
 * PXE server listens) and a tap device (QEMU's NIC), and a second namespace
 * for the rest of the LAN (the "site": its router advertising IPv6, its
 * DHCP server in proxy mode), joined to the bridge by a veth pair. The
 * addresses exist only inside these namespaces: nothing is routed to or
 * from the host's networks.
 *
 * The site's IPv6 router advertisement is not decoration: iPXE configures
 * IPv6 and DHCP together and waits for both, so on a LAN without a router
 * it waits out its IPv6 timeout (13 s measured) before the first TFTP
 * request.
 *
 * Making namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN);
 * {@link namespaceSupport} says whether this machine can, and why not.
 */
import process from "node:process";

/** The addresses of the test network (a /24 used only inside the namespaces). */
export const TEST_NET = {
  prefix: 24,
  /** The bridge: the PXE server's address. */
  server: "10.213.7.1",
  /** The site: router and DHCP server (proxy mode). */
  siteDhcp: "10.213.7.2",
  /** Addresses the DHCP server hands out. */
  first: "10.213.7.100",
  last: "10.213.7.150",
  subnet: "10.213.7.0",
  /** The site's IPv6 prefix (unique local, RFC 4193) and address, for its router advertisements. */
  ipv6Prefix: 64,
  siteIpv6: "fd00:213:7::2",
} as const;

/** Device names inside the namespace. */
export const TEST_DEVICES = {
  bridge: "br0",
  tap: "tap0",
  veth: "veth0",
  siteVeth: "eth0",
} as const;

/** A test network that exists. */
export interface TestNetwork {
  /** The namespace of the bridge, the tap and the PXE server. */
  ns: string;
  /** The namespace of the rest of the LAN (router, site DHCP server). */
  siteNs: string;
}

/** Run `ip ARGS`; throws with ip's message when it fails. */
export async function ip(args: string[]): Promise<void> {
  // Loaded when used: most commands never run it.
  const { execa } = await import("execa");
  const r = await execa("ip", args, { reject: false, stdin: "ignore" });
  if (r.exitCode !== 0) {
    throw new Error(`ip ${args.join(" ")} failed: ${(r.stderr || r.stdout).trim()}`);
  }
}

/** Whether namespaces can be made here: `{ ok: true }` or the reason they cannot. */
export async function namespaceSupport(): Promise<{ ok: true } | { ok: false; reason: string }> {
  const uid = process.getuid?.();
  if (uid !== 0) {
    return { ok: false, reason: `not root (uid ${uid}): network namespaces need root` };
  }
  const probe = `ouro-probe-${process.pid}`;
  try {
    await ip(["netns", "add", probe]);
  } catch (e) {
    return { ok: false, reason: `cannot create a network namespace: ${(e as Error).message}` };
  }
  await ip(["netns", "del", probe]).catch(() => {});
  return { ok: true };
}

/** Make the namespaces, the bridge (with the server's address), the tap and the site's link. */
export async function createTestNetwork(name: string): Promise<TestNetwork> {
  const net: TestNetwork = { ns: name, siteNs: `${name}-site` };
  const { bridge, tap, veth, siteVeth } = TEST_DEVICES;
  const inNs = (args: string[]) => ip(["-n", name, ...args]);
  await ip(["netns", "add", name]);
  try {
    await inNs(["link", "set", "lo", "up"]);
    await inNs(["link", "add", bridge, "type", "bridge", "forward_delay", "0"]);
    await inNs(["addr", "add", `${TEST_NET.server}/${TEST_NET.prefix}`, "dev", bridge]);
    await inNs(["link", "set", bridge, "up"]);
    await inNs(["tuntap", "add", "dev", tap, "mode", "tap"]);
    await inNs(["link", "set", tap, "master", bridge, "up"]);
    const site = (args: string[]) => ip(["-n", net.siteNs, ...args]);
    await ip(["netns", "add", net.siteNs]);
    await inNs([
      "link",
      "add",
      veth,
      "type",
      "veth",
      "peer",
      "name",
      siteVeth,
      "netns",
      net.siteNs,
    ]);
    await inNs(["link", "set", veth, "master", bridge, "up"]);
    await site(["link", "set", "lo", "up"]);
    await site(["addr", "add", `${TEST_NET.siteDhcp}/${TEST_NET.prefix}`, "dev", siteVeth]);
    const v6 = `${TEST_NET.siteIpv6}/${TEST_NET.ipv6Prefix}`;
    await site(["addr", "add", v6, "dev", siteVeth, "nodad"]);
    await site(["link", "set", siteVeth, "up"]);
  } catch (e) {
    await deleteTestNetwork(net);
    throw e;
  }
  return net;
}

/** Delete the namespaces (their devices go with them). Processes in them must be gone first. */
export async function deleteTestNetwork(net: TestNetwork): Promise<void> {
  const errors: string[] = [];
  for (const ns of [net.siteNs, net.ns]) {
    await ip(["netns", "del", ns]).catch((e: Error) => errors.push(e.message));
  }
  if (errors.length > 0) throw new Error(errors.join("; "));
}

/** The command line that runs `argv` inside namespace `ns`. */
export function inNamespace(ns: string, argv: readonly string[]): string[] {
  return ["ip", "netns", "exec", ns, ...argv];
}
