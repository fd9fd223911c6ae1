// Edits through apply() are made in place: with real traffic through a NAT service, a change of
// scheduler, weight and thresholds keeps the service's and the destination's counters and the
// open connection (a delete and re-add would start them from zero). Traffic alone never makes a
// plan stale.
//
//   client 10.1.0.2 --- 10.1.0.1 (VIP) director 10.2.0.1 --- 10.2.0.2 real server
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Ipvs, type DesiredService, type Destination, type Service, type ServiceKey } from '../../../lib/index';
import { connectNetns, createNetns, run, settledStats, spawnIn, waitFor, type BackgroundProcess, type TestNetns } from '../helpers';

const key: ServiceKey = { protocol: 'tcp', address: '10.1.0.1', port: 8080 };
const desired = (scheduler: 'rr' | 'wrr', weight: number, upperThreshold = 0): DesiredService[] => [
  { ...key, scheduler, destinations: [{ address: '10.2.0.2', forward: 'masq', weight, upperThreshold }] },
];

describe('in-place edits under real traffic', () => {
  let client: TestNetns;
  let director: TestNetns;
  let real: TestNetns;
  let ipvs: Ipvs;
  const processes: BackgroundProcess[] = [];

  beforeAll(async () => {
    client = createNetns('rc-c');
    director = createNetns('rc-lb');
    real = createNetns('rc-r');
    connectNetns(client, 'c0', director, 'd0', { a: ['10.1.0.2/24'], b: ['10.1.0.1/24'] });
    connectNetns(director, 'd1', real, 'r0', { a: ['10.2.0.1/24'], b: ['10.2.0.2/24'] });
    run('ip', ['-n', real.name, 'route', 'add', 'default', 'via', '10.2.0.1']);
    director.run('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    // Answers, then keeps the connection open (ESTABLISHED: an active connection on the director).
    processes.push(spawnIn(real, 'socat', ['TCP-LISTEN:8080,fork,reuseaddr', 'SYSTEM:echo pong; sleep 60']));
    await waitFor('the real server to listen', () => real.run('ss', ['-Hltn', 'sport = :8080']).trim() !== '');
    ipvs = await Ipvs.open({ netns: director.path });
  });
  afterAll(async () => {
    for (const p of processes) p.stop();
    await ipvs?.close();
    for (const ns of [client, director, real]) ns?.remove();
  });

  /** Opens a connection through the VIP and keeps it open; resolves once it got the answer. */
  async function connect(): Promise<void> {
    const conn = spawnIn(client, 'socat', ['-T', '90', '-', 'TCP:10.1.0.1:8080,connect-timeout=5']);
    processes.push(conn);
    conn.write('ping\n');
    await waitFor('the answer through the VIP', () => conn.output().includes('pong'));
  }

  async function read(): Promise<{ service: Service; destination: Destination }> {
    const [service] = (await ipvs.listTable()).filter((s) => 'port' in s && s.port === 8080);
    return { service: service!, destination: service!.destinations[0]! };
  }

  const counters = (s: Service['stats']): bigint[] => [s.connections, s.packetsIn, s.packetsOut, s.bytesIn, s.bytesOut];

  /** The service's and its destination's counters once final (see settledStats) and `ready`. */
  async function settled(ready: (s: Service['stats']) => boolean): Promise<{ service: Service; destination: Destination }> {
    return settledStats('settled counters', read, (now) => [now.service.stats, now.destination.stats], (now) => ready(now.service.stats));
  }

  it('keeps counters and the open connection across a scheduler, weight and threshold change', async () => {
    const created = await ipvs.apply(desired('rr', 1));
    expect(created.ok).toBe(true);
    await connect();
    await connect();
    const before = await settled((s) => s.connections >= 2n);
    expect(before.destination.activeConnections).toBe(2);
    for (const value of counters(before.service.stats)) expect(value).toBeGreaterThan(0n);

    const result = await ipvs.apply(desired('wrr', 5, 100));
    expect(result.ok).toBe(true);
    expect(result.plan.operations.map((op) => [op.op, 'changes' in op ? op.changes.map((c) => c.field) : []])).toEqual([
      ['editService', ['scheduler']],
      ['editDestination', ['weight', 'upperThreshold']],
    ]);

    const after = await read();
    expect(after.service).toMatchObject({ scheduler: 'wrr' });
    expect(after.destination).toMatchObject({ weight: 5, upperThreshold: 100, activeConnections: 2 });
    const [serviceBefore, serviceAfter] = [counters(before.service.stats), counters(after.service.stats)];
    const [destBefore, destAfter] = [counters(before.destination.stats), counters(after.destination.stats)];
    serviceAfter.forEach((value, i) => expect(value).toBeGreaterThanOrEqual(serviceBefore[i]!));
    destAfter.forEach((value, i) => expect(value).toBeGreaterThanOrEqual(destBefore[i]!));
    expect(after.service.stats.connections).toBeGreaterThanOrEqual(2n);
    expect(after.destination.stats.connections).toBeGreaterThanOrEqual(2n);

    // New connections still go through the edited service, on top of the kept counters.
    await connect();
    const later = await settled((s) => s.connections >= 3n);
    expect(later.destination.stats.connections).toBeGreaterThanOrEqual(3n);
  });

  it('does not call a plan stale because of traffic', async () => {
    const plan = await ipvs.plan(desired('wrr', 7, 100));
    const { service } = await read();
    await connect();
    await settled((s) => s.connections > service.stats.connections);
    const result = await ipvs.apply(plan);
    expect(result).toMatchObject({ ok: true, replanned: false });
    expect((await read()).destination).toMatchObject({ weight: 7 });
  });
});
