// Packed tables (native/table_records.h) for unit tests: from Service objects (the inverse of
// tableFromNative for well-formed tables), and arbitrary ones for property tests, with absent
// fields, both families, fwmarks, tunnels and counters past 2^53. The layout is the addon's.
import fc from 'fast-check';

import { parseAddress } from '../../lib/address';
import { AF_INET, AF_INET6, FORWARD_METHODS, PROTOCOL_NUMBERS, SCHEDULER_FLAG_BITS, SVC_F_ONEPACKET, SVC_F_PERSISTENT,
  TUNNEL_CHECKSUM_FLAGS, TUNNEL_TYPES } from '../../lib/constants';
import type { NativeTable } from '../../lib/native';
import { recordLayout } from '../../lib/records';
import type { ServiceWithDestinations } from '../../lib/table';
import type { Stats } from '../../lib/types';

const COUNTERS = ['connections', 'packetsIn', 'packetsOut', 'bytesIn', 'bytesOut', 'connectionRate', 'packetRateIn',
  'packetRateOut', 'byteRateIn', 'byteRateOut'] as const;

class Strings {
  readonly list: string[] = [];
  index(text: string): number {
    let i = this.list.indexOf(text);
    if (i < 0) i = this.list.push(text) - 1;
    return i;
  }
}

function putStats(words: Uint32Array, at: number, stats: Stats): void {
  COUNTERS.forEach((name, k) => {
    const value = stats[name];
    words[at + 2 * k] = Number(value & 0xffffffffn);
    words[at + 2 * k + 1] = Number(value >> 32n);
  });
}

function putAddress(words: Uint32Array, at: number, address: string): void {
  const bytes = new Uint8Array(16);
  parseAddress(address, bytes);
  new Uint8Array(words.buffer, words.byteOffset + at * 4, 16).set(bytes);
}

/** The packed records the addon would resolve for `table`. */
export function packTable(table: readonly ServiceWithDestinations[]): NativeTable {
  const { service: S, destination: D } = recordLayout();
  const strings = new Strings();
  const destinationCount = table.reduce((n, s) => n + s.destinations.length, 0);
  const services = new Uint32Array(table.length * S.words);
  const destinations = new Uint32Array(destinationCount * D.words);
  let next = 0;
  table.forEach((service, i) => {
    const base = i * S.words;
    const af = service.family === 'inet6' ? AF_INET6 : AF_INET;
    let present = S.bit.af | S.bit.scheduler | S.bit.flags | S.bit.timeout | S.bit.netmask | S.bit.destinationCount | S.bit.stats;
    services[base + S.at.af] = af;
    if ('fwmark' in service) {
      present |= S.bit.fwmark;
      services[base + S.at.fwmark] = service.fwmark;
    } else {
      present |= S.bit.protocol | S.bit.address | S.bit.port;
      services[base + S.at.protocol] = PROTOCOL_NUMBERS[service.protocol as keyof typeof PROTOCOL_NUMBERS] ??
        Number(/\d+$/.exec(service.protocol)?.[0] ?? 0);
      putAddress(services, base + S.at.address, service.address);
      services[base + S.at.port] = service.port;
    }
    services[base + S.at.scheduler] = strings.index(service.scheduler);
    let flags = 0;
    if (service.persistent !== undefined) flags |= SVC_F_PERSISTENT;
    if (service.onePacket) flags |= SVC_F_ONEPACKET;
    for (const flag of service.schedulerFlags) flags |= SCHEDULER_FLAG_BITS[flag];
    services[base + S.at.flags] = flags;
    services[base + S.at.timeout] = service.persistent ?? 0;
    if (typeof service.netmask === 'number') {
      services[base + S.at.netmask] = service.netmask;
    } else {
      const mask = new Uint8Array(16);
      parseAddress(service.netmask, mask);
      services[base + S.at.netmask] = ((mask[0]! << 24) | (mask[1]! << 16) | (mask[2]! << 8) | mask[3]!) >>> 0;
    }
    if (service.persistenceEngine) {
      present |= S.bit.peName;
      services[base + S.at.peName] = strings.index(service.persistenceEngine);
    }
    services[base + S.at.destinationCount] = service.destinations.length;
    putStats(services, base + S.at.stats, service.stats);
    services[base] = present;
    for (const d of service.destinations) {
      const at = next++ * D.words;
      let dpresent = D.bit.address | D.bit.port | D.bit.forward | D.bit.weight | D.bit.upperThreshold | D.bit.lowerThreshold |
        D.bit.af | D.bit.activeConnections | D.bit.inactiveConnections | D.bit.persistentConnections | D.bit.stats;
      putAddress(destinations, at + D.at.address, d.address);
      destinations[at + D.at.port] = d.port;
      destinations[at + D.at.forward] = FORWARD_METHODS[d.forward];
      destinations[at + D.at.weight] = d.weight;
      destinations[at + D.at.upperThreshold] = d.upperThreshold;
      destinations[at + D.at.lowerThreshold] = d.lowerThreshold;
      destinations[at + D.at.af] = d.family === 'inet6' ? AF_INET6 : AF_INET;
      if (d.tunnel) {
        dpresent |= D.bit.tunnelType | D.bit.tunnelPort | D.bit.tunnelFlags;
        destinations[at + D.at.tunnelType] = TUNNEL_TYPES[d.tunnel.type];
        destinations[at + D.at.tunnelPort] = d.tunnel.port ?? 0;
        destinations[at + D.at.tunnelFlags] = TUNNEL_CHECKSUM_FLAGS[d.tunnel.checksum];
      }
      destinations[at + D.at.activeConnections] = d.activeConnections;
      destinations[at + D.at.inactiveConnections] = d.inactiveConnections;
      destinations[at + D.at.persistentConnections] = d.persistentConnections;
      putStats(destinations, at + D.at.stats, d.stats);
      destinations[at] = dpresent;
    }
  });
  return { services, destinations, strings: strings.list };
}

