// Destinations (real servers): checking specs against their service, wire records both ways.
import { decodeAddress, familyName, familyNumber, type AddressFamily } from './address';
import { FORWARD_METHODS, FWD_MASK, TUNNEL_CHECKSUM_FLAGS, TUNNEL_TYPES } from './constants';
import { ZERO_STATS, checkFamilyMatches, type CheckedKey } from './service';
import type { Destination, ForwardMethod, Stats, TunnelChecksum, TunnelType } from './types';
import {
  addressFamilyInto, expectAddressInto, expectInteger, expectObject, expectOneOf, expectPort, isIntegerIn, isOneOf,
  rejectUnknownKeys,
} from './validate';
import { RequestWriter, destinationWireAt } from './records';

/**
 * Where packDestinationKey and packDestinationSpec write: a RequestWriter, or any words laid
 * out as its records' destination parts (they write only there, at `base + offsets.dst…`).
 */
export type DestinationOut = Pick<RequestWriter, 'offsets' | 'words' | 'bytes'>;

export interface WireDestination {
  /** 16 bytes (union nf_inet_addr). */
  address?: Uint8Array;
  port?: number;
  forward?: number;
  weight?: number;
  upperThreshold?: number;
  lowerThreshold?: number;
  af?: number;
  tunnelType?: number;
  tunnelPort?: number;
  tunnelFlags?: number;
  activeConnections?: number;
  inactiveConnections?: number;
  persistentConnections?: number;
  stats?: Stats;
}

const INT_MAX = 0x7fffffff;
const SETTABLE_FORWARDS: ForwardMethod[] = ['masq', 'route', 'tunnel', 'local'];
const TUNNEL_TYPE_NAMES = Object.keys(TUNNEL_TYPES) as TunnelType[];
const TUNNEL_CHECKSUMS = Object.keys(TUNNEL_CHECKSUM_FLAGS) as TunnelChecksum[];
const TUNNEL_FIELDS = new Set(['type', 'port', 'checksum']);
const KEY_FIELDS = ['address', 'port', 'family'];
const SPEC_FIELDS = new Set([
  ...KEY_FIELDS, 'forward', 'weight', 'upperThreshold', 'lowerThreshold', 'tunnel',
  // read-back fields a caller may pass back in unchanged
  'activeConnections', 'inactiveConnections', 'persistentConnections', 'stats',
]);

/**
 * Checks a destination key ({ address, port? }) against its service and writes it as the
 * destination of the request record at `base` of `out`; returns its family.
 * @throws {TypeError} for a non-object or a field of the wrong type.
 * @throws {RangeError} for a bad address, family or port.
 */
export function packDestinationKey(value: unknown, service: CheckedKey, out: DestinationOut, base: number, field = 'destination'): AddressFamily {
  const dest = expectObject(value, field);
  const o = out.offsets;
  const at = (base + o.dstAddress) * 4;
  const family = addressFamilyInto(dest.address, out.bytes, at) ?? expectAddressInto(dest.address, `${field}.address`, out.bytes, at);
  checkFamilyMatches(dest.family, family, field);
  const port = dest.port === undefined ? service.port : isIntegerIn(dest.port, 0, 65535) ? dest.port : expectPort(dest.port, `${field}.port`);
  const w = out.words;
  const b = o.dstBit;
  w[base + o.dstPort] = port;
  w[base + o.dstAf] = familyNumber(family);
  w[base + o.dst] = b.address | b.port | b.af;
  return family;
}

