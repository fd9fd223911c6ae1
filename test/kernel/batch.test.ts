// Batches against the VM kernel: ipvsadm is the oracle. The same rules are restored with
// `ipvsadm -R` into a second namespace and the two `ipvsadm -S -n` outputs must match.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { BatchUnknownError, batchStats, tuneBatch, type Batch, type BatchResult } from '../../lib/batch';
import { Ipvs, IpvsError, type DestinationSpec, type ServiceSpec } from '../../lib/index';
import { createNetns, ipvsadmSave, type TestNetns } from './helpers';

interface Rule {
  service: ServiceSpec & { protocol: 'tcp' | 'udp'; address: string; port: number };
  destinations: DestinationSpec[];
}

const FORWARD_FLAG = { route: '-g', masq: '-m', tunnel: '-i' } as const;
const SCHEDULERS = ['wlc', 'rr', 'sh'] as const;

/** `count` services with `perService` destinations each; every 10th one IPv6, some persistent. */
function rules(count: number, perService: number, base = 0): Rule[] {
  const out: Rule[] = [];
  for (let n = base; n < base + count; n++) {
    const v6 = n % 10 === 9;
    const address = v6 ? `2001:db8::${(n + 1).toString(16)}` : `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
    const service = {
      protocol: n % 3 === 2 ? 'udp' : 'tcp',
      address,
      port: 80 + (n % 5),
      scheduler: SCHEDULERS[n % 3],
      ...(n % 7 === 0 ? { persistent: 300 } : {}),
    } as Rule['service'];
    const destinations: DestinationSpec[] = [];
    for (let d = 0; d < perService; d++) {
      const forward = (['route', 'masq', 'tunnel'] as const)[(n + d) % 3]!;
      destinations.push({
        address: v6 ? `2001:db8:1:${(n + 1).toString(16)}::${d + 1}` : `172.16.${n & 255}.${d + 1 + ((n >> 8) & 7) * 20}`,
        // ipvsadm maps ports only for masq; it gives route and tunnel servers the service port.
        port: forward === 'masq' ? 8000 + d : service.port,
        forward,
        weight: (n + d) % 5,
        ...(d % 4 === 3 ? { upperThreshold: 100, lowerThreshold: 10 } : {}),
      });
    }
    out.push({ service, destinations });
  }
  return out;
}

function endpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function serviceArgs(s: Rule['service']): string {
  return `${s.protocol === 'udp' ? '-u' : '-t'} ${endpoint(s.address, s.port)}`;
}

/** The same rules as `ipvsadm -R` input. */
function restoreText(list: Rule[]): string {
  const lines: string[] = [];
  for (const { service, destinations } of list) {
    lines.push(`-A ${serviceArgs(service)} -s ${service.scheduler}${service.persistent ? ` -p ${service.persistent}` : ''}`);
    for (const d of destinations) {
      const thresholds = d.upperThreshold ? ` -x ${d.upperThreshold} -y ${d.lowerThreshold}` : '';
      lines.push(`-a ${serviceArgs(service)} -r ${endpoint(d.address, d.port!)} ${FORWARD_FLAG[d.forward as keyof typeof FORWARD_FLAG]} -w ${d.weight}${thresholds}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function queue(batch: Batch, list: Rule[]): void {
  for (const { service, destinations } of list) {
    batch.addService(service);
    for (const d of destinations) batch.addDestination(service, d);
  }
}

/** What ipvsadm -S -n shows after restoring `text` into the oracle namespace. */
function oracle(ns: TestNetns, text: string): string[] {
  ns.run('ipvsadm', ['-C']);
  ns.run('ipvsadm', ['-R'], { input: text });
  return ipvsadmSave(ns);
}

function failure(result: BatchResult | undefined): { code: string; operation: string; unknown: boolean } {
  if (!result || result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result)}`);
  expect(result.error).toBeInstanceOf(IpvsError);
  return { code: result.error.code, operation: result.error.operation, unknown: result.unknown };
}

describe('batch', () => {
  let ns: TestNetns;
  let reference: TestNetns;
  let ipvs: Ipvs;
  beforeAll(async () => {
    ns = createNetns('batch');
    reference = createNetns('batchref');
    ipvs = await Ipvs.open({ netns: ns.path });
  });
  afterEach(() => {
    ns.run('ipvsadm', ['-C']);
  });
  afterAll(async () => {
    await ipvs?.close();
    ns?.remove();
    reference?.remove();
  });

  it('applies 11,000 operations (1000 services x 10 destinations) exactly', async () => {
    const list = rules(1000, 10);
    const batch = ipvs.batch();
    queue(batch, list);
    expect(batch.size).toBe(11_000);
    const results = await batch.commit();
    expect(results).toHaveLength(11_000);
    const failed = results.map((r, i) => (r.ok ? undefined : `${i}: ${r.error.message}`)).filter(Boolean);
    expect(failed).toEqual([]);
    // More than the receive budget of one chunk, and no acks lost.
    const stats = batchStats(batch)!;
    expect(stats.sendCalls).toBeGreaterThan(1);
    expect(stats.sendCalls).toBeLessThan(100);
    expect(stats.overruns).toBe(0);
    const ours = ipvsadmSave(ns);
    expect(ours).toHaveLength(11_000);
    expect(ours).toEqual(oracle(reference, restoreText(list)));
  }, 600_000);

  it('reports each failure at its index with the operation and errno, and applies every other operation', async () => {
    const [a, b, c] = rules(3, 2, 5000) as [Rule, Rule, Rule];
    const missing = { protocol: 'tcp', address: '10.99.0.1', port: 80 } as const;
    const batch = ipvs.batch()
      .addService(a.service) // 0
      .addService(a.service) // 1 EEXIST
      .addDestination(a.service, a.destinations[0]!) // 2
      .addDestination(missing, { address: '10.99.1.1' }) // 3 ESRCH
      .addDestination(a.service, a.destinations[0]!) // 4 EEXIST
      .deleteService(missing) // 5 ESRCH
      .editDestination(a.service, { address: '10.99.1.2', port: 1 }) // 6 ENOENT
      .addService(b.service) // 7
      .addDestination(b.service, b.destinations[0]!) // 8
      .addDestination(b.service, b.destinations[1]!) // 9
      .deleteDestination(b.service, { address: '10.99.1.3', port: 1 }) // 10 ENOENT
      .editService({ ...b.service, scheduler: 'rr' }) // 11
      .deleteDestination(b.service, b.destinations[1]!) // 12
      .editService(c.service) // 13 ESRCH
      .addService(c.service) // 14
      .editDestination(b.service, { ...b.destinations[0]!, weight: 42 }) // 15
      .deleteService(c.service) // 16
      .addDestination(a.service, a.destinations[1]!); // 17
    const results = await batch.commit();
    expect(results).toHaveLength(18);
    const failures = new Map(results.flatMap((r, i) => (r.ok ? [] : [[i, failure(r)] as const])));
    expect(Object.fromEntries(failures)).toEqual({
      1: { code: 'EEXIST', operation: 'addService', unknown: false },
      3: { code: 'ESRCH', operation: 'addDestination', unknown: false },
      4: { code: 'EEXIST', operation: 'addDestination', unknown: false },
      5: { code: 'ESRCH', operation: 'deleteService', unknown: false },
      6: { code: 'ENOENT', operation: 'editDestination', unknown: false },
      10: { code: 'ENOENT', operation: 'deleteDestination', unknown: false },
      13: { code: 'ESRCH', operation: 'editService', unknown: false },
    });
    for (const i of [0, 2, 7, 8, 9, 11, 12, 14, 15, 16, 17]) expect(results[i], `result ${i}`).toEqual({ ok: true });

    const expected: Rule[] = [
      { service: a.service, destinations: [a.destinations[0]!, a.destinations[1]!] },
      { service: { ...b.service, scheduler: 'rr' }, destinations: [{ ...b.destinations[0]!, weight: 42 }] },
    ];
    expect(ipvsadmSave(ns)).toEqual(oracle(reference, restoreText(expected)));

    // The same table through listTable, on the handle's socket.
    const table = await ipvs.listTable();
    const rows = table.map((s) => {
      const { address, port } = s as { address: string; port: number };
      return [address, port, s.scheduler, s.destinations.map((d) => [d.address, d.port, d.weight])];
    });
    expect(rows)
      .toEqual(expect.arrayContaining([
        [a.service.address, a.service.port, a.service.scheduler, expect.arrayContaining([
          [a.destinations[0]!.address, a.destinations[0]!.port, a.destinations[0]!.weight],
          [a.destinations[1]!.address, a.destinations[1]!.port, a.destinations[1]!.weight],
        ])],
        [b.service.address, b.service.port, 'rr', [[b.destinations[0]!.address, b.destinations[0]!.port, 42]]],
      ]));
    expect(table).toHaveLength(2);
  });

  it('runs in call order with the handle\'s other calls', async () => {
    const [a] = rules(1, 1, 7000) as [Rule];
    const added = ipvs.addService(a.service); // not awaited: the batch must still see it
    const batch = ipvs.batch().addDestination(a.service, a.destinations[0]!).addService(a.service);
    const committed = batch.commit();
    const deleted = ipvs.deleteService(a.service);
    await added;
    const results = await committed;
    await deleted;
    expect(results[0]).toEqual({ ok: true });
    expect(failure(results[1])).toEqual({ code: 'EEXIST', operation: 'addService', unknown: false });
    expect(ipvsadmSave(ns)).toEqual([]);
  });

  it('returns a result for every operation of a batch far larger than a shrunken receive budget', async () => {
    // SO_RCVBUF 16 KiB (the kernel doubles it): a budget of 8 acks per sendmsg().
    const list = rules(50, 10, 9000);
    const batch = ipvs.batch();
    // Every third service also gets a duplicate of its first destination (EEXIST), so that
    // failures fall all over the chunks, some on their boundaries.
    const duplicates = new Set<number>();
    for (const [n, { service, destinations }] of list.entries()) {
      batch.addService(service);
      for (const d of destinations) batch.addDestination(service, d);
      if (n % 3 === 0) {
        duplicates.add(batch.size);
        batch.addDestination(service, destinations[0]!);
      }
    }
    tuneBatch(batch, { receiveBuffer: 16 * 1024 });
    const results = await batch.commit();
    expect(results).toHaveLength(550 + duplicates.size);
    for (const [i, r] of results.entries()) {
      if (duplicates.has(i)) expect(failure(r)).toEqual({ code: 'EEXIST', operation: 'addDestination', unknown: false });
      else expect(r, `result ${i}`).toEqual({ ok: true });
    }
    const stats = batchStats(batch)!;
    expect(stats.overruns).toBe(0);
    expect(stats.sendCalls).toBeGreaterThanOrEqual(Math.ceil(results.length / 8));
    expect(ipvsadmSave(ns)).toEqual(oracle(reference, restoreText(list)));
    // The socket got its own buffer back: the next batch goes out in one sendmsg().
    const next = ipvs.batch();
    queue(next, rules(20, 9, 9500));
    expect((await next.commit()).every((r) => r.ok)).toBe(true);
    expect(batchStats(next)!.sendCalls).toBe(1);
  });

  it('reports operations whose acks were dropped (ENOBUFS) as unknown, never as done or failed', async () => {
    // Force an overrun: all 550 requests in one sendmsg() into a 32 KiB receive buffer, which
    // holds a few dozen acks. The kernel still applies every request.
    const list = rules(50, 10, 11000);
    const batch = ipvs.batch();
    queue(batch, list);
    tuneBatch(batch, { receiveBuffer: 16 * 1024, acksPerChunk: 100_000 });
    const results = await batch.commit();
    expect(results).toHaveLength(550);
    expect(batchStats(batch)).toEqual({ sendCalls: 1, overruns: 1 });
    const firstUnknown = results.findIndex((r) => !r.ok);
    expect(firstUnknown).toBeGreaterThan(0);
    expect(results.slice(0, firstUnknown).every((r) => r.ok)).toBe(true);
    // Once the socket is congested the kernel drops every later ack of the chunk.
    for (const r of results.slice(firstUnknown)) {
      if (r.ok || !r.unknown) throw new Error(`expected unknown, got ${JSON.stringify(r)}`);
      expect(r.error).toBeInstanceOf(BatchUnknownError);
      expect([r.error.code, r.error.unknown]).toEqual(['ENOBUFS', true]);
    }
    // They were in fact applied: that is why they are "unknown", not "failed".
    expect(ipvsadmSave(ns)).toEqual(oracle(reference, restoreText(list)));
    // The handle is usable afterwards (the error was consumed by the batch).
    expect(await ipvs.listServices()).toHaveLength(50);
  });
});
