// A digest of the owned part of a live table, to tell whether a plan is stale.
import { createHash } from 'node:crypto';

import type { DesiredTable } from './desired';
import { indexLive } from './diff';
import type { CheckedScope } from './scope';
import { destinationSettingsText, serviceSettingsText, type TableService } from './settings';

/**
 * SHA-256 over the keys and settings of every owned service and of its destinations, sorted,
 * so the kernel's listing order does not matter. Counters, rates and connection counts are left
 * out: traffic never makes a plan stale, a change of any setting (by hand, by another process)
 * or a service appearing or vanishing in the owned part does. Services outside the scope do not
 * count.
 */
export function fingerprintOwned(live: TableService[], desired: DesiredTable, scope: CheckedScope): string {
  const blocks: string[] = [];
  for (const [key, service] of indexLive(live)) {
    if (!scope.owns(service, key, desired.keySet)) continue;
    const lines = service.destinations.map(destinationSettingsText).sort();
    blocks.push(`${serviceSettingsText(service)}\n${lines.join('\n')}`);
  }
  blocks.sort();
  const hash = createHash('sha256');
  hash.update('ipvs-netlink plan v1\n');
  for (const block of blocks) hash.update(`${block}\n\n`);
  return `sha256:${hash.digest('hex')}`;
}
