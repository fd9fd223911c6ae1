// Real servers through the public API against the VM kernel: every field round-trips.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { Ipvs, type Destination, type DestinationSpec, type ServiceKey } from '../../lib/index';
import { expectIpvsError, expectStats, withoutStats } from './api-helpers';
import { createNetns, type TestNetns } from './helpers';

const S4 = { protocol: 'tcp', address: '10.0.0.1', port: 80 } as const;
const S6 = { protocol: 'tcp', address: '2001:db8::1', port: 443 } as const;
const FW4 = { fwmark: 7 } as const;
const FW6 = { fwmark: 8, family: 'inet6' } as const;

const COUNTS = { activeConnections: 0, inactiveConnections: 0, persistentConnections: 0 };
const DEFAULTS = { forward: 'route', weight: 1, upperThreshold: 0, lowerThreshold: 0, ...COUNTS };

describe('destinations', () => {
  let ns: TestNetns;
  let ipvs: Ipvs;
  beforeAll(async () => {
    ns = createNetns('dest');
    ipvs = await Ipvs.open({ netns: ns.path });
  });
  beforeEach(async () => {
    await ipvs.addService({ ...S4, scheduler: 'rr' });
    await ipvs.addService({ ...S6, scheduler: 'wrr' });
    await ipvs.addService(FW4);
    await ipvs.addService(FW6);
  });
  afterEach(() => {
    ns.run('ipvsadm', ['-C']);
  });
  afterAll(async () => {
    await ipvs?.close();
    ns?.remove();
  });

  /** The one destination at `address` (and `port`, if given), stats checked and dropped. */
  async function find(service: ServiceKey, address: string, port?: number): Promise<Omit<Destination, 'stats'>> {
    const all = await ipvs.listDestinations(service);
    const found = all.filter((d) => d.address === address && (port === undefined || d.port === port));
    expect(found, `${address}:${port} in ${JSON.stringify(all.map((d) => `${d.address}:${d.port}`))}`).toHaveLength(1);
    expectStats(found[0]!.stats);
    return withoutStats(found[0]!);
  }

  async function roundTrip(service: ServiceKey, spec: DestinationSpec, expected: object): Promise<void> {
    await ipvs.addDestination(service, spec);
    expect(await find(service, expected['address' as keyof object] as string, expected['port' as keyof object])).toEqual(expected);
  }

  it('lists none for a service without destinations', async () => {
    expect(await ipvs.listDestinations(S4)).toEqual([]);
    expect(await ipvs.listDestinations(FW6)).toEqual([]);
  });

  it('defaults like ipvsadm: direct routing, weight 1, the service port', async () => {
    await roundTrip(S4, { address: '10.0.1.1' }, { address: '10.0.1.1', family: 'inet', port: 80, ...DEFAULTS });
    await roundTrip(S6, { address: '2001:db8::10' }, { address: '2001:db8::10', family: 'inet6', port: 443, ...DEFAULTS });
    await roundTrip(FW4, { address: '10.0.1.1' }, { address: '10.0.1.1', family: 'inet', port: 0, ...DEFAULTS });
    await roundTrip(FW6, { address: '2001:db8::10' }, { address: '2001:db8::10', family: 'inet6', port: 0, ...DEFAULTS });
  });

  it.each(['masq', 'route', 'local'] as const)('round-trips forward %s on both families', async (forward) => {
    await roundTrip(S4, { address: '10.0.1.1', port: 8080, forward }, { address: '10.0.1.1', family: 'inet', ...DEFAULTS, port: 8080, forward });
    await roundTrip(S6, { address: '2001:db8::10', port: 8443, forward }, { address: '2001:db8::10', family: 'inet6', ...DEFAULTS, port: 8443, forward });
  });

  it('round-trips forward tunnel, which reads back as an IPIP tunnel by default', async () => {
    const tunnel = { type: 'ipip', checksum: 'none' };
    await roundTrip(S4, { address: '10.0.1.1', forward: 'tunnel' }, { address: '10.0.1.1', family: 'inet', port: 80, ...DEFAULTS, forward: 'tunnel', tunnel });
    await roundTrip(FW6, { address: '2001:db8::10', forward: 'tunnel' }, { address: '2001:db8::10', family: 'inet6', port: 0, ...DEFAULTS, forward: 'tunnel', tunnel });
  });

  it('round-trips weight 0 (quiescent) and the largest weight', async () => {
    await roundTrip(S4, { address: '10.0.1.1', weight: 0 }, { address: '10.0.1.1', family: 'inet', port: 80, ...DEFAULTS, weight: 0 });
    await roundTrip(S4, { address: '10.0.1.2', weight: 2 ** 31 - 1 }, { address: '10.0.1.2', family: 'inet', port: 80, ...DEFAULTS, weight: 2 ** 31 - 1 });
  });

  it('round-trips thresholds', async () => {
    const base = { family: 'inet', port: 80, ...DEFAULTS } as const;
    await roundTrip(S4, { address: '10.0.1.1', upperThreshold: 1000, lowerThreshold: 10 }, { ...base, address: '10.0.1.1', upperThreshold: 1000, lowerThreshold: 10 });
    await roundTrip(S4, { address: '10.0.1.2', upperThreshold: 5, lowerThreshold: 5 }, { ...base, address: '10.0.1.2', upperThreshold: 5, lowerThreshold: 5 });
    await roundTrip(S4, { address: '10.0.1.3', upperThreshold: 2 ** 31 - 1 }, { ...base, address: '10.0.1.3', upperThreshold: 2 ** 31 - 1 });
    await roundTrip(S6, { address: '2001:db8::10', upperThreshold: 7 }, { ...base, family: 'inet6', port: 443, address: '2001:db8::10', upperThreshold: 7 });
  });

  it.each([
    [{ type: 'ipip' }, { type: 'ipip', checksum: 'none' }],
    [{ type: 'ipip', checksum: 'none' }, { type: 'ipip', checksum: 'none' }],
    [{ type: 'gre' }, { type: 'gre', checksum: 'none' }],
    [{ type: 'gre', checksum: 'csum' }, { type: 'gre', checksum: 'csum' }],
    [{ type: 'gue', port: 6080 }, { type: 'gue', port: 6080, checksum: 'none' }],
    [{ type: 'gue', port: 1, checksum: 'csum' }, { type: 'gue', port: 1, checksum: 'csum' }],
    [{ type: 'gue', port: 65535, checksum: 'remcsum' }, { type: 'gue', port: 65535, checksum: 'remcsum' }],
  ] as const)('round-trips tunnel %j', async (tunnel, expected) => {
    await roundTrip(S4, { address: '10.0.1.1', forward: 'tunnel', tunnel }, {
      address: '10.0.1.1', family: 'inet', port: 80, ...DEFAULTS, forward: 'tunnel', tunnel: expected,
    });
    await roundTrip(S6, { address: '2001:db8::10', forward: 'tunnel', tunnel, weight: 3 }, {
      address: '2001:db8::10', family: 'inet6', port: 443, ...DEFAULTS, forward: 'tunnel', weight: 3, tunnel: expected,
    });
  });

  it('round-trips a destination family different from the service, with tunnelling', async () => {
    await roundTrip(S4, { address: '2001:db8::5', forward: 'tunnel' }, {
      address: '2001:db8::5', family: 'inet6', port: 80, ...DEFAULTS, forward: 'tunnel', tunnel: { type: 'ipip', checksum: 'none' },
    });
    await roundTrip(S4, { address: '2001:db8::6', family: 'inet6', forward: 'tunnel', tunnel: { type: 'gue', port: 5555, checksum: 'remcsum' } }, {
      address: '2001:db8::6', family: 'inet6', port: 80, ...DEFAULTS, forward: 'tunnel', tunnel: { type: 'gue', port: 5555, checksum: 'remcsum' },
    });
    await roundTrip(S6, { address: '10.0.1.9', forward: 'tunnel', tunnel: { type: 'gre', checksum: 'csum' }, weight: 4 }, {
      address: '10.0.1.9', family: 'inet', port: 443, ...DEFAULTS, forward: 'tunnel', weight: 4, tunnel: { type: 'gre', checksum: 'csum' },
    });
    await roundTrip(FW4, { address: '2001:db8::7', forward: 'tunnel' }, {
      address: '2001:db8::7', family: 'inet6', port: 0, ...DEFAULTS, forward: 'tunnel', tunnel: { type: 'ipip', checksum: 'none' },
    });
    expect((await ipvs.listDestinations(S4)).map((d) => d.family).sort()).toEqual(['inet6', 'inet6']);
    // and they can be edited and deleted by their own family
    await ipvs.editDestination(S6, { address: '10.0.1.9', forward: 'tunnel', weight: 9 });
    expect((await find(S6, '10.0.1.9')).weight).toBe(9);
    await ipvs.deleteDestination(S4, { address: '2001:db8::5' });
    await ipvs.deleteDestination(S6, { address: '10.0.1.9', port: 443 });
    expect((await ipvs.listDestinations(S4)).map((d) => d.address)).toEqual(['2001:db8::6']);
    expect(await ipvs.listDestinations(S6)).toEqual([]);
  });

  it('keeps destinations on the same address with different ports apart', async () => {
    await ipvs.addDestination(S4, { address: '10.0.1.1', port: 8080, forward: 'masq', weight: 2 });
    await ipvs.addDestination(S4, { address: '10.0.1.1', port: 8081, forward: 'masq', weight: 3 });
    expect((await find(S4, '10.0.1.1', 8080)).weight).toBe(2);
    expect((await find(S4, '10.0.1.1', 8081)).weight).toBe(3);
    await ipvs.deleteDestination(S4, { address: '10.0.1.1', port: 8080 });
    expect((await ipvs.listDestinations(S4)).map((d) => d.port)).toEqual([8081]);
  });

  it('reads addresses back in canonical form and finds them by any spelling', async () => {
    await ipvs.addDestination(S6, { address: '2001:DB8:0:0::0A', forward: 'masq' });
    expect((await find(S6, '2001:db8::a')).forward).toBe('masq');
    await ipvs.editDestination(S6, { address: '2001:db8::A', forward: 'masq', weight: 6 });
    expect((await find(S6, '2001:db8::a')).weight).toBe(6);
    await ipvs.deleteDestination(S6, { address: '2001:0db8::000a' });
    expect(await ipvs.listDestinations(S6)).toEqual([]);
  });

  it('editDestination replaces the whole definition', async () => {
    await ipvs.addDestination(S4, {
      address: '10.0.1.1', forward: 'tunnel', tunnel: { type: 'gue', port: 6080, checksum: 'csum' }, weight: 7, upperThreshold: 50, lowerThreshold: 20,
    });
    await ipvs.editDestination(S4, { address: '10.0.1.1', forward: 'masq', weight: 2 });
    expect(await find(S4, '10.0.1.1')).toEqual({ address: '10.0.1.1', family: 'inet', port: 80, ...DEFAULTS, forward: 'masq', weight: 2 });

    await ipvs.editDestination(S4, { address: '10.0.1.1', forward: 'tunnel', tunnel: { type: 'gre' }, upperThreshold: 3 });
    expect(await find(S4, '10.0.1.1')).toEqual({
      address: '10.0.1.1', family: 'inet', port: 80, ...DEFAULTS, forward: 'tunnel', upperThreshold: 3, tunnel: { type: 'gre', checksum: 'none' },
    });

    await ipvs.editDestination(S4, { address: '10.0.1.1' });
    expect(await find(S4, '10.0.1.1')).toEqual({ address: '10.0.1.1', family: 'inet', port: 80, ...DEFAULTS });
    expect(await ipvs.listDestinations(S4)).toHaveLength(1);
  });

  it('accepts a listed Destination back as a spec and as a key', async () => {
    await ipvs.addDestination(FW6, { address: '2001:db8::10', forward: 'masq', port: 80, weight: 5, upperThreshold: 9, lowerThreshold: 1 });
    const [listed] = await ipvs.listDestinations(FW6);
    await ipvs.editDestination(FW6, listed! as DestinationSpec);  // forward may read back as 'bypass'
    const [again] = await ipvs.listDestinations(FW6);
    expect(withoutStats(again!)).toEqual(withoutStats(listed!));
    await ipvs.deleteDestination(FW6, listed!);
    expect(await ipvs.listDestinations(FW6)).toEqual([]);
  });

  it('deleteDestination removes exactly one; then it is ENOENT', async () => {
    await ipvs.addDestination(S4, { address: '10.0.1.1' });
    await ipvs.addDestination(S4, { address: '10.0.1.2' });
    await ipvs.deleteDestination(S4, { address: '10.0.1.1' });
    expect((await ipvs.listDestinations(S4)).map((d) => d.address)).toEqual(['10.0.1.2']);
    await expectIpvsError(ipvs.deleteDestination(S4, { address: '10.0.1.1' }), 'ENOENT', 'deleteDestination');
    await expectIpvsError(ipvs.editDestination(S4, { address: '10.0.1.1' }), 'ENOENT', 'editDestination');
    // the port is part of the key
    await expectIpvsError(ipvs.deleteDestination(S4, { address: '10.0.1.2', port: 81 }), 'ENOENT', 'deleteDestination');
    expect(ns.run('ipvsadm', ['-S', '-n'])).toContain('-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 1');
  });

  it('reports connection counts as numbers and stats as bigints', async () => {
    await ipvs.addDestination(S4, { address: '10.0.1.1', forward: 'masq' });
    const [dest] = await ipvs.listDestinations(S4);
    expectStats(dest!.stats);
    for (const field of ['activeConnections', 'inactiveConnections', 'persistentConnections', 'weight', 'port'] as const) {
      expect(typeof dest![field], field).toBe('number');
    }
  });
});
