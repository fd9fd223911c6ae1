// The director against the real kernel, in real time with short intervals: real HTTP servers
// in their own namespaces behind a NAT service, a client namespace, and the Director running
// inside the director namespace (harness.mjs).
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { waitFor } from '../helpers';
import { DirectorProcess, Topology } from './topology';

// Checks every second with a 0.9 s timeout: on a loaded host under emulation an HTTP round
// trip can take several hundred milliseconds, and a spurious timeout is a real failure to the
// director. The assertions below read the check results the director actually saw, so a
// spurious failure changes what is expected rather than failing the test.
const INTERVAL = 1;
const TIMEOUT = 0.9;
const RISE = 2;
const FALL = 2;
const WEB = { protocol: 'tcp', address: '10.1.0.1', port: 80 } as const;
const DYNAMIC = { protocol: 'tcp', address: '10.1.0.1', port: 81 } as const;
const SLOW = { protocol: 'tcp', address: '10.1.0.1', port: 82 } as const;
const SHORT_DRAIN = { protocol: 'tcp', address: '10.1.0.1', port: 83 } as const;
const WEIGHT_FILE = '/tmp/director-kernel-weight';
const extraDestination = { address: '10.2.9.9', port: 8080, forward: 'masq', checks: [{ type: 'none', interval: INTERVAL, timeout: TIMEOUT }] };

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
        // `read` is a shell builtin: one fork per check, which matters under emulation.
        checks: [{ type: 'exec', command: ['sh', '-c', `read w < ${WEIGHT_FILE}; exit $w`], dynamicWeight: true, interval: INTERVAL, timeout: TIMEOUT, rise: 1, fall: 2 }],
        destinations: [real(1, 3), ...(overrides.extraDynamic ?? [])],
      },
      { ...SLOW, scheduler: 'wrr', checks: [http('c')], slowStart: 1.5, destinations: [real(3, 10)] },
      { ...SHORT_DRAIN, scheduler: 'rr', checks: [http('d')], drainTimeout: 1, destinations: [real(2)] },
    ],
  };
}

type Event = Record<string, any>;

/** How many results in a row, ending with the last one at or before `time`, have outcome `ok`. */
function trailingRun(checks: Event[], time: number, ok: boolean): number {
  const before = checks.filter((c) => c.time <= time);
  let n = 0;
  while (n < before.length && before[before.length - 1 - n]!.ok === ok) n++;
  return n;
}

/** The up/down transitions the rise/fall rule calls for on a sequence of results, from `start`. */
function transitions(checks: Event[], start: 'up' | 'down', rise: number, fall: number): Array<'up' | 'down'> {
  let state = start;
  let run = 0;
  let last: boolean | undefined;
  const out: Array<'up' | 'down'> = [];
  for (const c of checks) {
    run = c.ok === last ? run + 1 : 1;
    last = c.ok;
    if (state === 'up' && !c.ok && run >= fall) out.push((state = 'down'));
    else if (state === 'down' && c.ok && run >= rise) out.push((state = 'up'));
  }
  return out;
}

