// Unit tests of the metrics code: parsing, labels, the exposition and its series, the status
// snapshot, the access rules. The kernel is replaced by a fixed table here, so these say
// nothing about IPVS itself (test/kernel/metrics.test.ts does, in the VM).
import { EventEmitter } from 'node:events';
import http from 'node:http';
import { networkInterfaces } from 'node:os';
import { gunzipSync } from 'node:zlib';

import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';

import fc from 'fast-check';

import type { Ipvs } from '../../../lib/ipvs';
import type { NativeHandle, NativeTable } from '../../../lib/native';
import { tableFromNative, type ServiceWithDestinations } from '../../../lib/table';
import { nativeTableArbitrary, packTable } from '../packed-table';
import { recordLayout } from '../../../lib/records';
import type { Stats } from '../../../lib/types';
import { isLoopback, parseListenAddress, parseTokenFile, tokenMatches } from '../../../lib/metrics/access';
import { registerDirectorMetrics } from '../../../lib/metrics/director-metrics';
import type { DirectorSource } from '../../../lib/metrics/director-source';
import { tableChanges } from '../../../lib/metrics/event-log';
import { exposition } from '../../../lib/metrics/exposition';
import { createMetricsRegistry, serveMetrics } from '../../../lib/metrics/index';
import { parseGlobalStats } from '../../../lib/metrics/proc-stats';
import { acceptsGzip, acceptsIdentity } from '../../../lib/metrics/server';
import { buildStatus, type StatusSnapshot } from '../../../lib/metrics/status';

const stats = (n: number): Stats => ({
  connections: BigInt(n), packetsIn: BigInt(n * 10), packetsOut: BigInt(n * 9), bytesIn: BigInt(n * 1000), bytesOut: BigInt(n * 2000),
  connectionRate: 1n, packetRateIn: 2n, packetRateOut: 3n, byteRateIn: 4n, byteRateOut: 5n,
});

function dest(address: string, port: number, weight: number) {
  return {
    address, family: 'inet' as const, port, forward: 'masq' as const, weight, upperThreshold: 0, lowerThreshold: 0,
    activeConnections: 2, inactiveConnections: 1, persistentConnections: 0, stats: stats(3),
  };
}

function table(): ServiceWithDestinations[] {
  const base = { scheduler: 'rr' as const, netmask: '255.255.255.255', onePacket: false, schedulerFlags: [], stats: stats(7) };
  return [
    { protocol: 'tcp', address: '10.0.0.1', port: 80, family: 'inet', ...base, destinations: [dest('10.0.1.1', 80, 2), dest('10.0.1.2', 80, 0)] },
    { protocol: 'sctp', address: '10.0.0.1', port: 9, family: 'inet', ...base, destinations: [dest('10.0.1.1', 9, 1)] },
    { fwmark: 4294967295, family: 'inet', ...base, destinations: [dest('10.0.1.3', 0, 5)] },
  ] as ServiceWithDestinations[];
}

/** An Ipvs stand-in that serves `services` (as the addon's packed records) and counts the listings. */
function fakeIpvs(services: () => ServiceWithDestinations[] | NativeTable) {
  const calls = { listTable: 0 };
  const records = (): NativeTable => {
    calls.listTable++;
    const table = services();
    return Array.isArray(table) ? packTable(table) : table;
  };
  const ipvs = {
    netns: '/run/netns/none-such',
    listTable: async () => tableFromNative(records()),
    enqueue: async (_operation: string, work: (handle: NativeHandle) => Promise<unknown>) =>
      work({ listTable: async () => records() } as unknown as NativeHandle),
    listDaemons: async () => [{ state: 'backup', interface: 'eth1', syncId: 9 }],
    countConnections: async () => [],
  } as unknown as Ipvs;
  return { ipvs, calls };
}

async function text(registry: Registry): Promise<string> {
  let out = '';
  for await (const piece of exposition(registry)) out += piece;
  return out;
}

