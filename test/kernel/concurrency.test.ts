// Many calls at once on one handle, handles in several namespaces at once, and the addon in a
// worker_threads Worker.
import { Worker } from 'node:worker_threads';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Ipvs, IpvsError, type ServiceKey } from '../../lib/index';
import { DIST_INDEX, saveLines, withFreshNetns } from './api-helpers';
import { createNetns, run, type TestNetns } from './helpers';

type Expectation = { ok: (value: unknown) => void } | { code: string; operation: string };

describe('1000 concurrent calls on one handle', () => {
  let ns: TestNetns;
  let ipvs: Ipvs;
  withFreshNetns('conc', (opened) => ({ ns, ipvs } = opened));

  const key = (i: number): ServiceKey => ({ protocol: 'tcp', address: '10.0.0.1', port: 1000 + i });

  it('all settle, each with the result its place in the call order implies', async () => {
    const calls: Array<[Promise<unknown>, Expectation]> = [];
    const ok = (check: (value: unknown) => void = (v) => expect(v).toBeUndefined()): Expectation => ({ ok: check });
    // 200 services, each: add, add a destination, read back, add again (EEXIST); the second
    // half is then deleted (and is ESRCH afterwards).
    for (let i = 0; i < 200; i++) {
      calls.push([ipvs.addService({ ...key(i), scheduler: i % 2 ? 'rr' : 'wlc' }), ok()]);
      calls.push([ipvs.addDestination(key(i), { address: `10.0.${i >> 8}.${(i & 0xff) + 1}`, weight: i }), ok()]);
      calls.push([ipvs.getService(key(i)), ok((s) => expect(s).toMatchObject({ port: 1000 + i, scheduler: i % 2 ? 'rr' : 'wlc' }))]);
      calls.push([ipvs.addService(key(i)), { code: 'EEXIST', operation: 'addService' }]);
    }
    for (let i = 100; i < 200; i++) {
      calls.push([ipvs.deleteService(key(i)), ok()]);
      calls.push([ipvs.getService(key(i)), { code: 'ESRCH', operation: 'getService' }]);
    }
    expect(calls).toHaveLength(1000);

    const settled = await Promise.allSettled(calls.map(([p]) => p));
    const failures: string[] = [];
    settled.forEach((outcome, i) => {
      const expected = calls[i]![1];
      try {
        if ('ok' in expected) {
          if (outcome.status === 'rejected') throw outcome.reason;
          expected.ok(outcome.value);
        } else {
          expect(outcome.status).toBe('rejected');
          const reason = (outcome as PromiseRejectedResult).reason as IpvsError;
          expect(reason).toBeInstanceOf(IpvsError);
          expect({ code: reason.code, operation: reason.operation }).toEqual(expected);
        }
      } catch (error) {
        failures.push(`call ${i}: ${String(error)}`);
      }
    });
    expect(failures).toEqual([]);

    const table = saveLines(ns.run('ipvsadm', ['-S', '-n']));
    expect(table.filter((l) => l.startsWith('-A '))).toHaveLength(100);
    expect(table.filter((l) => l.startsWith('-a '))).toHaveLength(100);
    expect(table).toContain('-a -t 10.0.0.1:1099 -r 10.0.0.100:1099 -g -w 99');
    expect((await ipvs.listServices()).length).toBe(100);
    const lists = await Promise.all(Array.from({ length: 100 }, (_, i) => ipvs.listDestinations(key(i))));
    lists.forEach((d, i) => expect(d).toMatchObject([{ address: `10.0.0.${i + 1}`, port: 1000 + i, weight: i }]));
  });

  // listDestinations sends two requests (GET_SERVICE, then GET_DEST); a close() called after it
  // must wait for both, not slip in between and make the second meet EBADF.
  it('a call made before close() still settles normally', async () => {
    const other = await Ipvs.open({ netns: ns.path });
    const pending = other.listDestinations(key(0));
    await other.close();
    expect(await pending).toHaveLength(1);
  });

  it('several handles on one namespace work at once', async () => {
    const handles = await Promise.all([0, 1, 2, 3].map(() => Ipvs.open({ netns: ns.path })));
    await Promise.all(handles.map((h, n) =>
      Promise.all(Array.from({ length: 25 }, (_, i) => h.addService({ fwmark: 1 + n * 100 + i })))));
    for (const h of handles) expect((await h.listServices()).filter((s) => 'fwmark' in s)).toHaveLength(100);
    await Promise.all(handles.map((h) => h.close()));
  });
});

