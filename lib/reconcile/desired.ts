// The desired state: checked as a whole before anything is sent, with errors that name the
// path ('services[3].destinations[1].weight must be …'), then normalised to the Service and
// Destination objects the kernel would report for it (destinations kept as the records they
// would be sent as, and decoded when first read: records.ts).
import { packDestinationSpec, type DestinationOut } from '../destination';
import { requestOffsets } from '../records';
import { checkServiceDefinition, serviceFromWire } from '../service';
import { layoutOf } from '../table-view';
import { describe, expectObject } from '../validate';
import { decodeDestinations, withDestinationRecords } from './records';
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
  /** The same keys, each to its service's index. */
  positions: Map<string, number>;
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
  const positions = new Map<string, number>();
  const noDesiredKeys = new Set<string>();
  // Every destination is packed as a request record of its own, all in one array (sized
  // first): the plan compares their destination parts with the live records, and decodes
  // Destination objects only where a service differs.
  let total = 0;
  for (const item of value) {
    const list = (item as { destinations?: unknown } | null)?.destinations;
    if (Array.isArray(list)) total += list.length;
  }
  // Only the destination part of each request record is kept (the records are compared with
  // the kernel's destination records, which have its layout): destination j at word
  // j * stride, written through the offsets of a record whose base is that less o.dst.
  const o = requestOffsets();
  const stride = layoutOf().dstWords;
  const words = new Uint32Array(Math.max(total, 1) * stride);
  const out: DestinationOut = { offsets: o, words, bytes: new Uint8Array(words.buffer) };
  let packed = 0;
  // Field paths are built only to report an error: a check runs first without its path and,
  // when it throws, again with it (it throws the same error, named). A large state has
  // thousands of destinations; building every path cost more than checking them.
  const fieldOf = (i: number): string => `${root}[${i}]`;
  const dst = layoutOf().dst;
  for (let i = 0; i < value.length; i++) {
    const item = value[i] as Record<string, unknown>;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) expectObject(item, fieldOf(i));
    // The service's own fields are read from the item itself, its destinations aside.
    let definition: ReturnType<typeof checkServiceDefinition>;
    try {
      definition = checkServiceDefinition(item, undefined, 'destinations');
    } catch {
      definition = checkServiceDefinition(item, fieldOf(i), 'destinations');  // throws the same error, named
    }
    const { key: checked, wire } = definition;
    const service = serviceFromWire(wire);
    const key = serviceKeyText(service);
    const earlier = positions.get(key);
    if (earlier !== undefined) throw new RangeError(`${fieldOf(i)} has the same key (${key}) as ${root}[${earlier}]`);
    positions.set(key, i);
    if (scope.value !== 'listed' && scope.value !== 'all' && !scope.owns(service, key, noDesiredKeys)) {
      throw new RangeError(`${fieldOf(i)} (${key}) is outside the scope filter, so the plan could not own it`);
    }
    const destinations = item.destinations;
    if (!Array.isArray(destinations)) {
      throw new TypeError(`${fieldOf(i)}.destinations must be an array of destinations (may be empty), got ${describe(destinations)}`);
    }
    // Counted before the loop, so a getter or proxy could change it; never past the array.
    if (packed + destinations.length > total) throw new TypeError(`${fieldOf(i)}.destinations changed while it was being checked`);
    const first = packed * stride;
    const index = destinations.length > 32 ? new Map<string, number>() : undefined;
    for (let j = 0; j < destinations.length; j++) {
      const spec = destinations[j];
      const at = packed * stride;
      const base = at - o.dst;
      try {
        packDestinationSpec(spec, checked, out, base);
      } catch {
        packDestinationSpec(spec, checked, out, base, `${fieldOf(i)}.destinations[${j}]`);  // throws the same error, named
      }
      const seen = index ? seenIn(index, dst, words, at, j) : seenBefore(dst, words, first, stride, at);
      if (seen >= 0) {
        const [duplicate] = decodeDestinations({ words, start: at, stride, count: 1, family: checked.family });
        throw new RangeError(
          `${fieldOf(i)}.destinations[${j}] has the same key (${destinationKeyText(duplicate!)}) as ${fieldOf(i)}.destinations[${seen}]`,
        );
      }
      packed++;
    }
    services[i] = withDestinationRecords(service, {
      words, start: first, stride, count: destinations.length, family: checked.family,
    });
    keys[i] = key;
  }
  return { services, keys, positions };
}

type DestinationOffsets = ReturnType<typeof layoutOf>['dst'];

/** The index of an earlier record (from word `first`, every `stride` words) with the same key as the record at word `at`, or -1. */
function seenBefore(dst: DestinationOffsets, w: Uint32Array, first: number, stride: number, at: number): number {
  const { address, port, af } = dst;
  for (let b = first, r = 0; b < at; b += stride, r++) {
    if (w[b + address] === w[at + address] && w[b + port] === w[at + port] && w[b + af] === w[at + af] &&
      w[b + address + 1] === w[at + address + 1] && w[b + address + 2] === w[at + address + 2] &&
      w[b + address + 3] === w[at + address + 3]) {
      return r;
    }
  }
  return -1;
}

/** As seenBefore, for long lists: through `index` (then adds the record at `at` as number `j`). */
function seenIn(index: Map<string, number>, dst: DestinationOffsets, w: Uint32Array, at: number, j: number): number {
  const { address, port, af } = dst;
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
