// Two directors, the real keepalived electing one, our director following it: 100 long-lived
// DR connections survive a failover and a failback with the same real servers.
//
//   client 10.20.1.2 ─┐            ┌─ front 10.20.1.11  director A (keepalived prio 150) back 10.20.2.11 ─┐
//                     ├ brc (gw) ──┤                     VIP 10.20.1.100 (VRRP)                           ├ brs (gw) ─ rs1 10.20.2.21, rs2 .22
//   gw 10.20.1.1 ─────┘            └─ front 10.20.1.12  director B (keepalived prio 100) back 10.20.2.12 ─┘   (VIP on lo; replies via gw)
//
// keepalived runs VRRP only (no virtual_server) and writes its state to a FIFO that each
// Director reads (`vrrp.keepalivedFifo`); the Director keeps the IPVS table and switches the
// sync daemon (over `back`, which stays up when the front link fails). The real servers answer
// straight to the client through the gw router (DR). The directors' checks leave from this
// process's namespace, which has a leg on brs.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Director, type DirectorConfig, type DirectorEvent } from '../../../lib/director/index';
import { runCommand } from '../../../lib/testing/command';
import { createNetnsGroup, type Netns } from '../../../lib/testing/netns';
import type { NetnsProcess } from '../../../lib/testing/process';
import { waitFor } from '../../../lib/testing/wait';

const VIP = '10.20.1.100';
const PORT = 8080;
const CONNECTIONS = 100;
/** Seconds between two requests on one connection. */
const INTERVAL = 0.5;
/** Under TCG emulation on a loaded host: generous deadlines, polled. */
const STEP_MS = 60_000;
const HERE = path.resolve('test/kernel/ha');

interface ClientStatus {
  connected: number;
  open: number;
  lost: Record<string, string>;
  moved: number;
  servers: Record<string, number>;
  marks: Record<string, { done: number; longest: number; gap: number }>;
}

function lastStatus(client: NetnsProcess): ClientStatus | undefined {
  const lines = client.output().split('\n').filter((l) => l.startsWith('STATUS '));
  const line = lines.at(-1);
  return line ? JSON.parse(line.slice(7)) as ClientStatus : undefined;
}

function keepalivedConf(name: string, priority: number, fifo: string): string {
  return `global_defs {
    router_id ha_${name}
    vrrp_notify_fifo ${fifo}
}

vrrp_instance VI_1 {
    state BACKUP
    interface front
    virtual_router_id 51
    priority ${priority}
    advert_int 1
    virtual_ipaddress {
        ${VIP}/32 dev front
    }
}
`;
}

