// A digest of the owned part of a live table, to tell whether a plan is stale.
import { FORWARD_METHODS, FWD_MASK, TUNNEL_CHECKSUM_FLAGS, TUNNEL_TYPES } from '../constants';
import type { DesiredTable } from './desired';
import { indexLive } from './diff';
import { layoutOf } from '../table-view';
import { addressTextAt, destinationRecordsOf, type DestinationRecords } from './records';
import type { CheckedScope } from './scope';
import type { TableService } from './settings';
import type { Destination, Service } from '../types';

// Two independent 32-bit lanes (FNV-1a and a Murmur-style multiply), each entry finalised and
// summed, so the digest does not depend on the order the kernel lists things in and is computed
// without building a string per destination (a plan of a 10,000-destination table hashes them all).
const PRIME_A = 0x01000193;
const PRIME_B = 0x5bd1e995;

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

class Lanes {
  a = 0x811c9dc5;
  b = 0x9747b28c;

  text(s: string): this {
    let { a, b } = this;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      a = Math.imul(a ^ c, PRIME_A);
      b = Math.imul(b ^ c, PRIME_B);
    }
    this.a = Math.imul(a ^ 0xff, PRIME_A);  // a terminator, so 'ab','c' differs from 'a','bc'
    this.b = Math.imul(b ^ 0xff, PRIME_B);
    return this;
  }

  number(n: number): this {
    const low = n >>> 0;
    const high = Math.floor(n / 0x100000000) >>> 0;
    this.a = Math.imul(Math.imul(this.a ^ low, PRIME_A) ^ high, PRIME_A);
    this.b = Math.imul(Math.imul(this.b ^ low, PRIME_B) ^ high, PRIME_B);
    return this;
  }
}

const FORWARDS: Record<string, number> = { masq: 1, local: 2, tunnel: 3, route: 4, bypass: 5 };
const TUNNELS: Record<string, number> = { ipip: 1, gue: 2, gre: 3 };
const CHECKSUMS: Record<string, number> = { none: 1, csum: 2, remcsum: 3 };
const FLAGS: Record<string, number> = {
  'sh-fallback': 1, 'mh-fallback': 1, 'flag-1': 1, 'sh-port': 2, 'mh-port': 2, 'flag-2': 2, 'flag-3': 4,
};

function hashDestination(d: Destination, into: Lanes): void {
  into.text(d.address).number(d.port).number(FORWARDS[d.forward] ?? 0).number(d.weight).number(d.upperThreshold).number(d.lowerThreshold);
  if (d.forward === 'tunnel') {
    const tunnel = d.tunnel ?? { type: 'ipip', checksum: 'none' };
    into.number(TUNNELS[tunnel.type] ?? 0).number(tunnel.port ?? 0).number(CHECKSUMS[tunnel.checksum] ?? 0);
  }
}

const FORWARD_NAMES = Object.fromEntries(Object.entries(FORWARD_METHODS).map(([name, n]) => [n, name])) as Record<number, string>;
const TUNNEL_NAMES = Object.fromEntries(Object.entries(TUNNEL_TYPES).map(([name, n]) => [n, name])) as Record<number, string>;

/** As hashDestination of the Destination that record `i` of `records` decodes to, without decoding it. */
function hashDestinationRecord(records: DestinationRecords, i: number, texts: Map<number, string>, into: Lanes): void {
  const L = layoutOf();
  const at = L.dst;
  const w = records.words;
  const base = records.start + i * records.stride;
  const forward = FORWARD_NAMES[w[base + at.forward]! & FWD_MASK] ?? 'masq';
  into.text(addressTextAt(records, i, texts)).number(w[base + at.port]!).number(FORWARDS[forward] ?? 0).number(w[base + at.weight]!)
    .number(w[base + at.upperThreshold]!).number(w[base + at.lowerThreshold]!);
  if (forward === 'tunnel') {
    const typed = (w[base]! & L.dstHas.tunnelType) !== 0;
    const type = typed ? TUNNEL_NAMES[w[base + at.tunnelType]!] ?? 'ipip' : 'ipip';
    const flags = typed ? w[base + at.tunnelFlags]! : 0;
    const checksum = flags & TUNNEL_CHECKSUM_FLAGS.remcsum ? 'remcsum' : flags & TUNNEL_CHECKSUM_FLAGS.csum ? 'csum' : 'none';
    into.number(TUNNELS[type] ?? 0).number(type === 'gue' ? w[base + at.tunnelPort]! : 0).number(CHECKSUMS[checksum] ?? 0);
  }
}

function hashService(s: Service, into: Lanes): void {
  if ('fwmark' in s && s.fwmark !== undefined) into.text('fwmark').number(s.fwmark);
  else {
    const a = s as { protocol: string; address: string; port: number };
    into.text(a.protocol).text(a.address).number(a.port);
  }
  let flags = 0;
  for (const flag of s.schedulerFlags) flags |= FLAGS[flag] ?? 0;
  into.text(s.family).text(s.scheduler).number(s.persistent ?? -1).text(String(s.netmask)).number(s.onePacket ? 1 : 0)
    .number(flags).text(s.persistenceEngine ?? '');
}

/**
 * A digest of the keys and settings of every owned service and of its destinations. The
 * kernel's listing order does not matter; counters, rates and connection counts are left out:
 * traffic never makes a plan stale, while a change of any setting (by hand, by another process)
 * or a service or destination appearing or vanishing in the owned part does. Services outside
 * the scope do not count.
 */
export function fingerprintOwned(live: TableService[], desired: DesiredTable, scope: CheckedScope): string {
  let sumA = 0;
  let sumB = 0;
  let owned = 0;
  const texts = new Map<number, string>();
  for (const [key, service] of indexLive(live)) {
    if (!scope.owns(service, key, desired.positions)) continue;
    owned++;
    let destA = 0;
    let destB = 0;
    // Records are hashed as they are: decoding a table's destinations cost more than hashing them.
    const records = destinationRecordsOf(service);
    const count = records ? records.count : service.destinations.length;
    for (let i = 0; i < count; i++) {
      const lanes = new Lanes();
      if (records) hashDestinationRecord(records, i, texts, lanes);
      else hashDestination(service.destinations[i]!, lanes);
      destA = (destA + fmix(lanes.a)) >>> 0;
      destB = (destB + fmix(lanes.b)) >>> 0;
    }
    const lanes = new Lanes();
    hashService(service, lanes);
    lanes.number(count).number(destA).number(destB);
    sumA = (sumA + fmix(lanes.a)) >>> 0;
    sumB = (sumB + fmix(lanes.b)) >>> 0;
  }
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  return `v1:${owned}:${hex(sumA)}${hex(sumB)}`;
}
