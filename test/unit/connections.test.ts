// The connection-table parser and aggregation on synthetic and captured files (no kernel).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { canonicalAddress } from '../../lib/address';
import {
  type Connection,
  ConnectionParseError,
  countConnections,
  readConnectionTable,
  streamConnections,
} from '../../lib/connections';
import { IpvsError } from '../../lib/errors';
import { HEADER, type KernelConnection, kernelTable, randomConnections, SYNC_HEADER } from './connections-kernel-format';

const dir = mkdtempSync(path.join(tmpdir(), 'ipvs-conn-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCounter = 0;
function writeTable(text: string): string {
  const file = path.join(dir, `table-${fileCounter++}.txt`);
  writeFileSync(file, text);
  return file;
}

/** What the parser should return for a generated kernel line. */
function expected(c: KernelConnection): Connection {
  const connection: Connection = {
    protocol: c.protocol.toLowerCase(),
    clientAddress: canonicalAddress(c.client),
    clientPort: c.clientPort,
    virtualAddress: canonicalAddress(c.virtual),
    virtualPort: c.virtualPort,
    destinationAddress: canonicalAddress(c.destination),
    destinationPort: c.destinationPort,
    state: c.state,
    expires: c.expires,
  };
  if (c.origin) connection.origin = c.origin === 'SYNC' ? 'sync' : 'local';
  if (c.pe) {
    connection.peName = c.pe.name;
    connection.peData = c.pe.data;
  }
  return connection;
}

async function collect(file: string, options: Parameters<typeof streamConnections>[0] = {}) {
  const stream = streamConnections({ path: file, ...options });
  const batches: Connection[][] = [];
  for await (const batch of stream) batches.push(batch);
  return { batches, all: batches.flat(), scan: stream.scan };
}

// Lines captured from /proc/net/ip_vs_conn on Linux 6.17 (services with masquerading, tunnel
// destinations of the other family, a persistent TCP service and a UDP one with `--pe sip`).
const CAPTURED = `Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP 0A000002 816A 0A000001 0052 0A090002 0052 SYN_RECV         59
UDP 0A000002 AA0C 0A000001 13C4 0A090002 13C4 UDP             298
TCP fd00:000a:0000:0000:0000:0000:0000:0002 965A fd00:000a:0000:0000:0000:0000:0000:0001 0051 0A090002 0051 SYN_RECV         59
TCP 0A000002 0000 0A000001 0052 0A090002 0052 NONE            298
UDP 0A000002 0000 0A000001 13C4 0A090002 13C4 NONE            118 sip a84b4c76e66710@pc33
TCP 0A000002 AC26 0A000001 0051 fd00:0009:0000:0000:0000:0000:0000:0002 0051 SYN_RECV         59
`;

describe('parsing', () => {
  it('reads every field of captured kernel lines: IPv4, IPv6, mixed families, templates, PE data', async () => {
    const table = await readConnectionTable({ path: writeTable(CAPTURED) });
    expect(table.length).toBe(6);
    expect(table.scan).toEqual({ lines: 7, connections: 6, matched: 6, malformedLines: 0 });
    expect([...table]).toEqual([
      { protocol: 'tcp', clientAddress: '10.0.0.2', clientPort: 0x816a, virtualAddress: '10.0.0.1', virtualPort: 82,
        destinationAddress: '10.9.0.2', destinationPort: 82, state: 'SYN_RECV', expires: 59 },
      { protocol: 'udp', clientAddress: '10.0.0.2', clientPort: 0xaa0c, virtualAddress: '10.0.0.1', virtualPort: 5060,
        destinationAddress: '10.9.0.2', destinationPort: 5060, state: 'UDP', expires: 298 },
      { protocol: 'tcp', clientAddress: 'fd00:a::2', clientPort: 0x965a, virtualAddress: 'fd00:a::1', virtualPort: 81,
        destinationAddress: '10.9.0.2', destinationPort: 81, state: 'SYN_RECV', expires: 59 },
      { protocol: 'tcp', clientAddress: '10.0.0.2', clientPort: 0, virtualAddress: '10.0.0.1', virtualPort: 82,
        destinationAddress: '10.9.0.2', destinationPort: 82, state: 'NONE', expires: 298 },
      { protocol: 'udp', clientAddress: '10.0.0.2', clientPort: 0, virtualAddress: '10.0.0.1', virtualPort: 5060,
        destinationAddress: '10.9.0.2', destinationPort: 5060, state: 'NONE', expires: 118,
        peName: 'sip', peData: 'a84b4c76e66710@pc33' },
      { protocol: 'tcp', clientAddress: '10.0.0.2', clientPort: 0xac26, virtualAddress: '10.0.0.1', virtualPort: 81,
        destinationAddress: 'fd00:9::2', destinationPort: 81, state: 'SYN_RECV', expires: 59 },
    ]);
  });

  it('matches the generator on a large mixed table (chunk boundaries, every family combination)', async () => {
    const connections = randomConnections(40_000, 7);
    const file = writeTable(kernelTable(connections)); // ~4 MB: many 256 KiB reads
    const table = await readConnectionTable({ path: file });
    expect(table.length).toBe(connections.length);
    expect(table.scan.malformedLines).toBe(0);
    for (let i = 0; i < connections.length; i += 97) expect(table.at(i)).toEqual(expected(connections[i]!));
    expect(table.at(-1)).toEqual(expected(connections.at(-1)!));
    expect(table.at(connections.length)).toBeUndefined();
    // The whole table, through iteration.
    expect([...table]).toEqual(connections.map(expected));
  }, 30_000);

  it('reads the sync table with its Origin column', async () => {
    const connections: KernelConnection[] = [
      { protocol: 'TCP', client: '10.128.0.1', clientPort: 1039, virtual: '10.1.0.1', virtualPort: 80,
        destination: '10.2.0.4', destinationPort: 8080, state: 'ESTABLISHED', expires: 3596, origin: 'SYNC' },
      { protocol: 'TCP', client: 'fd00:1::1', clientPort: 1024, virtual: 'fd00:2::1', virtualPort: 80,
        destination: 'fd00:3::1', destinationPort: 8080, state: 'TIME_WAIT', expires: 12, origin: 'LOCAL' },
      { protocol: 'SCTP', client: '192.168.0.9', clientPort: 5000, virtual: '10.1.0.1', virtualPort: 3868,
        destination: 'fd00:3::9', destinationPort: 3868, state: 'COOKIE_ECHOED', expires: 1234567, origin: 'SYNC' },
    ];
    const file = writeTable(kernelTable(connections, true));
    expect([...(await readConnectionTable({ path: file, sync: true }))]).toEqual(connections.map(expected));
    expect(kernelTable(connections, true).startsWith(SYNC_HEADER)).toBe(true);
  });

  it('keeps PE data up to the end of the line, spaces included, and PE names alone', async () => {
    const text =
      HEADER +
      'UDP 0A000002 0000 0A000001 13C4 0A090002 13C4 NONE            118 sip call id with spaces\n' +
      'UDP 0A000003 0000 0A000001 13C4 0A090002 13C4 ASSURED         118 sip \n';
    const table = await readConnectionTable({ path: writeTable(text) });
    expect(table.at(0)).toMatchObject({ peName: 'sip', peData: 'call id with spaces', state: 'NONE' });
    expect(table.at(1)).toMatchObject({ peName: 'sip', peData: '', state: 'ASSURED' });
  });

  it('accepts protocol names it does not know and lower-cases them', async () => {
    const text =
      HEADER +
      'IP  0A000002 0000 0A000001 0000 0A090002 0000 NONE            298\n' +
      'IP_253 0A000002 0001 0A000001 0002 0A090002 0003 ERR!              5\n' +
      'ICMPv6 fd00:000a:0000:0000:0000:0000:0000:0002 0000 fd00:000a:0000:0000:0000:0000:0000:0001 0000 fd00:0009:0000:0000:0000:0000:0000:0002 0000 ICMP             60\n';
    const table = await readConnectionTable({ path: writeTable(text) });
    expect([...table].map((c) => [c.protocol, c.state, c.clientPort, c.virtualPort, c.destinationPort])).toEqual([
      ['ip', 'NONE', 0, 0, 0],
      ['ip_253', 'ERR!', 1, 2, 3],
      ['icmpv6', 'ICMP', 0, 0, 0],
    ]);
  });

  it('reads an empty table and a header-only one', async () => {
    for (const text of ['', HEADER, SYNC_HEADER]) {
      const table = await readConnectionTable({ path: writeTable(text) });
      expect(table.length).toBe(0);
      expect([...table]).toEqual([]);
      expect(table.scan.malformedLines).toBe(0);
    }
  });
});

describe('malformed input', () => {
  const good = randomConnections(3, 3);
  const goodLines = kernelTable(good).split('\n').slice(1, 4);
  const bad = [
    'TCP 0A000002 816A 0A000001 0052 0A090002 0052 SYN_RECV', // no expiry
    'TCP 0A00002 816A 0A000001 0052 0A090002 0052 SYN_RECV 59', // 7-digit address
    'TCP 0A000002 816AB 0A000001 0052 0A090002 0052 SYN_RECV 59', // 5-digit port
    'TCP 0A000002 816A fd00:000a:0000:0000:0000:0000:0000:0001 0052 0A090002 0052 SYN_RECV 59', // client/virtual families differ
    'TCP fd00:000a:0000:0000:0000:0000:0000:000g 965A fd00:000a:0000:0000:0000:0000:0000:0001 0051 0A090002 0051 X 1', // bad hex
    'TCP 0A000002 816A 0A000001 0052 0A090002 0052 SYN_RECV    MAYBE       59', // unknown origin
    'TCP 0A000002 816A 0A000001 0052 0A090002 0052 SYN_RECV    SYNC       59 extra', // tail after a sync expiry
    'TCP 0A000002 816A 0A000001 0052 0A090002 0052 SYN_RECV 99999999999', // expiry above 2^32
    'garbage',
  ];

  it('counts malformed lines, reports the first, and parses the rest', async () => {
    const text = `${HEADER}${goodLines[0]}\n${bad.join('\n')}\n${goodLines[1]}\n${goodLines[2]}\n`;
    const file = writeTable(text);
    const table = await readConnectionTable({ path: file });
    expect([...table]).toEqual(good.map(expected));
    expect(table.scan.malformedLines).toBe(bad.length);
    expect(table.scan.firstMalformed).toEqual({ line: 3, text: bad[0] });

    const counts = await countConnections({ path: file, by: 'state' });
    expect(counts.scan.malformedLines).toBe(bad.length);
    expect(counts.reduce((sum, c) => sum + c.count, 0)).toBe(3);

    const streamed = await collect(file);
    expect(streamed.all).toEqual(good.map(expected));
    expect(streamed.scan.malformedLines).toBe(bad.length);
  });

  it('rejects with a ConnectionParseError naming the line in strict mode', async () => {
    const file = writeTable(`${HEADER}${goodLines[0]}\n${goodLines[1]}\ngarbage here\n${goodLines[2]}\n`);
    for (const read of [
      () => readConnectionTable({ path: file, strict: true }),
      () => countConnections({ path: file, strict: true, by: 'client' }),
      () => collect(file, { strict: true }),
    ]) {
      const error = await read().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectionParseError);
      expect(error).toMatchObject({ code: 'ERR_IPVS_CONNECTION_LINE', line: 4, text: 'garbage here', path: file });
    }
    // A clean file passes strict mode.
    const clean = writeTable(kernelTable(good));
    expect((await readConnectionTable({ path: clean, strict: true })).length).toBe(3);
  });

  it('treats a last line without a newline as truncated', async () => {
    const text = kernelTable(good).slice(0, -5); // cut inside the last line's expiry
    const table = await readConnectionTable({ path: writeTable(text) });
    expect([...table]).toEqual(good.slice(0, 2).map(expected));
    expect(table.scan.malformedLines).toBe(1);
    expect(table.scan.firstMalformed?.line).toBe(4);
  });

  it('skips over-long lines without buffering them', async () => {
    const long = `TCP ${'A'.repeat(300_000)}`; // longer than one 256 KiB read
    const text = `${HEADER}${goodLines[0]}\n${long}\n${goodLines[1]}\n${'x'.repeat(5000)}\n${goodLines[2]}\n`;
    const table = await readConnectionTable({ path: writeTable(text) });
    expect([...table]).toEqual(good.map(expected));
    expect(table.scan.malformedLines).toBe(2);
    expect(table.scan.firstMalformed?.line).toBe(3);
    expect(table.scan.firstMalformed?.text.length).toBe(200);
  });

  it('survives binary noise', async () => {
    const noise = Buffer.alloc(100_000);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919 + (i >> 3)) & 0xff;
    const file = path.join(dir, 'noise.bin');
    writeFileSync(file, Buffer.concat([Buffer.from(kernelTable(good)), noise, Buffer.from(`\n${goodLines[0]}\n`)]));
    const table = await readConnectionTable({ path: file });
    expect(table.at(0)).toEqual(expected(good[0]!));
    expect(table.at(-1)).toEqual(expected(good[0]!));
    expect(table.scan.malformedLines).toBeGreaterThan(0);
  });
});