// ---- arbitrary packed tables ------------------------------------------------------------------

const u32 = fc.integer({ min: 0, max: 0xffffffff });

/** A counter's high word: mostly zero, sometimes around 2^53 or at the top. */
const highWord = fc.oneof(
  { weight: 6, arbitrary: fc.constant(0) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 0x1fffff }) },
  { weight: 1, arbitrary: fc.constantFrom(0x1fffff, 0x200000, 0x200001, 0xffffffff) },
  { weight: 1, arbitrary: u32 },
);
const lowWord = fc.oneof(fc.constantFrom(0, 1, 99999999, 100000000, 999999999), u32);
const statsWords = fc.array(fc.tuple(lowWord, highWord), { minLength: 10, maxLength: 10 }).map((pairs) => pairs.flat());

/** 16 address bytes: IPv4, IPv6 of every shape glibc prints differently, or noise. */
const addressBytes = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }),
    fc.integer({ min: 0, max: 255 })).map((b) => [...b, ...new Array(12).fill(0)]),
  fc.constantFrom(
    new Array(16).fill(0),
    [...new Array(15).fill(0), 1],
    [...new Array(10).fill(0), 0xff, 0xff, 10, 0, 0, 1],
    [...new Array(12).fill(0), 10, 0, 0, 1],
    [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1],
    [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
  ),
  fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 16, maxLength: 16 }),
);

const optional = <T>(arbitrary: fc.Arbitrary<T>, absentWeight = 1): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: absentWeight, arbitrary: fc.constant(undefined) }, { weight: 6, arbitrary: arbitrary });

const STRINGS = ['wlc', 'rr', 'sh', 'mh', 'sip', ''];

const serviceFields = fc.record({
  af: optional(fc.constantFrom(AF_INET, AF_INET, AF_INET6, 7)),
  protocol: optional(fc.constantFrom(6, 17, 132, 50)),
  address: optional(addressBytes),
  port: optional(fc.oneof(fc.constantFrom(0, 80, 443, 65535), fc.integer({ min: 0, max: 65535 }))),
  fwmark: optional(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 9 }), fc.constantFrom(0x7fffffff, 0x80000000, 0xffffffff)), 4),
  scheduler: optional(fc.integer({ min: 0, max: STRINGS.length - 1 })),
  flags: optional(fc.integer({ min: 0, max: 0x3f })),
  timeout: optional(fc.integer({ min: 0, max: 86400 })),
  netmask: optional(fc.oneof(fc.constantFrom(0xffffffff, 0xffffff00, 128, 64), u32)),
  peName: optional(fc.integer({ min: 0, max: STRINGS.length - 1 }), 6),
  stats: optional(statsWords),
  destinations: fc.array(fc.record({
    address: optional(addressBytes),
    port: optional(fc.integer({ min: 0, max: 65535 })),
    forward: optional(fc.oneof(fc.integer({ min: 0, max: 7 }), u32)),
    weight: optional(fc.integer({ min: 0, max: 0x7fffffff })),
    upperThreshold: optional(u32),
    lowerThreshold: optional(u32),
    af: optional(fc.constantFrom(AF_INET, AF_INET6), 3),
    tunnelType: optional(fc.integer({ min: 0, max: 3 })),
    tunnelPort: optional(fc.integer({ min: 0, max: 65535 })),
    tunnelFlags: optional(fc.integer({ min: 0, max: 3 })),
    activeConnections: optional(u32),
    inactiveConnections: optional(u32),
    persistentConnections: optional(u32),
    stats: optional(statsWords),
  }), { maxLength: 5 }),
});

/** Arbitrary packed tables, as the addon could resolve them (absent fields are zero words). */
export function nativeTableArbitrary(maxServices = 8): fc.Arbitrary<NativeTable> {
  return fc.array(serviceFields, { maxLength: maxServices }).map((fields) => {
    const { service: S, destination: D } = recordLayout();
    const destinationCount = fields.reduce((n, s) => n + s.destinations.length, 0);
    const services = new Uint32Array(fields.length * S.words);
    const destinations = new Uint32Array(destinationCount * D.words);
    const put = (words: Uint32Array, base: number, at: Record<string, number>, bit: Record<string, number>,
      values: Record<string, unknown>) => {
      let present = 0;
      for (const [name, value] of Object.entries(values)) {
        if (value === undefined || at[name] === undefined) continue;
        present |= bit[name]!;
        if (Array.isArray(value) && name === 'address') {
          new Uint8Array(words.buffer, words.byteOffset + (base + at[name]!) * 4, 16).set(value as number[]);
        } else if (Array.isArray(value)) {
          words.set(value as number[], base + at[name]!);
        } else {
          words[base + at[name]!] = value as number;
        }
      }
      words[base] = present;
    };
    let next = 0;
    fields.forEach((f, i) => {
      const { destinations: dests, ...svc } = f;
      put(services, i * S.words, S.at, S.bit, { ...svc, destinationCount: dests.length });
      for (const d of dests) put(destinations, next++ * D.words, D.at, D.bit, d);
    });
    return { services, destinations, strings: [...STRINGS] };
  });
}
