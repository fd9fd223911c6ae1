// The order a plan's operations are applied in. Every guarantee here is documented on Plan.
import type { TableDiff } from './diff';
import type { PlanOperation } from './types';

/**
 * Flattens a diff into the order of application:
 * 1. service by service, in the desired order: the service's own add or edit first (so it
 *    exists before its destinations are added), then its destination additions, then edits,
 *    then removals, so a service keeps at least one destination throughout when it has one
 *    before and after;
 * 2. the deletion of whole services last.
 */
export function orderOperations(diff: TableDiff): PlanOperation[] {
  const operations: PlanOperation[] = [];
  for (const set of diff.services) {
    if (set.service) operations.push(set.service);
    for (const op of set.additions) operations.push(op);
    for (const op of set.edits) operations.push(op);
    for (const op of set.removals) operations.push(op);
  }
  for (const op of diff.deletions) operations.push(op);
  return operations;
}
