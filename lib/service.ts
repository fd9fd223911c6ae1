// Services: checking keys and specs and turning them into the addon's wire records, and
// turning the kernel's records back into Service objects.
import { decodeAddress, encodeAddress, familyName, familyNumber, type AddressFamily } from './address';
import {
  PERSISTENCE_ENGINES, PROTOCOL_NUMBERS, SCHEDULERS, SCHEDULER_FLAG_BITS, SVC_F_ONEPACKET, SVC_F_PERSISTENT,
  SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3,
} from './constants';
import type { Protocol, Scheduler, SchedulerFlag, Service, ServiceKey, ServiceSpec, Stats } from './types';
import {
  describe, expectAddress, expectBoolean, expectInteger, expectObject, expectOneOf, expectPort,
  rejectUnknownKeys, type Fields,
} from './validate';

/** What the addon sends and receives for a service (see native/ipvs_handle.cc). */
export interface WireService {
  af?: number;
  protocol?: number;
  address?: Buffer;
  port?: number;
  fwmark?: number;
  scheduler?: string;
  flags?: number;
  flagsMask?: number;
  timeout?: number;
  netmask?: number;
  peName?: string;
  stats?: Stats;
}

/** ipvsadm's bounds for a persistence timeout: one second to 31 days. */
export const MAX_PERSISTENCE_SECONDS = 31 * 86400;
const PROTOCOLS = Object.keys(PROTOCOL_NUMBERS) as Protocol[];
const KEY_FIELDS = ['protocol', 'address', 'port', 'fwmark', 'family'];
const OPTION_FIELDS = ['scheduler', 'persistent', 'netmask', 'onePacket', 'schedulerFlags', 'persistenceEngine'];
// Read-back fields a caller may pass back in unchanged (e.g. a listed Service as a key).
const READ_ONLY_FIELDS = ['stats'];
const SPEC_FIELDS = new Set([...KEY_FIELDS, ...OPTION_FIELDS, ...READ_ONLY_FIELDS]);

export interface CheckedKey {
  wire: WireService;
  family: AddressFamily;
  /** The service port; 0 for fwmark services. */
  port: number;
  fwmark: boolean;
}

/** An optional `family` beside an address must name the address's own family. */
export function checkFamilyMatches(value: unknown, family: AddressFamily, field: string): void {
  if (value === undefined) return;
  const given = expectOneOf(value, `${field}.family`, ['inet', 'inet6'] as const);
  if (given !== family) {
    throw new RangeError(`${field}.family is '${given}' but ${field}.address is an ${family === 'inet' ? 'IPv4' : 'IPv6'} address`);
  }
}

/** Checks a service key. Extra fields (as on a listed Service) are ignored. */
export function checkServiceKey(value: unknown, field = 'service'): CheckedKey {
  const key = expectObject(value, field);
  if (key.fwmark !== undefined) {
    for (const other of ['protocol', 'address', 'port'] as const) {
      if (key[other] !== undefined) {
        throw new TypeError(`${field}: give either fwmark (with family) or protocol, address and port, not both (${other} is set)`);
      }
    }
    const fwmark = expectInteger(key.fwmark, `${field}.fwmark`, 1, 0xffffffff);
    const family = key.family === undefined ? 'inet' : expectOneOf(key.family, `${field}.family`, ['inet', 'inet6'] as const);
    return { wire: { af: familyNumber(family), fwmark }, family, port: 0, fwmark: true };
  }
  if (key.protocol === undefined) {
    throw new TypeError(`${field} must have protocol, address and port, or fwmark; got ${describe(value)}`);
  }
  const protocol = expectOneOf(key.protocol, `${field}.protocol`, PROTOCOLS);
  const { address, family } = expectAddress(key.address, `${field}.address`);
  checkFamilyMatches(key.family, family, field);
  const port = expectPort(key.port, `${field}.port`);
  return {
    wire: { af: familyNumber(family), protocol: PROTOCOL_NUMBERS[protocol], address: encodeAddress(address), port },
    family,
    port,
    fwmark: false,
  };
}

function checkNetmask(value: unknown, family: AddressFamily, field: string): number {
  if (family === 'inet6') {
    if (typeof value !== 'number') {
      throw new TypeError(`${field} must be a prefix length (1–128) for an IPv6 service, got ${describe(value)}`);
    }
    return expectInteger(value, field, 1, 128);
  }
  if (typeof value !== 'string') {
    throw new TypeError(`${field} must be a dotted IPv4 mask such as '255.255.255.0' for an IPv4 service, got ${describe(value)}`);
  }
  const { family: maskFamily } = expectAddress(value, field);
  if (maskFamily !== 'inet') throw new RangeError(`${field} must be an IPv4 mask, got ${describe(value)}`);
  const mask = encodeAddress(value).readUInt32BE(0);
  const inverted = ~mask >>> 0;
  if (mask === 0 || (inverted & (inverted + 1)) !== 0) {
    throw new RangeError(`${field} must be a contiguous, non-zero IPv4 mask, got ${describe(value)}`);
  }
  return mask;
}

