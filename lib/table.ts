// The whole table as the addon's listTable packs it (native/ipvs_handle.cc, namespace table):
// one record of u32 words per service and per destination, each ending with its counters.
// Reading typed arrays here is far cheaper than the addon creating ~40 properties and BigInts
// per destination through N-API.
import { decodeAddress, familyName, type AddressFamily } from './address';
import { makeDestination } from './destination';
import { ZERO_STATS, serviceFromWire, type WireService } from './service';
import type { Destination, Service, Stats } from './types';

/** @internal What the addon's listTable resolves to. */
export interface NativeTable {
  services: Uint32Array;
  destinations: Uint32Array;
  /** Schedulers and persistence engines, referred to by index. */
  strings: string[];
}

export type ServiceWithDestinations = Service & { destinations: Destination[] };

const SERVICE_WORDS = 35;
const SVC = {
  present: 0, af: 1, protocol: 2, address: 3, port: 7, fwmark: 8, scheduler: 9, flags: 10, timeout: 11, netmask: 12,
  peName: 13, destinationCount: 14, stats: 15,
} as const;
const SVC_HAS = {
  af: 1 << 0, protocol: 1 << 1, address: 1 << 2, port: 1 << 3, fwmark: 1 << 4, scheduler: 1 << 5, flags: 1 << 6,
  timeout: 1 << 7, netmask: 1 << 8, peName: 1 << 9, stats: 1 << 10,
} as const;
const DESTINATION_WORDS = 37;
const DEST = {
  present: 0, address: 1, port: 5, forward: 6, weight: 7, upperThreshold: 8, lowerThreshold: 9, af: 10, tunnelType: 11,
  tunnelPort: 12, tunnelFlags: 13, activeConnections: 14, inactiveConnections: 15, persistentConnections: 16, stats: 17,
} as const;
const DEST_HAS = {
  address: 1 << 0, port: 1 << 1, forward: 1 << 2, weight: 1 << 3, upperThreshold: 1 << 4, lowerThreshold: 1 << 5,
  af: 1 << 6, tunnelType: 1 << 7, tunnelPort: 1 << 8, tunnelFlags: 1 << 9, activeConnections: 1 << 10,
  inactiveConnections: 1 << 11, persistentConnections: 1 << 12, stats: 1 << 13,
} as const;
/** The u64 counter at w[at] (low word) and w[at + 1] (high word). */
function counter(w: Uint32Array, at: number): bigint {
  const low = w[at]!;
  const high = w[at + 1]!;
  // Idle counters (rates above all) are zero: share the one 0n rather than allocate a BigInt.
  if (high === 0) return low === 0 ? 0n : BigInt(low);
  return (BigInt(high) << 32n) | BigInt(low);
}

function statsAt(w: Uint32Array, at: number): Stats {
  return {
    connections: counter(w, at), packetsIn: counter(w, at + 2), packetsOut: counter(w, at + 4),
    bytesIn: counter(w, at + 6), bytesOut: counter(w, at + 8), connectionRate: counter(w, at + 10),
    packetRateIn: counter(w, at + 12), packetRateOut: counter(w, at + 14), byteRateIn: counter(w, at + 16),
    byteRateOut: counter(w, at + 18),
  };
}

function serviceWire(w: Uint32Array, bytes: Uint8Array, base: number, strings: readonly string[]): WireService {
  const present = w[base + SVC.present]!;
  return {
    af: (present & SVC_HAS.af) !== 0 ? w[base + SVC.af] : undefined,
    protocol: (present & SVC_HAS.protocol) !== 0 ? w[base + SVC.protocol] : undefined,
    address: (present & SVC_HAS.address) !== 0 ? bytes.subarray((base + SVC.address) * 4, (base + SVC.address) * 4 + 16) : undefined,
    port: (present & SVC_HAS.port) !== 0 ? w[base + SVC.port] : undefined,
    fwmark: (present & SVC_HAS.fwmark) !== 0 ? w[base + SVC.fwmark] : undefined,
    scheduler: (present & SVC_HAS.scheduler) !== 0 ? strings[w[base + SVC.scheduler]!] : undefined,
    flags: (present & SVC_HAS.flags) !== 0 ? w[base + SVC.flags] : undefined,
    timeout: (present & SVC_HAS.timeout) !== 0 ? w[base + SVC.timeout] : undefined,
    netmask: (present & SVC_HAS.netmask) !== 0 ? w[base + SVC.netmask] : undefined,
    peName: (present & SVC_HAS.peName) !== 0 ? strings[w[base + SVC.peName]!] : undefined,
    stats: (present & SVC_HAS.stats) !== 0 ? statsAt(w, base + SVC.stats) : undefined,
  };
}

// Absent numeric fields are zero words, which is also destinationFromWire's default for them.
function destinationAt(w: Uint32Array, bytes: Uint8Array, base: number, serviceFamily: AddressFamily): Destination {
  const present = w[base + DEST.present]!;
  const family = (present & DEST_HAS.af) !== 0 ? familyName(w[base + DEST.af]) : serviceFamily;
  return makeDestination(
    decodeAddress(bytes, family, (base + DEST.address) * 4), family, w[base + DEST.port]!, w[base + DEST.forward]!,
    w[base + DEST.weight]!, w[base + DEST.upperThreshold]!, w[base + DEST.lowerThreshold]!,
    w[base + DEST.activeConnections]!, w[base + DEST.inactiveConnections]!, w[base + DEST.persistentConnections]!,
    (present & DEST_HAS.stats) !== 0 ? statsAt(w, base + DEST.stats) : ZERO_STATS,
    (present & DEST_HAS.tunnelType) !== 0 ? w[base + DEST.tunnelType] : undefined, w[base + DEST.tunnelPort]!,
    w[base + DEST.tunnelFlags]!,
  );
}

/**
 * @internal Builds every Service, with its destinations, from the addon's packed table.
 * @throws {Error} when the records are inconsistent (an addon bug), never for kernel data.
 */
export function tableFromNative(table: NativeTable): ServiceWithDestinations[] {
  const services = table.services;
  const serviceBytes = new Uint8Array(services.buffer, services.byteOffset, services.byteLength);
  const dests = table.destinations;
  const destBytes = new Uint8Array(dests.buffer, dests.byteOffset, dests.byteLength);
  const serviceCount = services.length / SERVICE_WORDS;
  const destinationCount = dests.length / DESTINATION_WORDS;
  const result = new Array<ServiceWithDestinations>(serviceCount);
  let next = 0;  // the next destination record
  for (let i = 0; i < serviceCount; i++) {
    const base = i * SERVICE_WORDS;
    const wire = serviceWire(services, serviceBytes, base, table.strings);
    const count = services[base + SVC.destinationCount]!;
    if (next + count > destinationCount) throw new Error('listTable: the addon packed fewer destinations than it counted');
    const family = familyName(wire.af);
    const destinations = new Array<Destination>(count);
    for (let d = 0; d < count; d++, next++) destinations[d] = destinationAt(dests, destBytes, next * DESTINATION_WORDS, family);
    const service = serviceFromWire(wire) as ServiceWithDestinations;
    service.destinations = destinations;
    result[i] = service;
  }
  return result;
}
