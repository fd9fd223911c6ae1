// Schedulers seen from the client: HTTP requests through a NAT VIP, each on a new connection,
// answered by the kit's servers with their names. rr alternates, wrr follows the weights,
// sh and mh keep each client address on one real server.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { Ipvs } from '../../../lib/index';
import { httpClient, startHttpServer, topology, type HttpExchange, type Topology } from '../../../lib/testing';
import type { Scheduler, SchedulerFlag } from '../../../lib/types';

const PORT = 80;
const EXTRA_CLIENTS = ['10.0.1.21', '10.0.1.22', '10.0.1.23'];

let topo: Topology;
let ipvs: Ipvs;
const service = () => ({ protocol: 'tcp', address: topo.vip, port: PORT } as const);

async function useScheduler(scheduler: Scheduler, weights: number[], schedulerFlags: SchedulerFlag[] = []): Promise<void> {
  await ipvs.addService({ ...service(), scheduler, schedulerFlags });
  for (const [i, weight] of weights.entries()) await ipvs.addDestination(service(), topo.destination(i, { weight }));
}

function tally(exchanges: HttpExchange[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of exchanges) {
    expect(e.status).toBe(200);
    expect(e.body).toBe(`${String(e.server)}\n`);
    counts[String(e.server)] = (counts[String(e.server)] ?? 0) + 1;
  }
  return counts;
}

beforeAll(async () => {
  topo = await topology('nat', { realServers: 2 });
  await topo.client.addAddress('eth0', EXTRA_CLIENTS.map((a) => `${a}/24`));
  await Promise.all(topo.realServers.map((rs) => startHttpServer(rs.ns, { port: PORT, name: rs.name })));
  ipvs = await Ipvs.open({ netns: topo.director.path });
});

afterAll(async () => {
  await ipvs?.close();
  await topo?.remove();
});

beforeEach(async () => {
  await ipvs.flush();
});

describe('schedulers spread real connections', () => {
  it('rr alternates between the real servers', async () => {
    await useScheduler('rr', [1, 1]);
    const exchanges = await httpClient(topo.client, { url: `http://${topo.vip}/`, requests: 6 });
    expect(tally(exchanges)).toEqual({ rs1: 3, rs2: 3 });
    const servers = exchanges.map((e) => e.server);
    for (let i = 1; i < servers.length; i += 1) expect(servers[i]).not.toBe(servers[i - 1]);
  });

  it('wrr sends connections in proportion to the weights (3:1)', async () => {
    await useScheduler('wrr', [3, 1]);
    const exchanges = await httpClient(topo.client, { url: `http://${topo.vip}/`, requests: 8 });
    expect(tally(exchanges)).toEqual({ rs1: 6, rs2: 2 });
  });

  it.each([
    { scheduler: 'sh' as const },
    { scheduler: 'mh' as const },
  ])('$scheduler keeps each client address on one real server', async ({ scheduler }) => {
    await useScheduler(scheduler, [1, 1]);
    const sources = [topo.clientAddress, ...EXTRA_CLIENTS];
    const perSource = await Promise.all(sources.map((localAddress) =>
      httpClient(topo.client, { url: `http://${topo.vip}/`, requests: 3, localAddress })));
    const chosen = perSource.map((exchanges) => {
      const counts = tally(exchanges);
      expect(Object.keys(counts)).toHaveLength(1);
      return Object.keys(counts)[0];
    });
    // Source hashing is deterministic: the same address maps to the same server again.
    const again = await httpClient(topo.client, { url: `http://${topo.vip}/`, requests: 2, localAddress: sources[0] });
    expect(again.map((e) => e.server)).toEqual([chosen[0], chosen[0]]);
  });
});
