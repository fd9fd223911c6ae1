// ipvsadm as an independent oracle, both ways: what our API writes, `ipvsadm -S -n` prints;
// what ipvsadm writes, our API reads back exactly.
import { describe, expect, it } from 'vitest';

import { Ipvs, type Destination, type Service } from '../../lib/index';
import { KERNEL_SCHEDULERS, saveLines, withFreshNetns, withoutStats } from './api-helpers';
import type { TestNetns } from './helpers';

const COUNTS = { activeConnections: 0, inactiveConnections: 0, persistentConnections: 0 };

/** `ipvsadm -L -n --thresholds`: the upper and lower threshold of each real server, by "svc -> dest". */
function thresholds(ns: TestNetns): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  let service = '';
  for (const line of ns.run('ipvsadm', ['-L', '-n', '--thresholds']).split('\n')) {
    const svc = /^(TCP|UDP|SCTP|FWM)\s+(\S+)/.exec(line);
    if (svc) service = `${svc[1]} ${svc[2]}`;
    const dest = /^\s+->\s+(\S+)\s+(\d+)\s+(\d+)/.exec(line);
    if (dest && service) out[`${service} -> ${dest[1]}`] = [Number(dest[2]), Number(dest[3])];
  }
  return out;
}

describe('ipvsadm as the oracle', () => {
  let ns: TestNetns;
  let ipvs: Ipvs;
  withFreshNetns('orcl', (opened) => ({ ns, ipvs } = opened), { flushAfterEach: true });

  const save = (): string[] => saveLines(ns.run('ipvsadm', ['-S', '-n']));

  describe('what the API writes, ipvsadm -S -n prints', () => {
    it('services of every protocol and family, with every option', async () => {
      await ipvs.addService({ protocol: 'tcp', address: '10.0.0.1', port: 80 });
      await ipvs.addService({ protocol: 'udp', address: '10.0.0.1', port: 53, scheduler: 'sh', schedulerFlags: ['sh-fallback', 'sh-port'], onePacket: true });
      await ipvs.addService({ protocol: 'sctp', address: '10.0.0.2', port: 9000, scheduler: 'nq' });
      await ipvs.addService({ protocol: 'tcp', address: '10.0.0.3', port: 0, scheduler: 'rr', persistent: 300, netmask: '255.255.255.0' });
      await ipvs.addService({ protocol: 'tcp', address: '2001:db8::1', port: 443, scheduler: 'mh', schedulerFlags: ['mh-port'], persistent: 60, netmask: 64 });
      await ipvs.addService({ protocol: 'udp', address: '2001:db8::2', port: 5060, scheduler: 'lc', persistent: 20, persistenceEngine: 'sip' });
      await ipvs.addService({ protocol: 'sctp', address: '::ffff:192.0.2.7', port: 1 });
      await ipvs.addService({ fwmark: 7, family: 'inet6', scheduler: 'wrr' });
      await ipvs.addService({ fwmark: 0xffffffff, scheduler: 'dh', persistent: 2678400 });
      expect(save()).toEqual([
        '-A --sctp-service 10.0.0.2:9000 -s nq',
        '-A --sctp-service [::ffff:192.0.2.7]:1 -s wlc',
        '-A -f -1 -s dh -p 2678400',  // ipvsadm prints the u32 mark with %d
        '-A -f 7 -6 -s wrr',
        '-A -t 10.0.0.1:80 -s wlc',
        '-A -t 10.0.0.3:0 -s rr -p 300 -M 255.255.255.0',
        '-A -t [2001:db8::1]:443 -s mh -p 60 -M 64 -b mh-port',
        '-A -u 10.0.0.1:53 -s sh -o -b sh-fallback,sh-port',
        '-A -u [2001:db8::2]:5060 -s lc -p 20 --pe sip',
      ]);
    });

    it.each(KERNEL_SCHEDULERS)('scheduler %s', async (scheduler) => {
      await ipvs.addService({ protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler });
      expect(save()).toEqual([`-A -t 10.0.0.1:80 -s ${scheduler}`]);
    });

    it('edits', async () => {
      await ipvs.addService({ protocol: 'udp', address: '10.0.0.1', port: 80, scheduler: 'rr', persistent: 5 });
      await ipvs.editService({ protocol: 'udp', address: '10.0.0.1', port: 80, scheduler: 'sh', schedulerFlags: ['sh-port'], onePacket: true });
      expect(save()).toEqual(['-A -u 10.0.0.1:80 -s sh -o -b sh-port']);
    });

    it('destinations of every forwarding method and tunnel type, mixed families included', async () => {
      const s4 = { protocol: 'tcp', address: '10.0.0.1', port: 80 } as const;
      const s6 = { protocol: 'tcp', address: '2001:db8::1', port: 80 } as const;
      const fw = { fwmark: 7, family: 'inet6' } as const;
      await ipvs.addService(s4);
      await ipvs.addService(s6);
      await ipvs.addService(fw);
      await ipvs.addDestination(s4, { address: '10.0.1.1', port: 8080, forward: 'masq', weight: 5, upperThreshold: 100, lowerThreshold: 10 });
      await ipvs.addDestination(s4, { address: '10.0.1.2' });
      await ipvs.addDestination(s4, { address: '10.0.1.3', forward: 'tunnel', weight: 0 });
      await ipvs.addDestination(s4, { address: '10.0.1.4', forward: 'tunnel', tunnel: { type: 'gue', port: 6080, checksum: 'remcsum' } });
      await ipvs.addDestination(s4, { address: '10.0.1.5', forward: 'tunnel', tunnel: { type: 'gue', port: 6081, checksum: 'csum' } });
      await ipvs.addDestination(s4, { address: '10.0.1.6', forward: 'tunnel', tunnel: { type: 'gue', port: 6082 } });
      await ipvs.addDestination(s4, { address: '10.0.1.7', forward: 'tunnel', tunnel: { type: 'gre', checksum: 'csum' } });
      await ipvs.addDestination(s4, { address: '2001:db8::5', forward: 'tunnel', tunnel: { type: 'ipip' }, upperThreshold: 7 });
      await ipvs.addDestination(s6, { address: '2001:db8::10', port: 8080, forward: 'masq', weight: 2 ** 31 - 1 });
      await ipvs.addDestination(s6, { address: '10.0.1.8', forward: 'tunnel', tunnel: { type: 'gre' } });
      await ipvs.addDestination(fw, { address: '2001:db8::9' });
      expect(save()).toEqual(saveLines([
        '-A -t 10.0.0.1:80 -s wlc',
        '-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 5',
        '-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 1',
        '-a -t 10.0.0.1:80 -r 10.0.1.3:80 -i -w 0 --tun-type ipip',
        '-a -t 10.0.0.1:80 -r 10.0.1.4:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum',
        '-a -t 10.0.0.1:80 -r 10.0.1.5:80 -i -w 1 --tun-type gue --tun-port 6081 --tun-csum',
        '-a -t 10.0.0.1:80 -r 10.0.1.6:80 -i -w 1 --tun-type gue --tun-port 6082 --tun-nocsum',
        '-a -t 10.0.0.1:80 -r 10.0.1.7:80 -i -w 1 --tun-type gre --tun-csum',
        '-a -t 10.0.0.1:80 -r [2001:db8::5]:80 -i -w 1 --tun-type ipip',
        '-A -t [2001:db8::1]:80 -s wlc',
        '-a -t [2001:db8::1]:80 -r [2001:db8::10]:8080 -m -w 2147483647',
        '-a -t [2001:db8::1]:80 -r 10.0.1.8:80 -i -w 1 --tun-type gre --tun-nocsum',
        '-A -f 7 -6 -s wlc',
        '-a -f 7 -6 -r [2001:db8::9]:0 -g -w 1',
      ].join('\n')));
      // ipvsadm -S leaves thresholds out; its listing has them
      expect(thresholds(ns)).toMatchObject({
        'TCP 10.0.0.1:80 -> 10.0.1.1:8080': [100, 10],
        'TCP 10.0.0.1:80 -> 10.0.1.2:80': [0, 0],
        'TCP 10.0.0.1:80 -> [2001:db8::5]:80': [7, 0],
      });

      await ipvs.editDestination(s4, { address: '10.0.1.1', port: 8080, forward: 'route', weight: 9, upperThreshold: 4, lowerThreshold: 3 });
      await ipvs.deleteDestination(s4, { address: '10.0.1.2' });
      await ipvs.deleteDestination(s6, { address: '10.0.1.8' });
      const after = save();
      expect(after).toContain('-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -g -w 9');
      expect(after.filter((l) => l.includes('10.0.1.2:') || l.includes('10.0.1.8:'))).toEqual([]);
      expect(thresholds(ns)['TCP 10.0.0.1:80 -> 10.0.1.1:8080']).toEqual([4, 3]);
    });

    it('deletes', async () => {
      await ipvs.addService({ protocol: 'udp', address: '10.0.0.1', port: 53 });
      await ipvs.addService({ fwmark: 3 });
      await ipvs.deleteService({ fwmark: 3 });
      expect(save()).toEqual(['-A -u 10.0.0.1:53 -s wlc']);
      await ipvs.deleteService({ protocol: 'udp', address: '10.0.0.1', port: 53 });
      expect(save()).toEqual([]);
    });
  });

  describe('what ipvsadm writes, the API reads back exactly', () => {
    const restore = (lines: string[]): void => {
      ns.run('ipvsadm', ['-R'], { input: `${lines.join('\n')}\n` });
    };
    const services = async (): Promise<Array<Omit<Service, 'stats'>>> =>
      (await ipvs.listServices()).map(withoutStats).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    const destinations = async (key: Parameters<Ipvs['listDestinations']>[0]): Promise<Array<Omit<Destination, 'stats'>>> =>
      (await ipvs.listDestinations(key)).map(withoutStats).sort((a, b) => `${a.address}:${a.port}`.localeCompare(`${b.address}:${b.port}`));

    it('services: IPv4, IPv6, fwmark, persistence with netmask, one-packet, scheduler flags, pe', async () => {
      restore([
        '-A -t 10.0.0.1:80',
        '-A -u 10.0.0.1:53 -s sh -o -b sh-fallback,sh-port',
        '-A --sctp-service 10.0.0.2:9000 -s fo',
        '-A -t 10.0.0.3:0 -s rr -p 300 -M 255.255.254.0',
        '-A -t [2001:db8::1]:443 -s mh -b mh-fallback -p 60 -M 48',
        '-A -u [2001:db8::2]:5060 -s lblcr -p 20 --pe sip',
        '-A -f 7 -6 -s ovf',
        '-A -f 4294967295 -s sed -p 1',
      ]);
      const v4 = { family: 'inet', netmask: '255.255.255.255', onePacket: false, schedulerFlags: [] };
      const v6 = { family: 'inet6', netmask: 128, onePacket: false, schedulerFlags: [] };
      expect(await services()).toEqual([
        { protocol: 'tcp', address: '10.0.0.1', port: 80, ...v4, scheduler: 'wlc' },
        { protocol: 'udp', address: '10.0.0.1', port: 53, ...v4, scheduler: 'sh', onePacket: true, schedulerFlags: ['sh-fallback', 'sh-port'] },
        { protocol: 'sctp', address: '10.0.0.2', port: 9000, ...v4, scheduler: 'fo' },
        { protocol: 'tcp', address: '10.0.0.3', port: 0, ...v4, scheduler: 'rr', persistent: 300, netmask: '255.255.254.0' },
        { protocol: 'tcp', address: '2001:db8::1', port: 443, ...v6, scheduler: 'mh', schedulerFlags: ['mh-fallback'], persistent: 60, netmask: 48 },
        { protocol: 'udp', address: '2001:db8::2', port: 5060, ...v6, scheduler: 'lblcr', persistent: 20, persistenceEngine: 'sip' },
        { fwmark: 7, ...v6, scheduler: 'ovf' },
        { fwmark: 4294967295, ...v4, scheduler: 'sed', persistent: 1 },
      ].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))));
      // and each is found by its key
      expect((await ipvs.getService({ fwmark: 7, family: 'inet6' })).scheduler).toBe('ovf');
      expect((await ipvs.getService({ protocol: 'tcp', address: '2001:db8::1', port: 443 })).netmask).toBe(48);
    });

    it('ipvsadm -E edits are read back', async () => {
      restore(['-A -u 10.0.0.1:80 -s rr -p 30']);
      ns.run('ipvsadm', ['-E', '-u', '10.0.0.1:80', '-s', 'dh', '-o']);
      expect(await services()).toEqual([{
        protocol: 'udp', address: '10.0.0.1', port: 80, family: 'inet', scheduler: 'dh', netmask: '255.255.255.255', onePacket: true, schedulerFlags: [],
      }]);
    });

    it('destinations: every forwarding method, tunnel types and checksums, thresholds, mixed families', async () => {
      restore([
        '-A -t 10.0.0.1:80 -s rr',
        '-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 5 -x 100 -y 10',
        '-a -t 10.0.0.1:80 -r 10.0.1.2 -g -w 0',
        '-a -t 10.0.0.1:80 -r 10.0.1.3 -i',
        '-a -t 10.0.0.1:80 -r 10.0.1.4 -i --tun-type gue --tun-port 6080 --tun-remcsum',
        '-a -t 10.0.0.1:80 -r 10.0.1.5 -i --tun-type gue --tun-port 6081 --tun-csum -x 3',
        '-a -t 10.0.0.1:80 -r 10.0.1.6 -i --tun-type gue --tun-port 6082 --tun-nocsum',
        '-a -t 10.0.0.1:80 -r 10.0.1.7 -i --tun-type gre --tun-csum',
        '-a -t 10.0.0.1:80 -r 10.0.1.8 -i --tun-type gre',
        '-a -t 10.0.0.1:80 -r 2001:db8::5 -i --tun-type ipip -w 3',
        '-A -u [2001:db8::1]:53 -s wrr',
        '-a -u [2001:db8::1]:53 -r [2001:db8::10]:5353 -m -w 2147483647 -x 2147483647 -y 1',
        '-a -u [2001:db8::1]:53 -r 10.0.1.9 -i --tun-type gue --tun-port 1',
        '-A -f 7 -s wlc',
        '-a -f 7 -r 10.0.1.10 -g',
        '-A -f 8 -6 -s wlc',
        '-a -f 8 -6 -r 2001:db8::11 -i',
      ]);
      const route = { forward: 'route', weight: 1, upperThreshold: 0, lowerThreshold: 0, ...COUNTS };
      const tunnel = (t: object, extra: object = {}): object => ({ ...route, forward: 'tunnel', tunnel: t, ...extra });
      expect(await destinations({ protocol: 'tcp', address: '10.0.0.1', port: 80 })).toEqual([
        { address: '10.0.1.1', family: 'inet', port: 8080, ...route, forward: 'masq', weight: 5, upperThreshold: 100, lowerThreshold: 10 },
        { address: '10.0.1.2', family: 'inet', port: 80, ...route, weight: 0 },
        { address: '10.0.1.3', family: 'inet', port: 80, ...tunnel({ type: 'ipip', checksum: 'none' }) },
        { address: '10.0.1.4', family: 'inet', port: 80, ...tunnel({ type: 'gue', port: 6080, checksum: 'remcsum' }) },
        { address: '10.0.1.5', family: 'inet', port: 80, ...tunnel({ type: 'gue', port: 6081, checksum: 'csum' }, { upperThreshold: 3 }) },
        { address: '10.0.1.6', family: 'inet', port: 80, ...tunnel({ type: 'gue', port: 6082, checksum: 'none' }) },
        { address: '10.0.1.7', family: 'inet', port: 80, ...tunnel({ type: 'gre', checksum: 'csum' }) },
        { address: '10.0.1.8', family: 'inet', port: 80, ...tunnel({ type: 'gre', checksum: 'none' }) },
        { address: '2001:db8::5', family: 'inet6', port: 80, ...tunnel({ type: 'ipip', checksum: 'none' }, { weight: 3 }) },
      ]);
      expect(await destinations({ protocol: 'udp', address: '2001:db8::1', port: 53 })).toEqual([
        { address: '10.0.1.9', family: 'inet', port: 53, ...tunnel({ type: 'gue', port: 1, checksum: 'none' }) },
        { address: '2001:db8::10', family: 'inet6', port: 5353, ...route, forward: 'masq', weight: 2147483647, upperThreshold: 2147483647, lowerThreshold: 1 },
      ]);
      expect(await destinations({ fwmark: 7 })).toEqual([{ address: '10.0.1.10', family: 'inet', port: 0, ...route }]);
      expect(await destinations({ fwmark: 8, family: 'inet6' })).toEqual([
        { address: '2001:db8::11', family: 'inet6', port: 0, ...tunnel({ type: 'ipip', checksum: 'none' }) },
      ]);
    });

    it('what ipvsadm -S printed restores to the same table the API wrote', async () => {
      // full circle: API -> ipvsadm -S -> ipvsadm -C/-R -> API
      await ipvs.addService({ protocol: 'udp', address: '2001:db8::1', port: 53, scheduler: 'mh', schedulerFlags: ['mh-port'], persistent: 9, netmask: 120, onePacket: true });
      await ipvs.addDestination({ protocol: 'udp', address: '2001:db8::1', port: 53 }, { address: '10.0.1.1', forward: 'tunnel', tunnel: { type: 'gue', port: 7, checksum: 'csum' }, weight: 4 });
      await ipvs.addService({ fwmark: 5, persistent: 10, netmask: '255.255.255.252', persistenceEngine: 'sip' });
      await ipvs.addDestination({ fwmark: 5 }, { address: '10.0.1.2', forward: 'masq', port: 99 });
      const before = { services: await services(), d1: await destinations({ protocol: 'udp', address: '2001:db8::1', port: 53 }), d2: await destinations({ fwmark: 5 }) };
      const saved = ns.run('ipvsadm', ['-S', '-n']);
      ns.run('ipvsadm', ['-C']);
      expect(await services()).toEqual([]);
      ns.run('ipvsadm', ['-R'], { input: saved });
      const after = { services: await services(), d1: await destinations({ protocol: 'udp', address: '2001:db8::1', port: 53 }), d2: await destinations({ fwmark: 5 }) };
      expect(after).toEqual(before);
      expect(before.d1[0]!.tunnel).toEqual({ type: 'gue', port: 7, checksum: 'csum' });
    });
  });
});
