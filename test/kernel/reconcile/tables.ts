// Random IPVS tables for the reconcile kernel tests, as data (to plan with) and as `ipvsadm -R`
// rules (to build starting tables and the oracle's reference table with ipvsadm itself).
// Only what ipvsadm can express is generated: direct-routing and tunnel destinations of address
// services use the service's port (ipvsadm forces it), weights stay within ipvsadm's 0–65535.
import fc from 'fast-check';

import { checkServiceKey, serviceFromWire } from '../../../lib/service';
import { checkDestinationKey } from '../../../lib/destination';
import { decodeAddress, familyName } from '../../../lib/address';
import { destinationKeyText, serviceKeyText } from '../../../lib/reconcile/settings';
import type { DesiredService, DestinationSpec, ReconcileScope } from '../../../lib/index';
import { HAS_TWOS } from '../api-helpers';

const VIPS = ['10.0.0.1', '10.0.0.2', '10.0.1.1', '2001:db8::1'];
const REALS4 = ['10.1.0.1', '10.1.0.2', '10.1.0.3', '10.1.0.4', '10.1.0.5'];
const REALS6 = ['2001:db8::11', '2001:db8::12', '2001:db8::13', '2001:db8::14'];
const SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'sh', 'mh', 'dh', 'sed', 'nq', ...(HAS_TWOS ? ['twos'] : [])];
const FLAGS: Record<string, string[][]> = { sh: [['sh-port'], ['sh-fallback', 'sh-port']], mh: [['mh-fallback'], ['mh-port']] };

interface KeyShape { protocol?: 'tcp' | 'udp' | 'sctp'; address?: string; port?: number; fwmark?: number; family?: 'inet' | 'inet6' }

const keyArb: fc.Arbitrary<KeyShape> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ protocol: fc.constantFrom('tcp', 'udp', 'sctp'), address: fc.constantFrom(...VIPS), port: fc.constantFrom(80, 443) }) },
  { weight: 1, arbitrary: fc.record({ fwmark: fc.constantFrom(1, 2), family: fc.constantFrom('inet', 'inet6') }) },
);

function destinationArb(key: KeyShape, v6: boolean): fc.Arbitrary<DestinationSpec> {
  const fwmark = key.fwmark !== undefined;
  return fc.record({
    otherFamily: fc.integer({ min: 0, max: 9 }),
    address4: fc.constantFrom(...REALS4),
    address6: fc.constantFrom(...REALS6),
    forward: fc.constantFrom('masq', 'route', 'tunnel'),
    otherPort: fc.boolean(),
    omitPort: fc.boolean(),
    weight: fc.constantFrom(0, 1, 2, 5, 100),
    upper: fc.constantFrom(0, 0, 100, 200),
    lower: fc.constantFrom(0, 50),
    tunnel: fc.constantFrom(undefined, { type: 'ipip' }, { type: 'gre' }, { type: 'gre', checksum: 'csum' },
      { type: 'gue', port: 6080 }, { type: 'gue', port: 6081, checksum: 'remcsum' }, { type: 'gue', port: 6080, checksum: 'csum' }),
  }).map((d) => {
    const mixed = d.otherFamily === 0;  // another family needs forward 'tunnel'
    const forward = mixed ? 'tunnel' : d.forward;
    const spec: DestinationSpec = { address: (v6 !== mixed) ? d.address6 : d.address4, forward, weight: d.weight };
    // ipvsadm forces the service port for -g and -i on address services.
    if (forward === 'masq' || fwmark) {
      if (d.otherPort) spec.port = 8080;
      else if (!d.omitPort) spec.port = key.port ?? 0;
    } else if (!d.omitPort) {
      spec.port = key.port;
    }
    if (d.upper) {
      spec.upperThreshold = d.upper;
      if (d.lower) spec.lowerThreshold = d.lower;
    }
    if (forward === 'tunnel' && d.tunnel) spec.tunnel = d.tunnel as DestinationSpec['tunnel'];
    return spec;
  });
}

export const serviceArb: fc.Arbitrary<DesiredService> = keyArb.chain((key) => {
  const v6 = key.fwmark !== undefined ? key.family === 'inet6' : key.address!.includes(':');
  const port = key.port ?? 0;
  return fc.record({
    scheduler: fc.constantFrom(undefined, ...SCHEDULERS),
    persistent: fc.constantFrom(undefined, undefined, 60, 300),
    narrow: fc.boolean(),
    onePacket: fc.boolean(),
    flags: fc.nat(3),
    destinations: fc.uniqueArray(destinationArb(key, v6), { maxLength: 4, selector: (d) => `${d.address}|${d.port ?? port}` }),
  }).map(({ scheduler, persistent, narrow, onePacket, flags, destinations }) => {
    const spec = { ...key } as Record<string, unknown>;
    if (scheduler) spec.scheduler = scheduler;
    if (persistent) {
      spec.persistent = persistent;
      if (narrow) spec.netmask = v6 ? 64 : '255.255.255.0';
    }
    if (onePacket && (key.fwmark !== undefined || key.protocol === 'udp')) spec.onePacket = true;
    const choices = FLAGS[scheduler ?? ''];
    if (choices && flags < choices.length) spec.schedulerFlags = choices[flags];
    return { ...spec, destinations } as unknown as DesiredService;
  });
});

export function keyOf(service: DesiredService): string {
  return serviceKeyText(serviceFromWire(checkServiceKey(service).wire));
}

