// plan() and apply() on a handle: one listing of the live table, one batch, one read-back.
import type { Batch } from '../batch';
import { Command } from '../constants';
import { IpvsError } from '../errors';
import type { Ipvs } from '../ipvs';
import type { NativeTable } from '../native';
import { RequestWriter } from '../records';
import { checkServiceKey, serviceFromWire, type WireService } from '../service';
import { layoutOf } from '../table-view';
import type { Destination, Service } from '../types';
import { describe, expectObject, expectOneOf, rejectUnknownKeys } from '../validate';
import { diffTables, indexLive, keysOfLive, setLiveIndex } from './diff';
import { PlanStaleError } from './errors';
import { orderOperations } from './order';
import { PlanBuilder, buildPlan, checkPlan, checkPlanInput, isPlanLike, matchesOf, type PlanInput } from './plan';
import { LiveListing, destinationRecordsOf, recordsOfLive, sameServiceRecord, serviceAt, withDestinationRecords } from './records';
import { currentListing } from './stale';
import { sameServiceSettings, serviceKeyText, type TableService } from './settings';
import type { ApplyOptions, ApplyResult, OperationResult, Plan, PlanOperation, PlanOptions } from './types';

const PLAN_OPTIONS = new Set(['scope', 'removal']);
const APPLY_DESIRED_OPTIONS = new Set(['scope', 'removal', 'verify']);
const APPLY_PLAN_OPTIONS = new Set(['ifStale', 'verify']);
const VERIFY = ['changed', 'full', 'none'] as const;

/** Ipvs.plan: check, list once, diff. */
export async function planTable(ipvs: Ipvs, desired: unknown, options: PlanOptions | undefined): Promise<Plan> {
  const opts = expectObject(options ?? {}, 'options');
  rejectUnknownKeys(opts, PLAN_OPTIONS, 'options');
  const input = checkPlanInput(desired, opts.scope, opts.removal);
  const builder = new PlanBuilder(input);
  return builder.finish(await listLive(ipvs, builder), true);
}

/** Ipvs.apply: check, list once (plan or staleness check), one batch, read back. */
export async function applyTable(ipvs: Ipvs, desiredOrPlan: unknown, options: ApplyOptions | undefined): Promise<ApplyResult> {
  const opts = expectObject(options ?? {}, 'options');
  let input: PlanInput;
  let given: Plan | undefined;
  if (Array.isArray(desiredOrPlan)) {
    if (opts.ifStale !== undefined) throw new TypeError('options.ifStale applies only when applying a Plan, not a desired state');
    rejectUnknownKeys(opts, APPLY_DESIRED_OPTIONS, 'options');
    input = checkPlanInput(desiredOrPlan, opts.scope, opts.removal);
  } else if (isPlanLike(desiredOrPlan)) {
    for (const fixed of ['scope', 'removal'] as const) {
      if (opts[fixed] !== undefined) throw new TypeError(`options.${fixed} cannot be given with a Plan: the plan's own ${fixed} applies`);
    }
    rejectUnknownKeys(opts, APPLY_PLAN_OPTIONS, 'options');
    ({ plan: given, input } = checkPlan(desiredOrPlan));
  } else {
    throw new TypeError(`desiredOrPlan must be an array of services or a Plan, got ${describe(desiredOrPlan)}`);
  }
  const ifStale = opts.ifStale === undefined ? 'refuse' : expectOneOf(opts.ifStale, 'options.ifStale', ['refuse', 'replan'] as const);
  const verify = opts.verify === undefined ? 'changed' : expectOneOf(opts.verify, 'options.verify', VERIFY);

  // A desired state is compared with each part of the listing while the next is dumped.
  const builder = given ? undefined : new PlanBuilder(input);
  let live = await listLive(ipvs, builder);
  let plan: Plan;
  let replanned = false;
  const fresh = given && currentListing(given, live, input.desired, input.scope);
  if (!given) {
    plan = builder!.finish(live, true);
  } else if (fresh) {
    plan = given;
    live = fresh;
  } else {
    const current = buildPlan(input, live, true);
    if (ifStale === 'refuse') throw new PlanStaleError(given, current);
    plan = current;
    replanned = true;
  }

  // The read-back is queued right behind the batch, so that it starts as soon as the batch is
  // done rather than after the batch's results are made.
  const [results, drift] = await Promise.all([
    commit(ipvs, plan.operations),
    verify === 'none' ? [] : readDrift(ipvs, input, live, plan, verify),
  ]);
  return { plan, replanned, results, drift, ok: drift.length === 0 && results.every((r) => r.ok) };
}

async function commit(ipvs: Ipvs, operations: readonly PlanOperation[]): Promise<OperationResult[]> {
  if (operations.length === 0) return [];
  const batch = ipvs.batch();
  for (const op of operations) queue(batch, op);
  const results = await batch.commit();
  return results.map((result, i) => ({ ...result, operation: operations[i]! }));
}

function queue(batch: Batch, op: PlanOperation): void {
  switch (op.op) {
    case 'addService': batch.addService(op.service); break;
    case 'editService': batch.editService(op.service); break;
    case 'deleteService': batch.deleteService(op.service); break;
    case 'addDestination': batch.addDestination(op.service, op.destination); break;
    case 'editDestination': batch.editDestination(op.service, op.destination); break;
    case 'deleteDestination': batch.deleteDestination(op.service, op.destination); break;
  }
}

/** What still differs after the batch: the operations a plan made now would contain. */
async function readDrift(
  ipvs: Ipvs, input: PlanInput, before: TableService[], plan: Plan, verify: 'changed' | 'full',
): Promise<PlanOperation[]> {
  const after = await (verify === 'full' ? listLive(ipvs) : readChanged(ipvs, input, before, plan.operations));
  return orderOperations(diffTables(input.desired, after, input.scope, input.removal, matchesOf(plan)));
}

