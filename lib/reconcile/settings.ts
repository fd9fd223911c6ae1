// Keys and settings of services and destinations in the one form both sides of a comparison
// share: the Service and Destination objects the kernel's records decode to. The desired state
// is decoded through the same functions from the wire records it would be sent as, so a default
// (scheduler 'wlc', netmask /32, port = service port, tunnel 'ipip') compares equal to what the
// kernel reports back for it.
import type {
  AddressServiceKey, Destination, DestinationKey, DestinationSpec, Service, ServiceKey, ServiceSpec, TunnelSpec,
} from '../types';
import type { FieldChange, PlanValue } from './types';

/** A service with its destinations, as listTable() returns them and as the desired state is normalised to. */
export type TableService = Service & { destinations: Destination[] };

/** 'tcp 10.0.0.1:80', 'udp [2001:db8::1]:53', 'fwmark 7', 'fwmark 7 inet6': unique and readable. */
export function serviceKeyText(service: Service | ServiceKey): string {
  if ('fwmark' in service && service.fwmark !== undefined) {
    return service.family === 'inet6' ? `fwmark ${service.fwmark} inet6` : `fwmark ${service.fwmark}`;
  }
  const s = service as { protocol: string; address: string; port: number };
  return `${s.protocol} ${hostPort(s.address, s.port)}`;
}

/** '10.1.0.5:80', '[2001:db8::5]:80'. */
export function destinationKeyText(destination: { address: string; port: number }): string {
  return hostPort(destination.address, destination.port);
}

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export function serviceKeyOf(service: Service): ServiceKey {
  if ('fwmark' in service && service.fwmark !== undefined) return { fwmark: service.fwmark, family: service.family };
  const s = service as AddressServiceKey;
  return { protocol: s.protocol, address: s.address, port: s.port };
}

/** The whole definition, every default written out, as addService and editService take it. */
export function serviceSpecOf(service: Service): ServiceSpec {
  // Object literals, not a spread of the key: a plan writes out one spec per desired service.
  const s = service as Service & Partial<AddressServiceKey> & { fwmark?: number };
  const spec = (s.fwmark !== undefined
    ? { fwmark: s.fwmark, family: s.family, scheduler: s.scheduler }
    : { protocol: s.protocol, address: s.address, port: s.port, scheduler: s.scheduler }) as ServiceSpec;
  if (s.persistent !== undefined) spec.persistent = s.persistent;
  spec.netmask = s.netmask;
  spec.onePacket = s.onePacket;
  spec.schedulerFlags = s.schedulerFlags.length === 0 ? [] : [...s.schedulerFlags];
  if (s.persistenceEngine !== undefined) spec.persistenceEngine = s.persistenceEngine as 'sip';
  return spec;
}

export function destinationKeyOf(destination: Destination): DestinationKey {
  return { address: destination.address, port: destination.port };
}

/** The whole definition, every default written out, as addDestination and editDestination take it. */
export function destinationSpecOf(destination: Destination): DestinationSpec {
  // 'bypass' is a connection flag the kernel may report; it cannot be set, and routes as 'route'.
  const forward = destination.forward === 'bypass' ? 'route' : destination.forward;
  const spec: DestinationSpec = {
    address: destination.address, port: destination.port, forward, weight: destination.weight,
    upperThreshold: destination.upperThreshold, lowerThreshold: destination.lowerThreshold,
  };
  if (forward === 'tunnel') spec.tunnel = tunnelOf(destination);
  return spec;
}

/** The kernel reports a tunnel type for every tunnel destination; one given without says IPIP. */
function tunnelOf(destination: Destination): TunnelSpec {
  const tunnel = destination.tunnel ?? { type: 'ipip', checksum: 'none' };
  return tunnel.type === 'gue'
    ? { type: 'gue', port: tunnel.port ?? 0, checksum: tunnel.checksum }
    : { type: tunnel.type, checksum: tunnel.checksum };
}

function tunnelValue(destination: Destination): PlanValue {
  if (destination.forward !== 'tunnel') return null;
  return tunnelOf(destination) as unknown as PlanValue;
}

function sameValue(a: PlanValue, b: PlanValue): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

function change(changes: FieldChange[], field: string, before: PlanValue, after: PlanValue): void {
  if (!sameValue(before, after)) changes.push({ field, before, after });
}

/** The settings editService would change to take `live` to `desired` (same key); empty when equal. */
export function serviceChanges(live: Service, desired: Service): FieldChange[] {
  const changes: FieldChange[] = [];
  change(changes, 'scheduler', live.scheduler, desired.scheduler);
  change(changes, 'persistent', live.persistent ?? null, desired.persistent ?? null);
  change(changes, 'netmask', live.netmask, desired.netmask);
  change(changes, 'onePacket', live.onePacket, desired.onePacket);
  // Names follow the scheduler (bit 1 is 'sh-fallback' under sh, 'flag-1' otherwise): a scheduler
  // change alone renames them, which is no change of flags.
  if (flagBits(live) !== flagBits(desired)) {
    changes.push({ field: 'schedulerFlags', before: [...live.schedulerFlags], after: [...desired.schedulerFlags] });
  }
  change(changes, 'persistenceEngine', live.persistenceEngine ?? null, desired.persistenceEngine ?? null);
  return changes;
}

const FLAG_BIT: Record<string, number> = {
  'sh-fallback': 1, 'mh-fallback': 1, 'flag-1': 1, 'sh-port': 2, 'mh-port': 2, 'flag-2': 2, 'flag-3': 4,
};

function flagBits(service: Service): number {
  let bits = 0;
  for (const flag of service.schedulerFlags) bits |= FLAG_BIT[flag] ?? 0;
  return bits;
}

/** The settings editDestination would change to take `live` to `desired` (same key); empty when equal. */
export function destinationChanges(live: Destination, desired: Destination): FieldChange[] {
  const changes: FieldChange[] = [];
  change(changes, 'forward', live.forward, desired.forward);
  change(changes, 'weight', live.weight, desired.weight);
  change(changes, 'upperThreshold', live.upperThreshold, desired.upperThreshold);
  change(changes, 'lowerThreshold', live.lowerThreshold, desired.lowerThreshold);
  change(changes, 'tunnel', tunnelValue(live), tunnelValue(desired));
  return changes;
}

/**
 * Whether two services have the same settings, field for field as listed (the key is the
 * caller's business). Stricter than an empty serviceChanges: flags are compared by name.
 */
export function sameServiceSettings(a: Service, b: Service): boolean {
  if (a.family !== b.family || a.scheduler !== b.scheduler || a.persistent !== b.persistent || a.netmask !== b.netmask ||
    a.onePacket !== b.onePacket || a.persistenceEngine !== b.persistenceEngine) return false;
  const x = a.schedulerFlags;
  const y = b.schedulerFlags;
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
