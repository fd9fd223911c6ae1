// Plans: made from a desired state and one listing of the live table; checked when they come
// back to apply (they are plain data and may have been stored or edited).
import { checkDestinationKey, checkDestinationSpec } from '../destination';
import { checkServiceDefinition, checkServiceKey } from '../service';
import { describe, expectObject, expectOneOf, rejectUnknownKeys } from '../validate';
import { checkDesiredState, desiredSpecs, type DesiredTable } from './desired';
import { LiveDiff, type Matches } from './diff';
import { fingerprintOwned } from './fingerprint';
import { orderOperations } from './order';
import { checkScope, type CheckedScope } from './scope';
import type { TableService } from './settings';
import type { Plan, PlanOperation, RemovalPolicy } from './types';

/** What a plan is computed from, checked. */
export interface PlanInput {
  desired: DesiredTable;
  scope: CheckedScope;
  removal: RemovalPolicy;
}

const REMOVALS: RemovalPolicy[] = ['delete', 'quiesce'];
const OPERATIONS: PlanOperation['op'][] = [
  'addService', 'editService', 'deleteService', 'addDestination', 'editDestination', 'deleteDestination',
];

/** Checks options.removal. @throws {TypeError|RangeError} naming options.removal. */
export function checkRemoval(value: unknown): RemovalPolicy {
  return value === undefined ? 'delete' : expectOneOf(value, 'options.removal', REMOVALS);
}

/**
 * Checks a desired state with its scope and removal options.
 * @throws {TypeError|RangeError} as checkDesiredState and checkScope.
 */
export function checkPlanInput(desired: unknown, scope: unknown, removal: unknown): PlanInput {
  const checkedScope = checkScope(scope);
  return { desired: checkDesiredState(desired, checkedScope), scope: checkedScope, removal: checkRemoval(removal) };
}

/** What a plan made here was computed from. */
export interface PlanOrigin {
  input: PlanInput;
  /** The listing it was planned against (never changed afterwards). */
  live: TableService[];
  /** The desired services found equal to their live objects. */
  matches: Matches;
}

// Plans made by buildPlan, with their origin: apply(plan) of such a plan whose desired state was
// never read or replaced needs neither to check that state again nor to digest two listings.
const origins = new WeakMap<object, PlanOrigin>();

/**
 * The plan from `input` to the table `live` (one listTable()). Pure.
 * With `deferred`, `desired` and `fingerprint` are computed when first read (then kept as
 * ordinary data properties): most plans are applied or printed without either being read, and
 * on a large table writing out the whole desired state and hashing the listing cost as much as
 * the diff. `live` must not change afterwards.
 */
export function buildPlan(input: PlanInput, live: TableService[], deferred = false): Plan {
  const builder = new PlanBuilder(input);
  for (const service of live) builder.add(service);
  return builder.finish(live, deferred);
}

/**
 * buildPlan while the table is being listed: add() each live service in listing order as it
 * arrives (it is compared at once), then finish() with the whole listing.
 */
export class PlanBuilder {
  readonly #input: PlanInput;
  readonly #matches: Matches;
  readonly #diff: LiveDiff;

  constructor(input: PlanInput) {
    this.#input = input;
    this.#matches = { desired: input.desired, removal: input.removal, have: [] };
    this.#diff = new LiveDiff(input.desired, input.scope, input.removal, this.#matches);
  }

  add(service: TableService): void {
    this.#diff.add(service);
  }