/**
 * The live table as the plan compares it: records, destinations decoded only where needed.
 * With `builder`, each part of the listing is added to it as the addon hands it over, while
 * the next part is being dumped.
 */
async function listLive(ipvs: Ipvs, builder?: PlanBuilder): Promise<TableService[]> {
  const listing = new LiveListing();
  const take = (part: NativeTable): void => {
    const first = listing.add(part);
    if (builder) for (let i = first; i < listing.services.length; i++) builder.add(listing.services[i]!);
  };
  let failure: { error: unknown } | undefined;
  const last = await ipvs.enqueue('listTable', (handle) => handle.listTable((part) => {
    if (failure) return;
    try {
      take(part);
    } catch (error) {
      failure = { error };
    }
  }));
  if (failure) throw failure.error;
  take(last);
  return listing.finish();
}

/** GET_DEST of each service key given (in order), then GET_SERVICE of every service, answered in one native call. */
function readServices(ipvs: Ipvs, keys: readonly WireService[]) {
  const writer = new RequestWriter(keys.length + 1);
  for (const key of keys) writer.add(Command.GET_DEST, key, undefined);
  writer.add(Command.GET_SERVICE, undefined, undefined);
  return ipvs.enqueue('apply', (handle) => handle.queryMany(writer.records(), writer.strings));
}

/**
 * The table after the batch, read cheaply in one native call: the destinations of every
 * service the plan touched, then every service (settings, existence: one that vanished after
 * its destinations were read is not listed). Untouched services keep the earlier listing's
 * destinations; an owned service that was not there before (another process made it
 * meanwhile) is read on its own afterwards.
 */
async function readChanged(
  ipvs: Ipvs, input: PlanInput, before: TableService[], operations: readonly PlanOperation[],
): Promise<TableService[]> {
  const touched = new Map<string, number>();  // key -> its request's index
  const keys: WireService[] = [];
  for (const op of operations) {
    if (op.op === 'deleteService') continue;
    // Keyed as the kernel lists it (a plan given back may spell an address another way).
    const { wire } = checkServiceKey(op.service);
    const key = serviceKeyText(serviceFromWire(wire));
    if (touched.has(key)) continue;
    touched.set(key, keys.length);
    keys.push(wire);
  }
  const reading = readServices(ipvs, keys);

  const earlier = indexLive(before);
  // The kernel dumps services in the order of its hash table, so mostly the earlier listing's
  // service i is this dump's service i: where their records are equal it is the same service
  // with the same settings, known without decoding this one.
  const earlierRecords = recordsOfLive(before);
  const touchedBefore = new Map<TableService, number>();  // earlier object -> its request's index
  for (const [key, request] of touched) {
    const previous = earlier.get(key);
    if (previous) touchedBefore.set(previous, request);
  }
  const earlierKeys = keysOfLive(before);
  const answer = await reading;
  const firsts = new Uint32Array(answer.counts.length);
  for (let i = 1; i < firsts.length; i++) firsts[i] = firsts[i - 1]! + answer.counts[i - 1]!;
  const index = new Map<string, TableService>();  // the result by key, for the diff (indexLive)
  const keysAfter: string[] = [];
  const { svcWords, dstWords } = layoutOf();
  const services: TableService[] = [];
  const unread: TableService[] = [];
  const destinationsOf = (service: Service, request: number): TableService => withDestinationRecords(service, {
    words: answer.destinations, start: firsts[request]! * dstWords, stride: dstWords, count: answer.counts[request]!,
    family: service.family,
  });
  for (let i = 0, base = 0; base < answer.services.length; i++, base += svcWords) {
    const same = earlierRecords && i < before.length &&
      sameServiceRecord(earlierRecords.services, i * svcWords, earlierRecords.strings, answer.services, base, answer.strings)
      ? before[i]!
      : undefined;
    if (same) {
      // Untouched: the earlier object itself, which the plan's diff has already compared with
      // its desired service (its matches: diff.ts).
      const request = touchedBefore.get(same);
      const listed = request === undefined ? same : destinationsOf(serviceAt(answer.services, base, answer.strings), request);
      const key = earlierKeys[i]!;
      services.push(listed);
      keysAfter.push(key);
      index.set(key, listed);
      continue;
    }
    const service = serviceAt(answer.services, base, answer.strings);
    const key = serviceKeyText(service);
    const request = touched.get(key);
    const previous = earlier.get(key);
    let listed: TableService;
    if (request !== undefined) {
      listed = destinationsOf(service, request);
    } else if (previous) {
      if (sameServiceSettings(previous, service)) listed = previous;
      else {
        const records = destinationRecordsOf(previous);
        listed = records ? withDestinationRecords(service, records) : Object.assign(service, { destinations: previous.destinations });
      }
    } else {
      listed = Object.assign(service, { destinations: [] });
      // Not owned: its destinations do not count. Owned and new: read on its own below.
      if (input.desired.positions.has(key) || input.scope.owns(service, key, input.desired.positions)) unread.push(listed);
    }
    services.push(listed);
    keysAfter.push(key);
    index.set(key, listed);
  }
  if (unread.length === 0) {
    setLiveIndex(services, index, keysAfter);
    return services;
  }
  const vanished = new Set<TableService>();
  await Promise.all(unread.map((service) => ipvs.listDestinations(service).then(
    (destinations: Destination[]) => { service.destinations = destinations; },
    (error: unknown) => {
      // Deleted by another process between the two reads: it is not in the table.
      if (error instanceof IpvsError && error.code === 'ESRCH') vanished.add(service);
      else throw error;
    },
  )));
  return vanished.size === 0 ? services : services.filter((service) => !vanished.has(service));
}
