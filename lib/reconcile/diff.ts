// The difference between the desired state and the live table, service by service: what to
// add, what to edit in place, what to remove. Pure: no I/O, the live table is an argument.
import type { DesiredTable } from './desired';
import type { CheckedScope } from './scope';
import type { Destination, ServiceKey } from '../types';
import {
  destinationChanges, destinationKeyOf, destinationSpecOf, sameServiceSettings, serviceChanges, serviceKeyOf, serviceKeyText,
  serviceSpecOf, type TableService,
} from './settings';
import {
  destinationAt, destinationRecordsOf, matchDestinationRecords, sameDestinationRecords, sameSettings, type DestinationRecords,
} from './records';
import type { PlanOperation, RemovalPolicy } from './types';

type Op<Name extends PlanOperation['op']> = Extract<PlanOperation, { op: Name }>;

/** The changes to one desired service, grouped by kind; ordering is order.ts's business. */
export interface ServiceChangeSet {
  key: string;
  /** addService or editService, if the service itself changes. */
  service: Op<'addService'> | Op<'editService'> | undefined;
  additions: Op<'addDestination'>[];
  edits: Op<'editDestination'>[];
  /** deleteDestination, or editDestination to weight 0 under removal 'quiesce'. */
  removals: Array<Op<'deleteDestination'> | Op<'editDestination'>>;
}

export interface TableDiff {
  /** One per desired service, in the desired order (empty change sets included). */
  services: ServiceChangeSet[];
  /** Owned live services that are not desired, sorted by key. */
  deletions: Op<'deleteService'>[];
}

const liveCache = new WeakMap<TableService[], Map<string, TableService>>();
const keysCache = new WeakMap<TableService[], string[]>();

/** The live table by service key (memoised per listing: plan and verify share one). */
export function indexLive(live: TableService[]): Map<string, TableService> {
  let index = liveCache.get(live);
  if (!index) {
    index = new Map();
    const keys = new Array<string>(live.length);
    live.forEach((service, i) => index!.set((keys[i] = serviceKeyText(service)), service));
    liveCache.set(live, index);
    keysCache.set(live, keys);
  }
  return index;
}

/** serviceKeyText of each service of `live`, in order (memoised with indexLive). */
export function keysOfLive(live: TableService[]): string[] {
  indexLive(live);
  return keysCache.get(live)!;
}

/**
 * Records `index` as the index of `live` (which must be its services by serviceKeyText, and not
 * change), and `keys` as their keys in order.
 */
export function setLiveIndex(live: TableService[], index: Map<string, TableService>, keys: string[]): void {
  liveCache.set(live, index);
  keysCache.set(live, keys);
}

/**
 * Compares `desired` with `live`. A desired service missing from the table is added with all
 * its destinations; one that differs only in settings is edited in place (its key, the
 * protocol, address, port or fwmark and family, is what identifies it, so it never needs
 * re-creating); a destination is identified by address and port, and every other field is
 * edited in place. Owned live services that are not desired are deleted. With `matches`, the
 * desired services found equal to their live objects are noted there, and skipped when those
 * same objects come again.
 */
export function diffTables(
  desired: DesiredTable, live: TableService[], scope: CheckedScope, removal: RemovalPolicy, matches?: Matches,
): TableDiff {
  const liveByKey = indexLive(live);
  const compare = comparer(desired, removal, matches);
  const services = desired.services.map((_, i) => compare(i, liveByKey.get(desired.keys[i]!)));
  return { services, deletions: deletionsOf(liveByKey, desired, scope) };
}

/**
 * diffTables, fed the live services one at a time in listing order (as listTable hands its
 * parts over), so that each is compared while the rest is still being listed. finish() gives
 * exactly what diffTables gives for the table fed.
 */
export class LiveDiff {
  readonly #desired: DesiredTable;
  readonly #scope: CheckedScope;
  readonly #compare: (i: number, have: TableService | undefined) => ServiceChangeSet;
  readonly #sets: Array<ServiceChangeSet | undefined>;
  readonly #liveByKey = new Map<string, TableService>();
  readonly #liveKeys: string[] = [];

  constructor(desired: DesiredTable, scope: CheckedScope, removal: RemovalPolicy, matches?: Matches) {
    this.#desired = desired;
    this.#scope = scope;
    this.#compare = comparer(desired, removal, matches);
    this.#sets = new Array(desired.services.length);
  }