function checkTunnel(value: unknown, field: string): { type: number; port: number; flags: number } {
  const tunnel = expectObject(value, field);
  rejectUnknownKeys(tunnel, TUNNEL_FIELDS, field);
  const type = expectOneOf(tunnel.type, `${field}.type`, TUNNEL_TYPE_NAMES);
  const checksum = tunnel.checksum === undefined ? 'none' : expectOneOf(tunnel.checksum, `${field}.checksum`, TUNNEL_CHECKSUMS);
  if (type === 'gue' && tunnel.port === undefined) throw new RangeError(`${field}.port is required for a GUE tunnel`);
  if (type !== 'gue' && tunnel.port !== undefined) throw new RangeError(`${field}.port applies only to a GUE tunnel, not '${type}'`);
  // As ipvsadm: IPIP has no checksum option, GRE a plain one, GUE both (the kernel stores any).
  if (checksum !== 'none' && type === 'ipip') throw new RangeError(`${field}.checksum '${checksum}' does not apply to an IPIP tunnel`);
  if (checksum === 'remcsum' && type !== 'gue') throw new RangeError(`${field}.checksum 'remcsum' applies only to a GUE tunnel, not '${type}'`);
  return {
    type: TUNNEL_TYPES[type],
    port: tunnel.port === undefined ? 0 : expectPort(tunnel.port, `${field}.port`, 1),
    flags: TUNNEL_CHECKSUM_FLAGS[checksum],
  };
}

/**
 * Checks a full destination definition (add and edit) against its service and writes it as
 * the destination of the request record at `base` of `out`. Every check runs before the
 * record counts (RequestWriter.end), so a throw leaves nothing queued.
 * @throws {TypeError} for a wrong type or an unknown option.
 * @throws {RangeError} for a value out of range, lowerThreshold above upperThreshold, mixed
 *   address families without forward 'tunnel', tunnel options that do not fit the tunnel.
 */
export function packDestinationSpec(value: unknown, service: CheckedKey, out: DestinationOut, base: number, field = 'destination'): void {
  const destFamily = packDestinationKey(value, service, out, base, field);
  const spec = value as Record<string, unknown>;  // packDestinationKey checked it is an object
  rejectUnknownKeys(spec, SPEC_FIELDS, field);
  const forward = spec.forward === undefined
    ? 'route'
    : isOneOf(spec.forward, SETTABLE_FORWARDS) ? spec.forward : expectOneOf(spec.forward, `${field}.forward`, SETTABLE_FORWARDS);
  if (destFamily !== service.family && forward !== 'tunnel') {
    throw new RangeError(
      `${field}.address is ${destFamily === 'inet' ? 'IPv4' : 'IPv6'} but the service is ${service.family === 'inet' ? 'IPv4' : 'IPv6'}: ` +
        `mixing families needs forward 'tunnel'`,
    );
  }
  const weight = spec.weight === undefined
    ? 1
    : isIntegerIn(spec.weight, 0, INT_MAX) ? spec.weight : expectInteger(spec.weight, `${field}.weight`, 0, INT_MAX);
  const upper = spec.upperThreshold;
  const upperThreshold = upper === undefined || isIntegerIn(upper, 0, INT_MAX) ? upper ?? 0 : expectInteger(upper, `${field}.upperThreshold`, 0, INT_MAX);
  const lower = spec.lowerThreshold;
  const lowerThreshold = lower === undefined || isIntegerIn(lower, 0, INT_MAX) ? lower ?? 0 : expectInteger(lower, `${field}.lowerThreshold`, 0, INT_MAX);
  if (lowerThreshold > upperThreshold) {
    throw new RangeError(`${field}.lowerThreshold (${lowerThreshold}) must not exceed upperThreshold (${upperThreshold})`);
  }
  let tunnel: ReturnType<typeof checkTunnel> | undefined;
  if (spec.tunnel !== undefined) {
    if (forward !== 'tunnel') throw new RangeError(`${field}.tunnel needs forward 'tunnel', not '${forward}'`);
    tunnel = checkTunnel(spec.tunnel, `${field}.tunnel`);
  }
  const o = out.offsets;
  const b = o.dstBit;
  const w = out.words;
  w[base + o.dstForward] = FORWARD_METHODS[forward];
  w[base + o.dstWeight] = weight;
  w[base + o.dstUpperThreshold] = upperThreshold;
  w[base + o.dstLowerThreshold] = lowerThreshold;
  let present = b.forward | b.weight | b.upperThreshold | b.lowerThreshold;
  if (tunnel) {
    w[base + o.dstTunnelType] = tunnel.type;
    w[base + o.dstTunnelPort] = tunnel.port;
    w[base + o.dstTunnelFlags] = tunnel.flags;
    present |= b.tunnelType | b.tunnelPort | b.tunnelFlags;
  }
  w[base + o.dst] = w[base + o.dst]! | present;
}

