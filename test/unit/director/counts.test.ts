// The connection counts in status(): every resyncInterval they are read from the listing the
// sync planned against (the addon's packed records), with no listing of their own. A native
// handle stands in for the addon's and answers with packed records of a table in memory.
import { afterEach, expect, it, vi } from 'vitest';

import { Ipvs } from '../../../lib/ipvs';
import type { NativeHandle } from '../../../lib/native';
import { buildPlan, checkPlanInput } from '../../../lib/reconcile/plan';
import type { TableService } from '../../../lib/reconcile/settings';
import { Director } from '../../../lib/director/director';
import { packTable } from '../packed-table';
import { ModelKernel } from '../reconcile/model';

afterEach(() => {
  vi.useRealTimers();
});

it("reads the connection counts from the resync's own listing, once a resync ran", async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'Date', 'performance'] });
  const config = {
    resyncInterval: 5,
    services: [{
      protocol: 'tcp', address: '10.0.0.1', port: 80, checks: [{ type: 'none' }],
      destinations: [{ address: '10.0.1.1' }, { address: '10.0.1.2' }],
    }],
  };
  // The table as the kernel would list it, with connection counts.
  const kernel = new ModelKernel();
  const desired = [{ protocol: 'tcp', address: '10.0.0.1', port: 80, destinations: [{ address: '10.0.1.1', weight: 1 }, { address: '10.0.1.2', weight: 1 }] }];
  for (const op of buildPlan(checkPlanInput(desired, 'listed', 'delete'), []).operations) expect(kernel.apply(op)).toBe('ok');
  const table = [...kernel.services.values()] as Array<TableService & { destinations: Array<{ activeConnections: number; inactiveConnections: number }> }>;
  let listings = 0;
  const handle = {
    listTable: async () => {
      listings++;
      return packTable(table as never);
    },
  } as unknown as NativeHandle;
  const ipvs = Object.create(Ipvs.prototype) as Ipvs;
  Object.assign(ipvs, { netns: undefined, enqueue: (_operation: string, work: (h: NativeHandle) => Promise<unknown>) => work(handle) });
  const director = new Director(config as never, { ipvs });
  await director.start();
  const connections = () => Object.fromEntries(director.status().services[0]!.destinations.map((d) => [d.id, d.connections.active]));
  expect(connections()).toEqual({ '10.0.1.1:80': 0, '10.0.1.2:80': 0 });

  table[0]!.destinations[0]!.activeConnections = 7;
  table[0]!.destinations[1]!.inactiveConnections = 3;
  const before = listings;
  await vi.advanceTimersByTimeAsync(5100);
  // One listing per resync: the sync's.
  expect(listings - before).toBe(1);
  expect(connections()).toEqual({ '10.0.1.1:80': 7, '10.0.1.2:80': 0 });
  expect(director.status().services[0]!.destinations[1]!.connections).toEqual({ active: 0, inactive: 3, persistent: 0 });
  await director.stop();
});
