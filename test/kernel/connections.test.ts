// The connection-table reader against real kernel tables: connections made by real packets
// (IPv4, IPv6, both mixed-family tunnel cases, a SIP persistence template with PE data) and
// entries created by a backup sync daemon from sync protocol v1 messages (origin SYNC/LOCAL).
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  type Connection,
  type ConnectionReadOptions,
  countConnections,
  readConnectionTable,
  streamConnections,
} from '../../lib/connections';
import { createNetns, run, type TestNetns } from './helpers';

const projectRoot = path.join(__dirname, '..', '..');
const children: ChildProcess[] = [];

/** Starts a long-running command in a namespace; it is killed after the file. */
function spawnIn(netns: TestNetns, command: string, args: string[]): void {
  const child = spawn('ip', ['netns', 'exec', netns.name, command, ...args], { stdio: 'ignore' });
  children.push(child);
}

async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  // Processes started in namespaces are slow on a loaded emulator: a generous bound, polled.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function streamAll(netns: string, options: ConnectionReadOptions = {}): Promise<Connection[]> {
  const all: Connection[] = [];
  for await (const batch of streamConnections({ netns, ...options, batchSize: 7 })) all.push(...batch);
  return all;
}

const byClientPort = (a: Connection, b: Connection) =>
  a.clientAddress < b.clientAddress ? -1 : a.clientAddress > b.clientAddress ? 1 : a.clientPort - b.clientPort;

/** The kernel table as `ipvsadm -Lnc` sees it: one row per connection. */
function ipvsadmConnectionCount(netns: TestNetns): number {
  return netns.run('ipvsadm', ['-L', '-n', '-c']).split('\n').filter((line) => /^(TCP|UDP|SCTP|IP)\s/.test(line)).length;
}

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

