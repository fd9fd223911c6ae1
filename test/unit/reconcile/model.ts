// A model of the kernel's IPVS table for the reconcile unit tests: it stores what each
// operation sends and reports it back the way the kernel does (the same decoders the real
// listing uses; a tunnel destination without tunnel options reads back as IPIP, no checksum),
// and refuses what the kernel refuses (EEXIST, ESRCH, ENOENT).
import fc from 'fast-check';

import { checkDestinationKey, checkDestinationSpec, destinationFromWire } from '../../../lib/destination';
import type { PlanOperation } from '../../../lib/reconcile/types';
import { destinationKeyText, serviceKeyText, type TableService } from '../../../lib/reconcile/settings';
import { checkServiceDefinition, checkServiceKey, serviceFromWire } from '../../../lib/service';
import type { DestinationSpec, ServiceSpec } from '../../../lib/types';
import { decodeAddress, familyName } from '../../../lib/address';

export class ModelKernel {
  readonly services = new Map<string, TableService>();

  /** Applies one operation; returns 'ok' or the errno name the kernel would answer. */
  apply(op: PlanOperation): string {
    const key = serviceKeyText(serviceFromWire(checkServiceKey(op.service).wire));
    const service = this.services.get(key);
    switch (op.op) {
      case 'addService': {
        if (service) return 'EEXIST';
        const created = serviceFromWire(checkServiceDefinition(op.service).wire) as TableService;
        created.destinations = [];
        this.services.set(key, created);
        return 'ok';
      }
      case 'editService': {
        if (!service) return 'ESRCH';
        const edited = serviceFromWire(checkServiceDefinition(op.service).wire) as TableService;
        edited.destinations = service.destinations;
        this.services.set(key, edited);
        return 'ok';
      }
      case 'deleteService':
        if (!service) return 'ESRCH';
        this.services.delete(key);
        return 'ok';
      default:
    }
    if (!service) return 'ESRCH';
    const checked = checkServiceKey(op.service);
    if (op.op === 'deleteDestination') {
      const wire = checkDestinationKey(op.destination, checked);
      const destKey = destinationKeyText({ address: decodeAddress(wire.address!, familyName(wire.af)), port: wire.port! });
      const index = service.destinations.findIndex((d) => destinationKeyText(d) === destKey);
      if (index < 0) return 'ENOENT';
      service.destinations.splice(index, 1);
      return 'ok';
    }
    const destination = destinationFromWire(checkDestinationSpec(op.destination, checked), checked);
    if (destination.forward === 'tunnel' && !destination.tunnel) destination.tunnel = { type: 'ipip', checksum: 'none' };
    const index = service.destinations.findIndex((d) => destinationKeyText(d) === destinationKeyText(destination));
    if (op.op === 'addDestination') {
      if (index >= 0) return 'EEXIST';
      service.destinations.push(destination);
    } else {
      if (index < 0) return 'ENOENT';
      service.destinations[index] = destination;
    }
    return 'ok';
  }

  /** The table as listTable() would return it (copies). */
  table(): TableService[] {
    return [...this.services.values()].map((s) => ({ ...s, destinations: s.destinations.map((d) => ({ ...d })) }));
  }
}

// ---- arbitraries over a small universe, so starting tables and desired states overlap --------

const V4 = ['10.0.0.1', '10.0.0.2', '10.0.1.1'];
const V6 = ['2001:db8::1', '2001:db8:0:0::2'];
const REALS4 = ['10.1.0.1', '10.1.0.2', '10.1.0.3', '10.1.0.4'];
const REALS6 = ['2001:db8::11', '2001:db8::12', '2001:DB8::13'];

const keyArb: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.record({
    protocol: fc.constantFrom('tcp', 'udp', 'sctp'),
    address: fc.constantFrom(...V4, ...V6),
    port: fc.constantFrom(80, 443),
  }),
  fc.record({ fwmark: fc.constantFrom(1, 2), family: fc.constantFrom('inet', 'inet6', undefined) }, { requiredKeys: ['fwmark'] }),
);

function isV6(key: Record<string, unknown>): boolean {
  return key.fwmark !== undefined ? key.family === 'inet6' : String(key.address).includes(':');
}

