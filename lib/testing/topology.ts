// Ready-made LVS networks: a client, a director and real servers wired for one forwarding mode.
import type { DestinationSpec } from '../types';
import { createNetnsGroup, type Netns } from './netns';

/** The forwarding mode a {@link topology} is wired for: masquerading, direct routing, tunnelling. */
export type TopologyMode = 'nat' | 'dr' | 'tun';

/** Encapsulation of a `'tun'` topology. */
export type TopologyTunnel = 'ipip' | 'gue' | 'gre';

/** Options of {@link topology}. */
export interface TopologyOptions {
  /** Number of real servers, 1-16. Default 2. */
  realServers?: number;
  /** For `'tun'`: the encapsulation the real servers decapsulate. Default `'ipip'`. */
  tunnel?: TopologyTunnel;
  /** For `tunnel: 'gue'`: the UDP port the real servers receive GUE on. Default 6080. */
  guePort?: number;
  /** Start of the namespaces' names. Default `'lvs'`. */
  prefix?: string;
}

/** A real server of a {@link Topology}. */
export interface TopologyRealServer {
  /** `rs1`, `rs2`, … (the name to give its test server). */
  readonly name: string;
  readonly ns: Netns;
  /** Its address, the one to add as a destination. */
  readonly address: string;
}

/** The namespaces and addresses of a {@link topology}; remove it when done. */
export interface Topology {
  readonly mode: TopologyMode;
  readonly client: Netns;
  /** Where IPVS runs: `Ipvs.open({ netns: topo.director.path })`. */
  readonly director: Netns;
  readonly realServers: readonly TopologyRealServer[];
  /** The virtual IP the service listens on (a local address of the director). */
  readonly vip: string;
  readonly clientAddress: string;
  /** The IPVS `forward` method for this mode: `'masq'`, `'route'` or `'tunnel'`. */
  readonly forward: 'masq' | 'route' | 'tunnel';
  /** A destination for real server `index` in this mode (with the tunnel settings for `'tun'`). */
  destination(index: number, options?: { port?: number; weight?: number }): DestinationSpec;
  /** Removes every namespace (and so every link and process) of the topology. */
  remove(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const FRONT = '10.0.1';   // client side; in 'dr' and 'tun' also the real servers' segment
const BACK = '10.0.2';    // real servers' segment in 'nat'
const VIP = `${FRONT}.100`;
const TUNNEL_MTU = 1400;  // client MTU in 'tun': room for the encapsulation headers on 1500-byte links

/**
 * Builds a fresh LVS network for `mode`, every host in its own namespace:
 *
 * - `'nat'`: client 10.0.1.2 — director (10.0.1.1, VIP 10.0.1.100; 10.0.2.1 on a bridge) —
 *   real servers 10.0.2.11, .12, … whose default route is the director. IP forwarding on.
 * - `'dr'`: one segment (a bridge in the director's namespace): client 10.0.1.2, director
 *   10.0.1.1 with the VIP 10.0.1.100, real servers 10.0.1.11, .12, … with the VIP on `lo`,
 *   `arp_ignore=1` and `arp_announce=2` so only the director answers ARP for the VIP; replies
 *   go straight to the client.
 * - `'tun'`: the `'dr'` segment, and the real servers decapsulate: `tunl0` (ipip), GUE on
 *   `guePort` through fou and `tunl0`, or `gre0`, with `rp_filter` off. The client's MTU is
 *   1400, so encapsulated packets fit the 1500-byte links without fragmentation.
 *
 * The IPVS service itself is yours to add, on `topo.director`, with `topo.destination(i)`.
 * Rejects (after removing what it made) when the kernel lacks what the mode needs.
 */
export async function topology(mode: TopologyMode, options: TopologyOptions = {}): Promise<Topology> {
  if (mode !== 'nat' && mode !== 'dr' && mode !== 'tun') throw new TypeError(`mode must be 'nat', 'dr' or 'tun', got ${JSON.stringify(mode)}`);
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const count = options.realServers ?? 2;
  if (!Number.isInteger(count) || count < 1 || count > 16) throw new RangeError(`options.realServers must be an integer between 1 and 16, got ${String(options.realServers)}`);
  const tunnel = options.tunnel ?? 'ipip';
  if (tunnel !== 'ipip' && tunnel !== 'gue' && tunnel !== 'gre') throw new TypeError(`options.tunnel must be 'ipip', 'gue' or 'gre', got ${JSON.stringify(tunnel)}`);
  if (options.tunnel !== undefined && mode !== 'tun') throw new TypeError(`options.tunnel is for 'tun' topologies, not '${mode}'`);
  const guePort = options.guePort ?? 6080;
  if (!Number.isInteger(guePort) || guePort < 1 || guePort > 65535) throw new RangeError(`options.guePort must be between 1 and 65535, got ${String(options.guePort)}`);
  const prefix = options.prefix ?? 'lvs';

  const made = await createNetnsGroup(['c', 'd', ...Array.from({ length: count }, (_, i) => `r${i + 1}`)].map((role) => `${prefix}-${role}`));
  const removeAll = async () => {
    const errors = (await Promise.allSettled(made.map((ns) => ns.remove()))).filter((r) => r.status === 'rejected');
    if (errors.length > 0) throw (errors[0] as PromiseRejectedResult).reason;
  };

  try {
    const [client, director, ...servers] = made as [Netns, Netns, ...Netns[]];
    const onFront = mode !== 'nat';
    const serverNet = onFront ? FRONT : BACK;
    const realServers: TopologyRealServer[] = servers.map((ns, i) => ({ name: `rs${i + 1}`, ns, address: `${serverNet}.${11 + i}` }));
    const mtu = mode === 'tun' ? ['mtu', String(TUNNEL_MTU)] : [];

    // The director makes every cable (each peer end goes straight into its namespace), then
    // each host configures its own end; one `ip` process per namespace.
    const directorCommands: string[][] = [
      ['link', 'set', 'lo', 'up'],
      ['link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0'],
      ['link', 'add', onFront ? 'client' : 'eth0', ...mtu, 'type', 'veth', 'peer', 'name', 'eth0', ...mtu, 'netns', client.name],
    ];
    if (onFront) {
      directorCommands.push(['addr', 'add', `${FRONT}.1/24`, 'dev', 'br0'], ['addr', 'add', `${VIP}/32`, 'dev', 'br0'], ['link', 'set', 'client', 'master', 'br0'], ['link', 'set', 'client', 'up']);
    } else {
      directorCommands.push(['addr', 'add', `${FRONT}.1/24`, 'dev', 'eth0'], ['addr', 'add', `${VIP}/32`, 'dev', 'eth0'], ['link', 'set', 'eth0', 'up'], ['addr', 'add', `${BACK}.1/24`, 'dev', 'br0']);
    }
    for (const rs of realServers) {
      directorCommands.push(['link', 'add', rs.name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', rs.ns.name], ['link', 'set', rs.name, 'master', 'br0'], ['link', 'set', rs.name, 'up']);
    }
    directorCommands.push(['link', 'set', 'br0', 'up']);
    await director.ipBatch(directorCommands);

    const endpoint = (address: string, gateway: string): string[][] => [
      ['link', 'set', 'lo', 'up'], ['addr', 'add', `${address}/24`, 'dev', 'eth0'], ['link', 'set', 'eth0', 'up'], ['route', 'add', 'default', 'via', gateway],
    ];
    const tunnelDevice = tunnel === 'gre' ? 'gre0' : 'tunl0';   // the fallback devices accept any remote
    await Promise.all([
      director.sysctl('net.ipv4.ip_forward', 1),
      client.ipBatch(endpoint(`${FRONT}.2`, `${FRONT}.1`)),
      ...realServers.map(async (rs) => {
        const commands = endpoint(rs.address, `${serverNet}.1`);
        const sysctls: Record<string, number> = {};
        if (onFront) {
          commands.push(['addr', 'add', `${VIP}/32`, 'dev', 'lo']);
          for (const scope of ['all', 'eth0']) {
            Object.assign(sysctls, { [`net.ipv4.conf.${scope}.arp_ignore`]: 1, [`net.ipv4.conf.${scope}.arp_announce`]: 2, [`net.ipv4.conf.${scope}.rp_filter`]: 0 });
          }
        }
        if (mode === 'tun') {
          if (tunnel === 'gue') commands.push(['fou', 'add', 'port', String(guePort), 'gue']);
          commands.push(['link', 'set', tunnelDevice, 'up']);
          sysctls[`net.ipv4.conf.${tunnelDevice}.rp_filter`] = 0;
        }
        try {
          await rs.ns.ipBatch(commands);
        } catch (error) {
          if (mode !== 'tun') throw error;
          const needs = tunnel === 'gue' ? 'the fou and ipip modules' : tunnel === 'gre' ? 'the ip_gre module' : 'the ipip module';
          throw new Error(`cannot set up a '${tunnel}' tunnel receiver; this kernel needs ${needs}: ${String(error)}`, { cause: error });
        }
        if (Object.keys(sysctls).length > 0) await rs.ns.sysctl(sysctls);
      }),
    ]);

    const forward = mode === 'nat' ? 'masq' : mode === 'dr' ? 'route' : 'tunnel';
    return {
      mode, client, director, realServers, vip: VIP, clientAddress: `${FRONT}.2`, forward,
      destination(index, { port, weight } = {}) {
        const rs = realServers[index];
        if (!rs) throw new RangeError(`index must be between 0 and ${realServers.length - 1}, got ${String(index)}`);
        return {
          address: rs.address, forward,
          ...(port !== undefined ? { port } : {}),
          ...(weight !== undefined ? { weight } : {}),
          ...(mode === 'tun' ? { tunnel: tunnel === 'gue' ? { type: 'gue', port: guePort } : { type: tunnel } } : {}),
        } as DestinationSpec;
      },
      remove: removeAll,
      [Symbol.asyncDispose]: removeAll,
    };
  } catch (error) {
    await removeAll().catch(() => undefined);
    throw error;
  }
}
