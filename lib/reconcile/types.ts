// The public shapes of declarative reconciliation: the desired state, the options, the plan
// (plain JSON data) and the result of applying it.
import type { BatchOperation, BatchResult } from '../batch';
import type { DestinationKey, DestinationSpec, Protocol, ServiceKey, ServiceSpec } from '../types';

/**
 * One virtual service as it should be: a {@link ServiceSpec} (same fields and defaults as
 * `addService`) plus every real server it should have (same fields and defaults as
 * `addDestination`). Destinations not listed are removed (or quiesced, see
 * {@link PlanOptions.removal}).
 */
export type DesiredService = ServiceSpec & { destinations: DestinationSpec[] };

/**
 * A port or fwmark range: one value, or `[from, to]` inclusive.
 */
export type NumberRange = number | readonly [number, number];

/**
 * Owns every service that matches. Address services (protocol, address, port) match when at
 * least one of `addresses`, `protocols`, `ports` is given and the service satisfies every one
 * given (each list matches when any of its entries does). Fwmark services match when `fwmarks`
 * is given and their mark is in one of its ranges. So `{ addresses: ['10.0.0.0/8'], fwmarks:
 * [[100, 199]] }` owns the address services in 10/8 and the fwmark services 100–199.
 */
export interface ScopeFilter {
  /** CIDRs ('10.0.0.0/8', '2001:db8::/32'); a bare address is a /32 or /128. */
  addresses?: string[];
  protocols?: Protocol[];
  /** Service ports, 0–65535, or `[from, to]`. */
  ports?: NumberRange[];
  /** Firewall marks, 1–4294967295, or `[from, to]`. */
  fwmarks?: NumberRange[];
}

/**
 * Which services of the namespace the desired state owns (and may change or delete):
 * - `'listed'` (default): only those whose keys are in the desired state;
 * - `'all'`: every service; the namespace becomes exactly the desired state;
 * - a {@link ScopeFilter}: every service that matches it (each desired service must match too).
 *
 * Inside an owned service, its destinations are fully managed.
 */
export type ReconcileScope = 'listed' | 'all' | ScopeFilter;

/**
 * What happens to a destination of a desired service that is not in the desired state:
 * `'delete'` (default) removes it; `'quiesce'` sets its weight to 0 and leaves it in place, for a
 * director to drain and delete later. Owned services that are not desired at all are deleted
 * either way.
 */
export type RemovalPolicy = 'delete' | 'quiesce';

export interface PlanOptions {
  /** Default 'listed'. */
  scope?: ReconcileScope;
  /** Default 'delete'. */
  removal?: RemovalPolicy;
}

export interface ApplyOptions extends PlanOptions {
  /**
   * What `apply(plan)` does when the owned part of the table changed since the plan was made:
   * `'refuse'` (default) rejects with a {@link PlanStaleError}; `'replan'` plans again against
   * the table as it is now and applies that (`ApplyResult.replanned` is then true). Only with a
   * Plan; `scope` and `removal` come from the plan and cannot be given with one.
   */
  ifStale?: 'refuse' | 'replan';
  /**
   * How the table is read back after the batch to report drift:
   * - `'changed'` (default): the destinations of every service the plan touched, then one dump
   *   of every service (settings, existence), all in one native call; destinations of untouched
   *   services are taken from the listing the plan was made from;
   * - `'full'`: a whole `listTable()`;
   * - `'none'`: no read-back; `drift` is empty.
   */
  verify?: 'changed' | 'full' | 'none';
}

/** A JSON value as it appears in a {@link FieldChange}. */
export type PlanValue = string | number | boolean | null | readonly string[] | { readonly [key: string]: PlanValue };

/** One setting that an edit changes: its spec field name and the values before and after. */
export interface FieldChange {
  /** 'scheduler', 'persistent', 'netmask', 'onePacket', 'schedulerFlags', 'persistenceEngine'; 'forward', 'weight', 'upperThreshold', 'lowerThreshold', 'tunnel'. */
  field: string;
  /** As the kernel reports it; null when absent (e.g. not persistent). */
  before: PlanValue;
  /** As the desired state asks; null when absent. */
  after: PlanValue;
}

interface OperationBase<Op extends BatchOperation> {
  op: Op;
  /** Why, in words: 'not in the table', 'settings differ', 'not in the desired state', … */
  reason: string;
}

/**
 * One step of a plan, named as the {@link Ipvs} method (and batch operation) that carries it
 * out, with arguments exactly as that method takes them (every default written out):
 * - `addService` / `editService`: `service` is the whole ServiceSpec; an edit lists `changes`;
 * - `deleteService`: `service` is the key; `destinations` counts the real servers removed with it;
 * - `addDestination` / `editDestination`: `service` is the key, `destination` the whole
 *   DestinationSpec; an edit lists `changes` (a quiesce is an edit of `weight` to 0);
 * - `deleteDestination`: `service` and `destination` are keys.
 */
export type PlanOperation =
  | (OperationBase<'addService'> & { service: ServiceSpec })
  | (OperationBase<'editService'> & { service: ServiceSpec; changes: FieldChange[] })
  | (OperationBase<'deleteService'> & { service: ServiceKey; destinations: number })
  | (OperationBase<'addDestination'> & { service: ServiceKey; destination: DestinationSpec })
  | (OperationBase<'editDestination'> & { service: ServiceKey; destination: DestinationSpec; changes: FieldChange[] })
  | (OperationBase<'deleteDestination'> & { service: ServiceKey; destination: DestinationKey });

/**
 * The changes that take the owned part of a namespace's table to the desired state: plain,
 * typed data (JSON.stringify it, store it, review it, pass it back to `apply`).
 *
 * Operations are in the order they are applied:
 * 1. service by service, in the order of the desired state: the service is added or edited
 *    first, then its destinations are added, then edited, then removed (or quiesced), so a
 *    service that should have destinations never has none mid-apply;
 * 2. owned services that are not desired are deleted last.
 */
export interface Plan {
  /** The format of this object; 1. */
  version: 1;
  scope: ReconcileScope;
  removal: RemovalPolicy;
  /** The desired state, checked and with every default written out. */
  desired: DesiredService[];
  /**
   * A digest of the owned part of the live table the plan was made from: keys and settings
   * of services and destinations, never counters or connection counts. `apply(plan)` compares it
   * with the table's at apply time to detect a stale plan.
   */
  fingerprint: string;
  /** Empty when the owned table already is the desired state. */
  operations: PlanOperation[];
}

/** One operation's outcome: the batch result of it (see {@link BatchResult}) and the operation. */
export type OperationResult = BatchResult & { readonly operation: PlanOperation };

export interface ApplyResult {
  /**
   * The plan that was applied (a fresh one when `ifStale: 'replan'` re-planned). When apply
   * made it, its `desired` and `fingerprint` are computed on first read (from the desired state
   * and the listing it was made from, so always the same values), then are plain data.
   */
  plan: Plan;
  /** True when a stale plan was re-planned before applying. */
  replanned: boolean;
  /** One per plan operation, in order; a failed one never hides the others. */
  results: OperationResult[];
  /**
   * What still differs after applying, as the operations a new plan would make: failed
   * operations, and changes other processes made meanwhile. Empty when the table matches.
   */
  drift: PlanOperation[];
  /** Every operation succeeded and there is no drift. */
  ok: boolean;
}