describe('two directors: keepalived VRRP failover loses no connection', () => {
  const tag = randomBytes(2).toString('hex');
  const hostVeth = `hav${tag}`;
  let gw: Netns, client: Netns, dirA: Netns, dirB: Netns, rs1: Netns, rs2: Netns;
  let all: Netns[] = [];
  let dir: string;
  const keepalived: Record<string, NetnsProcess> = {};
  const directors: Record<string, Director> = {};
  const events: Record<string, DirectorEvent[]> = { a: [], b: [] };
  let clients: NetnsProcess | undefined;
  const t0 = Date.now();
  const log = (what: string) => { console.error(`[ha +${((Date.now() - t0) / 1000).toFixed(1)} s] ${what}`); };

  const config = (fifo: string): DirectorConfig => ({
    services: [{
      protocol: 'tcp', address: VIP, port: PORT, scheduler: 'rr',
      destinations: [{ address: '10.20.2.21', forward: 'route' }, { address: '10.20.2.22', forward: 'route' }],
      checks: [{ type: 'tcp', interval: 2, timeout: 1, rise: 1, fall: 2 }],
    }],
    vrrp: { keepalivedFifo: fifo, instance: 'VI_1', sync: { interface: 'back', syncId: 51 } },
  });

  function startKeepalived(name: 'a' | 'b', ns: Netns, priority: number): void {
    const conf = path.join(dir, `keepalived-${name}.conf`);
    writeFileSync(conf, keepalivedConf(name, priority, path.join(dir, `${name}.fifo`)));
    const pid = (what: string) => path.join(dir, `keepalived-${name}-${what}.pid`);
    keepalived[name] = ns.spawn([
      'keepalived', '--dont-fork', '--log-console', '--no-syslog', '--vrrp', '--use-file', conf,
      '--pid', pid('main'), '--vrrp_pid', pid('vrrp'), '--checkers_pid', pid('checkers'),
    ]);
  }

  async function vrrpState(name: 'a' | 'b', state: string): Promise<DirectorEvent> {
    try {
      return await waitFor(`director ${name} to follow VRRP to ${state}`, () =>
        events[name]!.find((e) => e.type === 'vrrp' && e.to === state && e.time >= t0), { timeoutMs: STEP_MS, intervalMs: 100 });
    } catch (error) {
      throw new Error(`${String(error)}\n${diagnostics()}`, { cause: error });
    }
  }

  /** The director switches its sync daemon after it reports the VRRP state: wait for the switch. */
  async function syncDaemon(name: 'a' | 'b', state: 'master' | 'backup', since: number): Promise<DirectorEvent> {
    try {
      return await waitFor(`director ${name} to run the ${state} sync daemon`, () =>
        events[name]!.find((e) => e.type === 'sync-daemon' && e.to === state && e.time >= since), { timeoutMs: STEP_MS, intervalMs: 100 });
    } catch (error) {
      throw new Error(`${String(error)}\n${diagnostics()}`, { cause: error });
    }
  }

  /** Connection entries in a director's table, by state ('ESTABLISHED'). */
  async function established(ns: Netns): Promise<number> {
    const text = await ns.exec(['cat', '/proc/net/ip_vs_conn']);
    return text.split('\n').filter((l) => l.includes(' ESTABLISHED ')).length;
  }

  /** The longest gap between two answers on any connection that overlaps [from, to] (ms since the epoch), in seconds. */
  async function longestGap(from: number, to: number): Promise<number> {
    const seen = clients!.output().split('\n').filter((l) => l.startsWith('REPORT ')).length;
    clients!.write('report\n');
    const line = await waitFor('the client report', () => clients!.output().split('\n').filter((l) => l.startsWith('REPORT '))[seen], { timeoutMs: STEP_MS });
    const report = JSON.parse(line.slice(7)) as Record<string, { gaps: Array<[number, number]> }>;
    let longest = 0;
    for (const { gaps } of Object.values(report)) {
      for (const [start, end] of gaps) if (end * 1000 >= from && start * 1000 <= to) longest = Math.max(longest, end - start);
    }
    return Math.round(longest * 1000) / 1000;
  }

  function diagnostics(): string {
    return [
      ...Object.entries(keepalived).map(([n, p]) => `--- keepalived ${n}\n${p.output().slice(-1500)}`),
      `--- clients\n${clients?.output().split('\n').filter((l) => l.startsWith('STATUS')).at(-1) ?? ''}`,
      ...Object.entries(events).map(([n, list]) => `--- director ${n} events\n${list.filter((e) => e.type !== 'check').slice(-15).map((e) => JSON.stringify(e)).join('\n')}`),
    ].join('\n');
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ha-'));
    all = await createNetnsGroup(['ha-gw', 'ha-c', 'ha-a', 'ha-b', 'ha-r1', 'ha-r2']);
    [gw, client, dirA, dirB, rs1, rs2] = all as [Netns, Netns, Netns, Netns, Netns, Netns];
    const members: Array<[Netns, string, 'brc' | 'brs', string]> = [
      [client, 'eth0', 'brc', '10.20.1.2'], [dirA, 'front', 'brc', '10.20.1.11'], [dirB, 'front', 'brc', '10.20.1.12'],
      [dirA, 'back', 'brs', '10.20.2.11'], [dirB, 'back', 'brs', '10.20.2.12'],
      [rs1, 'eth0', 'brs', '10.20.2.21'], [rs2, 'eth0', 'brs', '10.20.2.22'],
    ];
    await gw.ipBatch([
      ['link', 'set', 'lo', 'up'],
      ['link', 'add', 'brc', 'type', 'bridge', 'stp_state', '0'], ['link', 'add', 'brs', 'type', 'bridge', 'stp_state', '0'],
      ['addr', 'add', '10.20.1.1/24', 'dev', 'brc'], ['addr', 'add', '10.20.2.1/24', 'dev', 'brs'],
      ...members.flatMap(([ns, ifname, bridge], i) => [
        ['link', 'add', `p${i}`, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns.name],
        ['link', 'set', `p${i}`, 'master', bridge], ['link', 'set', `p${i}`, 'up'],
      ]),
      ['link', 'set', 'brc', 'up'], ['link', 'set', 'brs', 'up'],
    ]);
    const byNs = new Map<Netns, string[][]>();
    for (const [ns, ifname, , address] of members) {
      const list = byNs.get(ns) ?? [['link', 'set', 'lo', 'up']];
      list.push(['addr', 'add', `${address}/24`, 'dev', ifname], ['link', 'set', ifname, 'up']);
      byNs.set(ns, list);
    }
    byNs.get(client)!.push(['route', 'add', 'default', 'via', '10.20.1.1']);
    for (const rs of [rs1, rs2]) byNs.get(rs)!.push(['route', 'add', 'default', 'via', '10.20.2.1'], ['addr', 'add', `${VIP}/32`, 'dev', 'lo']);
    const arp = { 'net.ipv4.conf.all.arp_ignore': 1, 'net.ipv4.conf.all.arp_announce': 2, 'net.ipv4.conf.eth0.arp_ignore': 1, 'net.ipv4.conf.eth0.arp_announce': 2 };
    await Promise.all([
      ...[...byNs].map(([ns, commands]) => ns.ipBatch(commands)),
      gw.sysctl({ 'net.ipv4.ip_forward': 1, 'net.ipv4.conf.all.rp_filter': 0, 'net.ipv4.conf.brs.rp_filter': 0, 'net.ipv4.conf.brc.rp_filter': 0 }),
      rs1.sysctl(arp), rs2.sysctl(arp),
      runCommand(['sh', '-c', [
        `ip link add ${hostVeth} type veth peer name ph netns ${gw.name}`,
        `ip -n ${gw.name} link set ph master brs up`,
        `ip addr add 10.20.2.5/24 dev ${hostVeth}`, `ip link set ${hostVeth} up`,
      ].join(' && ')]),
    ]);
    log('topology');

    const servers = [rs1.spawn(['python3', path.join(HERE, 'echo-server.py'), 'rs1']), rs2.spawn(['python3', path.join(HERE, 'echo-server.py'), 'rs2'])];
    await Promise.all(servers.map((s) => s.waitForOutput('listening', { timeoutMs: STEP_MS })));

    for (const [name, ns] of [['a', dirA], ['b', dirB]] as const) {
      const director = new Director(config(path.join(dir, `${name}.fifo`)), { netns: ns.path, checkEvents: true });
      director.on('vrrp', (e) => { events[name]!.push(e); log(`director ${name}: vrrp ${e.from} -> ${e.to}`); });
      director.on('sync-daemon', (e) => { events[name]!.push(e); log(`director ${name}: sync daemon ${e.from} -> ${e.to} (${e.latency} ms)`); });
      director.on('error', (e) => { events[name]!.push(e); log(`director ${name}: error ${e.operation}: ${String(e.error)}`); });
      director.on('up', (e) => { events[name]!.push(e); });
      directors[name] = director;
      await director.start();
    }
    // Both tables up (checks pass on both nodes) before VRRP elects anyone.
    for (const name of ['a', 'b']) {
      await waitFor(`director ${name}: both real servers up`, () =>
        directors[name]!.status().services[0]!.destinations.every((d) => d.health === 'up'), { timeoutMs: STEP_MS, intervalMs: 200 });
    }
    log('directors up');
    startKeepalived('a', dirA, 150);
    await vrrpState('a', 'master');
    startKeepalived('b', dirB, 100);
    await vrrpState('b', 'backup');
    await syncDaemon('a', 'master', t0);
    await syncDaemon('b', 'backup', t0);
    log('VRRP: A master, B backup');
  }, 240_000);

  afterAll(async () => {
    await clients?.stop();
    for (const p of Object.values(keepalived)) await p.stop('SIGTERM').catch(() => undefined);
    await Promise.all(Object.values(directors).map((d) => d.stop()));
    await runCommand(['ip', 'link', 'del', hostVeth]).catch(() => undefined);
    await Promise.all(all.map((ns) => ns.remove().catch(() => undefined)));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Waits until every connection completed a request sent after the client's mark `name`. */
  async function everyConnectionAnswers(name: string): Promise<ClientStatus> {
    try {
      return await waitFor(`all ${CONNECTIONS} connections to answer after ${name}`, () => {
        const s = lastStatus(clients!);
        // Lost connections end the wait at once: the caller's expectations report them.
        if (s && Object.keys(s.lost).length > 0) return s;
        return s?.marks[name]?.done === CONNECTIONS && s;
      }, { timeoutMs: STEP_MS, intervalMs: 200 });
    } catch (error) {
      throw new Error(`${String(error)}\n${diagnostics()}`, { cause: error });
    }
  }

  it('moves the VIP to the backup and back; all 100 connections keep their real servers', async () => {
    expect(await dirA.exec(['ip', '-o', 'addr', 'show', 'dev', 'front'])).toContain(VIP);
    expect(await dirA.exec(['ipvsadm', '-S', '-n'])).toBe(await dirB.exec(['ipvsadm', '-S', '-n']));
    expect((await dirA.exec(['ipvsadm', '-L', '--daemon'])).trim()).toMatch(/^master sync daemon \(mcast=back, syncid=51/);
    expect((await dirB.exec(['ipvsadm', '-L', '--daemon'])).trim()).toMatch(/^backup sync daemon \(mcast=back, syncid=51/);

    clients = client.spawn(['python3', path.join(HERE, 'clients.py'), VIP, String(PORT), String(CONNECTIONS), String(INTERVAL)]);
    clients.write('mark start\n');
    const before = await everyConnectionAnswers('start');
    expect(before.connected).toBe(CONNECTIONS);
    expect(Object.keys(before.servers).sort()).toEqual(['rs1', 'rs2']);
    // The backup knows every connection before the master goes (synced at their third packet).
    await waitFor('the backup to have every connection', async () => (await established(dirB)) >= CONNECTIONS, { timeoutMs: STEP_MS, intervalMs: 500 });
    log(`${CONNECTIONS} connections up (${JSON.stringify(before.servers)}), all synced to B`);

    // Failover: the master's front link goes down; keepalived A goes FAULT, B becomes master.
    clients.write('mark failover\n');
    const down = Date.now();
    await dirA.ip(['link', 'set', 'front', 'down']);
    const bMaster = await vrrpState('b', 'master');
    const bDaemon = await syncDaemon('b', 'master', down);
    await vrrpState('a', 'fault');
    await syncDaemon('a', 'backup', down);
    const failover = await everyConnectionAnswers('failover');
    const failoverDone = Date.now();
    const failoverGap = await longestGap(down, failoverDone);
    log(`failover: B master after ${(bMaster.time - down) / 1000} s, its sync daemon master ${(bDaemon.time - down) / 1000} s; ` +
      `every connection answered again after ${(failoverDone - down) / 1000} s; longest wait for an answer ${failover.marks.failover!.longest} s, ` +
      `longest gap between answers ${failoverGap} s; ` +
      `lost ${Object.keys(failover.lost).length}; answers from another real server ${failover.moved}`);
    expect(failover.lost).toEqual({});
    expect(failover.moved).toBe(0);
    expect(await dirB.exec(['ip', '-o', 'addr', 'show', 'dev', 'front'])).toContain(VIP);
    expect((await dirA.exec(['ipvsadm', '-L', '--daemon'])).trim()).toMatch(/^backup sync daemon/);

    // Failback: the link comes back; A (higher priority, preempting) takes the VIP again.
    events.a = events.a!.filter((e) => e.type !== 'vrrp');
    events.b = events.b!.filter((e) => e.type !== 'vrrp');
    clients.write('mark failback\n');
    const up = Date.now();
    await dirA.ip(['link', 'set', 'front', 'up']);
    const aMaster = await vrrpState('a', 'master');
    await vrrpState('b', 'backup');
    await syncDaemon('a', 'master', up);
    await syncDaemon('b', 'backup', up);
    const failback = await everyConnectionAnswers('failback');
    const failbackDone = Date.now();
    const failbackGap = await longestGap(up, failbackDone);
    log(`failback: A master after ${(aMaster.time - up) / 1000} s; every connection answered again after ${(failbackDone - up) / 1000} s; ` +
      `longest wait for an answer ${failback.marks.failback!.longest} s, longest gap between answers ${failbackGap} s; lost ${Object.keys(failback.lost).length}; answers from another real server ${failback.moved}`);
    expect(failback.lost).toEqual({});
    expect(failback.moved).toBe(0);
    expect(failback.open).toBe(CONNECTIONS);
    expect((await dirA.exec(['ipvsadm', '-L', '--daemon'])).trim()).toMatch(/^master sync daemon/);
    expect((await dirB.exec(['ipvsadm', '-L', '--daemon'])).trim()).toMatch(/^backup sync daemon/);
    // Both nodes kept the same table throughout, checks running on both.
    expect(await dirA.exec(['ipvsadm', '-S', '-n'])).toBe(await dirB.exec(['ipvsadm', '-S', '-n']));
    expect(directors.b!.status().vrrp).toMatchObject({ instance: 'VI_1', state: 'backup', daemon: 'backup' });
    expect(directors.a!.status().vrrp).toMatchObject({ instance: 'VI_1', state: 'master', daemon: 'master' });
  }, 240_000);
});