describe('parseGlobalStats', () => {
  it('reads the totals and the rates of /proc/net/ip_vs_stats (hex)', () => {
    const sample = [
      '   Total Incoming Outgoing         Incoming         Outgoing',
      '   Conns  Packets  Packets            Bytes            Bytes',
      '       C       3C       28              E10          1000000',
      '',
      ' Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s',
      '       1        2        0               FF                0',
      '',
    ].join('\n');
    expect(parseGlobalStats(sample)).toEqual({
      connections: 12n, packetsIn: 60n, packetsOut: 40n, bytesIn: 3600n, bytesOut: 16777216n,
      connectionRate: 1n, packetRateIn: 2n, packetRateOut: 0n, byteRateIn: 255n, byteRateOut: 0n,
    });
    expect(() => parseGlobalStats('garbage')).toThrow(/ip_vs_stats/);
  });
});

describe('the IPVS families', () => {
  it('streams exactly what registry.metrics() renders, from one listing per scrape', async () => {
    const { ipvs, calls } = fakeIpvs(table);
    const { registry } = createMetricsRegistry({ ipvs });
    const streamed = await text(registry);
    expect(calls.listTable).toBe(1);
    const rendered = await registry.metrics();
    expect(calls.listTable).toBe(2);
    const strip = (t: string) => t.replace(/^ipvs_scrape_duration_seconds .*$/m, '');
    expect(strip(streamed)).toBe(strip(rendered));
  });

  it('streams what registry.metrics() renders for any packed table (values exact where prom-client rounds past 2^53)', async () => {
    await fc.assert(fc.asyncProperty(nativeTableArbitrary(6), async (table) => {
      // As in the kernel, a service's destinations differ in address or port (their labels may
      // still coincide across the families of one fwmark: those are summed, as node_exporter does).
      fc.pre(tableFromNative(table).every((s) => new Set(s.destinations.map((d) => `${d.address} ${d.port}`)).size === s.destinations.length));
      const { ipvs } = fakeIpvs(() => table);
      const { registry } = createMetricsRegistry({ ipvs });
      const lines = (t: string) => t.split('\n').filter((line) => !line.startsWith('ipvs_scrape_duration_seconds '));
      const streamed = lines(await text(registry));
      const rendered = lines(await registry.metrics());
      expect(streamed.length).toBe(rendered.length);
      streamed.forEach((line, i) => {
        const other = rendered[i]!;
        if (line === other) return;
        // The same series; the streamed value is the exact u64, prom-client's the nearest double.
        const split = (l: string) => [l.slice(0, l.lastIndexOf(' ')), l.slice(l.lastIndexOf(' ') + 1)] as const;
        const [series, value] = split(line);
        const [otherSeries, otherValue] = split(other);
        expect(series).toBe(otherSeries);
        expect(BigInt(value) > 2n ** 53n).toBe(true);
        expect(Number(value)).toBe(Number(otherValue));
      });
    }), { numRuns: 60 });
  }, 60_000);

  it('a later scrape of the same rows with new values, or of changed rows, still renders what registry.metrics() does', async () => {
    const { service: S, destination: D } = recordLayout();
    const valueWords = (at: Record<string, number>, bit: Record<string, number>, fields: string[]) =>
      fields.map((field) => [at[field]!, bit[field]!, field === 'stats' ? 20 : 1] as const);
    const serviceValues = valueWords(S.at, S.bit, ['stats']);
    const destinationValues = valueWords(D.at, D.bit, ['stats', 'weight', 'activeConnections', 'inactiveConnections',
      'persistentConnections', 'upperThreshold', 'lowerThreshold']);
    /** The same rows (labels) with other values: every present value word changed. */
    const revalue = (table: NativeTable, salt: number): NativeTable => {
      const change = (words: Uint32Array, stride: number, fields: typeof serviceValues) => {
        const out = words.slice();
        for (let base = 0; base < out.length; base += stride) {
          for (const [at, bit, length] of fields) {
            if ((out[base]! & bit) === 0) continue;
            for (let i = 0; i < length; i++) out[base + at + i] = (out[base + at + i]! * 7 + salt + i) >>> 0;
          }
        }
        return out;
      };
      return { ...table, services: change(table.services, S.words, serviceValues), destinations: change(table.destinations, D.words, destinationValues) };
    };
    /** One destination moved to another port: a label changes, the row count does not. */
    const movePort = (table: NativeTable): NativeTable => {
      const destinations = table.destinations.slice();
      if (destinations.length) destinations[D.at.port] = (destinations[D.at.port]! + 1) & 0xffff;
      return { ...table, destinations };
    };
    const distinct = (table: NativeTable) =>
      tableFromNative(table).every((s) => new Set(s.destinations.map((d) => `${d.address} ${d.port}`)).size === s.destinations.length);
    const lines = (t: string) => t.split('\n').filter((line) => !line.startsWith('ipvs_scrape_duration_seconds '))
      // Counters past 2^53: the streamed value is exact, prom-client's the nearest double; compare as doubles.
      .map((line) => line.replace(/ (\d{16,})$/, (_, digits: string) => ` ${Number(digits)}`));
    await fc.assert(fc.asyncProperty(nativeTableArbitrary(5), fc.nat(1000), async (first, salt) => {
      const tables = [first, revalue(first, salt), movePort(revalue(first, salt + 1))];
      fc.pre(tables.every(distinct));
      let current = first;
      const { ipvs } = fakeIpvs(() => current);
      const { registry } = createMetricsRegistry({ ipvs });
      for (const table of tables) {
        current = table;
        expect(lines(await text(registry))).toEqual(lines(await registry.metrics()));
      }
    }), { numRuns: 60 });
  }, 60_000);

  it('labels like node_exporter, with SCTP as itself and the fwmark in decimal; types are right', async () => {
    const { ipvs } = fakeIpvs(table);
    const out = await text(createMetricsRegistry({ ipvs }).registry);
    expect(out).toContain('node_ipvs_backend_weight{local_address="10.0.0.1",local_port="80",remote_address="10.0.1.1",remote_port="80",proto="TCP",local_mark=""} 2');
    expect(out).toContain('node_ipvs_backend_weight{local_address="10.0.0.1",local_port="9",remote_address="10.0.1.1",remote_port="9",proto="SCTP",local_mark=""} 1');
    expect(out).toContain('node_ipvs_backend_weight{local_address="",local_port="0",remote_address="10.0.1.3",remote_port="0",proto="FWM",local_mark="4294967295"} 5');
    expect(out).toContain('ipvs_destination_incoming_bytes_total{service="tcp 10.0.0.1:80",server="10.0.1.2:80"} 3000');
    expect(out).toContain('ipvs_destination_upper_threshold{service="fwmark 4294967295",server="10.0.1.3:0"} 0');
    expect(out).toContain('ipvs_service_info{service="tcp 10.0.0.1:80",family="inet",protocol="tcp",address="10.0.0.1",port="80",fwmark="",scheduler="rr"} 1');
    expect(out).toContain('ipvs_service_info{service="fwmark 4294967295",family="inet",protocol="",address="",port="",fwmark="4294967295",scheduler="rr"} 1');
    // The weight and connection counts per destination are node_exporter's, once.
    expect(out).not.toMatch(/^ipvs_destination_(weight|active_connections|inactive_connections)\b/m);
    expect(out).toContain('ipvs_sync_daemon_running{state="backup"} 1');
    expect(out).toContain('ipvs_sync_daemon_info{state="backup",interface="eth1",sync_id="9"} 1');
    for (const match of out.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      expect(match[1]!.endsWith('_total'), `${match[1]} is a ${match[2]}`).toBe(match[2] === 'counter');
    }
    // The host has no IPVS: the namespace totals failed, so they are absent and ipvs_up says so.
    expect(out).toContain('ipvs_up 0');
    expect(out).not.toMatch(/^node_ipvs_connections_total /m);
  });

  it('drops the series of a service that disappears', async () => {
    let services = table();
    const { ipvs } = fakeIpvs(() => services);
    const { registry } = createMetricsRegistry({ ipvs });
    expect(await text(registry)).toContain('protocol="sctp"');
    services = services.filter((s) => !('protocol' in s && s.protocol === 'sctp'));
    const after = await text(registry);
    expect(after).not.toContain('protocol="sctp"');
    expect(after).not.toContain('service="sctp 10.0.0.1:9"');
    expect(after).not.toContain('proto="SCTP"');
    expect(after).toContain('protocol="tcp"');
  });

  it('escapes label values', async () => {
    const services = table();
    const { ipvs } = { ...fakeIpvs(() => services) };
    (ipvs as unknown as { listDaemons: () => Promise<unknown> }).listDaemons = async () =>
      [{ state: 'master', interface: 'a"b\\c', syncId: 1 }];
    const out = await text(createMetricsRegistry({ ipvs }).registry);
    expect(out).toContain('ipvs_sync_daemon_info{state="master",interface="a\\"b\\\\c",sync_id="1"} 1');
  });
});

