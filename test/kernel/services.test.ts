// Virtual services through the public API against the VM kernel: every field round-trips.
import { describe, expect, it } from 'vitest';

import { Ipvs, type Service, type ServiceSpec } from '../../lib/index';
import { expectIpvsError, expectStats, KERNEL_SCHEDULERS, withFreshNetns, withoutStats } from './api-helpers';
import { waitFor, type TestNetns } from './helpers';

const V4_DEFAULTS = { family: 'inet', scheduler: 'wlc', netmask: '255.255.255.255', onePacket: false, schedulerFlags: [] };
const V6_DEFAULTS = { ...V4_DEFAULTS, family: 'inet6', netmask: 128 };

function byKey(a: Service, b: Service): number {
  const key = (s: Service): string => ('fwmark' in s ? `f${s.family}${s.fwmark}` : `${s.protocol}${s.address}:${s.port}`);
  return key(a).localeCompare(key(b));
}

describe('services', () => {
  let ns: TestNetns;
  let ipvs: Ipvs;
  withFreshNetns('svc', (opened) => ({ ns, ipvs } = opened), { flushAfterEach: true });

  /** Adds `spec`, then reads it back with getService and checks it against `expected`. */
  async function roundTrip(spec: ServiceSpec, expected: object): Promise<Service> {
    await ipvs.addService(spec);
    const service = await ipvs.getService(spec);
    expectStats(service.stats);
    expect(withoutStats(service)).toEqual(expected);
    return service;
  }

  it('starts empty', async () => {
    expect(await ipvs.listServices()).toEqual([]);
  });

  it('round-trips tcp, udp and sctp services over IPv4 and IPv6, with ipvsadm defaults', async () => {
    const specs = [
      { protocol: 'tcp', address: '10.0.0.1', port: 80 },
      { protocol: 'udp', address: '10.0.0.1', port: 53 },
      { protocol: 'sctp', address: '10.0.0.2', port: 9000 },
      { protocol: 'tcp', address: '2001:db8::1', port: 443 },
      { protocol: 'udp', address: '2001:db8::1', port: 53 },
      { protocol: 'sctp', address: 'fd00::2', port: 65535 },
    ] as const;
    for (const spec of specs) {
      await roundTrip(spec, { ...spec, ...(spec.address.includes(':') ? V6_DEFAULTS : V4_DEFAULTS) });
    }
    const listed = await ipvs.listServices();
    expect(listed.map(withoutStats).sort(byKey as never)).toEqual(
      specs.map((s) => ({ ...s, ...(s.address.includes(':') ? V6_DEFAULTS : V4_DEFAULTS) })).sort(byKey as never),
    );
  });

  it('reads addresses back in canonical form', async () => {
    await roundTrip(
      { protocol: 'tcp', address: '2001:0DB8:0000:0000:0000:0000:0000:00A1', port: 80 },
      { protocol: 'tcp', address: '2001:db8::a1', port: 80, ...V6_DEFAULTS },
    );
    await roundTrip(
      { protocol: 'tcp', address: '::ffff:192.0.2.7', port: 80 },
      { protocol: 'tcp', address: '::ffff:192.0.2.7', port: 80, ...V6_DEFAULTS },
    );
    // the non-canonical spelling finds the same service
    expect(await ipvs.getService({ protocol: 'tcp', address: '2001:db8:0::A1', port: 80 })).toMatchObject({ address: '2001:db8::a1' });
  });

  it('round-trips fwmark services of both families, which may share a mark', async () => {
    await roundTrip({ fwmark: 1 }, { fwmark: 1, ...V4_DEFAULTS });
    await roundTrip({ fwmark: 1, family: 'inet6', scheduler: 'rr' }, { fwmark: 1, ...V6_DEFAULTS, scheduler: 'rr' });
    await roundTrip({ fwmark: 0xffffffff, family: 'inet' }, { fwmark: 0xffffffff, ...V4_DEFAULTS });
    expect((await ipvs.getService({ fwmark: 1 })).family).toBe('inet');
    expect((await ipvs.getService({ fwmark: 1, family: 'inet6' })).scheduler).toBe('rr');
    expect(await ipvs.listServices()).toHaveLength(3);
  });

  it.each(KERNEL_SCHEDULERS)('round-trips scheduler %s', async (scheduler) => {
    await roundTrip(
      { protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler },
      { protocol: 'tcp', address: '10.0.0.1', port: 80, ...V4_DEFAULTS, scheduler },
    );
    await roundTrip({ fwmark: 3, family: 'inet6', scheduler }, { fwmark: 3, ...V6_DEFAULTS, scheduler });
  });

  it('round-trips persistence with a netmask (IPv4 mask, IPv6 prefix length)', async () => {
    await roundTrip(
      { protocol: 'tcp', address: '10.0.0.1', port: 80, persistent: 300, netmask: '255.255.255.0' },
      { protocol: 'tcp', address: '10.0.0.1', port: 80, ...V4_DEFAULTS, persistent: 300, netmask: '255.255.255.0' },
    );
    await roundTrip(
      { protocol: 'tcp', address: '2001:db8::1', port: 80, persistent: 60, netmask: 64 },
      { protocol: 'tcp', address: '2001:db8::1', port: 80, ...V6_DEFAULTS, persistent: 60, netmask: 64 },
    );
    await roundTrip(
      { fwmark: 5, persistent: 31 * 86400, netmask: '128.0.0.0' },
      { fwmark: 5, ...V4_DEFAULTS, persistent: 31 * 86400, netmask: '128.0.0.0' },
    );
    await roundTrip(
      { fwmark: 5, family: 'inet6', persistent: 1, netmask: 1 },
      { fwmark: 5, ...V6_DEFAULTS, persistent: 1, netmask: 1 },
    );
  });

  it('allows port 0 (every port) for a persistent service', async () => {
    await roundTrip(
      { protocol: 'tcp', address: '10.0.0.3', port: 0, persistent: 10 },
      { protocol: 'tcp', address: '10.0.0.3', port: 0, ...V4_DEFAULTS, persistent: 10 },
    );
    expect(ns.run('ipvsadm', ['-S', '-n'])).toContain('-A -t 10.0.0.3:0 -s wlc -p 10');
  });

  it('round-trips one-packet scheduling', async () => {
    await roundTrip(
      { protocol: 'udp', address: '10.0.0.1', port: 53, onePacket: true },
      { protocol: 'udp', address: '10.0.0.1', port: 53, ...V4_DEFAULTS, onePacket: true },
    );
    await roundTrip(
      { protocol: 'udp', address: '10.0.0.1', port: 54, onePacket: false },
      { protocol: 'udp', address: '10.0.0.1', port: 54, ...V4_DEFAULTS },
    );
    // a fwmark service may carry UDP too
    await roundTrip({ fwmark: 53, onePacket: true }, { fwmark: 53, ...V4_DEFAULTS, onePacket: true });
  });

  it('round-trips named and raw scheduler flags', async () => {
    const key = { protocol: 'tcp', address: '10.0.0.1' } as const;
    await roundTrip(
      { ...key, port: 1, scheduler: 'sh', schedulerFlags: ['sh-fallback', 'sh-port'] },
      { ...key, port: 1, ...V4_DEFAULTS, scheduler: 'sh', schedulerFlags: ['sh-fallback', 'sh-port'] },
    );
    await roundTrip(
      { ...key, port: 2, scheduler: 'sh', schedulerFlags: ['sh-port'] },
      { ...key, port: 2, ...V4_DEFAULTS, scheduler: 'sh', schedulerFlags: ['sh-port'] },
    );
    await roundTrip(
      { ...key, port: 3, scheduler: 'mh', schedulerFlags: ['mh-fallback'] },
      { ...key, port: 3, ...V4_DEFAULTS, scheduler: 'mh', schedulerFlags: ['mh-fallback'] },
    );
    await roundTrip(
      { ...key, port: 4, scheduler: 'mh', schedulerFlags: ['mh-port', 'mh-fallback'] },
      { ...key, port: 4, ...V4_DEFAULTS, scheduler: 'mh', schedulerFlags: ['mh-fallback', 'mh-port'] },
    );
    await roundTrip(
      { ...key, port: 5, scheduler: 'rr', schedulerFlags: ['flag-1', 'flag-2', 'flag-3'] },
      { ...key, port: 5, ...V4_DEFAULTS, scheduler: 'rr', schedulerFlags: ['flag-1', 'flag-2', 'flag-3'] },
    );
    // the raw bits read back under the scheduler's own names; flag-3 has none
    await roundTrip(
      { ...key, port: 6, scheduler: 'sh', schedulerFlags: ['flag-1', 'flag-3'] },
      { ...key, port: 6, ...V4_DEFAULTS, scheduler: 'sh', schedulerFlags: ['sh-fallback', 'flag-3'] },
    );
    await roundTrip(
      { ...key, port: 7, scheduler: 'mh', schedulerFlags: [] },
      { ...key, port: 7, ...V4_DEFAULTS, scheduler: 'mh' },
    );
  });

  it('round-trips the sip persistence engine', async () => {
    await roundTrip(
      { protocol: 'udp', address: '10.0.0.1', port: 5060, persistent: 60, persistenceEngine: 'sip' },
      { protocol: 'udp', address: '10.0.0.1', port: 5060, ...V4_DEFAULTS, persistent: 60, persistenceEngine: 'sip' },
    );
    await roundTrip(
      { fwmark: 9, family: 'inet6', scheduler: 'sh', persistent: 30, persistenceEngine: 'sip', onePacket: true },
      { fwmark: 9, ...V6_DEFAULTS, scheduler: 'sh', persistent: 30, persistenceEngine: 'sip', onePacket: true },
    );
  });

  it('round-trips every option at once', async () => {
    await roundTrip(
      {
        protocol: 'udp', address: '2001:db8::53', port: 53, scheduler: 'mh', schedulerFlags: ['mh-port'],
        persistent: 120, netmask: 96, onePacket: true, persistenceEngine: 'sip',
      },
      {
        protocol: 'udp', address: '2001:db8::53', port: 53, ...V6_DEFAULTS, scheduler: 'mh', schedulerFlags: ['mh-port'],
        persistent: 120, netmask: 96, onePacket: true, persistenceEngine: 'sip',
      },
    );
  });

  it('editService replaces the whole definition and keeps the destinations', async () => {
    const key = { protocol: 'udp', address: '10.0.0.1', port: 80 } as const;
    await roundTrip(
      { ...key, scheduler: 'rr', persistent: 300, netmask: '255.255.0.0', onePacket: true },
      { ...key, ...V4_DEFAULTS, scheduler: 'rr', persistent: 300, netmask: '255.255.0.0', onePacket: true },
    );
    await ipvs.addDestination(key, { address: '10.0.1.1', forward: 'masq', weight: 3 });

    await ipvs.editService({ ...key, scheduler: 'sh', schedulerFlags: ['sh-port'] });
    expect(withoutStats(await ipvs.getService(key))).toEqual({ ...key, ...V4_DEFAULTS, scheduler: 'sh', schedulerFlags: ['sh-port'] });

    await ipvs.editService({ ...key, scheduler: 'lc', persistent: 5, persistenceEngine: 'sip' });
    expect(withoutStats(await ipvs.getService(key))).toEqual({ ...key, ...V4_DEFAULTS, scheduler: 'lc', persistent: 5, persistenceEngine: 'sip' });

    const [dest] = await ipvs.listDestinations(key);
    expect(dest).toMatchObject({ address: '10.0.1.1', port: 80, forward: 'masq', weight: 3 });
  });

  it('editService changes fwmark services of either family', async () => {
    await ipvs.addService({ fwmark: 4, family: 'inet6' });
    await ipvs.addService({ fwmark: 4 });
    await ipvs.editService({ fwmark: 4, family: 'inet6', scheduler: 'wrr', persistent: 9, netmask: 48 });
    expect(withoutStats(await ipvs.getService({ fwmark: 4, family: 'inet6' }))).toEqual({
      fwmark: 4, ...V6_DEFAULTS, scheduler: 'wrr', persistent: 9, netmask: 48,
    });
    expect(withoutStats(await ipvs.getService({ fwmark: 4 }))).toEqual({ fwmark: 4, ...V4_DEFAULTS });
  });

  it('accepts a listed Service back as a key and as a spec', async () => {
    const spec = { protocol: 'sctp', address: '10.0.0.9', port: 7, scheduler: 'sed', persistent: 8, netmask: '255.255.255.128' } as const;
    await ipvs.addService(spec);
    const [listed] = await ipvs.listServices();
    await ipvs.editService(listed! as ServiceSpec);  // Service.scheduler is a string: the kernel may know more
    const again = await ipvs.getService(listed!);
    expect(withoutStats(again)).toEqual(withoutStats(listed!));
    await ipvs.deleteService(again);
    expect(await ipvs.listServices()).toEqual([]);
  });

  it('deleteService removes one service and its destinations; then the key is ESRCH', async () => {
    const a = { protocol: 'tcp', address: '10.0.0.1', port: 80 } as const;
    const b = { protocol: 'tcp', address: '10.0.0.1', port: 81 } as const;
    await ipvs.addService(a);
    await ipvs.addService(b);
    await ipvs.addDestination(a, { address: '10.0.1.1' });
    await ipvs.deleteService(a);
    expect((await ipvs.listServices()).map(withoutStats)).toEqual([{ ...b, ...V4_DEFAULTS }]);
    await expectIpvsError(ipvs.getService(a), 'ESRCH', 'getService');
    await expectIpvsError(ipvs.listDestinations(a), 'ESRCH', 'listDestinations');
    await expectIpvsError(ipvs.deleteService(a), 'ESRCH', 'deleteService');
    expect(ns.run('ipvsadm', ['-S', '-n']).trim()).toBe('-A -t 10.0.0.1:81 -s wlc');

    await ipvs.addService({ fwmark: 2, family: 'inet6' });
    await ipvs.deleteService({ fwmark: 2, family: 'inet6' });
    await expectIpvsError(ipvs.getService({ fwmark: 2, family: 'inet6' }), 'ESRCH', 'getService');
  });

  it('reports stats as bigint counters that count real traffic', async () => {
    // A VIP on a dummy interface, routed to itself: a datagram sent from this namespace passes
    // IPVS on LOCAL_OUT, which creates a connection and counts the packet.
    ns.run('ip', ['link', 'add', 'vip0', 'type', 'dummy']);
    ns.run('ip', ['addr', 'add', '10.9.0.1/32', 'dev', 'vip0']);
    ns.run('ip', ['link', 'set', 'vip0', 'up']);
    const key = { protocol: 'udp', address: '10.9.0.1', port: 5000 } as const;
    await ipvs.addService({ ...key, scheduler: 'rr' });
    await ipvs.addDestination(key, { address: '10.9.0.1', forward: 'route' });
    const before = await ipvs.getService(key);
    expectStats(before.stats);
    expect(before.stats.connections).toBe(0n);
    expect(before.stats.packetsIn).toBe(0n);

    ns.run('socat', ['-u', '-', 'UDP4-SENDTO:10.9.0.1:5000'], { input: 'ping' });
    // The connection exists at once, but the kernel sums its per-CPU counters into what it
    // reports only on its estimator tick (every 2 s).
    expect(ns.run('ipvsadm', ['-L', '-n', '-c'])).toContain('10.9.0.1:5000');
    const after = await waitFor('the counters to include the datagram', async () => {
      const service = await ipvs.getService(key);
      return service.stats.connections > 0n && service;
    });
    expectStats(after.stats);
    expect(after.stats.connections).toBe(1n);
    expect(after.stats.packetsIn).toBeGreaterThanOrEqual(1n);
    expect(after.stats.bytesIn).toBeGreaterThanOrEqual(28n + 4n);
    const dest = await waitFor('the destination counters', async () => {
      const [d] = await ipvs.listDestinations(key);
      return d!.stats.connections > 0n && d;
    });
    expectStats(dest.stats);
    expect(dest.stats.connections).toBe(1n);
    expect(dest.inactiveConnections + dest.activeConnections).toBe(1);
    // ipvsadm reads the same counters (polled: a later tick may add the ICMP reply as OutPkts)
    await waitFor('ipvsadm --stats to agree', async () => {
      const { stats } = await ipvs.getService(key);
      const line = ns.run('ipvsadm', ['-L', '-n', '--stats', '--exact']).split('\n').find((l) => l.startsWith('UDP  10.9.0.1:5000'));
      return line?.split(/\s+/).slice(2).join(' ') ===
        [stats.connections, stats.packetsIn, stats.packetsOut, stats.bytesIn, stats.bytesOut].join(' ');
    });
    // and every service in the list carries them too
    for (const service of await ipvs.listServices()) expectStats(service.stats);
    ns.run('ip', ['link', 'del', 'vip0']);
  });
});
