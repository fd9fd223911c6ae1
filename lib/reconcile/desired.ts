// The desired state: checked as a whole before anything is sent, with errors that name the
// path ('services[3].destinations[1].weight must be …'), then normalised to the Service and
// Destination objects the kernel would report for it (destinations kept as the records they
// would be sent as, and decoded when first read: records.ts).
import { packDestinationSpec } from '../destination';
import { RequestWriter } from '../records';
import { checkServiceDefinition, serviceFromWire } from '../service';
import { describe, expectObject } from '../validate';
import { decodeDestinations, layout, withDestinationRecords } from './records';
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
  const o = scratch.offsets;
  const size = layout().dstWords;
  // Every destination's record is kept, in one array (sized first), for the plan to compare
  // with the live records; Destination objects are decoded only where a service differs.
  let total = 0;
  for (const item of value) {
    const list = (item as { destinations?: unknown } | null)?.destinations;
    if (Array.isArray(list)) total += list.length;
  }
  const records = new Uint32Array(total * size);
  let next = 0;
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
    const service = serviceFromWire(wire);
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
    // Counted before the loop, so a getter or proxy could change it; never past the array.
    if (next + destinations.length > total) throw new TypeError(`${field}.destinations changed while it was being checked`);
    const first = next;
    const index = destinations.length > 32 ? new Map<string, number>() : undefined;
    for (let j = 0; j < destinations.length; j++) {
      const spec = destinations[j];
      const base = scratch.begin(0);
      try {
        packDestinationSpec(spec, checked, scratch, base);
      } catch {
        packDestinationSpec(spec, checked, scratch, base, `${field}.destinations[${j}]`);  // throws the same error, named
      }
      const at = next * size;
      copyDestination(scratch.words, base + o.dst, records, at);
      const seen = index ? seenIn(index, records, at, j) : seenBefore(records, first, next, at);
      if (seen >= 0) {
        const [duplicate] = decodeDestinations({ words: records, first: next, count: 1, family: checked.family });
        throw new RangeError(
          `${field}.destinations[${j}] has the same key (${destinationKeyText(duplicate!)}) as ${field}.destinations[${seen}]`,
        );
      }
      next++;
    }
    services[i] = withDestinationRecords(service, { words: records, first, count: destinations.length, family: checked.family });
    keys[i] = key;
  }
  return { services, keys, keySet: new Set(keys) };
}

/** Copies the words of a destination record a desired state sets (never its counters, which stay 0). */
function copyDestination(from: Uint32Array, source: number, to: Uint32Array, at: number): void {
  const d = layout().dst;
  to[at] = from[source]!;
  to[at + d.address] = from[source + d.address]!;
  to[at + d.address + 1] = from[source + d.address + 1]!;
  to[at + d.address + 2] = from[source + d.address + 2]!;
  to[at + d.address + 3] = from[source + d.address + 3]!;
  to[at + d.port] = from[source + d.port]!;
  to[at + d.af] = from[source + d.af]!;
  to[at + d.forward] = from[source + d.forward]!;
  to[at + d.weight] = from[source + d.weight]!;
  to[at + d.upperThreshold] = from[source + d.upperThreshold]!;
  to[at + d.lowerThreshold] = from[source + d.lowerThreshold]!;
  to[at + d.tunnelType] = from[source + d.tunnelType]!;
  to[at + d.tunnelPort] = from[source + d.tunnelPort]!;
  to[at + d.tunnelFlags] = from[source + d.tunnelFlags]!;
}

/** The index (from `first`) of an earlier record, before `end`, with the same key as the record at word `at`, or -1. */
function seenBefore(w: Uint32Array, first: number, end: number, at: number): number {
  const L = layout();
  const size = L.dstWords;
  const { address, port, af } = L.dst;
  for (let r = first; r < end; r++) {
    const b = r * size;
    if (w[b + address] === w[at + address] && w[b + port] === w[at + port] && w[b + af] === w[at + af] &&
      w[b + address + 1] === w[at + address + 1] && w[b + address + 2] === w[at + address + 2] &&
      w[b + address + 3] === w[at + address + 3]) {
      return r - first;
    }
  }
  return -1;
}

/** As seenBefore, for long lists: through `index` (then adds the record at `at` as number `j`). */
function seenIn(index: Map<string, number>, w: Uint32Array, at: number, j: number): number {
  const { address, port, af } = layout().dst;
  const key = `${w[at + af]} ${w[at + address]} ${w[at + address + 1]} ${w[at + address + 2]} ${w[at + address + 3]} ${w[at + port]}`;
  const seen = index.get(key);
  if (seen !== undefined) return seen;
  index.set(key, j);
  return -1;
}

/** The normalised desired state as specs (every default written out), for Plan.desired. */
export function desiredSpecs(table: DesiredTable): DesiredService[] {
  return table.services.map((service) => ({
    ...serviceSpecOf(service),
    destinations: service.destinations.map(destinationSpecOf),
  }) as DesiredService);
}