describe('the director families (a hand-driven stand-in for the Director)', () => {
  function standIn() {
    const emitter = new EventEmitter();
    let status = {
      running: true, inSync: true,
      services: [{
        id: 'tcp 10.0.0.1:80', key: { protocol: 'tcp', address: '10.0.0.1', port: 80 }, sorry: false,
        quorum: { state: 'up', liveWeight: 2, quorum: 1, hysteresis: 0 },
        destinations: [{
          id: '10.0.1.1:80', address: '10.0.1.1', port: 80, health: 'up', configuredWeight: 2, weight: 2,
          connections: { active: 1, inactive: 0, persistent: 0 },
          checks: [{ type: 'http', state: 'up', successes: 3, failures: 0, last: { ok: true, message: 'HTTP 200', latency: 4, at: 1000 } }],
        }, {
          id: '10.0.1.2:80', address: '10.0.1.2', port: 80, health: 'draining', configuredWeight: 1, weight: 0,
          connections: { active: 3, inactive: 1, persistent: 1 }, checks: [],
          drain: { reason: 'requested', started: Date.now() - 5000, deadline: Date.now() + 5000 },
        }],
      }],
    };
    const director = {
      on: (type: string, fn: (e: unknown) => void) => emitter.on(type, fn),
      off: (type: string, fn: (e: unknown) => void) => emitter.off(type, fn),
      status: () => status,
    } as unknown as DirectorSource;
    return { director, emit: (e: { type: string }) => emitter.emit(e.type, e), set: (s: typeof status) => { status = s; }, get: () => status };
  }

  it('reports health, drains, quorum, checks and errors, and forgets removed destinations', async () => {
    const { director, emit, get, set } = standIn();
    const registry = new Registry();
    const stop = registerDirectorMetrics(registry, director);
    emit({ type: 'check', time: 1, service: 'tcp 10.0.0.1:80', destination: '10.0.1.2:80', check: 0, checkType: 'http', ok: false, message: 'HTTP 503', latency: 12, lateness: 0, state: 'down' } as never);
    emit({ type: 'check', time: 2, service: 'tcp 10.0.0.1:80', destination: '10.0.1.1:80', check: 0, checkType: 'http', ok: true, message: 'HTTP 200', latency: 4, lateness: 0, state: 'up' } as never);
    emit({ type: 'down', time: 3 } as never);
    emit({ type: 'error', time: 4, operation: 'apply', error: new Error('EPERM') } as never);
    emit({ type: 'drift-repaired', time: 5 } as never);
    emit({ type: 'applied', time: 6, operations: [{}, {}], failed: 0 } as never);
    const out = await registry.metrics();
    const d1 = 'service="tcp 10.0.0.1:80",server="10.0.1.1:80"';
    const d2 = 'service="tcp 10.0.0.1:80",server="10.0.1.2:80"';
    expect(out).toContain(`ipvs_director_destination_up{${d1}} 1`);
    expect(out).toContain(`ipvs_director_destination_up{${d2}} 0`);
    expect(out).toContain(`ipvs_director_destination_health{${d2},health="draining"} 1`);
    expect(out).toContain(`ipvs_director_drain_remaining_connections{${d2}} 5`);
    expect(out).toMatch(new RegExp(`ipvs_director_drain_elapsed_seconds\\{${d2.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\} (4|5|6)\\.`));
    expect(out).toContain(`ipvs_director_check_failures_total{${d2},check="http"} 1`);
    expect(out).toContain('ipvs_director_check_duration_seconds_count{check="http"} 2');
    expect(out).toContain('ipvs_director_check_duration_seconds_bucket{le="0.005",check="http"} 1');
    expect(out).toContain('ipvs_director_quorum_up{service="tcp 10.0.0.1:80"} 1');
    expect(out).toContain('ipvs_director_transitions_total{to="down"} 1');
    expect(out).toContain('ipvs_director_errors_total{operation="apply"} 1');
    expect(out).toContain('ipvs_director_drift_repairs_total 1');
    expect(out).toContain('ipvs_director_applied_operations_total 2');

    const status = get();
    set({ ...status, services: [{ ...status.services[0]!, destinations: [status.services[0]!.destinations[0]!] }] });
    const after = await registry.metrics();
    expect(after).not.toContain('server="10.0.1.2:80"');
    stop();
    emit({ type: 'down', time: 7 } as never);
    expect(await registry.metrics()).toContain('ipvs_director_transitions_total{to="down"} 1');
  });

  it('merges the director into the status snapshot; check latency in seconds', () => {
    const { director } = standIn();
    const sample = { at: 1, durationSeconds: 0.01, services: table(), global: undefined, daemons: [], connectionStates: undefined, error: undefined };
    const snapshot = buildStatus(sample, undefined, director.status(), []);
    const web = snapshot.services.find((s) => s.name === 'tcp 10.0.0.1:80')!;
    expect(web.quorum).toEqual({ up: true, liveWeight: 2, required: 1, hysteresis: 0 });
    expect(web.destinations.find((d) => d.name === '10.0.1.1:80')).toMatchObject({
      health: 'up', weight: 2, configuredWeight: 2, inKernel: true, lastCheck: { type: 'http', ok: true, latency: 0.004, message: 'HTTP 200' },
    });
    expect(web.destinations.find((d) => d.name === '10.0.1.2:80')!.drain).toMatchObject({ reason: 'requested', connections: 5 });
    expect(snapshot.services.map((s) => s.name)).toEqual(['tcp 10.0.0.1:80', 'sctp 10.0.0.1:9', 'fwmark 4294967295']);
  });
});