describe('connections made by real traffic', () => {
  let lb: TestNetns;
  let client: TestNetns;
  const CALL_ID = 'a84b4c76e66710@pc33.example.com';

  beforeAll(async () => {
    lb = createNetns('lb');
    client = createNetns('cl');
    const veth = `v${lb.name.slice(-6)}`;
    run('ip', ['link', 'add', `${veth}a`, 'netns', lb.name, 'type', 'veth', 'peer', 'name', `${veth}b`, 'netns', client.name]);
    lb.run('ip', ['link', 'set', `${veth}a`, 'up']);
    client.run('ip', ['link', 'set', `${veth}b`, 'up']);
    lb.run('ip', ['addr', 'add', '10.0.0.1/24', 'dev', `${veth}a`]);
    client.run('ip', ['addr', 'add', '10.0.0.2/24', 'dev', `${veth}b`]);
    lb.run('ip', ['addr', 'add', 'fd00:a::1/64', 'dev', `${veth}a`, 'nodad']);
    client.run('ip', ['addr', 'add', 'fd00:a::2/64', 'dev', `${veth}b`, 'nodad']);
    // Real servers sit behind a dummy device: packets to them vanish, so each connection
    // stays in SYN_RECV, which is all the table needs.
    lb.run('ip', ['link', 'add', 'rs0', 'type', 'dummy']);
    lb.run('ip', ['link', 'set', 'rs0', 'up']);
    lb.run('ip', ['addr', 'add', '10.9.0.1/24', 'dev', 'rs0']);
    lb.run('ip', ['addr', 'add', 'fd00:9::1/64', 'dev', 'rs0', 'nodad']);
    const ipvsadm = (...args: string[]) => lb.run('ipvsadm', args);
    ipvsadm('-A', '-t', '10.0.0.1:80', '-s', 'rr');
    ipvsadm('-a', '-t', '10.0.0.1:80', '-r', '10.9.0.2:80', '-m');
    ipvsadm('-A', '-t', '[fd00:a::1]:80', '-s', 'rr');
    ipvsadm('-a', '-t', '[fd00:a::1]:80', '-r', '[fd00:9::2]:80', '-m');
    // Mixed families: only tunnelling may cross them.
    ipvsadm('-A', '-t', '10.0.0.1:81', '-s', 'rr');
    ipvsadm('-a', '-t', '10.0.0.1:81', '-r', '[fd00:9::2]:81', '-i');
    ipvsadm('-A', '-t', '[fd00:a::1]:81', '-s', 'rr');
    ipvsadm('-a', '-t', '[fd00:a::1]:81', '-r', '10.9.0.2:81', '-i');
    ipvsadm('-A', '-u', '10.0.0.1:5060', '-s', 'rr', '-p', '120', '--pe', 'sip');
    ipvsadm('-a', '-u', '10.0.0.1:5060', '-r', '10.9.0.2:5060', '-m');

    const connect = (target: string, sourcePort: number) =>
      spawnIn(client, 'socat', ['-u', '/dev/null', `TCP:${target},sourceport=${sourcePort},connect-timeout=30`]);
    connect('10.0.0.1:80', 40001);
    connect('[fd00:a::1]:80', 40002);
    connect('10.0.0.1:81', 40003);
    connect('[fd00:a::1]:81', 40004);
    const sip =
      `OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5062\r\nCall-ID: ${CALL_ID}\r\n` +
      'CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n';
    client.run('socat', ['-u', '-', 'UDP:10.0.0.1:5060,sourceport=5062'], { input: sip });
    await waitFor(() => readConnectionTable({ netns: lb.path }), (t) => t.length >= 6, 'six connections');
  }, 180_000);

  afterAll(() => {
    lb?.remove();
    client?.remove();
  });

  it('parses IPv4, IPv6, mixed-family and PE lines exactly', async () => {
    const table = await readConnectionTable({ netns: lb.path });
    expect(table.scan.malformedLines).toBe(0);
    const connections = [...table].sort(byClientPort);
    for (const c of connections) {
      expect(c.expires).toBeGreaterThan(0);
      expect(c.expires).toBeLessThanOrEqual(c.state === 'SYN_RECV' ? 60 : 300);
    }
    const withoutExpiry = connections.map(({ expires: _, ...rest }) => rest);
    expect(withoutExpiry).toEqual([
      { protocol: 'udp', clientAddress: '10.0.0.2', clientPort: 0, virtualAddress: '10.0.0.1', virtualPort: 5060,
        destinationAddress: '10.9.0.2', destinationPort: 5060, state: 'NONE', peName: 'sip', peData: CALL_ID },
      { protocol: 'udp', clientAddress: '10.0.0.2', clientPort: 5062, virtualAddress: '10.0.0.1', virtualPort: 5060,
        destinationAddress: '10.9.0.2', destinationPort: 5060, state: 'UDP' },
      { protocol: 'tcp', clientAddress: '10.0.0.2', clientPort: 40001, virtualAddress: '10.0.0.1', virtualPort: 80,
        destinationAddress: '10.9.0.2', destinationPort: 80, state: 'SYN_RECV' },
      { protocol: 'tcp', clientAddress: '10.0.0.2', clientPort: 40003, virtualAddress: '10.0.0.1', virtualPort: 81,
        destinationAddress: 'fd00:9::2', destinationPort: 81, state: 'SYN_RECV' },
      { protocol: 'tcp', clientAddress: 'fd00:a::2', clientPort: 40002, virtualAddress: 'fd00:a::1', virtualPort: 80,
        destinationAddress: 'fd00:9::2', destinationPort: 80, state: 'SYN_RECV' },
      { protocol: 'tcp', clientAddress: 'fd00:a::2', clientPort: 40004, virtualAddress: 'fd00:a::1', virtualPort: 81,
        destinationAddress: '10.9.0.2', destinationPort: 81, state: 'SYN_RECV' },
    ]);
    expect(ipvsadmConnectionCount(lb)).toBe(6);
  });

  it('gives the same connections through the stream, and counts them natively', async () => {
    const table = [...(await readConnectionTable({ netns: lb.path }))].sort(byClientPort);
    const streamed = (await streamAll(lb.path)).sort(byClientPort);
    expect(streamed.map(({ expires: _, ...rest }) => rest)).toEqual(table.map(({ expires: _, ...rest }) => rest));

    expect([...(await countConnections({ netns: lb.path, by: 'client' }))]).toEqual([
      { key: '10.0.0.2', count: 4 },
      { key: 'fd00:a::2', count: 2 },
    ]);
    expect([...(await countConnections({ netns: lb.path, by: 'destination', state: 'SYN_RECV' }))]).toEqual([
      { key: '10.9.0.2:80', count: 1 },
      { key: '10.9.0.2:81', count: 1 },
      { key: '[fd00:9::2]:80', count: 1 },
      { key: '[fd00:9::2]:81', count: 1 },
    ]);
    expect([...(await countConnections({ netns: lb.path, by: 'service', service: { protocol: 'tcp', port: 81 } }))]).toEqual([
      { key: 'tcp 10.0.0.1:81', count: 1 },
      { key: 'tcp [fd00:a::1]:81', count: 1 },
    ]);
    expect([...(await countConnections({ netns: lb.path, by: 'state' }))]).toEqual([
      { key: 'SYN_RECV', count: 4 },
      { key: 'NONE', count: 1 },
      { key: 'UDP', count: 1 },
    ]);
  });

  it('reads the sync table of the same namespace with origin LOCAL', async () => {
    const table = await readConnectionTable({ netns: lb.path, sync: true });
    expect(table.length).toBe(6);
    expect([...table].every((c) => c.origin === 'local' && c.peName === undefined)).toBe(true);
  });

  it('reads only the namespace it is given', async () => {
    // The VM's own namespace has IPVS loaded but none of these connections.
    const own = await readConnectionTable();
    expect([...own].filter((c) => c.clientAddress === '10.0.0.2' || c.clientAddress === 'fd00:a::2')).toEqual([]);
    const saved = readFileSync(`/proc/${process.pid}/net/ip_vs_conn`, 'utf8');
    expect(own.length).toBe(saved.split('\n').filter((line) => line && !line.startsWith('Pro ')).length);
  });
});

