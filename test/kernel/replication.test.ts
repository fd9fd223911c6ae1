// Connection synchronisation between two directors, each driven by its own handle.
//
//   client 10.1.0.2 --- 10.1.0.1 (VIP) master 10.2.0.1 --- 10.2.0.2 real server
//                                      10.3.0.1 (sync link)
//                                         |
//                                      10.3.0.2 backup
//
// The master forwards by NAT; its sync daemon multicasts connection state over the sync link
// and the backup's daemon creates the same connections, shown with origin SYNC in
// /proc/net/ip_vs_conn_sync of the backup's namespace.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { Ipvs, type ServiceKey } from '../../lib/index';
import { connectNetns, createNetns, run, spawnIn, waitFor, type BackgroundProcess, type TestNetns } from './helpers';

interface SyncedConn {
  protocol: string;
  client: string;
  virtual: string;
  destination: string;
  state: string;
  origin: string;
}

/** /proc/net/ip_vs_conn_sync of a namespace: Pro FromIP FPrt ToIP TPrt DestIP DPrt State Origin Expires. */
function connSync(ns: TestNetns): SyncedConn[] {
  return ns.run('cat', ['/proc/net/ip_vs_conn_sync']).split('\n').slice(1).filter(Boolean).map((line) => {
    const f = line.trim().split(/\s+/);
    return {
      protocol: f[0]!, client: `${f[1]}:${f[2]}`, virtual: `${f[3]}:${f[4]}`, destination: `${f[5]}:${f[6]}`,
      state: f[7]!, origin: f[8]!,
    };
  });
}

const hex = (address: string, port: number): string =>
  `${address.split('.').map((b) => Number(b).toString(16).padStart(2, '0')).join('').toUpperCase()}:${port.toString(16).padStart(4, '0').toUpperCase()}`;

const VIP = hex('10.1.0.1', 8080);
const REAL = hex('10.2.0.2', 8080);

