// An integration test of applyPool against the real kernel: a NAT topology from the kit, two
// HTTP servers, and requests through the VIP. Run it as root where IPVS exists, or anywhere
// with `npx ipvs-netlink sandbox -- npm test`; elsewhere it is skipped with the reason.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

import { Ipvs } from 'ipvs-netlink';
import { httpClient, skipUnlessIpvs, startHttpServer, topology } from 'ipvs-netlink/testing';

import { applyPool } from '../src/pool.js';

test('the CommonJS and ES module entry points are one package', () => {
  const require = createRequire(import.meta.url);
  assert.equal(require('ipvs-netlink').Ipvs, Ipvs);
  assert.equal(typeof require('ipvs-netlink/testing').withNetns, 'function');
});

test('applyPool balances over the pool, then drops a removed server', { skip: skipUnlessIpvs() }, async () => {
  const topo = await topology('nat', { realServers: 2 });
  try {
    await Promise.all(topo.realServers.map((rs) => startHttpServer(rs.ns, { port: 80, name: rs.name })));
    const ipvs = await Ipvs.open({ netns: topo.director.path });
    try {
      const servers = topo.realServers.map((rs) => ({ address: rs.address }));
      const first = await applyPool(ipvs, { vip: topo.vip, port: 80, scheduler: 'rr', servers });
      assert.deepEqual(first.added, servers.map((s) => s.address));

      const answers = await httpClient(topo.client, { url: `http://${topo.vip}/`, requests: 4 });
      assert.deepEqual(answers.map((a) => a.server).sort(), ['rs1', 'rs1', 'rs2', 'rs2']);

      const second = await applyPool(ipvs, { vip: topo.vip, port: 80, scheduler: 'rr', servers: servers.slice(0, 1) });
      assert.deepEqual(second, { added: [], updated: [], removed: [servers[1].address] });
      const after = await httpClient(topo.client, { url: `http://${topo.vip}/`, requests: 2 });
      assert.deepEqual(after.map((a) => a.server), ['rs1', 'rs1']);
    } finally {
      await ipvs.close();
    }
  } finally {
    await topo.remove();
  }
});
