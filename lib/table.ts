// Services and destinations as the addon answers them (native/table_records.h): packed
// service and destination records, the layout read from the addon (lib/records.ts). Reading
// typed arrays here is far cheaper than the addon creating ~40 properties and BigInts per
// destination through N-API.
import { decodeAddress, type AddressFamily } from './address';
import { AF_INET6 } from './constants';
import { makeDestination } from './destination';
import type { NativeTable } from './native';
import { statsAt } from './records';
import { ZERO_STATS, serviceFromWire, type WireService } from './service';
import { bytesOf, layoutOf, type ReplyLayout } from './table-view';
import type { Destination, Service } from './types';

export type ServiceWithDestinations = Service & { destinations: Destination[] };

function serviceWire(L: ReplyLayout, w: Uint32Array, bytes: Uint8Array, base: number, strings: readonly string[]): WireService {
  const present = w[base]!;
  const at = L.svc;
  const has = L.svcHas;
  return {
    af: (present & has.af) !== 0 ? w[base + at.af] : undefined,
    protocol: (present & has.protocol) !== 0 ? w[base + at.protocol] : undefined,
    address: (present & has.address) !== 0 ? bytes.subarray((base + at.address) * 4, (base + at.address) * 4 + 16) : undefined,
    port: (present & has.port) !== 0 ? w[base + at.port] : undefined,
    fwmark: (present & has.fwmark) !== 0 ? w[base + at.fwmark] : undefined,
    scheduler: (present & has.scheduler) !== 0 ? strings[w[base + at.scheduler]!] : undefined,
    flags: (present & has.flags) !== 0 ? w[base + at.flags] : undefined,
    timeout: (present & has.timeout) !== 0 ? w[base + at.timeout] : undefined,
    netmask: (present & has.netmask) !== 0 ? w[base + at.netmask] : undefined,
    peName: (present & has.peName) !== 0 ? strings[w[base + at.peName]!] : undefined,
    stats: (present & has.stats) !== 0 ? statsAt(w, base + at.stats) : undefined,
  };
}

/**
 * Builds `count` destinations from record `first` of `w` on; `serviceFamily` is for records
 * without a family of their own. The first listing in a process runs this loop in V8's
 * interpreter, where every property read costs: offsets are read once, outside it.
 */
function decodeDestinations(L: ReplyLayout, w: Uint32Array, bytes: Uint8Array, first: number, count: number,
  serviceFamily: AddressFamily): Destination[] {
  const destinations = new Array<Destination>(count);
  const words = L.dstWords;
  const { af: afAt, address: addressAt, port: portAt, forward: forwardAt, weight: weightAt, upperThreshold: upperAt,
    lowerThreshold: lowerAt, activeConnections: activeAt, inactiveConnections: inactiveAt,
    persistentConnections: persistentAt, stats: countersAt, tunnelType: tunnelTypeAt, tunnelPort: tunnelPortAt,
    tunnelFlags: tunnelFlagsAt } = L.dst;
  const { af: hasAf, stats: hasStats, tunnelType: hasTunnelType } = L.dstHas;
  // Absent numeric fields are zero words, which is also the default for them.
  for (let d = 0, b = first * words; d < count; d++, b += words) {
    const present = w[b]!;
    const family = (present & hasAf) === 0 ? serviceFamily : w[b + afAt] === AF_INET6 ? 'inet6' : 'inet';
    destinations[d] = makeDestination(
      decodeAddress(bytes, family, (b + addressAt) * 4), family, w[b + portAt]!, w[b + forwardAt]!, w[b + weightAt]!,
      w[b + upperAt]!, w[b + lowerAt]!, w[b + activeAt]!, w[b + inactiveAt]!, w[b + persistentAt]!,
      (present & hasStats) !== 0 ? statsAt(w, b + countersAt) : ZERO_STATS,
      (present & hasTunnelType) !== 0 ? w[b + tunnelTypeAt] : undefined, w[b + tunnelPortAt]!, w[b + tunnelFlagsAt]!,
    );
  }
  return destinations;
}

/**
 * Builds services [from, to) of `table` into `result` from index `at` on; `next` is the first
 * destination record of `from`.
 */
function decodeServices(table: NativeTable, result: ServiceWithDestinations[], from: number, to: number, next: number,
  at = from): number {
  const L = layoutOf();
  const services = table.services;
  const serviceBytes = bytesOf(services);
  const dests = table.destinations;
  const destBytes = bytesOf(dests);
  const destinationCount = dests.length / L.dstWords;
  for (let i = from; i < to; i++) {
    const base = i * L.svcWords;
    const wire = serviceWire(L, services, serviceBytes, base, table.strings);
    const count = services[base + L.svc.destinationCount]!;
    if (next + count > destinationCount) throw new Error('listTable: the addon packed fewer destinations than it counted');
    const service = serviceFromWire(wire) as ServiceWithDestinations;
    service.destinations = decodeDestinations(L, dests, destBytes, next, count, service.family);
    next += count;
    result[at + i - from] = service;
  }
  return next;
}

/**
 * @internal Builds every Service, with its destinations, from the addon's packed table.
 * @throws {Error} when the records are inconsistent (an addon bug), never for kernel data.
 */
export function tableFromNative(table: NativeTable): ServiceWithDestinations[] {
  const count = table.services.length / layoutOf().svcWords;
  const result = new Array<ServiceWithDestinations>(count);
  decodeServices(table, result, 0, count, 0);
  return result;
}

/**
 * @internal Appends the services of `table`, a part of a listing, to `result`.
 * @throws {Error} as tableFromNative.
 */
export function appendTableFromNative(result: ServiceWithDestinations[], table: NativeTable): void {
  decodeServices(table, result, 0, table.services.length / layoutOf().svcWords, 0, result.length);
}

/** Destinations decoded between two turns of the event loop in {@link tableFromNativeInSlices}. */
const DESTINATIONS_PER_SLICE = 1000;

/**
 * @internal tableFromNative, a slice of about a thousand destinations at a time, yielding to
 * the event loop between slices (a 10,000-destination table is some 200,000 objects).
 * @throws {Error} as tableFromNative.
 */
export async function tableFromNativeInSlices(table: NativeTable): Promise<ServiceWithDestinations[]> {
  const L = layoutOf();
  const count = table.services.length / L.svcWords;
  const result = new Array<ServiceWithDestinations>(count);
  let next = 0;
  for (let from = 0; from < count;) {
    let to = from;
    let destinations = 0;
    while (to < count && (to === from || destinations < DESTINATIONS_PER_SLICE)) {
      destinations += table.services[to * L.svcWords + L.svc.destinationCount]!;
      to++;
    }
    next = decodeServices(table, result, from, to, next);
    from = to;
    if (from < count) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return result;
}

/** @internal The services of a GET_SERVICE reply. */
export function servicesFromNative(table: NativeTable): Service[] {
  const L = layoutOf();
  const bytes = bytesOf(table.services);
  const count = table.services.length / L.svcWords;
  const result = new Array<Service>(count);
  for (let i = 0; i < count; i++) result[i] = serviceFromWire(serviceWire(L, table.services, bytes, i * L.svcWords, table.strings));
  return result;
}

/** @internal The destinations of a GET_DEST reply; `family` is the service's, for records without one. */
export function destinationsFromNative(table: NativeTable, family: AddressFamily): Destination[] {
  const L = layoutOf();
  return decodeDestinations(L, table.destinations, bytesOf(table.destinations), 0, table.destinations.length / L.dstWords, family);
}
