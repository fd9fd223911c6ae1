// A bounded soak (the full one is bench/soak.bench.mjs): operations, handle open/close cycles
// and connection-table reads in one process, in two halves (bench/soak-run.mjs). The RSS growth
// that continues (the second half's, over the whole run) must stay under 5 MiB, and the open
// descriptors must come back to the baseline.
import { afterAll, beforeAll, expect, it } from 'vitest';

import { countConnections } from '../../lib/connections';
import { Ipvs } from '../../lib/index';
import { soak } from '../../bench/soak-run.mjs';
import { createNetns, type TestNetns } from './helpers';

let ns: TestNetns;
beforeAll(() => {
  ns = createNetns('soak');
});
afterAll(() => ns.remove());

it('keeps RSS and open descriptors flat over operations, open/close cycles and table reads', async () => {
  const result = await soak({ Ipvs, countConnections }, ns.path, { operations: 10_000, cycles: 500, reads: 100 });
  console.log(`soak: ${JSON.stringify(result)}`);
  expect(result.done).toEqual({ operations: expect.any(Number), cycles: 500, reads: 100 });
  expect(result.done.operations).toBeGreaterThanOrEqual(10_000);
  expect(result.fdsAfter).toBe(result.fdsBefore);
  // Under the ASan build (scripts/test.sh) freed memory is held in quarantine on purpose, so
  // RSS says nothing there; that run is for memory errors, the release build's for growth.
  if (process.env.IPVS_ASAN !== '1') expect(result.rssGrowthMiB).toBeLessThan(5);
  expect(ns.run('ipvsadm', ['-S', '-n'])).toBe('');
}, 300_000);
