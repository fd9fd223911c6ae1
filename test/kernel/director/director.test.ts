// The director against the real kernel, in real time with short intervals: real HTTP servers
// in their own namespaces behind a NAT service, a client namespace, and the Director running
// inside the director namespace (harness.mjs).
import { writeFileSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { waitFor } from '../helpers';
import { DirectorProcess, Topology } from './topology';

const INTERVAL = 0.5;
const TIMEOUT = 0.4;
const RISE = 2;
const FALL = 2;
const WEB = { protocol: 'tcp', address: '10.1.0.1', port: 80 } as const;
const DYNAMIC = { protocol: 'tcp', address: '10.1.0.1', port: 81 } as const;
const SLOW = { protocol: 'tcp', address: '10.1.0.1', port: 82 } as const;
const SHORT_DRAIN = { protocol: 'tcp', address: '10.1.0.1', port: 83 } as const;
const WEIGHT_FILE = '/tmp/director-kernel-weight';
const extraDestination = { address: '10.2.9.9', port: 8080, forward: 'masq', checks: [{ type: 'none', interval: 0.5, timeout: 0.4 }] };

const http = (tag: string) => ({ type: 'http', path: `/health/${tag}`, interval: INTERVAL, timeout: TIMEOUT, rise: RISE, fall: FALL });
const real = (n: number, weight = 2) => ({ address: `10.2.${n}.2`, port: 8080, forward: 'masq', weight });

function config(overrides: { webWeights?: number[]; extraDynamic?: unknown[] } = {}) {
  const weights = overrides.webWeights ?? [2, 2, 2];
  return {
    resyncInterval: 0.5,
    services: [
      {
        ...WEB, scheduler: 'rr', checks: [http('a')], sorryServers: [{ address: '10.2.4.2', port: 8080, forward: 'masq' }],
        destinations: weights.map((w, i) => real(i + 1, w)),
      },
      {
        ...DYNAMIC, scheduler: 'wrr',
        checks: [{ type: 'exec', command: ['sh', '-c', `exit $(cat ${WEIGHT_FILE})`], dynamicWeight: true, interval: INTERVAL, timeout: TIMEOUT, rise: 1, fall: 1 }],
        destinations: [real(1, 3), ...(overrides.extraDynamic ?? [])],
      },
      { ...SLOW, scheduler: 'wrr', checks: [http('c')], slowStart: 1.5, destinations: [real(3, 10)] },
      { ...SHORT_DRAIN, scheduler: 'rr', checks: [http('d')], drainTimeout: 1, destinations: [real(2)] },
    ],
  };
}

describe('director (kernel, real time)', () => {
  let topo: Topology;
  let director: DirectorProcess;
  const weightOf = async (service: typeof WEB | typeof DYNAMIC | typeof SLOW | typeof SHORT_DRAIN, n: number) =>
    (await topo.destination(service, `10.2.${n}.2`))?.weight;

  beforeAll(async () => {
    topo = new Topology(4);
    await topo.start();
    writeFileSync(WEIGHT_FILE, '0\n');
    director = new DirectorProcess(topo.director);
    await director.request('start', config());
    // A fresh table: every destination is added quiesced, then joins after its first passing check.
    for (const n of [1, 2, 3]) await waitFor(`s${n} serving`, async () => (await weightOf(WEB, n)) === 2);
  }, 300_000);

  afterAll(async () => {
    await director?.request('stop', { leave: 'remove' }).catch(() => {});
    director?.kill();
    await topo?.close();
  });

  it('takes a stopped server out after `fall` failed checks, and puts it back after `rise` passes', async () => {
    const mark = director.events.length;
    const stoppedAt = Date.now();
    topo.servers[0]!.stop();
    await waitFor('s1 quiesced', async () => (await weightOf(WEB, 1)) === 0, { intervalMs: 20 });
    const elapsed = (Date.now() - stoppedAt) / 1000;
    const down = await director.waitEvent('down', { service: 'tcp 10.1.0.1:80', destination: '10.2.1.2:8080' }, mark);
    // Exactly `fall` failures, the first one no later than one interval after the stop.
    const failures = director.find('check', { service: 'tcp 10.1.0.1:80', destination: '10.2.1.2:8080', ok: false }, mark);
    expect(failures.filter((c) => c.time <= down.time)).toHaveLength(FALL);
    expect(down.reason).toMatch(/^http: request ECONNREFUSED/);
    expect(elapsed).toBeLessThan(FALL * INTERVAL + TIMEOUT + 1.5);  // the bound plus scheduling slack on a loaded VM
    expect(director.find('weight', { destination: '10.2.1.2:8080', to: 0, reason: 'health' }, mark)).toHaveLength(1);
    // The VIP only reaches the others meanwhile.
    const bodies = new Set([topo.get(80), topo.get(80), topo.get(80), topo.get(80)]);
    expect([...bodies].sort()).toEqual(['s2', 's3']);

    const restartMark = director.events.length;
    await topo.servers[0]!.start();
    const up = await director.waitEvent('up', { service: 'tcp 10.1.0.1:80', destination: '10.2.1.2:8080' }, restartMark);
    const passes = director.find('check', { service: 'tcp 10.1.0.1:80', destination: '10.2.1.2:8080', ok: true }, restartMark);
    expect(passes.filter((c) => c.time <= up.time)).toHaveLength(RISE);
    await waitFor('s1 weight 2 again', async () => (await weightOf(WEB, 1)) === 2);
  });

  it('puts the sorry server in when every server is down, and takes it out when one recovers', async () => {
    const mark = director.events.length;
    for (const s of topo.servers.slice(0, 3)) s.mode('a', 'down');
    await director.waitEvent('quorum-lost', { service: 'tcp 10.1.0.1:80' }, mark);
    await director.waitEvent('sorry-on', { service: 'tcp 10.1.0.1:80' }, mark);
    await waitFor('the sorry server in', async () => (await weightOf(WEB, 4)) === 1);
    expect(topo.get(80)).toBe('s4');
    expect(await Promise.all([1, 2, 3].map((n) => weightOf(WEB, n)))).toEqual([0, 0, 0]);

    const back = director.events.length;
    topo.servers[1]!.mode('a', 'up');
    await director.waitEvent('quorum-gained', { service: 'tcp 10.1.0.1:80', liveWeight: 2 }, back);
    await director.waitEvent('sorry-off', { service: 'tcp 10.1.0.1:80' }, back);
    await waitFor('the sorry server out', async () => (await weightOf(WEB, 4)) === undefined);
    expect(topo.get(80)).toBe('s2');
    for (const s of [topo.servers[0]!, topo.servers[2]!]) s.mode('a', 'up');
    for (const n of [1, 3]) await waitFor(`s${n} back`, async () => (await weightOf(WEB, n)) === 2);
  });

  it('sets the weight from an exec check (exit code − 2), and takes the server out on exit 1', async () => {
    await waitFor('weight 3 from the configuration on exit 0', async () => (await weightOf(DYNAMIC, 1)) === 3);
    const mark = director.events.length;
    writeFileSync(WEIGHT_FILE, '7\n');
    await waitFor('weight 5 from exit 7', async () => (await weightOf(DYNAMIC, 1)) === 5);
    expect(director.find('weight', { service: 'tcp 10.1.0.1:81', from: 3, to: 5, reason: 'dynamic' }, mark)).toHaveLength(1);
    writeFileSync(WEIGHT_FILE, '12\n');
    await waitFor('weight 10 from exit 12', async () => (await weightOf(DYNAMIC, 1)) === 10);
    writeFileSync(WEIGHT_FILE, '1\n');
    await waitFor('quiesced on exit 1', async () => (await weightOf(DYNAMIC, 1)) === 0);
    await director.waitEvent('down', { service: 'tcp 10.1.0.1:81' }, mark);
    writeFileSync(WEIGHT_FILE, '0\n');
    await waitFor('back to 3 on exit 0', async () => (await weightOf(DYNAMIC, 1)) === 3);
  });

  it('does not flap the kernel weight for a server whose check flaps on every attempt', async () => {
    const mark = director.events.length;
    topo.servers[1]!.mode('a', 'flap');
    const seen = new Set<number | undefined>();
    await waitFor('12 flapping checks', async () => {
      seen.add(await weightOf(WEB, 2));
      return director.find('check', { service: 'tcp 10.1.0.1:80', destination: '10.2.2.2:8080' }, mark).length >= 12;
    }, { intervalMs: 30, timeoutMs: 20_000 });
    const checks = director.find('check', { service: 'tcp 10.1.0.1:80', destination: '10.2.2.2:8080' }, mark);
    // Both outcomes were seen, alternating, and nothing changed.
    expect(checks.filter((c) => c.ok).length).toBeGreaterThanOrEqual(5);
    expect(checks.filter((c) => !c.ok).length).toBeGreaterThanOrEqual(5);
    expect([...seen]).toEqual([2]);
    expect(director.find('down', { destination: '10.2.2.2:8080' }, mark)).toEqual([]);
    expect(director.find('weight', { destination: '10.2.2.2:8080' }, mark)).toEqual([]);
    topo.servers[1]!.mode('a', 'up');
  });

  it('ramps a recovered server from 1 to its weight over slowStart', async () => {
    topo.servers[2]!.mode('c', 'down');
    await waitFor('s3 quiesced on :82', async () => (await weightOf(SLOW, 3)) === 0);
    const mark = director.events.length;
    topo.servers[2]!.mode('c', 'up');
    const up = await director.waitEvent('up', { service: 'tcp 10.1.0.1:82' }, mark);
    const observed: number[] = [];
    await waitFor('the full weight', async () => {
      const w = await weightOf(SLOW, 3);
      if (w !== undefined && observed[observed.length - 1] !== w) observed.push(w);
      return w === 10;
    }, { intervalMs: 20, timeoutMs: 10_000 });
    const ramp = director.find('weight', { service: 'tcp 10.1.0.1:82' }, mark);
    const steps = ramp.map((e) => e.to);
    expect(steps[0]).toBeLessThanOrEqual(2);
    expect(steps[steps.length - 1]).toBe(10);
    expect(steps.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < steps.length; i++) expect(steps[i]).toBeGreaterThan(steps[i - 1]);
    expect(ramp.slice(0, -1).every((e) => e.reason === 'slow-start')).toBe(true);
    // The ramp takes about slowStart: the full weight is not reached before 1 s of it.
    expect(ramp[ramp.length - 1]!.time - up.time).toBeGreaterThanOrEqual(1000);
    expect(observed.length).toBeGreaterThanOrEqual(3);
  });

  it('drains a destination: deleted only once its live connection closes', async () => {
    // Hold connections through the VIP until one lands on s1 (rr over s1..s3).
    const held: Array<{ server: string; close(): void }> = [];
    for (let i = 0; i < 3 && !held.some((h) => h.server === 's1'); i++) held.push(await topo.hold(80));
    const toS1 = held.find((h) => h.server === 's1')!;
    expect(toS1).toBeDefined();
    for (const h of held) if (h !== toS1) h.close();
    const mark = director.events.length;
    await director.request('drain', 'tcp 10.1.0.1:80', '10.2.1.2:8080');
    const start = await director.waitEvent('drain-start', { destination: '10.2.1.2:8080', reason: 'requested' }, mark);
    await waitFor('s1 at weight 0', async () => (await weightOf(WEB, 1)) === 0);
    // Several drain polls pass with the connection open: still there.
    await waitFor('3 s of drain', () => Date.now() - start.time > 2500, { intervalMs: 100 });
    expect((await topo.destination(WEB, '10.2.1.2'))?.activeConnections).toBe(1);
    expect(director.find('drained', { destination: '10.2.1.2:8080' }, mark)).toEqual([]);
    toS1.close();
    const drained = await director.waitEvent('drained', { destination: '10.2.1.2:8080' }, mark);
    expect(drained).toMatchObject({ reason: 'connections', connections: 0 });
    await waitFor('s1 deleted', async () => (await topo.destination(WEB, '10.2.1.2')) === undefined);
    const status = await director.request<{ services: Array<{ id: string; destinations: Array<{ id: string; health: string }> }> }>('status');
    expect(status.services[0]!.destinations.find((d) => d.id === '10.2.1.2:8080')!.health).toBe('drained');

    await director.request('undrain', 'tcp 10.1.0.1:80', '10.2.1.2:8080');
    await waitFor('s1 back after undrain', async () => (await weightOf(WEB, 1)) === 2);
  });

  it('deletes a draining destination at the drain deadline even with a connection open', async () => {
    const conn = await topo.hold(83);
    expect(conn.server).toBe('s2');
    const mark = director.events.length;
    await director.request('drain', 'tcp 10.1.0.1:83', '10.2.2.2:8080');
    const start = await director.waitEvent('drain-start', { service: 'tcp 10.1.0.1:83' }, mark);
    const drained = await director.waitEvent('drained', { service: 'tcp 10.1.0.1:83' }, mark);
    expect(drained).toMatchObject({ reason: 'timeout', connections: 1 });
    expect(drained.time - start.time).toBeGreaterThanOrEqual(1000);
    await waitFor('deleted', async () => (await topo.destination(SHORT_DRAIN, '10.2.2.2')) === undefined);
    conn.close();
    await director.request('undrain', 'tcp 10.1.0.1:83', '10.2.2.2:8080');
  });

  it('repairs a weight changed by hand (ipvsadm -e -w 9) and a destination deleted by hand, with an event each', async () => {
    const mark = director.events.length;
    topo.director.run('ipvsadm', ['-e', '-t', '10.1.0.1:80', '-r', '10.2.2.2:8080', '-m', '-w', '9']);
    const repaired = await director.waitEvent('drift-repaired', { destination: '10.2.2.2:8080' }, mark);
    expect(repaired).toMatchObject({ service: 'tcp 10.1.0.1:80', op: 'editDestination', changes: [{ field: 'weight', before: 9, after: 2 }] });
    expect(await weightOf(WEB, 2)).toBe(2);
    topo.director.run('ipvsadm', ['-d', '-t', '10.1.0.1:80', '-r', '10.2.3.2:8080']);
    await director.waitEvent('drift-repaired', { destination: '10.2.3.2:8080', op: 'addDestination' }, mark);
    expect(await weightOf(WEB, 3)).toBe(2);
    // A repair is not the director's own change: no weight event, no 'applied' for it.
    expect(director.find('weight', {}, mark)).toEqual([]);
  });

  it('keeps the health of unchanged destinations across update(), and drains a removed one', async () => {
    type Status = { services: Array<{ id: string; destinations: Array<{ id: string; health: string; checks: Array<{ successes: number }> }> }> };
    const before = await director.request<Status>('status');
    const successes = (s: Status, id: string) => s.services[0]!.destinations.find((d) => d.id === id)!.checks[0]!.successes;
    const mark = director.events.length;
    // s3's weight changes; s1 and s2 are unchanged; the dynamic service loses nothing.
    await director.request('update', config({ webWeights: [2, 2, 5] }));
    await waitFor('s3 at its new weight', async () => (await weightOf(WEB, 3)) === 5);
    expect(director.find('weight', { destination: '10.2.3.2:8080', from: 2, to: 5, reason: 'config' }, mark)).toHaveLength(1);
    const after = await director.request<Status>('status');
    for (const id of ['10.2.1.2:8080', '10.2.2.2:8080']) {
      expect(after.services[0]!.destinations.find((d) => d.id === id)!.health).toBe('up');
      // The consecutive-success count went on: the health state was not reset.
      expect(successes(after, id)).toBeGreaterThanOrEqual(successes(before, id));
    }
    expect(director.find('up', {}, mark)).toEqual([]);
    expect(director.find('down', {}, mark)).toEqual([]);

    // Removed from the configuration: drained (no connections: deleted at the next poll).
    const removal = director.events.length;
    await director.request('update', config({ webWeights: [2, 2] }));
    await director.waitEvent('drain-start', { destination: '10.2.3.2:8080', reason: 'removed' }, removal);
    await director.waitEvent('drained', { destination: '10.2.3.2:8080', reason: 'connections' }, removal);
    await waitFor('s3 deleted', async () => (await topo.destination(WEB, '10.2.3.2')) === undefined);
  });

  it('reports a kernel error mid-run as an event and retries until it goes through', async () => {
    // The kernel refuses a destination whose address is not unicast in the director's
    // namespace: make 10.2.9.9 a broadcast address there, then remove that route.
    topo.director.run('ip', ['route', 'add', 'broadcast', '10.2.9.9', 'dev', 'lo', 'table', 'local']);
    const mark = director.events.length;
    await director.request('update', config({ webWeights: [2, 2], extraDynamic: [extraDestination] }));
    const error = await director.waitEvent('error', { operation: 'addDestination' }, mark);
    expect(error.error.code).toBe('EINVAL');
    await director.waitEvent('error', { operation: 'retry' }, mark);
    expect((await topo.destination(DYNAMIC, '10.2.9.9'))).toBeUndefined();
    topo.director.run('ip', ['route', 'del', 'broadcast', '10.2.9.9', 'dev', 'lo', 'table', 'local']);
    await waitFor('added on a retry', async () => (await topo.destination(DYNAMIC, '10.2.9.9')) !== undefined, { timeoutMs: 20_000 });
    await director.waitEvent('applied', {}, director.events.length - 1).catch(() => undefined);
    // The director kept running: checks go on.
    const later = director.events.length;
    await director.waitEvent('check', {}, later);
  });

  it('restarts on a live table without a blip: serving destinations stay in at their weight', async () => {
    director.kill();
    const saved = topo.director.run('ipvsadm', ['-S', '-n']);
    director = new DirectorProcess(topo.director);
    const seen = new Set<string>();
    const watch = setInterval(() => {
      void topo.ipvs.listDestinations(WEB).then((ds) => seen.add(ds.map((d) => `${d.address}=${d.weight}`).sort().join(',')), () => {});
    }, 10);
    try {
      await director.request('start', config({ webWeights: [2, 2], extraDynamic: [extraDestination] }));
      await waitFor('a few checks', () => director.find('check').length > 10);
    } finally {
      clearInterval(watch);
    }
    expect([...seen]).toEqual(['10.2.1.2=2,10.2.2.2=2']);
    expect(topo.director.run('ipvsadm', ['-S', '-n'])).toBe(saved);
    expect(director.find('down')).toEqual([]);
    expect(director.find('weight')).toEqual([]);
  });
});
