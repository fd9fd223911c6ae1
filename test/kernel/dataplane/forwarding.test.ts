// Real traffic through the VIP in every forwarding mode: payloads echoed byte for byte by the
// real servers, connections spread by rr, and IPVS's own counters showing which way the bytes went
// (NAT: both ways through the director; DR and TUN: requests only, replies bypass it).
import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Ipvs } from '../../../lib/index';
import { startTcpServer, tcpClient, topology, waitFor, type Topology, type TopologyOptions } from '../../../lib/testing';

const PORT = 8080;
const PAYLOAD = randomBytes(192 * 1024);
const CONNECTIONS = 4;

const cases: Array<{ title: string; mode: 'nat' | 'dr' | 'tun'; options?: TopologyOptions }> = [
  { title: 'NAT (masquerading)', mode: 'nat' },
  { title: 'DR (direct routing)', mode: 'dr' },
  { title: 'TUN with ipip', mode: 'tun', options: { tunnel: 'ipip' } },
  { title: 'TUN with gue (fou)', mode: 'tun', options: { tunnel: 'gue' } },
  { title: 'TUN with gre', mode: 'tun', options: { tunnel: 'gre' } },
];

describe.each(cases)('$title', ({ mode, options }) => {
  let topo: Topology;
  let ipvs: Ipvs;

  beforeAll(async () => {
    topo = await topology(mode, { realServers: 2, ...options });
    await Promise.all(topo.realServers.map((rs) => startTcpServer(rs.ns, { port: PORT, name: rs.name })));
    ipvs = await Ipvs.open({ netns: topo.director.path });
    const service = { protocol: 'tcp', address: topo.vip, port: PORT } as const;
    await ipvs.addService({ ...service, scheduler: 'rr' });
    for (const i of topo.realServers.keys()) await ipvs.addDestination(service, topo.destination(i));
  });

  afterAll(async () => {
    await ipvs?.close();
    await topo?.remove();
  });

  it('carries the payload both ways intact, alternating real servers, and counts the bytes where they flow', async () => {
    const exchanges = await tcpClient(topo.client, { host: topo.vip, port: PORT, payload: PAYLOAD, connections: CONNECTIONS });
    expect(exchanges).toHaveLength(CONNECTIONS);
    for (const exchange of exchanges) {
      expect(exchange.localAddress).toBe(topo.clientAddress);
      expect(exchange.received).toBe(PAYLOAD.length);
      expect(exchange.intact).toBe(true);
    }
    const servers = exchanges.map((e) => e.server);
    expect(new Set(servers)).toEqual(new Set(['rs1', 'rs2']));
    for (let i = 1; i < servers.length; i += 1) expect(servers[i]).not.toBe(servers[i - 1]);

    // The kernel folds its per-CPU counters into the readable stats every 2 s or so.
    const half = BigInt((CONNECTIONS / 2) * PAYLOAD.length);
    const dests = await waitFor('the destination counters to show both connections and their bytes', async () => {
      const list = await ipvs.listDestinations({ protocol: 'tcp', address: topo.vip, port: PORT });
      // In NAT the echoes' bytes are folded in on their own schedule too: wait for them as well.
      return list.every((d) => d.stats.connections === BigInt(CONNECTIONS / 2) && d.stats.bytesIn >= half
        && (mode !== 'nat' || d.stats.bytesOut >= half)) && list;
    }, { timeoutMs: 20_000, intervalMs: 500 });
    expect(dests).toHaveLength(2);
    for (const dest of dests) {
      expect(dest.forward).toBe(topo.forward);
      // The echoes come back through the director only in NAT; in DR and TUN they bypass it.
      if (mode === 'nat') expect(dest.stats.bytesOut).toBeGreaterThanOrEqual(half);
      else expect(dest.stats.bytesOut).toBeLessThan(BigInt(PAYLOAD.length / 8));
    }
  });
});