  /** The plan (see buildPlan): `live` is every service added, in order. */
  finish(live: TableService[], deferred = false): Plan {
    const input = this.#input;
    const operations = orderOperations(this.#diff.finish(live));
    if (!deferred) {
      return {
        version: 1,
        scope: input.scope.value,
        removal: input.removal,
        desired: desiredSpecs(input.desired),
        fingerprint: fingerprintOwned(live, input.desired, input.scope),
        operations,
      };
    }
    const plan = { version: 1, scope: input.scope.value, removal: input.removal } as Plan;
    Object.defineProperty(plan, 'desired', { get: deferredDesired, set: settleDesired, enumerable: true, configurable: true });
    Object.defineProperty(plan, 'fingerprint', { get: deferredFingerprint, set: settleFingerprint, enumerable: true, configurable: true });
    plan.operations = operations;
    origins.set(plan, { input, live, matches: this.#matches });
    return plan;
  }
}

function deferredDesired(this: Plan): Plan['desired'] {
  return settle(this, 'desired', desiredSpecs(origins.get(this)!.input.desired));
}
function settleDesired(this: Plan, value: Plan['desired']): void {
  settle(this, 'desired', value);
}
function deferredFingerprint(this: Plan): string {
  const { input, live } = origins.get(this)!;
  return settle(this, 'fingerprint', fingerprintOwned(live, input.desired, input.scope));
}
function settleFingerprint(this: Plan, value: string): void {
  settle(this, 'fingerprint', value);
}

/** Replaces a deferred field by a plain data property (in place: the key order stays). */
function settle<T>(plan: object, field: 'desired' | 'fingerprint', value: T): T {
  Object.defineProperty(plan, field, { value, writable: true, enumerable: true, configurable: true });
  return value;
}

const isDeferred = (plan: object, field: 'desired' | 'fingerprint', getter: () => unknown): boolean =>
  Object.getOwnPropertyDescriptor(plan, field)?.get === getter;

/** The origin of a plan made here whose `desired` was never read or replaced, else undefined. */
function untouchedOrigin(plan: object): PlanOrigin | undefined {
  return isDeferred(plan, 'desired', deferredDesired) ? origins.get(plan) : undefined;
}

/** What a read-back may skip: the desired services a plan made here found equal to their live objects. */
export function matchesOf(plan: Plan): Matches | undefined {
  return origins.get(plan)?.matches;
}

/**
 * The listing a plan made here was planned against, while its fingerprint is still unread (so
 * it is that listing's digest): staleness can then be told by comparing the listings.
 */
export function plannedListing(plan: Plan): TableService[] | undefined {
  return isDeferred(plan, 'fingerprint', deferredFingerprint) ? origins.get(plan)?.live : undefined;
}

/** Whether `value` looks like a Plan rather than a desired state (which is an array). */
export function isPlanLike(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && 'operations' in value && 'fingerprint' in value;
}

const PLAN_FIELDS = new Set(['version', 'scope', 'removal', 'desired', 'fingerprint', 'operations']);
const OPERATION_FIELDS = new Set(['op', 'reason', 'service', 'destination', 'changes', 'destinations']);

/**
 * Checks a plan that comes back to apply: its shape, its desired state (re-checked, paths
 * under `plan.desired`), and every operation's arguments as the batch will send them (paths
 * under `plan.operations[i]`).
 * @throws {TypeError} for a wrong shape or type. @throws {RangeError} for an unknown version or
 *   operation, or a value out of range.
 */
export function checkPlan(value: unknown): { plan: Plan; input: PlanInput } {
  const plan = expectObject(value, 'plan');
  rejectUnknownKeys(plan, PLAN_FIELDS, 'plan');
  if (plan.version !== 1) throw new RangeError(`plan.version must be 1 (the only plan format), got ${describe(plan.version)}`);
  if (typeof plan.fingerprint !== 'string') throw new TypeError(`plan.fingerprint must be a string, got ${describe(plan.fingerprint)}`);
  const scope = checkScope(plan.scope, 'plan.scope');
  const removal = plan.removal === undefined ? 'delete' : expectOneOf(plan.removal, 'plan.removal', REMOVALS);
  // A plan made here, its desired state unread: that state is the one checked when planning.
  // (Its scope may have been replaced since; the check of a desired state depends on it.)
  const origin = untouchedOrigin(plan);
  const desired = origin && JSON.stringify(origin.input.scope.value) === JSON.stringify(scope.value)
    ? origin.input.desired
    : checkDesiredState(plan.desired, scope, 'plan.desired');
  if (!Array.isArray(plan.operations)) throw new TypeError(`plan.operations must be an array, got ${describe(plan.operations)}`);
  plan.operations.forEach(checkOperation);
  return { plan: plan as unknown as Plan, input: { desired, scope, removal } };
}

function checkOperation(value: unknown, i: number): void {
  const field = `plan.operations[${i}]`;
  const op = expectObject(value, field);
  rejectUnknownKeys(op, OPERATION_FIELDS, field);
  const name = expectOneOf(op.op, `${field}.op`, OPERATIONS);
  switch (name) {
    case 'addService':
    case 'editService':
      checkServiceDefinition(op.service, `${field}.service`);
      return;
    case 'deleteService':
      checkServiceKey(op.service, `${field}.service`);
      return;
    case 'addDestination':
    case 'editDestination':
      checkDestinationSpec(op.destination, checkServiceKey(op.service, `${field}.service`), `${field}.destination`);
      return;
    case 'deleteDestination':
      checkDestinationKey(op.destination, checkServiceKey(op.service, `${field}.service`), `${field}.destination`);
  }
}
