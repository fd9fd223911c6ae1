// The test kit itself: namespaces are removed whatever happens, nothing is left behind
// (namespaces, host links, processes), and concurrent namespaces do not see each other.
import { readdirSync, readlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import { Ipvs } from '../../../lib/index';
import {
  CommandError, bridge, ipvsAvailable, skipUnlessIpvs, topology, veth, withNetns, type Netns,
} from '../../../lib/testing';

const hostNetns = readlinkSync('/proc/self/ns/net');

/** What a leak would show: named namespaces, links of the host namespace, processes in other namespaces. */
function census(): { namespaces: number; hostLinks: number; foreignProcesses: number } {
  let foreignProcesses = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try { if (readlinkSync(`/proc/${entry}/ns/net`) !== hostNetns) foreignProcesses += 1; } catch { /* exited */ }
  }
  const lines = (args: string[]) => execFileSync('ip', args, { encoding: 'utf8' }).split('\n').filter(Boolean).length;
  return { namespaces: lines(['netns', 'list']), hostLinks: lines(['-o', 'link', 'show']), foreignProcesses };
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

// Each test runs dozens of short processes: on a host loaded by a benchmark they took up to 25 s
// (21 s for a topology under ASan; 5.7 s at most in CI), too close to the suite's default 60 s.
describe('withNetns', { timeout: 180_000 }, () => {
  it('removes the namespace, its links and every process in it when the callback throws', async () => {
    const before = census();
    let seen: { name: string; pids: number[] } | undefined;
    await expect(withNetns(async (ns) => {
      await withNetns(async (peer) => {
        await veth(ns, peer, { a: { addresses: '10.7.0.1/24' }, b: { addresses: '10.7.0.2/24' } });
        const br = await bridge(ns, { name: 'br7' });
        await veth(ns, ns, { a: { name: 'in7', bridge: br }, b: { name: 'out7' } });
        const sleeper = ns.spawn(['sleep', '600']);
        // A daemon the kit did not start: it forks away from its parent shell.
        await ns.exec('sleep 600 >/dev/null 2>&1 &');
        expect(await ns.exec(['ip', '-o', 'link', 'show', 'br7'])).toContain('br7');
        expect(await peer.exec(['ip', '-o', '-4', 'addr', 'show', 'dev', 'veth0', 'up'])).toContain('10.7.0.2/24');
        seen = { name: ns.name, pids: [sleeper.pid] };
        expect(census().foreignProcesses).toBeGreaterThanOrEqual(before.foreignProcesses + 2);
        throw new Error('test body failed');
      });
    })).rejects.toThrow('test body failed');
    expect(seen).toBeDefined();
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(seen!.name);
    for (const pid of seen!.pids) expect(alive(pid)).toBe(false);
    expect(census()).toEqual(before);
  });

  it('resolves with the callback value and reports failed commands with their stderr', async () => {
    const before = census();
    const result = await withNetns(async (ns) => {
      await ns.addAddress('lo', '10.8.0.1/32');
      await ns.sysctl({ 'net.ipv4.ip_forward': 1, 'net.ipv4.conf.all.rp_filter': 0 });
      expect((await ns.exec('cat /proc/sys/net/ipv4/ip_forward')).trim()).toBe('1');
      await ns.addRoute('10.9.0.0/24', { dev: 'lo' });
      const error = await ns.exec(['ip', 'route', 'add', '10.9.0.0/24', 'dev', 'lo']).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CommandError);
      expect((error as CommandError).exitCode).toBe(2);
      expect((error as CommandError).message).toMatch(/File exists/);
      return (await ns.exec(['ip', '-o', '-4', 'addr', 'show', 'dev', 'lo'])).includes('10.8.0.1/32');
    });
    expect(result).toBe(true);
    expect(census()).toEqual(before);
  });

  it('makes IPv6 addresses usable at once, link-local ones included (no duplicate address detection)', async () => {
    await withNetns(async (ns) => {
      await withNetns(async (peer) => {
        await veth(ns, peer, { a: { addresses: '2001:db8:7::1/64' }, b: { addresses: '2001:db8:7::2/64' } });
        for (const end of [ns, peer]) {
          // Right after veth(): with DAD on, the link-local address would stay tentative for a second or more.
          const linkLocal = /inet6 (fe80::[0-9a-f:]+)\/64 scope link/.exec(await end.exec(['ip', '-6', '-o', 'addr', 'show', 'dev', 'veth0']))?.[1];
          expect(linkLocal).toBeDefined();
          expect(await end.exec(['ip', '-6', '-o', 'addr', 'show', 'tentative'])).toBe('');
          // A socket binds to it (a tentative address is EADDRNOTAVAIL).
          await end.exec(['python3', '-c', `import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).bind(('${linkLocal}', 0, 0, socket.if_nametoindex('veth0')))`]);
        }
      });
    });
  });

  it('runs many namespaces at once without collisions: same addresses, same IPVS service', async () => {
    const before = census();
    const names = await Promise.all(Array.from({ length: 6 }, (_, i) => withNetns(async (ns: Netns) => {
      await ns.addAddress('lo', '10.9.0.1/32');
      const ipvs = await Ipvs.open({ netns: ns.path });
      try {
        await ipvs.addService({ protocol: 'tcp', address: '10.9.0.1', port: 80, scheduler: 'rr' });
        await ipvs.addDestination({ protocol: 'tcp', address: '10.9.0.1', port: 80 }, { address: `10.9.1.${i + 1}`, forward: 'masq' });
        const dests = await ipvs.listDestinations({ protocol: 'tcp', address: '10.9.0.1', port: 80 });
        expect(dests.map((d) => d.address)).toEqual([`10.9.1.${i + 1}`]);
      } finally {
        await ipvs.close();
      }
      return ns.name;
    }, { prefix: 'par' })));
    expect(new Set(names).size).toBe(6);
    expect(census()).toEqual(before);
  });
});

describe('topology', { timeout: 180_000 }, () => {
  it('leaves nothing behind when removed', async () => {
    const before = census();
    const topo = await topology('dr', { realServers: 2 });
    expect(await topo.director.exec(['ip', '-o', 'link', 'show', 'master', 'br0'])).toMatch(/client[\s\S]*rs1[\s\S]*rs2/);
    expect((await topo.realServers[0]!.ns.exec('cat /proc/sys/net/ipv4/conf/all/arp_ignore')).trim()).toBe('1');
    // Namespaces made as a group have DAD off too, for every link made in them.
    for (const ns of [topo.client, topo.director, ...topo.realServers.map((rs) => rs.ns)]) {
      expect(await ns.exec('cat /proc/sys/net/ipv6/conf/all/accept_dad /proc/sys/net/ipv6/conf/default/accept_dad')).toBe('0\n0\n');
    }
    await topo.remove();
    expect(census()).toEqual(before);
  });

  it('rejects unknown modes and options before creating anything', async () => {
    const before = census();
    await expect(topology('masq' as 'nat')).rejects.toThrow(TypeError);
    await expect(topology('nat', { realServers: 0 })).rejects.toThrow(RangeError);
    await expect(topology('nat', { tunnel: 'gue' })).rejects.toThrow(/for 'tun' topologies/);
    expect(census()).toEqual(before);
  });
});

describe('ipvsAvailable / skipUnlessIpvs in the VM', () => {
  it('says IPVS is usable and does not skip', () => {
    expect(ipvsAvailable()).toBe(true);
    let skipped = false;
    expect(skipUnlessIpvs({ skip: () => { skipped = true; } })).toBe(false);
    expect(skipped).toBe(false);
  });
});