describe('entries created by a backup sync daemon', () => {
  let backup: TestNetns;
  let sender: TestNetns;
  type Sent = { sent: number; states: Record<string, number>; clients: Record<string, number> };
  let ipv4: Sent;
  let ipv6: Sent;

  function flood(args: string[]): Sent {
    const output = sender.run('node', [path.join(projectRoot, 'scripts/sync-flood.mjs'), '--source', '192.168.77.2', '--json', ...args]);
    return JSON.parse(output.trim().split('\n').at(-1)!) as Sent;
  }

  beforeAll(async () => {
    backup = createNetns('bk');
    sender = createNetns('snd');
    const veth = `s${backup.name.slice(-6)}`;
    run('ip', ['link', 'add', `${veth}a`, 'netns', backup.name, 'type', 'veth', 'peer', 'name', `${veth}b`, 'netns', sender.name]);
    backup.run('ip', ['link', 'set', `${veth}a`, 'up']);
    sender.run('ip', ['link', 'set', `${veth}b`, 'up']);
    backup.run('ip', ['addr', 'add', '192.168.77.1/24', 'dev', `${veth}a`]);
    sender.run('ip', ['addr', 'add', '192.168.77.2/24', 'dev', `${veth}b`]);
    backup.run('ip', ['link', 'add', 'rs0', 'type', 'dummy']);
    backup.run('ip', ['link', 'set', 'rs0', 'up']);
    backup.run('ip', ['addr', 'add', '10.9.0.1/24', 'dev', 'rs0']);
    backup.run('ipvsadm', ['-A', '-t', '192.168.77.1:80', '-s', 'rr']);
    backup.run('ipvsadm', ['-a', '-t', '192.168.77.1:80', '-r', '10.9.0.2:80', '-m']);
    backup.run('ipvsadm', ['--start-daemon', 'backup', '--mcast-interface', `${veth}a`]);
    // One connection of the backup's own traffic: origin LOCAL.
    spawnIn(sender, 'socat', ['-u', '/dev/null', 'TCP:192.168.77.1:80,sourceport=40100,connect-timeout=30']);

    ipv4 = flood(['--count', '400', '--clients', '8', '--states', 'ESTABLISHED=3,TIME_WAIT=1,FIN_WAIT=1']);
    ipv6 = flood(['--count', '30', '--clients', '3', '--ipv6']);
    flood(['--template-pe', 'sip:callid-xyz', '--vip', '10.1.0.5', '--vport', '5060']);
    await waitFor(
      () => readConnectionTable({ netns: backup.path, sync: true }),
      (t) => t.length >= 400 + 30 + 1 + 1,
      'the synced entries',
    );
    // Three node processes start in it, each slow to start on a loaded emulator.
  }, 180_000);

  afterAll(() => {
    try {
      backup?.run('ipvsadm', ['--stop-daemon', 'backup']);
    } finally {
      backup?.remove();
      sender?.remove();
    }
  });

  it('reads the sync table: origin SYNC for synced entries, LOCAL for traffic', async () => {
    const table = await readConnectionTable({ netns: backup.path, sync: true });
    expect(table.scan.malformedLines).toBe(0);
    expect(table.length).toBe(432);
    const local = [...table].filter((c) => c.origin === 'local');
    expect(local).toEqual([
      expect.objectContaining({ protocol: 'tcp', clientAddress: '192.168.77.2', clientPort: 40100,
        virtualAddress: '192.168.77.1', virtualPort: 80, destinationAddress: '10.9.0.2', state: 'SYN_RECV' }),
    ]);
    const synced = [...table].filter((c) => c.origin === 'sync');
    expect(synced.length).toBe(431);
    const ipv6Entries = synced.filter((c) => c.clientAddress.includes(':'));
    expect(ipv6Entries.length).toBe(30);
    for (const c of ipv6Entries) {
      expect(c).toMatchObject({ protocol: 'tcp', virtualAddress: 'fd00:2::1', virtualPort: 80, destinationPort: 8080 });
      expect(c.destinationAddress).toMatch(/^fd00:3::[1-4]$/);
      expect(c.expires).toBeGreaterThan(3000);
    }
  });

  it('counts the synced entries exactly as the sender sent them', async () => {
    const v4States = await countConnections({ netns: backup.path, by: 'state', service: { address: '10.1.0.1', port: 80 } });
    expect(Object.fromEntries(v4States.map((c) => [c.key, c.count]))).toEqual(ipv4.states);
    const v4Clients = await countConnections({ netns: backup.path, by: 'client', service: { address: '10.1.0.1' }, sync: true });
    expect(Object.fromEntries(v4Clients.map((c) => [c.key, c.count]))).toEqual(ipv4.clients);
    const v6Clients = await countConnections({ netns: backup.path, by: 'client', service: { address: 'fd00:2::1' } });
    expect(Object.fromEntries(v6Clients.map((c) => [c.key, c.count]))).toEqual(ipv6.clients);

    // The autoban question on the synced table.
    const heaviest = Math.max(...Object.values(ipv4.clients));
    const top = await countConnections({ netns: backup.path, by: 'client', top: 1, service: { address: '10.1.0.1' } });
    expect(top[0]?.count).toBe(heaviest);
    const established = await countConnections({ netns: backup.path, by: 'client', state: 'ESTABLISHED', minCount: 2 });
    expect(established.every((c) => c.count >= 2)).toBe(true);
    expect(established.scan.connections).toBe(432);
    expect(ipvsadmConnectionCount(backup)).toBe(432);
  });

  it('shows the synced persistence template with its PE name and data', async () => {
    const templates = [...(await readConnectionTable({ netns: backup.path, service: { protocol: 'udp', port: 5060 } }))];
    expect(templates).toEqual([
      expect.objectContaining({ protocol: 'udp', clientAddress: '10.128.0.0', clientPort: 0, virtualAddress: '10.1.0.5',
        virtualPort: 5060, destinationAddress: '10.2.0.1', destinationPort: 5060, state: 'NONE', peName: 'sip',
        peData: 'callid-xyz' }),
    ]);
    const inSyncTable = [...(await readConnectionTable({ netns: backup.path, sync: true, service: { port: 5060 } }))];
    expect(inSyncTable).toEqual([expect.objectContaining({ origin: 'sync', state: 'NONE' })]);
    expect(inSyncTable[0]?.peName).toBeUndefined(); // the sync table has no PE columns
  });

  it('streams the synced table in batches that add up to the table', async () => {
    const streamed = await streamAll(backup.path, { sync: true, state: ['ESTABLISHED', 'TIME_WAIT'] });
    const expectedCount = ['ESTABLISHED', 'TIME_WAIT'].reduce(
      (sum, state) => sum + (ipv4.states[state] ?? 0) + (ipv6.states[state] ?? 0),
      0,
    );
    expect(streamed.length).toBe(expectedCount);
    expect(streamed.every((c) => c.origin === 'sync')).toBe(true);
  });
});
