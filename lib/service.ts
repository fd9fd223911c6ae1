// Services: checking keys and specs and turning them into the addon's wire records, and
// turning the kernel's records back into Service objects.
import { decodeAddress, familyName, familyNumber, type AddressFamily } from './address';
import {
  PERSISTENCE_ENGINES, PROTOCOL_NUMBERS, SCHEDULERS, SCHEDULER_FLAG_BITS, SVC_F_ONEPACKET, SVC_F_PERSISTENT,
  SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3,
} from './constants';
import type { Protocol, Scheduler, SchedulerFlag, Service, Stats } from './types';
import {
  addressFamilyInto, describe, expectAddressInto, expectBoolean, expectInteger, expectObject, expectOneOf,
  expectPort, isIntegerIn, isOneOf, rejectUnknownKeys, type Fields,
} from './validate';
import { serviceKeyRecord, type RequestWriter } from './records';

/** What the addon sends and receives for a service (see native/ipvs_handle.cc). */
export interface WireService {
  af?: number;
  protocol?: number;
  /** 16 bytes (union nf_inet_addr). */
  address?: Uint8Array;
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
const FAMILIES = ['inet', 'inet6'] as const;
const SCHEDULER_FLAGS = Object.keys(SCHEDULER_FLAG_BITS) as SchedulerFlag[];
const KEY_FIELDS = ['protocol', 'address', 'port', 'fwmark', 'family'];
const OPTION_FIELDS = ['scheduler', 'persistent', 'netmask', 'onePacket', 'schedulerFlags', 'persistenceEngine'];
// Read-back fields a caller may pass back in unchanged (e.g. a listed Service as a key).
const READ_ONLY_FIELDS = ['stats'];
const SPEC_FIELDS = new Set([...KEY_FIELDS, ...OPTION_FIELDS, ...READ_ONLY_FIELDS]);

export interface CheckedKey {
  wire: WireService;
  /** The key as a service record (lib/records.ts), copied into each request for the service. */
  readonly record: Uint32Array;
  family: AddressFamily;
  /** The service port; 0 for fwmark services. */
  port: number;
  fwmark: boolean;
}

/** An optional `family` beside an address must name the address's own family. */
export function checkFamilyMatches(value: unknown, family: AddressFamily, field: string): void {
  if (value === undefined || value === family) return;
  const given = expectOneOf(value, `${field}.family`, FAMILIES);
  throw new RangeError(`${field}.family is '${given}' but ${field}.address is an ${family === 'inet' ? 'IPv4' : 'IPv6'} address`);
}

/**
 * Checks a service key. Extra fields (as on a listed Service) are ignored.
 * @throws {TypeError} for a non-object, a missing or mixed key, or a field of the wrong type.
 * @throws {RangeError} for an unknown protocol or family, a bad address, port or fwmark.
 */
export function checkServiceKey(value: unknown, field = 'service'): CheckedKey {
  const key = expectObject(value, field);
  if (key.fwmark !== undefined) {
    for (const other of ['protocol', 'address', 'port'] as const) {
      if (key[other] !== undefined) {
        throw new TypeError(`${field}: give either fwmark (with family) or protocol, address and port, not both (${other} is set)`);
      }
    }
    const fwmark = expectInteger(key.fwmark, `${field}.fwmark`, 1, 0xffffffff);
    const family = key.family === undefined ? 'inet' : expectOneOf(key.family, `${field}.family`, FAMILIES);
    const af = familyNumber(family);
    return new CheckedServiceKey({ af, fwmark }, family, 0, true);
  }
  const protocol = key.protocol;
  if (protocol === undefined) {
    throw new TypeError(`${field} must have protocol, address and port, or fwmark; got ${describe(value)}`);
  }
  const protocolNumber = PROTOCOL_NUMBERS[isOneOf(protocol, PROTOCOLS) ? protocol : expectOneOf(protocol, `${field}.protocol`, PROTOCOLS)];
  const address = new Uint8Array(16);
  const family = addressFamilyInto(key.address, address, 0) ?? expectAddressInto(key.address, `${field}.address`, address, 0);
  checkFamilyMatches(key.family, family, field);
  const port = isIntegerIn(key.port, 0, 65535) ? key.port : expectPort(key.port, `${field}.port`);
  const af = familyNumber(family);
  return new CheckedServiceKey({ af, protocol: protocolNumber, address, port }, family, port, false);
}

/**
 * A CheckedKey whose record is made when first read: checking a desired state checks a key per
 * service and sends none of them, and a typed array per key cost more than the check.
 */
class CheckedServiceKey implements CheckedKey {
  #record: Uint32Array | undefined;
  constructor(readonly wire: WireService, readonly family: AddressFamily, readonly port: number, readonly fwmark: boolean) {}