/** checkDestinationKey and checkDestinationSpec pack into this record and read it back. */
let scratch: RequestWriter | undefined;

function viaRecord(pack: (out: RequestWriter, base: number) => void): WireDestination {
  scratch ??= new RequestWriter(1);
  const base = scratch.begin(0);
  pack(scratch, base);
  return destinationWireAt(scratch, base);
}

/**
 * Checks a destination key ({ address, port? }) against its service; returns its wire record.
 * @throws {TypeError} and {RangeError} as packDestinationKey.
 */
export function checkDestinationKey(value: unknown, service: CheckedKey, field = 'destination'): WireDestination {
  return viaRecord((out, base) => { packDestinationKey(value, service, out, base, field); });
}

/**
 * Checks a full destination definition (add and edit) against its service; returns its wire
 * record. @throws {TypeError} and {RangeError} as packDestinationSpec.
 */
export function checkDestinationSpec(value: unknown, service: CheckedKey, field = 'destination'): WireDestination {
  return viaRecord((out, base) => packDestinationSpec(value, service, out, base, field));
}

const forwardNames = Object.fromEntries(Object.entries(FORWARD_METHODS).map(([k, v]) => [v, k])) as Record<number, Destination['forward']>;
const tunnelTypeNames = Object.fromEntries(Object.entries(TUNNEL_TYPES).map(([k, v]) => [v, k])) as Record<number, TunnelType>;

function checksumName(flags: number): TunnelChecksum {
  if (flags & TUNNEL_CHECKSUM_FLAGS.remcsum) return 'remcsum';
  if (flags & TUNNEL_CHECKSUM_FLAGS.csum) return 'csum';
  return 'none';
}

/** Builds a Destination from the addon's record of it; `service` supplies a missing family. Never throws. */
export function destinationFromWire(wire: WireDestination, service: CheckedKey): Destination {
  const family = wire.af === undefined ? service.family : familyName(wire.af);
  const address = wire.address ? decodeAddress(wire.address, family) : family === 'inet' ? '0.0.0.0' : '::';
  return makeDestination(address, family, wire.port ?? 0, wire.forward ?? 0, wire.weight ?? 0, wire.upperThreshold ?? 0,
    wire.lowerThreshold ?? 0, wire.activeConnections ?? 0, wire.inactiveConnections ?? 0, wire.persistentConnections ?? 0,
    wire.stats ?? ZERO_STATS, wire.tunnelType, wire.tunnelPort ?? 0, wire.tunnelFlags ?? 0);
}

/**
 * @internal The one place a Destination is put together, from decoded fields (kernel numbers
 * for forward and the tunnel; `tunnelType` undefined when the kernel sent none): shared by
 * destinationFromWire and the whole-table reader (lib/table.ts), which calls it with fields
 * read straight from its records; a wire object in between made listing twice as slow.
 * Never throws.
 */
export function makeDestination(
  address: string, family: AddressFamily, port: number, forwardNumber: number, weight: number, upperThreshold: number,
  lowerThreshold: number, activeConnections: number, inactiveConnections: number, persistentConnections: number,
  stats: Stats, tunnelType: number | undefined, tunnelPort: number, tunnelFlags: number,
): Destination {
  const forward = forwardNames[forwardNumber & FWD_MASK] ?? 'masq';
  const destination: Destination = {
    address, family, port, forward, weight, upperThreshold, lowerThreshold, activeConnections, inactiveConnections,
    persistentConnections, stats,
  };
  if (forward === 'tunnel' && tunnelType !== undefined) {
    const type = tunnelTypeNames[tunnelType] ?? 'ipip';
    destination.tunnel = type === 'gue'
      ? { type, port: tunnelPort, checksum: checksumName(tunnelFlags) }
      : { type, checksum: checksumName(tunnelFlags) };
  }
  return destination;
}
