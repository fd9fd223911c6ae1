// The desired state: checked as a whole before anything is sent, with errors that name the
// path ('services[3].destinations[1].weight must be …'), then normalised to the Service and
// Destination objects the kernel would report for it.
import { destinationFromWire, checkDestinationSpec } from '../destination';
import { checkServiceDefinition, serviceFromWire } from '../service';
import { describe, expectObject } from '../validate';
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
  for (let i = 0; i < value.length; i++) {
    const field = `${root}[${i}]`;
    const item = expectObject(value[i], field);
    const { destinations, ...spec } = item;
    const { key: checked, wire } = checkServiceDefinition(spec, field);
    const service = serviceFromWire(wire) as TableService;
    const key = serviceKeyText(service);
    const earlier = firstIndex.get(key);
    if (earlier !== undefined) throw new RangeError(`${field} has the same key (${key}) as ${root}[${earlier}]`);
    firstIndex.set(key, i);
    if (scope.value !== 'listed' && scope.value !== 'all' && !scope.owns(service, key, noDesiredKeys)) {
      throw new RangeError(`${field} (${key}) is outside options.scope, so the plan could not own it`);
    }
    if (!Array.isArray(destinations)) {
      throw new TypeError(`${field}.destinations must be an array of destinations (may be empty), got ${describe(destinations)}`);
    }
    const list = new Array(destinations.length);
    const destinationIndex = new Map<string, number>();
    for (let j = 0; j < destinations.length; j++) {
      const destField = `${field}.destinations[${j}]`;
      const destWire = checkDestinationSpec(destinations[j], checked, destField);
      const destination = destinationFromWire(destWire, checked);
      const destKey = destinationKeyText(destination);
      const seen = destinationIndex.get(destKey);
      if (seen !== undefined) throw new RangeError(`${destField} has the same key (${destKey}) as ${field}.destinations[${seen}]`);
      destinationIndex.set(destKey, j);
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