/** Checks a full service definition (add and edit) and builds the wire record. */
export function checkServiceSpec(value: unknown, field = 'service'): WireService {
  const key = checkServiceKey(value, field);
  const spec = expectObject(value, field) as Fields;
  rejectUnknownKeys(spec, SPEC_FIELDS, field);

  const scheduler = spec.scheduler === undefined ? 'wlc' : expectOneOf(spec.scheduler, `${field}.scheduler`, SCHEDULERS);
  let flags = 0;
  let timeout = 0;
  if (spec.persistent !== undefined) {
    timeout = expectInteger(spec.persistent, `${field}.persistent`, 1, MAX_PERSISTENCE_SECONDS);
    flags |= SVC_F_PERSISTENT;
  }
  if (!key.fwmark && key.port === 0 && spec.persistent === undefined) {
    throw new RangeError(`${field}.port must be 1–65535 for a service that is not persistent (port 0 means every port and needs persistent)`);
  }
  if (spec.onePacket !== undefined && expectBoolean(spec.onePacket, `${field}.onePacket`)) {
    // The kernel applies it to UDP packets only; ipvsadm refuses it for TCP and SCTP services.
    if (!key.fwmark && key.wire.protocol !== PROTOCOL_NUMBERS.udp) {
      throw new RangeError(`${field}.onePacket applies only to UDP and fwmark services, not ${String(spec.protocol)}`);
    }
    flags |= SVC_F_ONEPACKET;
  }
  if (spec.schedulerFlags !== undefined) {
    if (!Array.isArray(spec.schedulerFlags)) {
      throw new TypeError(`${field}.schedulerFlags must be an array, got ${describe(spec.schedulerFlags)}`);
    }
    spec.schedulerFlags.forEach((name: unknown, i: number) => {
      const flag = expectOneOf(name, `${field}.schedulerFlags[${i}]`, Object.keys(SCHEDULER_FLAG_BITS) as SchedulerFlag[]);
      const prefix = flag.slice(0, 3);
      if ((prefix === 'sh-' || prefix === 'mh-') && scheduler !== prefix.slice(0, 2)) {
        throw new RangeError(`${field}.schedulerFlags[${i}] '${flag}' applies to the ${prefix.slice(0, 2)} scheduler, not '${scheduler}'`);
      }
      flags |= SCHEDULER_FLAG_BITS[flag];
    });
  }
  const netmask = spec.netmask === undefined
    ? (key.family === 'inet' ? 0xffffffff : 128)
    : checkNetmask(spec.netmask, key.family, `${field}.netmask`);
  const wire: WireService = { ...key.wire, scheduler, flags, flagsMask: 0xffffffff, timeout, netmask };
  if (spec.persistenceEngine !== undefined) {
    wire.peName = expectOneOf(spec.persistenceEngine, `${field}.persistenceEngine`, PERSISTENCE_ENGINES);
  }
  return wire;
}

function protocolName(number: number | undefined): Protocol {
  const entry = Object.entries(PROTOCOL_NUMBERS).find(([, n]) => n === number);
  return (entry?.[0] ?? `ip-proto-${number}`) as Protocol;
}

function schedulerFlagNames(flags: number, scheduler: string): SchedulerFlag[] {
  const names: SchedulerFlag[] = [];
  const named = scheduler === 'sh' || scheduler === 'mh';
  if (flags & SVC_F_SCHED1) names.push(named ? (`${scheduler}-fallback` as SchedulerFlag) : 'flag-1');
  if (flags & SVC_F_SCHED2) names.push(named ? (`${scheduler}-port` as SchedulerFlag) : 'flag-2');
  if (flags & SVC_F_SCHED3) names.push('flag-3');
  return names;
}

export const ZERO_STATS: Stats = Object.freeze({
  connections: 0n, packetsIn: 0n, packetsOut: 0n, bytesIn: 0n, bytesOut: 0n,
  connectionRate: 0n, packetRateIn: 0n, packetRateOut: 0n, byteRateIn: 0n, byteRateOut: 0n,
});

export function serviceFromWire(wire: WireService): Service {
  const family = familyName(wire.af);
  const flags = wire.flags ?? 0;
  const scheduler = (wire.scheduler ?? '') as Scheduler;  // as the kernel names it; a custom module may add others
  const common = {
    family,
    scheduler,
    ...(flags & SVC_F_PERSISTENT ? { persistent: wire.timeout ?? 0 } : {}),
    netmask: family === 'inet'
      ? decodeAddress(Buffer.from([(wire.netmask ?? 0) >>> 24, (wire.netmask ?? 0) >>> 16 & 0xff, (wire.netmask ?? 0) >>> 8 & 0xff, (wire.netmask ?? 0) & 0xff]), 'inet')
      : (wire.netmask ?? 128),
    onePacket: (flags & SVC_F_ONEPACKET) !== 0,
    schedulerFlags: schedulerFlagNames(flags, scheduler),
    ...(wire.peName ? { persistenceEngine: wire.peName } : {}),
    stats: wire.stats ?? ZERO_STATS,
  };
  if (wire.fwmark) return { fwmark: wire.fwmark, ...common };
  return {
    protocol: protocolName(wire.protocol),
    address: decodeAddress(wire.address ?? Buffer.alloc(16), family),
    port: wire.port ?? 0,
    ...common,
  };
}