describe('tableChanges', () => {
  it('names added and removed services and destinations and weight changes', () => {
    const sample = (services: ServiceWithDestinations[]) =>
      buildStatus({ at: 1, durationSeconds: 0, services, global: undefined, daemons: [], connectionStates: undefined, error: undefined }, undefined, undefined, []).services;
    const before = sample(table());
    const next = table();
    next[0]!.destinations[0]!.weight = 0;
    next[0]!.destinations.pop();
    next.splice(1, 1);
    const events = tableChanges(before, sample(next), 5);
    expect(events).toEqual([
      { time: 5, type: 'weight', service: 'tcp 10.0.0.1:80', destination: '10.0.1.1:80', message: 'weight 2 → 0' },
      { time: 5, type: 'destination-removed', service: 'tcp 10.0.0.1:80', destination: '10.0.1.2:80' },
      { time: 5, type: 'service-removed', service: 'sctp 10.0.0.1:9' },
    ]);
  });
});

describe('access', () => {
  it('parses listen addresses, loopback by default', () => {
    expect(parseListenAddress('9110')).toEqual({ host: '127.0.0.1', port: 9110 });
    expect(parseListenAddress(':9110')).toEqual({ host: '::', port: 9110 });
    expect(parseListenAddress('0.0.0.0:80')).toEqual({ host: '0.0.0.0', port: 80 });
    expect(parseListenAddress('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(() => parseListenAddress('::1:80')).toThrow(TypeError);
    expect(() => parseListenAddress('host:http')).toThrow(/port must be a number/);
    expect(() => parseListenAddress('1.2.3.4:70000')).toThrow(RangeError);
  });

  it('knows loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', '::ffff:127.0.0.1']) expect(isLoopback(host)).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '::ffff:10.0.0.1', 'example.org']) expect(isLoopback(host)).toBe(false);
  });

  it('compares tokens and reads token files', () => {
    expect(tokenMatches('abc', 'abc')).toBe(true);
    expect(tokenMatches('abd', 'abc')).toBe(false);
    expect(tokenMatches(undefined, 'abc')).toBe(false);
    expect(parseTokenFile('s3cret\n', 'f')).toBe('s3cret');
    expect(() => parseTokenFile('\n', 'f')).toThrow(/empty/);
    expect(() => parseTokenFile('a b\n', 'f')).toThrow(/one token/);
  });
});

