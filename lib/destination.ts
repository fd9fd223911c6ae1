// Destinations (real servers): checking specs against their service, wire records both ways.
import { decodeAddress, encodeAddress, familyName, familyNumber } from './address';
import { FORWARD_METHODS, FWD_MASK, TUNNEL_CHECKSUM_FLAGS, TUNNEL_TYPES } from './constants';
import { ZERO_STATS, checkFamilyMatches, type CheckedKey } from './service';
import type { Destination, ForwardMethod, Stats, TunnelChecksum, TunnelType } from './types';
import {
  expectAddress, expectInteger, expectObject, expectOneOf, expectPort, optionalInteger, rejectUnknownKeys,
} from './validate';

export interface WireDestination {
  address?: Buffer;
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
const KEY_FIELDS = new Set(['address', 'port', 'family']);
const SPEC_FIELDS = new Set([
  ...KEY_FIELDS, 'forward', 'weight', 'upperThreshold', 'lowerThreshold', 'tunnel',
  // read-back fields a caller may pass back in unchanged
  'activeConnections', 'inactiveConnections', 'persistentConnections', 'stats',
]);

/** Checks a destination key ({ address, port? }) against its service. */
export function checkDestinationKey(value: unknown, service: CheckedKey, field = 'destination'): WireDestination {
  const dest = expectObject(value, field);
  const { address, family } = expectAddress(dest.address, `${field}.address`);
  checkFamilyMatches(dest.family, family, field);
  const port = dest.port === undefined ? service.port : expectPort(dest.port, `${field}.port`);
  return { address: encodeAddress(address), port, af: familyNumber(family) };
}

function checkTunnel(value: unknown, field: string): Pick<WireDestination, 'tunnelType' | 'tunnelPort' | 'tunnelFlags'> {
  const tunnel = expectObject(value, field);
  rejectUnknownKeys(tunnel, new Set(['type', 'port', 'checksum']), field);
  const type = expectOneOf(tunnel.type, `${field}.type`, Object.keys(TUNNEL_TYPES) as TunnelType[]);
  const checksum = tunnel.checksum === undefined
    ? 'none'
    : expectOneOf(tunnel.checksum, `${field}.checksum`, Object.keys(TUNNEL_CHECKSUM_FLAGS) as TunnelChecksum[]);
  if (type === 'gue' && tunnel.port === undefined) throw new RangeError(`${field}.port is required for a GUE tunnel`);
  if (type !== 'gue' && tunnel.port !== undefined) throw new RangeError(`${field}.port applies only to a GUE tunnel, not '${type}'`);
  // As ipvsadm: IPIP has no checksum option, GRE a plain one, GUE both (the kernel stores any).
  if (checksum !== 'none' && type === 'ipip') throw new RangeError(`${field}.checksum '${checksum}' does not apply to an IPIP tunnel`);
  if (checksum === 'remcsum' && type !== 'gue') throw new RangeError(`${field}.checksum 'remcsum' applies only to a GUE tunnel, not '${type}'`);
  return {
    tunnelType: TUNNEL_TYPES[type],
    tunnelPort: tunnel.port === undefined ? 0 : expectPort(tunnel.port, `${field}.port`, 1),
    tunnelFlags: TUNNEL_CHECKSUM_FLAGS[checksum],
  };
}

/** Checks a full destination definition (add and edit) against its service. */
export function checkDestinationSpec(value: unknown, service: CheckedKey, field = 'destination'): WireDestination {
  const wire = checkDestinationKey(value, service, field);
  const spec = expectObject(value, field);
  rejectUnknownKeys(spec, SPEC_FIELDS, field);
  const forward = spec.forward === undefined ? 'route' : expectOneOf(spec.forward, `${field}.forward`, SETTABLE_FORWARDS);
  const destFamily = familyName(wire.af);
  if (destFamily !== service.family && forward !== 'tunnel') {
    throw new RangeError(
      `${field}.address is ${destFamily === 'inet' ? 'IPv4' : 'IPv6'} but the service is ${service.family === 'inet' ? 'IPv4' : 'IPv6'}: ` +
        `mixing families needs forward 'tunnel'`,
    );
  }
  const weight = spec.weight === undefined ? 1 : expectInteger(spec.weight, `${field}.weight`, 0, INT_MAX);
  const upperThreshold = optionalInteger(spec.upperThreshold, `${field}.upperThreshold`, 0, INT_MAX) ?? 0;
  const lowerThreshold = optionalInteger(spec.lowerThreshold, `${field}.lowerThreshold`, 0, INT_MAX) ?? 0;
  if (lowerThreshold > upperThreshold) {
    throw new RangeError(`${field}.lowerThreshold (${lowerThreshold}) must not exceed upperThreshold (${upperThreshold})`);
  }
  let tunnel = {};
  if (spec.tunnel !== undefined) {
    if (forward !== 'tunnel') throw new RangeError(`${field}.tunnel needs forward 'tunnel', not '${forward}'`);
    tunnel = checkTunnel(spec.tunnel, `${field}.tunnel`);
  }
  return { ...wire, forward: FORWARD_METHODS[forward], weight, upperThreshold, lowerThreshold, ...tunnel };
}

const forwardNames = Object.fromEntries(Object.entries(FORWARD_METHODS).map(([k, v]) => [v, k])) as Record<number, Destination['forward']>;
const tunnelTypeNames = Object.fromEntries(Object.entries(TUNNEL_TYPES).map(([k, v]) => [v, k])) as Record<number, TunnelType>;

function checksumName(flags: number): TunnelChecksum {
  if (flags & TUNNEL_CHECKSUM_FLAGS.remcsum) return 'remcsum';
  if (flags & TUNNEL_CHECKSUM_FLAGS.csum) return 'csum';
  return 'none';
}

export function destinationFromWire(wire: WireDestination, service: CheckedKey): Destination {
  const family = wire.af === undefined ? service.family : familyName(wire.af);
  const forward = forwardNames[(wire.forward ?? 0) & FWD_MASK] ?? 'masq';
  const destination: Destination = {
    address: decodeAddress(wire.address ?? Buffer.alloc(16), family),
    family,
    port: wire.port ?? 0,
    forward,
    weight: wire.weight ?? 0,
    upperThreshold: wire.upperThreshold ?? 0,
    lowerThreshold: wire.lowerThreshold ?? 0,
    activeConnections: wire.activeConnections ?? 0,
    inactiveConnections: wire.inactiveConnections ?? 0,
    persistentConnections: wire.persistentConnections ?? 0,
    stats: wire.stats ?? ZERO_STATS,
  };
  if (forward === 'tunnel' && wire.tunnelType !== undefined) {
    const type = tunnelTypeNames[wire.tunnelType] ?? 'ipip';
    destination.tunnel = {
      type,
      ...(type === 'gue' ? { port: wire.tunnelPort ?? 0 } : {}),
      checksum: checksumName(wire.tunnelFlags ?? 0),
    };
  }
  return destination;
}