  /** Compares the next live service with its desired service, if it has one. */
  add(service: TableService): void {
    const key = serviceKeyText(service);
    this.#liveKeys.push(key);
    const again = this.#liveByKey.has(key);
    this.#liveByKey.set(key, service);
    const i = this.#desired.positions.get(key);
    // A key listed twice (never from the kernel) is compared at the end, as diffTables would: with the last.
    if (i !== undefined) this.#sets[i] = again ? undefined : this.#compare(i, service);
  }

  /** The diff against `live`, the services fed in order (kept as its index for indexLive). */
  finish(live: TableService[]): TableDiff {
    const sets = this.#sets;
    const { keys } = this.#desired;
    for (let i = 0; i < sets.length; i++) sets[i] ??= this.#compare(i, this.#liveByKey.get(keys[i]!));
    setLiveIndex(live, this.#liveByKey, this.#liveKeys);
    return { services: sets as ServiceChangeSet[], deletions: deletionsOf(this.#liveByKey, this.#desired, this.#scope) };
  }
}

/** Compares desired service `i` with its live service `have` (undefined: not in the table), noting matches. */
function comparer(
  desired: DesiredTable, removal: RemovalPolicy, matches: Matches | undefined,
): (i: number, have: TableService | undefined) => ServiceChangeSet {
  const known = matches && matches.desired === desired && (matches.removal === removal || matches.removal === 'delete')
    ? matches.have
    : undefined;
  const record = matches && matches.desired === desired && matches.removal === removal ? matches.have : undefined;
  return (i, have) => {
    const set = diffService(desired.keys[i]!, desired.services[i]!, have, removal, known?.[i]);
    if (record && have && isEmpty(set)) record[i] = have;
    return set;
  };
}

/** Owned live services that are not desired, as deleteService operations sorted by key. */
function deletionsOf(liveByKey: Map<string, TableService>, desired: DesiredTable, scope: CheckedScope): Op<'deleteService'>[] {
  const deletions: Op<'deleteService'>[] = [];
  const reason = scope.value === 'all'
    ? "not in the desired state (scope 'all')"
    : 'not in the desired state, and matched by the scope filter';
  const deleted: Array<[string, TableService]> = [];
  for (const [key, service] of liveByKey) {
    if (!desired.positions.has(key) && scope.owns(service, key, desired.positions)) deleted.push([key, service]);
  }
  deleted.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (const [, service] of deleted) {
    const destinations = destinationRecordsOf(service)?.count ?? service.destinations.length;
    deletions.push({ op: 'deleteService', service: serviceKeyOf(service), destinations, reason });
  }
  return deletions;
}

/**
 * The index in `list` (among its first `limit`) of the destination with that address
 * (canonical text) and port, or -1.
 * Destinations are compared by their own strings, without building a key per destination:
 * a plan of a large table compares tens of thousands.
 */
export function findDestination(
  list: readonly Destination[], address: string, port: number, index?: Map<string, number>, limit = list.length,
): number {
  if (index) return index.get(`${address}|${port}`) ?? -1;
  for (let i = 0; i < limit; i++) {
    const d = list[i]!;
    if (d.port === port && d.address === address) return i;
  }
  return -1;
}

/** A lookup index for long destination lists, where a scan per lookup would be quadratic. */
export function destinationIndex(list: readonly Destination[]): Map<string, number> | undefined {
  if (list.length <= 32) return undefined;
  const index = new Map<string, number>();
  list.forEach((d, i) => index.set(`${d.address}|${d.port}`, i));
  return index;
}

/**
 * The live service object each desired service (by index into `desired`) was found equal to,
 * under `removal`: a later comparison of the same objects (the read-back keeps the objects of
 * services it finds unchanged) needs no second look. Objects of a listing never change once
 * built. Equal under 'delete' (every live destination is desired) is equal under 'quiesce' too.
 */
export interface Matches {
  desired: DesiredTable;
  removal: RemovalPolicy;
  have: Array<TableService | undefined>;
}

// The change lists of an unchanged service: one shared empty array (most services of a large
// table are unchanged, and four arrays each were most of a plan's garbage).
const NONE: never[] = Object.freeze([]) as unknown as never[];

function diffService(
  key: string, want: TableService, have: TableService | undefined, removal: RemovalPolicy, known: TableService | undefined,
): ServiceChangeSet {
  if (have && (have === known || (sameServiceSettings(have, want) && sameRecordsOf(want, have)))) {
    return { key, service: undefined, additions: NONE, edits: NONE, removals: NONE };
  }
  const set: ServiceChangeSet = { key, service: undefined, additions: [], edits: [], removals: [] };
  diffExisting(set, want, have, removal);
  return set;
}

/** Whether both services' destinations are records, and the same ones (sameDestinationRecords). */
function sameRecordsOf(want: TableService, have: TableService): boolean {
  const wantRecords = destinationRecordsOf(want);
  const haveRecords = destinationRecordsOf(have);
  return wantRecords !== undefined && haveRecords !== undefined && sameDestinationRecords(wantRecords, haveRecords);
}

const isEmpty = (set: ServiceChangeSet): boolean =>
  !set.service && set.additions.length === 0 && set.edits.length === 0 && set.removals.length === 0;

function diffExisting(set: ServiceChangeSet, want: TableService, have: TableService | undefined, removal: RemovalPolicy): void {
  let serviceKey: ServiceKey | undefined;
  const keyOfService = (): ServiceKey => (serviceKey ??= serviceKeyOf(want));
  if (!have) {
    set.service = { op: 'addService', service: serviceSpecOf(want), reason: 'not in the table' };
    for (const destination of want.destinations) {
      set.additions.push({ op: 'addDestination', service: keyOfService(), destination: destinationSpecOf(destination), reason: 'new service' });
    }
    return;
  }
  const changes = serviceChanges(have, want);
  if (changes.length > 0) set.service = { op: 'editService', service: serviceSpecOf(want), changes, reason: 'settings differ' };
  const wantRecords = destinationRecordsOf(want);
  const haveRecords = destinationRecordsOf(have);
  if (wantRecords && haveRecords) {
    diffRecords(set, wantRecords, haveRecords, removal, keyOfService);
    return;
  }

  const current = have.destinations;
  const index = destinationIndex(current);
  const matched = new Uint8Array(current.length);
  for (const destination of want.destinations) {
    const i = findDestination(current, destination.address, destination.port, index);
    if (i < 0) {
      set.additions.push({ op: 'addDestination', service: keyOfService(), destination: destinationSpecOf(destination), reason: 'not in the table' });
      continue;
    }
    matched[i] = 1;
    const destChanges = destinationChanges(current[i]!, destination);
    if (destChanges.length > 0) {
      set.edits.push({
        op: 'editDestination', service: keyOfService(), destination: destinationSpecOf(destination), changes: destChanges,
        reason: 'settings differ',
      });
    }
  }
  for (let i = 0; i < current.length; i++) {
    if (!matched[i]) remove(set, current[i]!, removal, keyOfService);
  }
}

/**
 * diffExisting's comparison of destinations, on the records of both sides: only the
 * destinations added, removed or whose settings words differ are decoded (a changed service
 * mostly differs in one destination of many).
 */
function diffRecords(
  set: ServiceChangeSet, want: DestinationRecords, have: DestinationRecords, removal: RemovalPolicy, keyOfService: () => ServiceKey,
): void {
  const match = matchDestinationRecords(want, have);
  const matched = new Uint8Array(have.count);
  for (let i = 0; i < want.count; i++) {
    const j = match[i]!;
    if (j < 0) {
      const destination = destinationAt(want, i);
      set.additions.push({ op: 'addDestination', service: keyOfService(), destination: destinationSpecOf(destination), reason: 'not in the table' });
      continue;
    }
    matched[j] = 1;
    if (sameSettings(want, i, have, j)) continue;
    const destination = destinationAt(want, i);
    const destChanges = destinationChanges(destinationAt(have, j), destination);
    if (destChanges.length > 0) {
      set.edits.push({
        op: 'editDestination', service: keyOfService(), destination: destinationSpecOf(destination), changes: destChanges,
        reason: 'settings differ',
      });
    }
  }
  for (let j = 0; j < have.count; j++) {
    if (!matched[j]) remove(set, destinationAt(have, j), removal, keyOfService);
  }
}

/** The removal of a live destination that is not desired, under `removal`. */
function remove(set: ServiceChangeSet, extra: Destination, removal: RemovalPolicy, keyOfService: () => ServiceKey): void {
  if (removal === 'delete') {
    set.removals.push({ op: 'deleteDestination', service: keyOfService(), destination: destinationKeyOf(extra), reason: 'not in the desired state' });
  } else if (extra.weight !== 0) {
    set.removals.push({
      op: 'editDestination', service: keyOfService(), destination: { ...destinationSpecOf(extra), weight: 0 },
      changes: [{ field: 'weight', before: extra.weight, after: 0 }],
      reason: 'not in the desired state: quiesced (weight 0) for draining',
    });
  }
}