const destinationArb = (v6: boolean, servicePort: number | undefined): fc.Arbitrary<DestinationSpec> =>
  fc.record({
    address: fc.constantFrom(...(v6 ? REALS6 : REALS4)),
    port: servicePort === undefined ? fc.constantFrom(undefined, 0, 8080) : fc.constantFrom(undefined, servicePort, 8080),
    forward: fc.constantFrom('masq', 'route', 'tunnel', undefined),
    weight: fc.constantFrom(undefined, 0, 1, 2, 5),
    upperThreshold: fc.constantFrom(undefined, 0, 100, 200),
    lowerThreshold: fc.constantFrom(undefined, 0, 50),
    tunnel: fc.constantFrom(undefined, { type: 'ipip' }, { type: 'gre', checksum: 'csum' }, { type: 'gue', port: 6080 }, { type: 'gue', port: 6081, checksum: 'remcsum' }),
  }, { requiredKeys: ['address'] }).map((d) => {
    const spec = { ...d } as DestinationSpec;
    if (spec.forward !== 'tunnel') delete spec.tunnel;
    if (!spec.upperThreshold) delete spec.lowerThreshold;
    for (const k of Object.keys(spec) as Array<keyof DestinationSpec>) if (spec[k] === undefined) delete spec[k];
    return spec;
  });

const SCHEDULER_FLAGS: Record<string, string[][]> = {
  sh: [[], ['sh-port'], ['sh-fallback', 'sh-port']], mh: [[], ['mh-fallback']], rr: [[], ['flag-3']], wlc: [[]], wrr: [[]],
};

export type DesiredItem = ServiceSpec & { destinations: DestinationSpec[] };

export const desiredServiceArb: fc.Arbitrary<DesiredItem> = keyArb.chain((key) => {
  const v6 = isV6(key);
  const port = key.fwmark !== undefined ? 0 : (key.port as number);
  return fc.record({
    scheduler: fc.constantFrom('rr', 'wrr', 'wlc', 'sh', 'mh', undefined),
    persistent: fc.constantFrom(undefined, 60, 300),
    netmask: fc.constantFrom(undefined, 'narrow'),
    onePacket: fc.constantFrom(undefined, false, true),
    flagChoice: fc.nat(2),
    destinations: fc.uniqueArray(destinationArb(v6, key.fwmark !== undefined ? undefined : port), {
      maxLength: 4, selector: (d) => `${d.address.toLowerCase()}|${d.port ?? port}`,
    }),
  }).map(({ scheduler, persistent, netmask, onePacket, flagChoice, destinations }) => {
    const spec: Record<string, unknown> = { ...key };
    if (spec.family === undefined) delete spec.family;
    if (scheduler) spec.scheduler = scheduler;
    if (persistent) spec.persistent = persistent;
    if (netmask) spec.netmask = v6 ? 64 : '255.255.255.0';
    if (onePacket !== undefined && (key.fwmark !== undefined || key.protocol === 'udp')) spec.onePacket = onePacket;
    const choices = SCHEDULER_FLAGS[scheduler ?? 'wlc']!;
    const flags = choices[flagChoice % choices.length]!;
    if (flags.length) spec.schedulerFlags = flags;
    return { ...(spec as unknown as ServiceSpec), destinations };
  });
});

export function serviceKeyOfItem(item: DesiredItem): string {
  return serviceKeyText(serviceFromWire(checkServiceKey(item).wire));
}

export const desiredStateArb: fc.Arbitrary<DesiredItem[]> = fc.uniqueArray(desiredServiceArb, {
  maxLength: 6, selector: serviceKeyOfItem,
});

/** A model kernel holding `items`, as if added one call at a time. */
export function modelWith(items: DesiredItem[]): ModelKernel {
  const model = new ModelKernel();
  for (const { destinations, ...service } of items) {
    const key = serviceKeyOfItem({ ...service, destinations });
    if (model.apply({ op: 'addService', service, reason: '' }) !== 'ok') throw new Error(`model: cannot add ${key}`);
    for (const destination of destinations) {
      const answer = model.apply({ op: 'addDestination', service, destination, reason: '' });
      if (answer !== 'ok') throw new Error(`model: cannot add ${destination.address} to ${key}: ${answer}`);
    }
  }
  return model;
}

/** Every setting of a service as the kernel reports it (not counters): for comparisons. */
export function serviceSettingsText(s: TableService): string {
  const { stats: _stats, destinations: _destinations, ...settings } = s;
  return JSON.stringify(settings);
}

/** Every setting of a destination (not counters or connection counts); a tunnel reads back as IPIP by default. */
export function destinationSettingsText(d: TableService['destinations'][number]): string {
  const tunnel = d.forward === 'tunnel' ? d.tunnel ?? { type: 'ipip', checksum: 'none' } : null;
  return JSON.stringify([d.address, d.port, d.forward, d.weight, d.upperThreshold, d.lowerThreshold, tunnel]);
}