export function destinationKeyOf(service: DesiredService, destination: DestinationSpec): string {
  const wire = checkDestinationKey(destination, checkServiceKey(service));
  return destinationKeyText({ address: decodeAddress(wire.address!, familyName(wire.af)), port: wire.port! });
}

export const tableArb: fc.Arbitrary<DesiredService[]> = fc.uniqueArray(serviceArb, { maxLength: 6, selector: keyOf });

export const scopeArb: fc.Arbitrary<ReconcileScope> = fc.constantFrom<ReconcileScope>(
  'listed', 'listed', 'all', { addresses: ['10.0.0.0/24'] }, { fwmarks: [[1, 1]] }, { protocols: ['udp', 'sctp'] },
  { addresses: ['2001:db8::/64'], ports: [443], fwmarks: [2] },
);

const hostPort = (address: string, port: number): string => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`);

function serviceArgs(service: DesiredService): string {
  const s = service as unknown as KeyShape;
  if (s.fwmark !== undefined) return `-f ${s.fwmark}${s.family === 'inet6' ? ' -6' : ''}`;
  const flag = s.protocol === 'tcp' ? '-t' : s.protocol === 'udp' ? '-u' : '--sctp-service';
  return `${flag} ${hostPort(s.address!, s.port!)}`;
}

/** The table as `ipvsadm -R` input, every value written out. */
export function ipvsadmRules(services: DesiredService[]): string {
  const lines: string[] = [];
  for (const service of services) {
    const svc = serviceArgs(service);
    let line = `-A ${svc} -s ${service.scheduler ?? 'wlc'}`;
    if (service.persistent !== undefined) line += ` -p ${service.persistent}`;
    if (service.netmask !== undefined) line += ` -M ${service.netmask}`;
    if (service.onePacket) line += ' -o';
    if (service.schedulerFlags?.length) line += ` -b ${service.schedulerFlags.join(',')}`;
    lines.push(line);
    const servicePort = (service as unknown as KeyShape).port ?? 0;
    for (const d of service.destinations) {
      const forward = d.forward ?? 'route';
      let dest = `-a ${svc} -r ${hostPort(d.address, d.port ?? servicePort)} ${forward === 'masq' ? '-m' : forward === 'tunnel' ? '-i' : '-g'} -w ${d.weight ?? 1}`;
      if (d.upperThreshold) dest += ` -x ${d.upperThreshold}`;
      if (d.lowerThreshold) dest += ` -y ${d.lowerThreshold}`;
      if (forward === 'tunnel' && d.tunnel) {
        dest += ` --tun-type ${d.tunnel.type}`;
        if (d.tunnel.port !== undefined) dest += ` --tun-port ${d.tunnel.port}`;
        if (d.tunnel.checksum === 'csum') dest += ' --tun-csum';
        if (d.tunnel.checksum === 'remcsum') dest += ' --tun-remcsum';
      }
      lines.push(dest);
    }
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

// ---- slots: many independent cases in one namespace ------------------------------------------
// Each ipvsadm run costs a fork and exec, which under emulation is most of a test's time; so
// a property test puts many cases into one namespace, case n in slot n: its VIPs move to
// 10.<n+1>.x.y and 2001:db8:<n+1>::, its fwmarks to 10n+1..10n+9. A case's scope is confined
// to its slot, so the cases cannot own each other's services.

function slotAddress(address: string, slot: number): string {
  // VIPs are 10.0.x.y and 2001:db8::x (see VIPS).
  if (address.includes(':')) return address.replace(/^2001:db8:/, `2001:db8:${(slot + 1).toString(16)}:`);
  const [, , c, d] = address.split('.');
  return `10.${slot + 1}.${c}.${d}`;
}

/** The services of a case moved into `slot`. */
export function inSlot(services: DesiredService[], slot: number): DesiredService[] {
  return services.map((service) => {
    const s = service as unknown as KeyShape;
    if (s.fwmark !== undefined) return { ...service, fwmark: slot * 10 + s.fwmark } as DesiredService;
    return { ...service, address: slotAddress(s.address!, slot) } as DesiredService;
  });
}

/** The slot's whole key space, as a filter. */
export function slotFilter(slot: number): { addresses: string[]; fwmarks: Array<[number, number]> } {
  return { addresses: [`10.${slot + 1}.0.0/16`, `2001:db8:${(slot + 1).toString(16)}::/48`], fwmarks: [[slot * 10 + 1, slot * 10 + 9]] };
}

/** A case's scope moved into `slot`: 'all' becomes the slot's whole key space; filters are confined to it. */
export function scopeInSlot(scope: ReconcileScope, slot: number): ReconcileScope {
  if (scope === 'listed') return scope;
  const space = slotFilter(slot);
  if (scope === 'all') return space;
  const moved: Record<string, unknown> = { ...scope };
  // Address criteria always carry the slot's addresses, so they cannot match another slot.
  if (scope.addresses || scope.protocols || scope.ports) {
    moved.addresses = scope.addresses
      ? scope.addresses.map((cidr) => {
        const [address, bits] = cidr.split('/');
        return `${slotAddress(address!, slot)}/${bits}`;
      })
      : space.addresses;
  }
  if (scope.fwmarks) {
    moved.fwmarks = scope.fwmarks.map((r) => (typeof r === 'number' ? slot * 10 + r : [slot * 10 + r[0], slot * 10 + r[1]]));
  }
  return moved as ReconcileScope;
}
