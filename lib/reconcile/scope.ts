// Ownership: which services of the namespace a desired state may change or delete.
import { parseAddress, type AddressFamily } from '../address';
import type { Protocol, Service } from '../types';
import { describe, expectInteger, expectObject, expectOneOf, expectString, rejectUnknownKeys } from '../validate';
import type { NumberRange, ReconcileScope, ScopeFilter } from './types';

export interface CheckedScope {
  /** As given, checked: 'listed', 'all' or a copy of the filter. */
  value: ReconcileScope;
  /**
   * Whether `service` is owned. For 'listed', `desiredKeys` decides; otherwise it is not used.
   */
  owns(service: Service, key: string, desiredKeys: { has(key: string): boolean }): boolean;
}

const FILTER_FIELDS = new Set(['addresses', 'protocols', 'ports', 'fwmarks']);
const PROTOCOLS: Protocol[] = ['tcp', 'udp', 'sctp'];

interface Cidr { family: AddressFamily; bytes: Uint8Array; bits: number }

function checkCidr(value: unknown, field: string): Cidr {
  const text = expectString(value, field);
  const slash = text.indexOf('/');
  const bytes = new Uint8Array(16);
  const family = parseAddress(slash < 0 ? text : text.slice(0, slash), bytes);
  if (!family) throw new RangeError(`${field} must be an IPv4 or IPv6 address or CIDR such as '10.0.0.0/8', got ${describe(text)}`);
  const max = family === 'inet' ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const suffix = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(suffix) || Number(suffix) > max) {
      throw new RangeError(`${field} has a prefix length that is not 0–${max}: ${describe(text)}`);
    }
    bits = Number(suffix);
  }
  return { family, bytes, bits };
}

function inCidr(cidr: Cidr, family: AddressFamily, address: Uint8Array): boolean {
  if (cidr.family !== family) return false;
  const whole = cidr.bits >> 3;
  for (let i = 0; i < whole; i++) if (cidr.bytes[i] !== address[i]) return false;
  const rest = cidr.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((cidr.bytes[whole]! ^ address[whole]!) & mask) === 0;
}

function checkRanges(value: unknown, field: string, min: number, max: number): Array<[number, number]> {
  if (!Array.isArray(value)) throw new TypeError(`${field} must be an array, got ${describe(value)}`);
  return value.map((entry: unknown, i) => {
    if (Array.isArray(entry)) {
      if (entry.length !== 2) throw new TypeError(`${field}[${i}] must be a number or a [from, to] pair, got an array of ${entry.length}`);
      const from = expectInteger(entry[0], `${field}[${i}][0]`, min, max);
      const to = expectInteger(entry[1], `${field}[${i}][1]`, min, max);
      if (from > to) throw new RangeError(`${field}[${i}] is an empty range: ${from} > ${to}`);
      return [from, to];
    }
    const single = expectInteger(entry, `${field}[${i}]`, min, max);
    return [single, single];
  });
}

function checkArray(value: unknown, field: string): unknown[] {
  if (!Array.isArray(value)) throw new TypeError(`${field} must be an array, got ${describe(value)}`);
  return value;
}

const inRanges = (ranges: ReadonlyArray<[number, number]>, n: number): boolean => ranges.some(([a, b]) => n >= a && n <= b);

const LISTED: CheckedScope = { value: 'listed', owns: (_service, key, desiredKeys) => desiredKeys.has(key) };
const ALL: CheckedScope = { value: 'all', owns: () => true };

/**
 * Checks options.scope. Default 'listed'.
 * @throws {TypeError} for a value that is not 'listed', 'all' or a filter object, a filter field
 *   of the wrong type or an unknown filter field.
 * @throws {RangeError} for an unknown scope name or protocol, a bad CIDR, port or fwmark, an
 *   empty range, or a filter with none of addresses, protocols, ports, fwmarks.
 */
export function checkScope(value: unknown, field = 'options.scope'): CheckedScope {
  if (value === undefined || value === 'listed') return LISTED;
  if (value === 'all') return ALL;
  if (typeof value === 'string') throw new RangeError(`${field} must be 'listed', 'all' or a filter object, got ${describe(value)}`);
  const filter = expectObject(value, field);
  rejectUnknownKeys(filter, FILTER_FIELDS, field);
  const copy: ScopeFilter = {};
  let cidrs: Cidr[] | undefined;
  let protocols: Protocol[] | undefined;
  let ports: Array<[number, number]> | undefined;
  let fwmarks: Array<[number, number]> | undefined;
  if (filter.addresses !== undefined) {
    const list = checkArray(filter.addresses, `${field}.addresses`);
    cidrs = list.map((entry, i) => checkCidr(entry, `${field}.addresses[${i}]`));
    copy.addresses = list as string[];
  }
  if (filter.protocols !== undefined) {
    const list = checkArray(filter.protocols, `${field}.protocols`);
    protocols = list.map((entry, i) => expectOneOf(entry, `${field}.protocols[${i}]`, PROTOCOLS));
    copy.protocols = protocols;
  }
  if (filter.ports !== undefined) {
    ports = checkRanges(filter.ports, `${field}.ports`, 0, 65535);
    copy.ports = ports.map(rangeValue);
  }
  if (filter.fwmarks !== undefined) {
    fwmarks = checkRanges(filter.fwmarks, `${field}.fwmarks`, 1, 0xffffffff);
    copy.fwmarks = fwmarks.map(rangeValue);
  }
  const addressCriteria = cidrs !== undefined || protocols !== undefined || ports !== undefined;
  if (!addressCriteria && fwmarks === undefined) {
    throw new RangeError(`${field} must give at least one of addresses, protocols, ports, fwmarks`);
  }
  const bytes = new Uint8Array(16);
  return {
    value: copy,
    owns(service) {
      if ('fwmark' in service && service.fwmark !== undefined) return fwmarks !== undefined && inRanges(fwmarks, service.fwmark);
      if (!addressCriteria) return false;
      const s = service as { protocol: Protocol; address: string; port: number; family: AddressFamily };
      if (protocols && !protocols.includes(s.protocol)) return false;
      if (ports && !inRanges(ports, s.port)) return false;
      if (cidrs) {
        const family = parseAddress(s.address, bytes);
        if (!family || !cidrs.some((cidr) => inCidr(cidr, family, bytes))) return false;
      }
      return true;
    },
  };
}

function rangeValue([from, to]: [number, number]): NumberRange {
  return from === to ? from : [from, to];
}
