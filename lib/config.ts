// Timeouts and the connection-sync daemon: checks and wire records both ways.
import { decodeAddress, encodeAddress } from './address';
import { DAEMON_STATES, IFNAME_MAX_LENGTH } from './constants';
import type { DaemonConfig, DaemonSpec, DaemonState, Timeouts } from './types';
import {
  describe, expectAddress, expectObject, expectOneOf, expectString, optionalInteger,
  rejectUnknownKeys,
} from './validate';

export interface WireTimeouts {
  tcp?: number;
  tcpFin?: number;
  udp?: number;
}

export interface WireDaemon {
  state?: number;
  interface?: string;
  syncId?: number;
  maxLength?: number;
  group4?: Buffer;
  group6?: Buffer;
  port?: number;
  ttl?: number;
}

/** The kernel stores timeouts in jiffies in an int: keep seconds well inside that. */
export const MAX_TIMEOUT_SECONDS = 31 * 86400;

/** Checks a partial timeouts object; an omitted field is sent as 0, which the kernel leaves unchanged. */
export function checkTimeouts(value: unknown, field = 'timeouts'): WireTimeouts {
  const t = expectObject(value, field);
  rejectUnknownKeys(t, new Set(['tcp', 'tcpFin', 'udp']), field);
  const wire: WireTimeouts = {
    tcp: optionalInteger(t.tcp, `${field}.tcp`, 1, MAX_TIMEOUT_SECONDS) ?? 0,
    tcpFin: optionalInteger(t.tcpFin, `${field}.tcpFin`, 1, MAX_TIMEOUT_SECONDS) ?? 0,
    udp: optionalInteger(t.udp, `${field}.udp`, 1, MAX_TIMEOUT_SECONDS) ?? 0,
  };
  if (!wire.tcp && !wire.tcpFin && !wire.udp) {
    throw new TypeError(`${field} must set at least one of tcp, tcpFin, udp`);
  }
  return wire;
}

export function timeoutsFromWire(wire: WireTimeouts): Timeouts {
  return { tcp: wire.tcp ?? 0, tcpFin: wire.tcpFin ?? 0, udp: wire.udp ?? 0 };
}

export function checkDaemonState(value: unknown, field = 'state'): number {
  return DAEMON_STATES[expectOneOf(value, field, Object.keys(DAEMON_STATES) as DaemonState[])];
}

export function checkInterfaceName(value: unknown, field: string): string {
  const name = expectString(value, field);
  if (name.length === 0 || Buffer.byteLength(name) > IFNAME_MAX_LENGTH) {
    throw new RangeError(`${field} must be 1–${IFNAME_MAX_LENGTH} bytes long, got ${describe(value)}`);
  }
  if (/[\s/:]/.test(name)) throw new RangeError(`${field} is not a valid interface name: ${describe(value)}`);
  return name;
}

const DAEMON_FIELDS = new Set(['state', 'interface', 'syncId', 'maxLength', 'group', 'port', 'ttl']);

export function checkDaemonSpec(value: unknown, field = 'daemon'): WireDaemon {
  const spec = expectObject(value, field);
  rejectUnknownKeys(spec, DAEMON_FIELDS, field);
  const wire: WireDaemon = {
    state: checkDaemonState(spec.state, `${field}.state`),
    interface: checkInterfaceName(spec.interface, `${field}.interface`),
    syncId: optionalInteger(spec.syncId, `${field}.syncId`, 0, 255) ?? 0,
  };
  // The kernel clamps the payload to the interface MTU; below a header and one entry it is useless.
  const maxLength = optionalInteger(spec.maxLength, `${field}.maxLength`, 1, 65535);
  if (maxLength !== undefined) wire.maxLength = maxLength;
  if (spec.group !== undefined) {
    const { address, family } = expectAddress(spec.group, `${field}.group`);
    const bytes = encodeAddress(address);
    const multicast = family === 'inet' ? (bytes[0]! & 0xf0) === 0xe0 : bytes[0] === 0xff;
    if (!multicast) throw new RangeError(`${field}.group must be a multicast address, got ${describe(spec.group)}`);
    if (family === 'inet') wire.group4 = bytes.subarray(0, 4);
    else wire.group6 = bytes;
  }
  const port = optionalInteger(spec.port, `${field}.port`, 1, 65535);
  if (port !== undefined) wire.port = port;
  const ttl = optionalInteger(spec.ttl, `${field}.ttl`, 1, 255);
  if (ttl !== undefined) wire.ttl = ttl;
  return wire;
}

export function daemonFromWire(wire: WireDaemon): DaemonConfig {
  const state = (Object.entries(DAEMON_STATES).find(([, n]) => n === wire.state)?.[0] ?? 'master') as DaemonState;
  const config: DaemonConfig = { state, interface: wire.interface ?? '', syncId: wire.syncId ?? 0 };
  if (wire.maxLength !== undefined) config.maxLength = wire.maxLength;
  if (wire.group6) config.group = decodeAddress(wire.group6, 'inet6');
  else if (wire.group4) config.group = decodeAddress(Buffer.concat([wire.group4, Buffer.alloc(12)]), 'inet');
  if (wire.port !== undefined) config.port = wire.port;
  if (wire.ttl !== undefined) config.ttl = wire.ttl;
  return config;
}