describe('namespace isolation', () => {
  let a: TestNetns;
  let b: TestNetns;
  beforeAll(() => {
    a = createNetns('isoa');
    b = createNetns('isob');
  });
  afterAll(() => {
    a?.remove();
    b?.remove();
  });

  it('handles in two namespaces see only their own services', async () => {
    // opened concurrently with handles on the caller's namespace: the pool threads that enter
    // a namespace to open a socket must leave it again
    const opened = await Promise.all([
      Ipvs.open({ netns: a.path }), Ipvs.open(), Ipvs.open({ netns: b.path }), Ipvs.open(),
      Ipvs.open({ netns: a.path }), Ipvs.open({ netns: b.path }), Ipvs.open(),
    ]);
    const [ha, root1, hb, root2, ha2, hb2, root3] = opened;
    try {
      const shared = { protocol: 'tcp', address: '10.0.0.1', port: 80 } as const;
      await Promise.all([
        ha!.addService({ ...shared, scheduler: 'rr' }),
        hb!.addService({ ...shared, scheduler: 'lc' }),
        ha!.addService({ fwmark: 1 }),
        hb!.addService({ fwmark: 2, family: 'inet6' }),
      ]);
      await ha!.addDestination(shared, { address: '10.0.1.1' });
      await hb!.addDestination(shared, { address: '10.0.2.1', forward: 'masq' });

      const keys = async (h: Ipvs): Promise<string[]> =>
        (await h.listServices()).map((s) => ('fwmark' in s ? `fwm ${s.fwmark} ${s.family}` : `${s.protocol} ${s.address}:${s.port} ${s.scheduler}`)).sort();
      expect(await keys(ha!)).toEqual(['fwm 1 inet', 'tcp 10.0.0.1:80 rr']);
      expect(await keys(ha2!)).toEqual(['fwm 1 inet', 'tcp 10.0.0.1:80 rr']);
      expect(await keys(hb!)).toEqual(['fwm 2 inet6', 'tcp 10.0.0.1:80 lc']);
      expect(await keys(hb2!)).toEqual(['fwm 2 inet6', 'tcp 10.0.0.1:80 lc']);
      expect((await ha!.listDestinations(shared)).map((d) => d.address)).toEqual(['10.0.1.1']);
      expect((await hb!.listDestinations(shared)).map((d) => d.address)).toEqual(['10.0.2.1']);

      // ipvsadm agrees, namespace by namespace
      expect(saveLines(a.run('ipvsadm', ['-S', '-n']))).toEqual(['-A -f 1 -s wlc', '-A -t 10.0.0.1:80 -s rr', '-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 1']);
      expect(saveLines(b.run('ipvsadm', ['-S', '-n']))).toEqual(['-A -f 2 -6 -s wlc', '-A -t 10.0.0.1:80 -s lc', '-a -t 10.0.0.1:80 -r 10.0.2.1:80 -m -w 1']);

      // the caller's own namespace has none of it, whichever pool thread served the open
      for (const root of [root1!, root2!, root3!]) {
        const mine = (await root.listServices()).filter((s) => ('fwmark' in s ? s.fwmark <= 2 : s.address === '10.0.0.1' && s.port === 80));
        expect(mine).toEqual([]);
      }
      await root1!.addService({ fwmark: 0x0eedf00d });
      try {
        expect(run('ipvsadm', ['-S', '-n'])).toContain('-A -f 250474509 -s wlc');
        expect(a.run('ipvsadm', ['-S', '-n'])).not.toContain('250474509');
        expect(b.run('ipvsadm', ['-S', '-n'])).not.toContain('250474509');
      } finally {
        await root2!.deleteService({ fwmark: 0x0eedf00d });
      }

      // deleting in one leaves the other alone
      await ha!.deleteService(shared);
      expect(await keys(hb!)).toEqual(['fwm 2 inet6', 'tcp 10.0.0.1:80 lc']);
      expect(await keys(ha!)).toEqual(['fwm 1 inet']);
    } finally {
      await Promise.all(opened.map((h) => h.close()));
    }
  });

  it('a handle stays bound to its namespace after the namespace path is gone', async () => {
    const c = createNetns('isoc');
    const holder = await Ipvs.open({ netns: c.path });
    try {
      await holder.addService({ fwmark: 3 });
      // `ip netns delete` unmounts the path; the socket keeps the namespace alive
      c.remove();
      expect((await holder.listServices()).map((s) => ('fwmark' in s ? s.fwmark : 0))).toEqual([3]);
    } finally {
      await holder.close();
    }
  });
});

