// The desired state: checked as a whole before anything is sent, with errors that name the
// path ('services[3].destinations[1].weight must be …'), then normalised to the Service and
// Destination objects the kernel would report for it.
import { decodeAddress, familyName } from '../address';
import { makeDestination, packDestinationSpec } from '../destination';
import { RequestWriter } from '../records';
import { ZERO_STATS, checkServiceDefinition, serviceFromWire } from '../service';
import { describe, expectObject } from '../validate';
import type { Destination } from '../types';
import { findDestination } from './diff';
import type { CheckedScope } from './scope';
import {
  destinationKeyText, destinationSpecOf, serviceKeyText, serviceSpecOf, type TableService,
} from './settings';
import type { DesiredService } from './types';

/** The desired state, normalised: services in the given order, each with its key. */
export interface DesiredTable {
  services: TableService[];
  /** serviceKeyText of each service, same order. */
  keys: string[];
  /** The same keys, for lookups. */
  keySet: Set<string>;
}

/**
 * Checks a whole desired state and normalises it.
 * @throws {TypeError} for a value of the wrong type anywhere (not an array, a service or
 *   destination that is not an object, `destinations` missing or not an array, an unknown field).
 * @throws {RangeError} for a value out of range anywhere (as addService and addDestination
 *   would reject it), a duplicate service key, a duplicate destination key within a service,
 *   or a service outside a filter scope.
 * Messages start with the path, e.g. `services[3].destinations[1].weight`.
 */
export function checkDesiredState(value: unknown, scope: CheckedScope, root = 'services'): DesiredTable {
  if (!Array.isArray(value)) throw new TypeError(`${root} must be an array of services, got ${describe(value)}`);
  const services = new Array<TableService>(value.length);
  const keys = new Array<string>(value.length);
  const firstIndex = new Map<string, number>();
  const noDesiredKeys = new Set<string>();
  const scratch = new RequestWriter(1);
  const addressTexts = new Map<number, string>();
  // Field paths are built only to report an error: a check runs first without its path and,
  // when it throws, again with it (it throws the same error, named). A large state has
  // thousands of destinations; building every path cost more than checking them.
  for (let i = 0; i < value.length; i++) {
    const field = `${root}[${i}]`;
    const item = expectObject(value[i], field);
    const { destinations, ...spec } = item;
    let definition: ReturnType<typeof checkServiceDefinition>;
    try {
      definition = checkServiceDefinition(spec);
    } catch {
      definition = checkServiceDefinition(spec, field);  // throws the same error, named
    }
    const { key: checked, wire } = definition;
    const service = serviceFromWire(wire) as TableService;
    const key = serviceKeyText(service);
    const earlier = firstIndex.get(key);
    if (earlier !== undefined) throw new RangeError(`${field} has the same key (${key}) as ${root}[${earlier}]`);
    firstIndex.set(key, i);
    if (scope.value !== 'listed' && scope.value !== 'all' && !scope.owns(service, key, noDesiredKeys)) {
      throw new RangeError(`${field} (${key}) is outside the scope filter, so the plan could not own it`);
    }
    if (!Array.isArray(destinations)) {
      throw new TypeError(`${field}.destinations must be an array of destinations (may be empty), got ${describe(destinations)}`);
    }
    const list = new Array<Destination>(destinations.length);
    const index = destinations.length > 32 ? new Map<string, number>() : undefined;
    for (let j = 0; j < destinations.length; j++) {
      const spec = destinations[j];
      const base = scratch.begin(0);
      try {
        packDestinationSpec(spec, checked, scratch, base);
      } catch {
        packDestinationSpec(spec, checked, scratch, base, `${field}.destinations[${j}]`);  // throws the same error, named
      }
      const destination = destinationAt(scratch, base, addressTexts);
      const seen = findDestination(list, destination.address, destination.port, index, j);
      if (seen >= 0) {
        throw new RangeError(
          `${field}.destinations[${j}] has the same key (${destinationKeyText(destination)}) as ${field}.destinations[${seen}]`,
        );
      }
      index?.set(`${destination.address}|${destination.port}`, j);
      list[j] = destination;
    }
    service.destinations = list;
    services[i] = service;
    keys[i] = key;
  }
  return { services, keys, keySet: new Set(keys) };
}

/** The normalised desired state as specs (every default written out), for Plan.desired. */
export function desiredSpecs(table: DesiredTable): DesiredService[] {
  return table.services.map((service) => ({
    ...serviceSpecOf(service),
    destinations: service.destinations.map(destinationSpecOf),
  }) as DesiredService);
}

/**
 * The Destination the kernel would report for the destination packed at `base` (as
 * destinationFromWire of its wire record), read straight from the record: a desired state has
 * thousands. IPv4 addresses, often shared by many services, are decoded once per word.
 */
function destinationAt(writer: RequestWriter, base: number, addressTexts: Map<number, string>): Destination {
  const o = writer.offsets;
  const w = writer.words;
  const b = o.dstBit;
  const present = w[base + o.dst]!;
  const family = familyName(w[base + o.dstAf]!);
  let address: string;
  if (family === 'inet') {
    const word = w[base + o.dstAddress]!;
    address = addressTexts.get(word) ?? decodeAddress(writer.bytes, family, (base + o.dstAddress) * 4);
    addressTexts.set(word, address);
  } else {
    address = decodeAddress(writer.bytes, family, (base + o.dstAddress) * 4);
  }
  const tunnelType = present & b.tunnelType ? w[base + o.dstTunnelType] : undefined;
  return makeDestination(
    address, family, w[base + o.dstPort]!, w[base + o.dstForward]!, w[base + o.dstWeight]!, w[base + o.dstUpperThreshold]!,
    w[base + o.dstLowerThreshold]!, 0, 0, 0, ZERO_STATS, tunnelType, w[base + o.dstTunnelPort]!, w[base + o.dstTunnelFlags]!,
  );
}
