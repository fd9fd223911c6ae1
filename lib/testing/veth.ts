// Virtual Ethernet cables between namespaces.
import type { Bridge } from './bridge';
import type { Netns } from './netns';

/** One end of a veth pair. */
export interface VethEnd {
  /** Interface name in its namespace. Default: `veth0`, `veth1`, … (the first free in this namespace for this kit). */
  name?: string;
  /** CIDR addresses to add (`'10.0.1.2/24'`). */
  addresses?: string | readonly string[];
  /** Enslave this end to a bridge of the same namespace (made by {@link bridge}). */
  bridge?: Bridge;
}

/** Options of {@link veth}. */
export interface VethOptions {
  /** The end in the first namespace. */
  a?: VethEnd;
  /** The end in the second namespace. */
  b?: VethEnd;
  /** MTU of both ends. */
  mtu?: number;
}

/** A veth pair: both ends are up when {@link veth} resolves. */
export interface VethPair {
  a: { ns: Netns; name: string };
  b: { ns: Netns; name: string };
}

const counters = new WeakMap<Netns, number>();

function autoName(ns: Netns): string {
  const n = counters.get(ns) ?? 0;
  counters.set(ns, n + 1);
  return `veth${n}`;
}

/**
 * Connects two namespaces (or two interfaces of one) with a veth pair, adds the addresses,
 * enslaves ends to bridges and brings both ends up.
 *
 * ```ts
 * await veth(client, director, { a: { name: 'eth0', addresses: '10.0.1.2/24' }, b: { name: 'eth0', addresses: '10.0.1.1/24' } });
 * ```
 */
export async function veth(a: Netns, b: Netns, options: VethOptions = {}): Promise<VethPair> {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  if (options.mtu !== undefined && (!Number.isInteger(options.mtu) || options.mtu < 68 || options.mtu > 65535)) {
    throw new RangeError(`options.mtu must be an integer between 68 and 65535, got ${String(options.mtu)}`);
  }
  for (const [end, ns] of [[options.a, a], [options.b, b]] as const) {
    if (end?.bridge && end.bridge.ns !== ns) throw new TypeError(`the bridge ${end.bridge.name} is not in namespace ${ns.name}`);
  }
  const nameA = options.a?.name ?? autoName(a);
  const nameB = options.b?.name ?? autoName(b);
  const mtu = options.mtu === undefined ? [] : ['mtu', String(options.mtu)];
  await a.ip(['link', 'add', nameA, ...mtu, 'type', 'veth', 'peer', 'name', nameB, ...mtu, 'netns', b.name]);
  for (const [ns, name, end] of [[a, nameA, options.a], [b, nameB, options.b]] as const) {
    if (end?.addresses !== undefined) await ns.addAddress(name, end.addresses);
    if (end?.bridge) await end.bridge.attach(name);
    await ns.linkUp(name);
  }
  return { a: { ns: a, name: nameA }, b: { ns: b, name: nameB } };
}