// Each test chains several waits of up to 30 s; on a loaded host under ASan the first took 23 s
// (6 s in CI): room beyond the suite's default 60 s, so a slow run ends on the wait that timed out.
describe('director (kernel, real time)', { timeout: 180_000 }, () => {
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
    try {
      for (const n of [1, 2, 3]) await waitFor(`s${n} serving`, async () => (await weightOf(WEB, n)) === 2, { timeoutMs: 60_000 });
    } catch (error) {
      const status = await director.request('status').catch((e: unknown) => String(e));
      throw new Error(`${(error as Error).message}; last events: ${JSON.stringify(director.events.slice(-12))}; status: ${JSON.stringify(status)}; ` +
        `table: ${topo.director.run('ipvsadm', ['-Ln'])}`);
    }
  }, 300_000);

  // A failed scenario leaves its events beside the results, for reading what the director saw.
  beforeEach(({ task, onTestFailed }) => {
    const testMark = director?.events.length ?? 0;
    onTestFailed(() => {
      const dir = path.resolve('.cache/director-test-events');
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, `${task.name.slice(0, 40).replace(/\W+/g, '-')}.jsonl`),
        director.events.slice(testMark).map((e) => JSON.stringify(e)).join('\n'));
    });
  });

  /** Every server answering and every WEB destination at its configured weight, no sorry server. */
  async function settled(weights = [2, 2, 2]): Promise<void> {
    for (const [i, w] of weights.entries()) {
      await waitFor(`s${i + 1} at weight ${w}`, async () => (await weightOf(WEB, i + 1)) === w, { timeoutMs: 30_000 });
    }
    await waitFor('no sorry server', async () => (await weightOf(WEB, 4)) === undefined, { timeoutMs: 30_000 });
  }

  afterAll(async () => {
    await director?.request('stop', { leave: 'remove' }).catch(() => {});
    director?.kill();
    await topo?.close();
  });

  it('takes a stopped server out after `fall` failed checks, and puts it back after `rise` passes', async () => {
    await settled();
    const mark = director.events.length;
    const stoppedAt = Date.now();
    topo.servers[0]!.stop();
    try {
      await waitFor('s1 quiesced', async () => (await weightOf(WEB, 1)) === 0, { intervalMs: 20, timeoutMs: 30_000 });
      const target = { service: 'tcp 10.1.0.1:80', destination: '10.2.1.2:8080' };
      const down = await director.waitEvent('down', target, mark);
      // It went down on the `fall`-th failure in a row, the last one a refused connection.
      const checks = director.find('check', target, mark);
      expect(trailingRun(checks, down.time, false)).toBe(FALL);
      expect(down.reason).toMatch(/^http: request (ECONNREFUSED|ECONNRESET)/);
      // Promptly, counted in checks rather than seconds (a loaded host stretches seconds): no
      // more than `fall` failures after the stop, and no pass but one already in flight.
      const afterStop = checks.filter((c) => c.time >= stoppedAt && c.time <= down.time);
      expect(afterStop.filter((c) => !c.ok).length).toBeGreaterThanOrEqual(1);
      expect(afterStop.filter((c) => !c.ok).length).toBeLessThanOrEqual(FALL);
      expect(afterStop.filter((c) => c.ok).length).toBeLessThanOrEqual(1);
      const downAt = director.events.indexOf(down);
      // The table can show weight 0 before the event reaches this process: wait for it.
      await director.waitEvent('weight', { ...target, to: 0, reason: 'health' }, downAt);
      expect(director.find('weight', { ...target, to: 0, reason: 'health' }, downAt)).toHaveLength(1);
      // The VIP only reaches the others meanwhile.
      const bodies = new Set([topo.get(80), topo.get(80), topo.get(80), topo.get(80)]);
      expect(bodies.has('s1')).toBe(false);
    } finally {
      await topo.servers[0]!.start();
    }
    const restartMark = director.events.length;
    const up = await director.waitEvent('up', { service: 'tcp 10.1.0.1:80', destination: '10.2.1.2:8080' }, restartMark);
    const passes = director.find('check', { service: 'tcp 10.1.0.1:80', destination: '10.2.1.2:8080' }, restartMark);
    expect(trailingRun(passes, up.time, true)).toBe(RISE);
    await waitFor('s1 weight 2 again', async () => (await weightOf(WEB, 1)) === 2);
  });

  it('puts the sorry server in when every server is down, and takes it out when one recovers', async () => {
    await settled();
    const mark = director.events.length;
    try {
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
    } finally {
      for (const s of topo.servers.slice(0, 3)) s.mode('a', 'up');
    }
    await settled();
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
    await settled();
    const mark = director.events.length;
    const target = { service: 'tcp 10.1.0.1:80', destination: '10.2.2.2:8080' };
    topo.servers[1]!.mode('a', 'flap');
    const seen = new Set<number | undefined>();
    try {
      await waitFor('12 flapping checks', async () => {
        seen.add(await weightOf(WEB, 2));
        return director.find('check', target, mark).length >= 12;
      }, { intervalMs: 30, timeoutMs: 40_000 });
    } finally {
      topo.servers[1]!.mode('a', 'up');
    }
    // The first result may still be the steady state's; from the first failure on, results
    // alternate, except where a loaded host turned a pass into a timeout.
    const checks = director.find('check', target, mark);
    const flapping = checks.slice(checks.findIndex((c) => !c.ok));
    const changes = flapping.slice(1).filter((c, i) => c.ok !== flapping[i]!.ok).length;
    expect(changes).toBeGreaterThanOrEqual(6);
    // Whatever the sequence was, the director changed state exactly where rise/fall say so:
    // for a strict alternation, never.
    const expected = transitions(checks, 'up', RISE, FALL);
    const lastCheck = checks[checks.length - 1]!.time;
    const actual = [...director.find('down', target, mark), ...director.find('up', target, mark)]
      .filter((e) => e.time <= lastCheck).sort((a, b) => a.time - b.time).map((e) => e.type);
    expect(actual).toEqual(expected);
    if (expected.length === 0) {
      expect([...seen]).toEqual([2]);
      expect(director.find('weight', { destination: '10.2.2.2:8080' }, mark)).toEqual([]);
    }
    await settled();
  });

  it('ramps a recovered server from 1 to its weight over slowStart', async () => {
    topo.servers[2]!.mode('c', 'down');
    await waitFor('s3 quiesced on :82', async () => (await weightOf(SLOW, 3)) === 0);
    const mark = director.events.length;
    topo.servers[2]!.mode('c', 'up');
    await director.waitEvent('up', { service: 'tcp 10.1.0.1:82' }, mark);
    const observed: number[] = [];
    await waitFor('the full weight', async () => {
      const w = await weightOf(SLOW, 3);
      if (w !== undefined && observed[observed.length - 1] !== w) observed.push(w);
      return w === 10;
    }, { intervalMs: 20, timeoutMs: 30_000 });
    // The table can show the last step before its event reaches this process.
    const full = await director.waitEvent('weight', { service: 'tcp 10.1.0.1:82', to: 10 }, mark);
    // The ramp that reached it (a check timed out by a loaded host starts it over).
    const up = director.find('up', { service: 'tcp 10.1.0.1:82' }, mark).filter((e) => e.time <= full.time).pop()!;
    const ramp = director.find('weight', { service: 'tcp 10.1.0.1:82' }, mark).filter((e) => e.time >= up.time && e.time <= full.time);
    const steps = ramp.map((e) => e.to);
    expect(steps[0]).toBeLessThanOrEqual(2);
    expect(steps.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < steps.length; i++) expect(steps[i]).toBeGreaterThan(steps[i - 1]);
    expect(ramp.slice(0, -1).every((e) => e.reason === 'slow-start')).toBe(true);
    // The ramp takes about slowStart: the full weight is not reached before 1 s of it.
    expect(full.time - up.time).toBeGreaterThanOrEqual(1000);
    expect(observed.length).toBeGreaterThanOrEqual(3);
  });

  it('drains a destination: deleted only once its live connection closes', async () => {
    await settled();
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
    await waitFor('s1 back after undrain', async () => (await weightOf(WEB, 1)) === 2, { timeoutMs: 30_000 });
  });

  it('deletes a draining destination at the drain deadline even with a connection open', async () => {
    const conn = await topo.hold(83);
    expect(conn.server).toBe('s2');
    const mark = director.events.length;
    await director.request('drain', 'tcp 10.1.0.1:83', '10.2.2.2:8080');
    const start = await director.waitEvent('drain-start', { service: 'tcp 10.1.0.1:83' }, mark);
    const drained = await director.waitEvent('drained', { service: 'tcp 10.1.0.1:83' }, mark);
    expect(drained.reason).toBe('timeout');
    expect(drained.connections).toBeGreaterThanOrEqual(1);
    expect(drained.time - start.time).toBeGreaterThanOrEqual(1000);
    await waitFor('deleted', async () => (await topo.destination(SHORT_DRAIN, '10.2.2.2')) === undefined);
    conn.close();
    await director.request('undrain', 'tcp 10.1.0.1:83', '10.2.2.2:8080');
  });

  it('repairs a weight changed by hand (ipvsadm -e -w 9) and a destination deleted by hand, with an event each', async () => {
    await settled();
    const mark = director.events.length;
    topo.director.run('ipvsadm', ['-e', '-t', '10.1.0.1:80', '-r', '10.2.2.2:8080', '-m', '-w', '9']);
    const repaired = await director.waitEvent('drift-repaired', { destination: '10.2.2.2:8080' }, mark);
    expect(repaired).toMatchObject({ service: 'tcp 10.1.0.1:80', op: 'editDestination', changes: [{ field: 'weight', before: 9, after: 2 }] });
    expect(await weightOf(WEB, 2)).toBe(2);
    topo.director.run('ipvsadm', ['-d', '-t', '10.1.0.1:80', '-r', '10.2.3.2:8080']);
    await director.waitEvent('drift-repaired', { destination: '10.2.3.2:8080', op: 'addDestination' }, mark);
    expect(await weightOf(WEB, 3)).toBe(2);
    // A repair is not the director's own change: no weight event for it (unless a check failed meanwhile).
    for (const destination of ['10.2.2.2:8080', '10.2.3.2:8080']) {
      if (director.find('down', { destination }, mark).length === 0) expect(director.find('weight', { service: 'tcp 10.1.0.1:80', destination }, mark)).toEqual([]);
    }
  });

  it('keeps the health of unchanged destinations across update(), and drains a removed one', async () => {
    await settled();
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
    expect(director.find('up', { service: 'tcp 10.1.0.1:80' }, mark)).toEqual([]);
    expect(director.find('down', { service: 'tcp 10.1.0.1:80' }, mark)).toEqual([]);

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
    // The director kept running: checks go on.
    const later = director.events.length;
    await director.waitEvent('check', {}, later);
  }, 120_000);

  it('restarts on a live table without a blip: serving destinations stay in at their weight', async () => {
    await settled([2, 2]);
    // The destination the previous test added has had its first check (a none check: weight
    // 1), so the table saved here is one the director already stands by.
    await waitFor('10.2.9.9 checked in', async () => (await topo.destination(DYNAMIC, '10.2.9.9'))?.weight === 1, { timeoutMs: 20_000 });
    director.kill();
    const saved = topo.director.run('ipvsadm', ['-S', '-n']);
    director = new DirectorProcess(topo.director);
    const seen: Array<{ time: number; table: string }> = [];
    const watch = setInterval(() => {
      void topo.ipvs.listDestinations(WEB).then((ds) => seen.push({ time: Date.now(), table: ds.map((d) => `${d.address}=${d.weight}`).sort().join(',') }), () => {});
    }, 10);
    try {
      await director.request('start', config({ webWeights: [2, 2], extraDynamic: [extraDestination] }));
      await waitFor('a few checks of each server', () => ['10.2.1.2:8080', '10.2.2.2:8080'].every((d) => director.find('check', { destination: d }).length >= 3));
    } finally {
      clearInterval(watch);
    }
    // Nothing changed in the table, unless a check failed first (a loaded host can time one out):
    // every weight change has a 'down' before it.
    const downs = director.find('down');
    const firstDown = downs.length ? downs[0]!.time : Infinity;
    expect(seen.length).toBeGreaterThan(10);
    expect(new Set(seen.filter((s) => s.time < firstDown).map((s) => s.table))).toEqual(new Set(['10.2.1.2=2,10.2.2.2=2']));
    if (downs.length === 0) expect(topo.director.run('ipvsadm', ['-S', '-n'])).toBe(saved);
    for (const w of director.find('weight')) expect(w.time).toBeGreaterThanOrEqual(firstDown);
    expect(director.find('up')).toEqual([]);
  });
});
