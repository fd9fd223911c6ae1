// A software switch inside a namespace, for several hosts on one Ethernet segment.
import type { Netns } from './netns';

/** Options of {@link bridge}. */
export interface BridgeOptions {
  /** Interface name. Default `'br0'`. */
  name?: string;
  /** CIDR addresses of the bridge itself (the namespace's own address on the segment). */
  addresses?: string | readonly string[];
  /** Existing interfaces of the namespace to enslave. */
  ports?: readonly string[];
}

/** A Linux bridge made by {@link bridge}; it is up, without STP, so ports forward at once. */
export interface Bridge {
  readonly ns: Netns;
  readonly name: string;
  /** Enslaves an interface of the same namespace and brings it up. */
  attach(ifname: string): Promise<void>;
}

/**
 * Creates a bridge in `ns`. Connect other namespaces to it with
 * `veth(other, ns, { b: { bridge: br } })`.
 */
export async function bridge(ns: Netns, options: BridgeOptions = {}): Promise<Bridge> {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const name = options.name ?? 'br0';
  await ns.ip(['link', 'add', name, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
  const br: Bridge = {
    ns,
    name,
    async attach(ifname) {
      await ns.ip(['link', 'set', ifname, 'master', name]);
      await ns.linkUp(ifname);
    },
  };
  if (options.addresses !== undefined) await ns.addAddress(name, options.addresses);
  for (const port of options.ports ?? []) await br.attach(port);
  await ns.linkUp(name);
  return br;
}
