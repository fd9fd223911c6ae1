// Whether a plan is stale: the owned part of the table changed since it was planned.
import type { DesiredTable } from './desired';
import { indexLive } from './diff';
import { fingerprintOwned } from './fingerprint';
import { plannedListing } from './plan';
import { destinationRecordsOf, sameDestinationRecords } from './records';
import type { CheckedScope } from './scope';
import { sameServiceSettings, type TableService } from './settings';
import type { Plan } from './types';

/**
 * Whether `plan` still fits the table `live`: undefined when it is stale (the owned part of
 * the table changed since it was planned, as its fingerprint tells), else the listing to
 * compare with after applying it. A plan made in this process whose fingerprint was never read
 * still has its listing: the two listings are compared service by service and record by record
 * first, which is exact and cheaper than digesting one, and the planned listing is returned
 * (its services were already compared with the desired state). Only where they differ (or
 * cannot be compared) do the digests decide, so the answer is always the fingerprint's.
 */
export function currentListing(plan: Plan, live: TableService[], desired: DesiredTable, scope: CheckedScope): TableService[] | undefined {
  const planned = plannedListing(plan);
  if (planned && sameOwnedPart(planned, live, desired, scope)) return planned;
  return fingerprintOwned(live, desired, scope) === plan.fingerprint ? live : undefined;
}

/**
 * Whether the owned services of `a` and `b` are the same services with the same settings and
 * the same destinations (compared as records, word for word). False also where that cannot be
 * told without decoding (destinations no longer records).
 */
export function sameOwnedPart(a: TableService[], b: TableService[], desired: DesiredTable, scope: CheckedScope): boolean {
  const inA = indexLive(a);
  const inB = indexLive(b);
  let owned = 0;
  for (const [key, x] of inA) {
    if (!scope.owns(x, key, desired.positions)) continue;
    owned++;
    const y = inB.get(key);
    if (!y || !sameServiceSettings(x, y)) return false;
    const xRecords = destinationRecordsOf(x);
    const yRecords = destinationRecordsOf(y);
    if (!xRecords || !yRecords || !sameDestinationRecords(xRecords, yRecords)) return false;
  }
  for (const [key, y] of inB) {
    if (scope.owns(y, key, desired.positions) && --owned < 0) return false;
  }
  return owned === 0;
}