describe('worker_threads', () => {
  let ns: TestNetns;
  beforeAll(() => {
    ns = createNetns('wrk');
  });
  afterAll(() => {
    ns?.remove();
  });

  function runWorker(source: string, data: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(source, { eval: true, workerData: data });
      let result: unknown;
      worker.on('message', (m) => { result = m; });
      worker.on('error', reject);
      worker.on('exit', (code) => (code === 0 ? resolve(result) : reject(new Error(`worker exited ${code}`))));
    });
  }

  const WORKER = `
    const { workerData, parentPort } = require('node:worker_threads');
    const { Ipvs, IpvsError } = require(workerData.dist);
    (async () => {
      const ipvs = await Ipvs.open({ netns: workerData.netns });
      const key = { protocol: 'udp', address: '2001:db8::1', port: workerData.port };
      await ipvs.addService({ ...key, scheduler: 'mh', schedulerFlags: ['mh-port'] });
      await ipvs.addDestination(key, { address: '10.0.1.1', forward: 'tunnel', tunnel: { type: 'gue', port: 6080 } });
      const service = await ipvs.getService(key);
      const destinations = await ipvs.listDestinations(key);
      let error;
      try { await ipvs.addService(key); } catch (e) { error = { isIpvsError: e instanceof IpvsError, code: e.code }; }
      await ipvs.close();
      parentPort.postMessage({
        scheduler: service.scheduler, flags: service.schedulerFlags, bigint: typeof service.stats.bytesIn,
        tunnel: destinations[0].tunnel, family: destinations[0].family, error,
      });
    })().catch((e) => { parentPort.postMessage({ fatal: String(e) }); });
  `;

  it('loads the addon and works in a Worker, alongside the main thread', async () => {
    const main = await Ipvs.open({ netns: ns.path });
    try {
      const [fromWorker, fromWorker2] = await Promise.all([
        runWorker(WORKER, { dist: DIST_INDEX, netns: ns.path, port: 53 }),
        runWorker(WORKER, { dist: DIST_INDEX, netns: ns.path, port: 54 }),
        main.addService({ fwmark: 11 }),
      ]);
      for (const result of [fromWorker, fromWorker2]) {
        expect(result).toEqual({
          scheduler: 'mh', flags: ['mh-port'], bigint: 'bigint',
          tunnel: { type: 'gue', port: 6080, checksum: 'none' }, family: 'inet',
          error: { isIpvsError: true, code: 'EEXIST' },
        });
      }
      // what the workers wrote, the main thread and ipvsadm see
      expect(saveLines(ns.run('ipvsadm', ['-S', '-n']))).toEqual(saveLines([
        '-A -f 11 -s wlc',
        '-A -u [2001:db8::1]:53 -s mh -b mh-port',
        '-a -u [2001:db8::1]:53 -r 10.0.1.1:53 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum',
        '-A -u [2001:db8::1]:54 -s mh -b mh-port',
        '-a -u [2001:db8::1]:54 -r 10.0.1.1:54 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum',
      ].join('\n')));
      expect((await main.listServices())).toHaveLength(3);
    } finally {
      await main.close();
    }
  });

  it('a Worker that exits with its handle open does not disturb the main thread', async () => {
    const leaky = `
      const { workerData, parentPort } = require('node:worker_threads');
      const { Ipvs } = require(workerData.dist);
      Ipvs.open({ netns: workerData.netns }).then(async (ipvs) => {
        await ipvs.addService({ fwmark: 12 });
        parentPort.postMessage('added');
        process.exit(0);
      });
    `;
    expect(await runWorker(leaky, { dist: DIST_INDEX, netns: ns.path })).toBe('added');
    const main = await Ipvs.open({ netns: ns.path });
    try {
      expect(await main.getService({ fwmark: 12 })).toMatchObject({ fwmark: 12 });
    } finally {
      await main.close();
    }
  });
});