describe('countConnections', () => {
  const connections = randomConnections(30_000, 11);
  const file = writeTable(kernelTable(connections));

  function oracle(key: (c: KernelConnection) => string | undefined): Map<string, number> {
    const counts = new Map<string, number>();
    for (const c of connections) {
      const k = key(c);
      if (k !== undefined) counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    return counts;
  }
  const endpoint = (address: string, port: number) =>
    address.includes(':') ? `[${canonicalAddress(address)}]:${port}` : `${address}:${port}`;
  const sorted = (counts: Map<string, number>) =>
    [...counts].map(([key, count]) => ({ key, count })).sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

  it('counts by client, destination, service and state', async () => {
    expect([...(await countConnections({ path: file, by: 'client' }))]).toEqual(
      sorted(oracle((c) => canonicalAddress(c.client))),
    );
    expect([...(await countConnections({ path: file, by: 'destination' }))]).toEqual(
      sorted(oracle((c) => endpoint(c.destination, c.destinationPort))),
    );
    expect([...(await countConnections({ path: file, by: 'service' }))]).toEqual(
      sorted(oracle((c) => `${c.protocol.toLowerCase()} ${endpoint(c.virtual, c.virtualPort)}`)),
    );
    expect([...(await countConnections({ path: file, by: 'state' }))]).toEqual(sorted(oracle((c) => c.state)));
  });

  it('answers the autoban question: clients with at least N established connections', async () => {
    const established = oracle((c) => (c.state === 'ESTABLISHED' ? canonicalAddress(c.client) : undefined));
    const threshold = 20;
    const expectedHeavy = sorted(new Map([...established].filter(([, n]) => n >= threshold)));
    expect(expectedHeavy.length).toBeGreaterThan(3); // the generator's skew makes heavy clients
    const result = await countConnections({ path: file, by: 'client', state: 'established', minCount: threshold });
    expect([...result]).toEqual(expectedHeavy);
    expect(result.scan).toMatchObject({ connections: connections.length, malformedLines: 0 });
    expect(result.scan.matched).toBe([...established.values()].reduce((a, b) => a + b, 0));
  });

  it('keeps only the top N, ties broken by key', async () => {
    const all = await countConnections({ path: file, by: 'client' });
    const top = await countConnections({ path: file, by: 'client', top: 5 });
    expect([...top]).toEqual(all.slice(0, 5));
    const ties = writeTable(kernelTable(randomConnections(4, 5).map((c, i) => ({ ...c, client: `10.0.0.${4 - i}` }))));
    expect((await countConnections({ path: ties, by: 'client', top: 2 })).map((c) => c.key)).toEqual([
      '10.0.0.1',
      '10.0.0.2',
    ]);
  });

  it('filters by several states and by service protocol, address and port', async () => {
    const states = ['TIME_WAIT', 'FIN_WAIT'];
    const byState = await countConnections({ path: file, by: 'state', state: ['time_wait', 'FIN_WAIT'] });
    expect([...byState]).toEqual(sorted(oracle((c) => (states.includes(c.state) ? c.state : undefined))));

    const service = { protocol: 'tcp', address: 'fd00:a:0::1', port: 443 } as const;
    const inService = (c: KernelConnection) =>
      c.protocol === 'TCP' && canonicalAddress(c.virtual) === 'fd00:a::1' && c.virtualPort === 443;
    const byClient = await countConnections({ path: file, by: 'client', service });
    expect([...byClient]).toEqual(sorted(oracle((c) => (inService(c) ? canonicalAddress(c.client) : undefined))));

    const table = await readConnectionTable({ path: file, service, state: 'ESTABLISHED' });
    expect([...table]).toEqual(connections.filter((c) => inService(c) && c.state === 'ESTABLISHED').map(expected));
    expect(table.scan.connections).toBe(connections.length);

    const portOnly = await countConnections({ path: file, by: 'service', service: { port: 5060 } });
    expect(portOnly.every((c) => c.key.endsWith(':5060'))).toBe(true);
    expect(portOnly.reduce((s, c) => s + c.count, 0)).toBe(connections.filter((c) => c.virtualPort === 5060).length);
  });
});

describe('streamConnections', () => {
  const connections = randomConnections(25_000, 21);
  const file = writeTable(kernelTable(connections));

  it('yields every connection in batches of the requested size', async () => {
    const { batches, all, scan } = await collect(file, { batchSize: 4096 });
    expect(batches.map((b) => b.length)).toEqual([4096, 4096, 4096, 4096, 4096, 4096, 424]);
    expect(all).toEqual(connections.map(expected));
    expect(scan).toEqual({ lines: 25_001, connections: 25_000, matched: 25_000, malformedLines: 0 });
  });

  it('yields full batches across the reads beneath them, 256 by default', async () => {
    // Batches of 3000 straddle the 4,096-row reads; the default is 256.
    const straddling = await collect(file, { batchSize: 3000 });
    expect(straddling.batches.map((b) => b.length)).toEqual([...Array<number>(8).fill(3000), 1000]);
    expect(straddling.all).toEqual(connections.map(expected));
    const byDefault = await collect(file);
    expect(byDefault.batches.map((b) => b.length)).toEqual([...Array<number>(97).fill(256), 168]);
    expect(byDefault.scan.matched).toBe(25_000);
  });

  it('names every client right when there are more distinct clients than a stream keeps texts for', async () => {
    // 70,000 distinct IPv4 clients, each seen twice (once far apart), past the 65,536 texts a
    // stream keeps, and an IPv6 one between them.
    const many: KernelConnection[] = [];
    const client = (n: number) => `10.${(n >> 16) & 0xff}.${(n >> 8) & 0xff}.${n & 0xff}`;
    const base: KernelConnection = {
      protocol: 'TCP', client: '', clientPort: 0, virtual: '10.0.0.1', virtualPort: 80,
      destination: '10.9.0.2', destinationPort: 80, state: 'ESTABLISHED', expires: 900,
    };
    for (let n = 0; n < 70_000; n++) many.push({ ...base, client: client(n), clientPort: 1024 + (n % 60000) });
    many.push({ ...base, client: '2001:db8::7', virtual: 'fd00:a::1' });
    for (let n = 69_999; n >= 0; n -= 7) many.push({ ...base, client: client(n) });
    const { all } = await collect(writeTable(kernelTable(many)), { batchSize: 5000 });
    expect(all.map((c) => c.clientAddress)).toEqual(many.map((c) => canonicalAddress(c.client)));
  });

  it('gives the event loop a turn between the caller\'s loop over one batch and the next batch', async () => {
    // A callback the caller queues for the next turn while holding a batch has run by the time
    // the next batch arrives: the two never share a turn.
    let batches = 0;
    let turnsBetween = 0;
    let turned = false;
    for await (const batch of streamConnections({ path: file, batchSize: 500 })) {
      if (batches++ > 0 && turned) turnsBetween++;
      turned = false;
      void batch;
      setImmediate(() => { turned = true; });
    }
    expect(batches).toBe(50);
    expect(turnsBetween).toBe(49);
  });

  it('hands each batch over in a turn of its own, after the one that finished building it', async () => {
    // Two turns queued one after the other from the caller's loop have both run by the time the
    // next batch arrives: building the batch took one turn, handing it over another.
    let batches = 0;
    let turnsSeen = 0;
    let turns = 0;
    for await (const batch of streamConnections({ path: file, batchSize: 100 })) {
      if (batches++ > 0 && turns >= 2) turnsSeen++;
      turns = 0;
      void batch;
      setImmediate(() => {
        turns++;
        setImmediate(() => { turns++; });
      });
    }
    expect(batches).toBe(250);
    expect(turnsSeen).toBe(249);
  });

  it('applies filters before batching', async () => {
    const { all } = await collect(file, { batchSize: 1000, state: 'SYN_RECV', service: { protocol: 'tcp' } });
    expect(all).toEqual(connections.filter((c) => c.state === 'SYN_RECV' && c.protocol === 'TCP').map(expected));
  });

  it('stops reading when the loop breaks, and can be iterated only once', async () => {
    const stream = streamConnections({ path: file, batchSize: 100 });
    let seen = 0;
    for await (const batch of stream) {
      seen += batch.length;
      if (seen >= 300) break;
    }
    expect(seen).toBe(300);
    expect(stream.scan.matched).toBe(300);
    await expect(async () => {
      for await (const _ of stream) void _;
    }).rejects.toThrow('only once');
  });
});

describe('errors from the file system', () => {
  it('reports a missing file as an IpvsError with code ENOENT and the path', async () => {
    const missing = path.join(dir, 'does-not-exist');
    const error = await readConnectionTable({ path: missing }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IpvsError);
    expect(error).toMatchObject({ code: 'ENOENT', errno: 2, operation: 'connectionTable', path: missing });
    await expect(countConnections({ path: missing, by: 'state' })).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(collect(missing)).rejects.toMatchObject({ code: 'ENOENT', operation: 'connections' });
  });

  it('says IPVS is not loaded when the kernel has no connection table', async () => {
    if (existsSync('/proc/net/ip_vs_conn')) {
      // This host has IPVS loaded: the table must then read without error.
      expect((await readConnectionTable()).scan.malformedLines).toBe(0);
      return;
    }
    const error = await readConnectionTable().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IpvsError);
    expect(error).toMatchObject({ code: 'ENOENT', path: '/proc/net/ip_vs_conn' });
    expect((error as Error).message).toMatch(/IPVS is not loaded.*modprobe ip_vs/);
    await expect(countConnections({ by: 'client', sync: true })).rejects.toMatchObject({
      code: 'ENOENT',
      path: '/proc/net/ip_vs_conn_sync',
    });
  });

  it('reports a directory as EISDIR', async () => {
    await expect(readConnectionTable({ path: dir })).rejects.toMatchObject({ code: 'EISDIR' });
  });
});