  get record(): Uint32Array {
    const w = this.wire;
    return (this.#record ??= serviceKeyRecord(w.af!, w.protocol ?? 0, w.address, w.port ?? 0, w.fwmark ?? 0));
  }
}

const maskBytes = new Uint8Array(16);

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
  const maskFamily = expectAddressInto(value, field, maskBytes, 0);
  if (maskFamily !== 'inet') throw new RangeError(`${field} must be an IPv4 mask, got ${describe(value)}`);
  const mask = ((maskBytes[0]! << 24) | (maskBytes[1]! << 16) | (maskBytes[2]! << 8) | maskBytes[3]!) >>> 0;
  const inverted = ~mask >>> 0;
  if (mask === 0 || (inverted & (inverted + 1)) !== 0) {
    throw new RangeError(`${field} must be a contiguous, non-zero IPv4 mask, got ${describe(value)}`);
  }
  return mask;
}

interface ServiceOptionFields {
  scheduler: Scheduler;
  flags: number;
  timeout: number;
  netmask: number;
  peName: string | undefined;
}

/** The options of a full service definition, checked, with their defaults filled in. */
function checkServiceOptions(value: unknown, key: CheckedKey, field: string, besides?: string): ServiceOptionFields {
  const spec = value as Fields;  // checkServiceKey checked it is an object
  rejectUnknownKeys(spec, SPEC_FIELDS, field, besides);

  const scheduler = spec.scheduler === undefined
    ? 'wlc'
    : isOneOf(spec.scheduler, SCHEDULERS) ? spec.scheduler : expectOneOf(spec.scheduler, `${field}.scheduler`, SCHEDULERS);
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
  if (spec.schedulerFlags !== undefined) flags |= checkSchedulerFlags(spec.schedulerFlags, scheduler, `${field}.schedulerFlags`);
  const netmask = spec.netmask === undefined
    ? (key.family === 'inet' ? 0xffffffff : 128)
    : checkNetmask(spec.netmask, key.family, `${field}.netmask`);
  const peName = spec.persistenceEngine === undefined
    ? undefined
    : expectOneOf(spec.persistenceEngine, `${field}.persistenceEngine`, PERSISTENCE_ENGINES);
  return { scheduler, flags, timeout, netmask, peName };
}

/**
 * Checks a full service definition (add and edit) and builds its wire record; also returns the
 * checked key, so a batch can reuse it for the service's destinations. `besides` is a key of
 * `value` that is not an option and that the caller checks (a desired service's destinations).
 * @throws {TypeError} and {RangeError} as checkServiceSpec.
 */
export function checkServiceDefinition(value: unknown, field = 'service', besides?: string): { key: CheckedKey; wire: WireService } {
  const key = checkServiceKey(value, field);
  const { scheduler, flags, timeout, netmask, peName } = checkServiceOptions(value, key, field, besides);
  const { af, protocol, address, port, fwmark } = key.wire;
  const wire: WireService = { af, protocol, address, port, fwmark, scheduler, flags, flagsMask: 0xffffffff, timeout, netmask, peName };
  return { key, wire };
}

/**
 * Checks a full service definition (add and edit) and writes it as the service of the request
 * record at `base` of `out`; returns the checked key.
 * @throws {TypeError} and {RangeError} as checkServiceSpec, before anything is written.
 */
export function packServiceDefinition(value: unknown, out: RequestWriter, base: number, field = 'service'): CheckedKey {
  const key = checkServiceKey(value, field);
  const { scheduler, flags, timeout, netmask, peName } = checkServiceOptions(value, key, field);
  out.setService(base, key.record);
  const o = out.offsets;
  const b = o.svcBit;
  const w = out.words;
  w[base + o.svcScheduler] = out.string(scheduler);
  w[base + o.svcFlags] = flags;
  w[base + o.svcFlagsMask] = 0xffffffff;
  w[base + o.svcTimeout] = timeout;
  w[base + o.svcNetmask] = netmask;
  let present = b.scheduler | b.flags | b.flagsMask | b.timeout | b.netmask;
  if (peName !== undefined) {
    w[base + o.svcPeName] = out.string(peName);
    present |= b.peName;
  }
  w[base + o.svc] = w[base + o.svc]! | present;
  return key;
}

function checkSchedulerFlags(value: unknown, scheduler: Scheduler, field: string): number {
  if (!Array.isArray(value)) throw new TypeError(`${field} must be an array, got ${describe(value)}`);
  let flags = 0;
  for (let i = 0; i < value.length; i++) {
    const flag = expectOneOf(value[i], `${field}[${i}]`, SCHEDULER_FLAGS);
    const prefix = flag.slice(0, 3);
    if ((prefix === 'sh-' || prefix === 'mh-') && scheduler !== prefix.slice(0, 2)) {
      throw new RangeError(`${field}[${i}] '${flag}' applies to the ${prefix.slice(0, 2)} scheduler, not '${scheduler}'`);
    }
    flags |= SCHEDULER_FLAG_BITS[flag];
  }
  return flags;
}

/**
 * Checks a full service definition (add and edit) and builds the wire record.
 * @throws {TypeError} for a wrong type or an unknown option (misspelt options are errors).
 * @throws {RangeError} for a value out of range: scheduler, persistence, port 0 without
 *   persistence, onePacket on TCP/SCTP, scheduler flags of another scheduler, netmask.
 */
export function checkServiceSpec(value: unknown, field = 'service'): WireService {
  return checkServiceDefinition(value, field).wire;
}

const protocolNames = new Map<number, Protocol>(Object.entries(PROTOCOL_NUMBERS).map(([name, n]) => [n, name as Protocol]));

function protocolName(number: number | undefined): Protocol {
  return protocolNames.get(number as number) ?? (`ip-proto-${number}` as Protocol);
}

function schedulerFlagNames(flags: number, scheduler: string): SchedulerFlag[] {
  const names: SchedulerFlag[] = [];
  if ((flags & (SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3)) === 0) return names;
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

// Nearly every IPv4 service of a table has the same netmask (/32): its text is made once.
let lastMask = 0xffffffff;
let lastMaskText = '255.255.255.255';

function ipv4MaskText(mask: number): string {
  if (mask !== lastMask) {
    lastMask = mask;
    lastMaskText = `${mask >>> 24}.${(mask >>> 16) & 0xff}.${(mask >>> 8) & 0xff}.${mask & 0xff}`;
  }
  return lastMaskText;
}

/** Builds a Service from the addon's record of it. Never throws. */
export function serviceFromWire(wire: WireService): Service {
  const family = familyName(wire.af);
  const flags = wire.flags ?? 0;
  const scheduler = (wire.scheduler ?? '') as Scheduler;  // as the kernel names it; a custom module may add others
  const mask = wire.netmask ?? 0;
  const netmask = family === 'inet' ? ipv4MaskText(mask) : (wire.netmask ?? 128);
  const persistent = flags & SVC_F_PERSISTENT ? wire.timeout ?? 0 : undefined;
  const onePacket = (flags & SVC_F_ONEPACKET) !== 0;
  const schedulerFlags = schedulerFlagNames(flags, scheduler);
  const stats = wire.stats ?? ZERO_STATS;
  // Optional fields are added, not set to undefined, so a Service compares equal to a literal.
  const service = wire.fwmark
    ? { fwmark: wire.fwmark, family, scheduler } as Service
    : {
      protocol: protocolName(wire.protocol),
      address: wire.address ? decodeAddress(wire.address, family) : family === 'inet' ? '0.0.0.0' : '::',
      port: wire.port ?? 0,
      family,
      scheduler,
    } as Service;
  if (persistent !== undefined) service.persistent = persistent;
  service.netmask = netmask;
  service.onePacket = onePacket;
  service.schedulerFlags = schedulerFlags;
  if (wire.peName) service.persistenceEngine = wire.peName;
  service.stats = stats;
  return service;
}