describe('the HTTP server (over a fixed table)', () => {
  async function request(url: string, init: RequestInit = {}) {
    const response = await fetch(url, init);
    return { status: response.status, type: response.headers.get('content-type'), headers: response.headers, body: await response.text() };
  }

  it('serves /metrics, the page and the JSON snapshot; refuses anything but GET and HEAD', async () => {
    const { ipvs } = fakeIpvs(table);
    const endpoint = await serveMetrics({ ipvs, listen: '127.0.0.1:0' });
    try {
      const metrics = await request(`${endpoint.url}metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.type).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(metrics.body).toContain('ipvs_service_connections_total{');
      const page = await request(endpoint.url);
      expect(page.type).toBe('text/html; charset=utf-8');
      expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(page.body).toContain('assets/app.js');
      const status = JSON.parse((await request(`${endpoint.url}api/status`)).body) as StatusSnapshot;
      expect(status.services.map((s) => s.name)).toEqual(['tcp 10.0.0.1:80', 'sctp 10.0.0.1:9', 'fwmark 4294967295']);
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
        const refused = await request(`${endpoint.url}metrics`, { method });
        expect(refused.status).toBe(405);
        expect(refused.headers.get('allow')).toBe('GET, HEAD');
      }
      expect((await request(`${endpoint.url}nothing-here`)).status).toBe(404);
      const head = await fetch(`${endpoint.url}metrics`, { method: 'HEAD' });
      expect(head.status).toBe(200);
    } finally {
      await endpoint.close();
    }
  });

  it('streams status snapshots as server-sent events', async () => {
    const { ipvs } = fakeIpvs(table);
    const endpoint = await serveMetrics({ ipvs, listen: '127.0.0.1:0', intervalMs: 100 });
    const controller = new AbortController();
    try {
      const response = await fetch(`${endpoint.url}api/events`, { signal: controller.signal });
      expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      const reader = response.body!.getReader();
      let text = '';
      while ((text.match(/^event: status$/gm) ?? []).length < 2) text += new TextDecoder().decode((await reader.read()).value);
      const first = /^event: status\ndata: (.*)$/m.exec(text)![1]!;
      expect((JSON.parse(first) as StatusSnapshot).services).toHaveLength(3);
    } finally {
      controller.abort();
      await endpoint.close();
    }
  });

  // 300 × 10: a few MB of exposition, many chunks through zlib and the socket.
  const bigTable = (): ServiceWithDestinations[] => {
    const big: ServiceWithDestinations[] = [];
    for (let s = 0; s < 300; s++) {
      big.push({ protocol: 'tcp', address: `10.1.${s >> 8}.${s & 255}`, port: 80, family: 'inet', scheduler: 'wlc', schedulerFlags: [],
        netmask: '255.255.255.255', onePacket: false, stats: stats(s),
        destinations: Array.from({ length: 10 }, (_, d) => dest(`172.16.${s >> 8}.${d + 1}`, 80, d)) });
    }
    return big;
  };
  type RawResponse = { headers: http.IncomingHttpHeaders; body: Buffer };
  const rawGet = (url: string, encoding: string, method = 'GET', localAddress?: string) => new Promise<RawResponse>((resolve, reject) => {
    const headers = { 'accept-encoding': encoding, authorization: 'Bearer abc' };
    http.request(url, { method, agent: false, headers, ...(localAddress ? { localAddress } : {}) }, (response) => {
      const parts: Buffer[] = [];
      response.on('data', (part: Buffer) => parts.push(part));
      response.on('end', () => resolve({ headers: response.headers, body: Buffer.concat(parts) }));
      response.on('error', reject);
    }).on('error', reject).end();
  });

  it('gzips /metrics for a scraper that accepts it (as Prometheus does), the same bytes as without', async () => {
    const big = bigTable();
    const { ipvs } = fakeIpvs(() => big);
    const endpoint = await serveMetrics({ ipvs, listen: '127.0.0.1:0', compression: 'always' });
    const raw = (encoding: string, method = 'GET') => rawGet(`${endpoint.url}metrics`, encoding, method);
    try {
      const plain = await raw('identity');
      expect(plain.headers['content-encoding']).toBeUndefined();
      expect(plain.headers.vary).toBe('Accept-Encoding');
      expect(plain.body.length).toBeGreaterThan(1_000_000);
      const gzipped = await raw('gzip');
      expect(gzipped.headers['content-encoding']).toBe('gzip');
      expect(gzipped.body.length).toBeLessThan(plain.body.length / 10);
      // Every byte but the reading's duration, which differs from scrape to scrape.
      const steady = (text: string) => text.replace(/^ipvs_scrape_duration_seconds .*$/m, '');
      const decoded = gunzipSync(gzipped.body).toString();
      expect(decoded.length).toBeGreaterThan(1_000_000);
      expect(steady(decoded) === steady(plain.body.toString())).toBe(true);
      expect((await raw('br;q=1, gzip;q=0')).headers['content-encoding']).toBeUndefined();
      const head = await raw('gzip', 'HEAD');
      expect(head.headers['content-encoding']).toBe('gzip');
      expect(head.body.length).toBe(0);
    } finally {
      await endpoint.close();
    }
  });

  it('sends the plain text to a scraper on loopback unless told otherwise, and gzip to one elsewhere', async () => {
    const big = bigTable();
    const { ipvs } = fakeIpvs(() => big);
    const local = await serveMetrics({ ipvs, listen: '127.0.0.1:0' });
    const never = await serveMetrics({ ipvs, listen: '127.0.0.1:0', compression: 'never' });
    try {
      const url = `${local.url}metrics`;
      expect((await rawGet(url, 'gzip')).headers['content-encoding']).toBeUndefined();
      // A scraper that refuses the plain text gets gzip all the same.
      expect((await rawGet(url, 'gzip, identity;q=0')).headers['content-encoding']).toBe('gzip');
      expect((await rawGet(url, 'gzip, *;q=0')).headers['content-encoding']).toBe('gzip');
      expect((await rawGet(`${never.url}metrics`, 'gzip, identity;q=0')).headers['content-encoding']).toBeUndefined();
    } finally {
      await local.close();
      await never.close();
    }
    await expect(serveMetrics({ ipvs, listen: '127.0.0.1:0', compression: 'yes' as never })).rejects.toThrow(
      /compression must be one of remote, always, never, got "yes"/);
  });

  // A scraper on another address of this machine stands for one across a network.
  const external = Object.values(networkInterfaces()).flat().find((i) => i && !i.internal && i.family === 'IPv4')?.address;
  it.skipIf(external === undefined)('gzips for a scraper that is not on loopback', async () => {
    const big = bigTable();
    const { ipvs } = fakeIpvs(() => big);
    const endpoint = await serveMetrics({ ipvs, listen: `${external}:0`, token: 'abc' });
    try {
      const url = `http://${external}:${endpoint.server.address.port}/metrics`;
      const response = await rawGet(url, 'gzip', 'GET', external);
      expect(response.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(response.body).toString()).toMatch(/^node_ipvs_backend_weight\{/m);
    } finally {
      await endpoint.close();
    }
  });

  it('reads Accept-Encoding as RFC 9110 does', () => {
    for (const yes of [undefined, '', 'gzip', 'identity', 'gzip, identity;q=0.1', '*;q=0, identity', 'identity;q=1, *;q=0']) {
      expect(acceptsIdentity(yes), String(yes)).toBe(true);
    }
    for (const no of ['identity;q=0', 'gzip, identity;q=0', '*;q=0', 'gzip;q=1, *;q=0', 'IDENTITY; q=0.000']) {
      expect(acceptsIdentity(no), no).toBe(false);
    }
    for (const yes of ['gzip', 'GZIP', 'deflate, gzip', 'gzip;q=0.5', 'x-gzip', '*', 'br, *;q=0.1', 'gzip;q=1.0, identity;q=0.5']) {
      expect(acceptsGzip(yes), yes).toBe(true);
    }
    for (const no of [undefined, '', 'identity', 'br, deflate', 'gzip;q=0', 'gzip; q=0.000', '*;q=0', 'gzip;q=0, *']) {
      expect(acceptsGzip(no), String(no)).toBe(false);
    }
  });

  it('needs a token off loopback', async () => {
    const { ipvs } = fakeIpvs(table);
    await expect(serveMetrics({ ipvs, listen: '0.0.0.0:0' })).rejects.toThrow(TypeError);
    const endpoint = await serveMetrics({ ipvs, listen: '0.0.0.0:0', token: 'abc' });
    const base = `http://127.0.0.1:${endpoint.server.address.port}/`;
    try {
      expect((await request(`${base}metrics`)).status).toBe(401);
      expect((await request(`${base}metrics`)).headers.get('www-authenticate')).toContain('Bearer');
      expect((await request(`${base}api/status?token=abd`)).status).toBe(401);
      expect((await request(`${base}api/status?token=abc`)).status).toBe(200);
      expect((await request(`${base}metrics`, { headers: { authorization: 'Bearer abc' } })).status).toBe(200);
      expect((await request(`${base}assets/app.js`)).status).toBe(200);
    } finally {
      await endpoint.close();
    }
  });
});