describe('replication between a master and a backup director', () => {
  let client: TestNetns;
  let master: TestNetns;
  let backup: TestNetns;
  let real: TestNetns;
  let masterIpvs: Ipvs;
  let backupIpvs: Ipvs;
  const processes: BackgroundProcess[] = [];
  const service: ServiceKey = { protocol: 'tcp', address: '10.1.0.1', port: 8080 };

  beforeAll(async () => {
    client = createNetns('rep-c');
    master = createNetns('rep-m');
    backup = createNetns('rep-b');
    real = createNetns('rep-r');
    // Link-local IPv6 addresses are usable at once (the kit's namespaces have DAD off), for
    // the IPv6 multicast group.
    connectNetns(client, 'c0', master, 'm0', { a: ['10.1.0.2/24'], b: ['10.1.0.1/24'] });
    connectNetns(master, 'm1', real, 'r0', { a: ['10.2.0.1/24'], b: ['10.2.0.2/24'] });
    connectNetns(master, 'msync', backup, 'bsync', { a: ['10.3.0.1/24'], b: ['10.3.0.2/24'] });
    run('ip', ['-n', real.name, 'route', 'add', 'default', 'via', '10.2.0.1']);
    master.run('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    // The real server answers, then holds the connection open (ESTABLISHED on the directors).
    processes.push(spawnIn(real, 'socat', ['TCP-LISTEN:8080,fork,reuseaddr', 'SYSTEM:echo pong; sleep 60']));
    await waitFor('the real server to listen', () => real.run('ss', ['-Hltn', 'sport = :8080']).trim() !== '');

    masterIpvs = await Ipvs.open({ netns: master.path });
    backupIpvs = await Ipvs.open({ netns: backup.path });
    for (const ipvs of [masterIpvs, backupIpvs]) {
      await ipvs.addService({ ...service, scheduler: 'rr' });
      await ipvs.addDestination(service, { address: '10.2.0.2', forward: 'masq' });
    }
  });

  // A test that fails half-way leaves no daemon for the next one, which starts its own.
  afterEach(async () => {
    for (const ipvs of [masterIpvs, backupIpvs]) {
      for (const daemon of await ipvs?.listDaemons() ?? []) await ipvs!.stopDaemon(daemon.state);
    }
  });

  afterAll(async () => {
    for (const p of processes) p.stop();
    await masterIpvs?.close();
    await backupIpvs?.close();
    for (const ns of [client, master, backup, real]) ns?.remove();
  });

  /** Opens a client connection through the VIP and keeps it open; resolves once it got the answer. */
  async function connect(): Promise<BackgroundProcess> {
    const conn = spawnIn(client, 'socat', ['-T', '90', '-', 'TCP:10.1.0.1:8080,connect-timeout=5']);
    processes.push(conn);
    conn.write('ping\n');
    await waitFor('the answer through the VIP', () => conn.output().includes('pong'));
    return conn;
  }

  /** Client endpoints (hex "ADDR:PORT") in a namespace's connection table. */
  function clients(ns: TestNetns): Set<string> {
    return new Set(connSync(ns).map((c) => c.client));
  }

  /** Waits for a connection opened after `known` was taken to reach the backup, and checks it. */
  async function expectReplicated(label: string, known: Set<string>): Promise<void> {
    // The master's own table has the connection (origin LOCAL) ...
    const local = await waitFor(`${label}: a new established connection on the master`, () => {
      const conns = connSync(master).filter((c) =>
        c.virtual === VIP && c.state === 'ESTABLISHED' && c.origin === 'LOCAL' && !known.has(c.client));
      return conns.length > 0 && conns;
    });
    // ... and the backup gets it from the sync daemon, within a bounded wait (the master
    // flushes its sync buffer at least every 2 s).
    const synced = await waitFor(`${label}: the same connection on the backup`, () => {
      const conns = connSync(backup).filter((c) => local.some((l) => l.client === c.client));
      return conns.length > 0 && conns;
    }, { timeoutMs: 20_000 });
    for (const conn of synced) {
      expect(conn).toMatchObject({ protocol: 'TCP', virtual: VIP, destination: REAL, origin: 'SYNC' });
      expect(conn.client.startsWith('0A010002:')).toBe(true);
    }
    // The backup never created connections of its own.
    expect(connSync(backup).filter((c) => c.origin !== 'SYNC')).toEqual([]);
  }

  it('syncs connections over an IPv4 multicast group (the default 224.0.0.81)', async () => {
    await masterIpvs.startDaemon({ state: 'master', interface: 'msync', syncId: 42 });
    await backupIpvs.startDaemon({ state: 'backup', interface: 'bsync', syncId: 42 });
    expect(await masterIpvs.listDaemons()).toMatchObject([{ state: 'master', interface: 'msync', syncId: 42, group: '224.0.0.81' }]);
    expect(await backupIpvs.listDaemons()).toMatchObject([{ state: 'backup', interface: 'bsync', syncId: 42, group: '224.0.0.81' }]);
    expect(connSync(backup)).toEqual([]);

    const known = clients(master);
    await connect();
    await expectReplicated('IPv4 group', known);
  });

  it('syncs connections over an IPv6 multicast group with a non-default port and maxLength', async () => {
    const options = { syncId: 43, group: 'ff02::1:81', port: 9848, ttl: 1 };
    await masterIpvs.startDaemon({ state: 'master', interface: 'msync', maxLength: 1200, ...options });
    await backupIpvs.startDaemon({ state: 'backup', interface: 'bsync', maxLength: 1400, ...options });
    expect(await masterIpvs.listDaemons()).toEqual([{ state: 'master', interface: 'msync', maxLength: 1200, ...options }]);
    expect(await backupIpvs.listDaemons()).toEqual([{ state: 'backup', interface: 'bsync', maxLength: 1400, ...options }]);

    const known = new Set([...clients(master), ...clients(backup)]);
    await connect();
    await expectReplicated('IPv6 group', known);
  });
});
