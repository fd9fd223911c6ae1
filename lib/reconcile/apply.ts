// plan() and apply() on a handle: one listing of the live table, one batch, one read-back.
import type { Batch } from '../batch';
import { IpvsError } from '../errors';
import type { Ipvs } from '../ipvs';
import type { Destination } from '../types';
import { describe, expectObject, expectOneOf, rejectUnknownKeys } from '../validate';
import { diffTables, indexLive } from './diff';
import { PlanStaleError } from './errors';
import { fingerprintOwned } from './fingerprint';
import { orderOperations } from './order';
import { buildPlan, checkPlan, checkPlanInput, isPlanLike, type PlanInput } from './plan';
import { serviceKeyText, type TableService } from './settings';
import type { ApplyOptions, ApplyResult, OperationResult, Plan, PlanOperation, PlanOptions } from './types';

const PLAN_OPTIONS = new Set(['scope', 'removal']);
const APPLY_DESIRED_OPTIONS = new Set(['scope', 'removal', 'verify']);
const APPLY_PLAN_OPTIONS = new Set(['ifStale', 'verify']);
const VERIFY = ['changed', 'full', 'none'] as const;
/** Up to this many touched services, verify 'changed' reads their destinations one by one. */
const SEPARATE_READS = 8;

/** Ipvs.plan: check, list once, diff. */
export async function planTable(ipvs: Ipvs, desired: unknown, options: PlanOptions | undefined): Promise<Plan> {
  const opts = expectObject(options ?? {}, 'options');
  rejectUnknownKeys(opts, PLAN_OPTIONS, 'options');
  const input = checkPlanInput(desired, opts.scope, opts.removal);
  return buildPlan(input, await ipvs.listTable());
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

  const live = await ipvs.listTable();
  let plan: Plan;
  let replanned = false;
  if (!given) {
    plan = buildPlan(input, live, true);
  } else if (fingerprintOwned(live, input.desired, input.scope) === given.fingerprint) {
    plan = given;
  } else {
    const current = buildPlan(input, live, true);
    if (ifStale === 'refuse') throw new PlanStaleError(given, current);
    plan = current;
    replanned = true;
  }

  const results = await commit(ipvs, plan.operations);
  const drift = verify === 'none' ? [] : await readDrift(ipvs, input, live, plan.operations, verify);
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
  ipvs: Ipvs, input: PlanInput, before: TableService[], operations: readonly PlanOperation[], verify: 'changed' | 'full',
): Promise<PlanOperation[]> {
  const after = verify === 'full' ? await ipvs.listTable() : await readChanged(ipvs, input, before, operations);
  return orderOperations(diffTables(input.desired, after, input.scope, input.removal));
}

/**
 * The table after the batch, read cheaply: every service (one dump), with fresh destinations
 * for the owned services the plan touched or that were not there before, and the earlier
 * listing's destinations for the rest.
 */
async function readChanged(
  ipvs: Ipvs, input: PlanInput, before: TableService[], operations: readonly PlanOperation[],
): Promise<TableService[]> {
  const touched = new Set<string>();
  for (const op of operations) if (op.op !== 'deleteService') touched.add(serviceKeyText(op.service));
  // Each separate read is two trips to the native thread and back; listTable() makes all of its
  // dumps in one. In the test VM one read cost about as much as listing 200 services.
  if (touched.size > Math.max(SEPARATE_READS, before.length / 200)) return ipvs.listTable();
  const earlier = indexLive(before);
  const services = (await ipvs.listServices()) as TableService[];
  const reads: Array<Promise<void>> = [];
  const vanished = new Set<TableService>();
  for (const service of services) {
    const key = serviceKeyText(service);
    const previous = earlier.get(key);
    if (previous && !touched.has(key)) {
      service.destinations = previous.destinations;
      continue;
    }
    if (!input.desired.keySet.has(key) && !input.scope.owns(service, key, input.desired.keySet)) {
      service.destinations = [];
      continue;
    }
    reads.push(ipvs.listDestinations(service).then(
      (destinations: Destination[]) => { service.destinations = destinations; },
      (error: unknown) => {
        // Deleted by another process between the two reads: it is not in the table.
        if (error instanceof IpvsError && error.code === 'ESRCH') vanished.add(service);
        else throw error;
      },
    ));
  }
  await Promise.all(reads);
  return vanished.size === 0 ? services : services.filter((service) => !vanished.has(service));
}
