// Timeouts and the connection-sync daemon: checks and wire records both ways.
import { decodeAddress, encodeAddress } from './address';
import { DAEMON_STATES, IFNAME_MAX_LENGTH } from './constants';
import type { DaemonConfig, DaemonState, Timeouts } from './types';
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

/**
 * Largest timeout in seconds that every kernel accepts. ip_vs_set_timeout()
 * (net/netfilter/ipvs/ip_vs_ctl.c) rejects a value above INT_MAX / HZ with EINVAL, because it
 * keeps jiffies in an int. HZ is a build option (100–1000 on mainstream configs; 250 on
 * Debian), so the portable limit is INT_MAX / 1000 = 2147483 s (24 days, 20 h). ipvsadm allows
 * up to 31 days, which a HZ=1000 kernel refuses.
 */
export const MAX_TIMEOUT_SECONDS = Math.floor(0x7fffffff / 1000);

/**
 * Checks a partial timeouts object. An omitted field is sent as 0, which the kernel reads as
 * "leave unchanged" (ip_vs_set_timeout only stores non-zero values), so 0 itself is not a
 * valid timeout here: each given field is 1–{@link MAX_TIMEOUT_SECONDS}.
 */
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

/**
 * An interface name as the kernel takes it: IPVS_DAEMON_ATTR_MCAST_IFN is an NLA_NUL_STRING of
 * at most IP_VS_IFNAME_MAXLEN - 1 = 15 bytes (ip_vs_daemon_policy), and dev_valid_name()
 * (net/core/dev.c) refuses "." and "..", '/', ':' and whitespace.
 */
export function checkInterfaceName(value: unknown, field: string): string {
  const name = expectString(value, field);
  if (name.length === 0 || Buffer.byteLength(name) > IFNAME_MAX_LENGTH) {
    throw new RangeError(`${field} must be 1–${IFNAME_MAX_LENGTH} bytes long, got ${describe(value)}`);
  }
  if (/[\s/:\0]/.test(name) || name === '.' || name === '..') {
    throw new RangeError(`${field} is not a valid interface name: ${describe(value)}`);
  }
  return name;
}

/**
 * SyncID range. The kernel takes IPVS_DAEMON_ATTR_SYNC_ID as a u32, but the sync message header
 * carries it in one byte (struct ip_vs_sync_mesg.syncid, ip_vs_sync.c): a master with 256 would
 * send 0, and a backup with 256 would drop every message. ipvsadm documents 0–255; 0 means no
 * filtering on a backup.
 */
export const SYNC_ID_MAX = 255;

/**
 * Sync message payload limits from start_sync_thread() (ip_vs_sync.c): the kernel clamps
 * sync_maxlen to [min, 65535 - IP header - UDP header], where min is 1 for a master and 1024
 * for a backup, and the headers are 20 + 8 bytes for an IPv4 group, 40 + 8 for IPv6. A value
 * outside would be silently changed, so it is refused here instead. Unset (or 0), the kernel
 * uses 1500 - headers for a master and max(MTU, 1500) - headers for a backup.
 */
export const SYNC_MAXLEN_LIMITS = {
  master: { min: 1 },
  backup: { min: 1024 },
  max: { inet: 65535 - 20 - 8, inet6: 65535 - 40 - 8 },
} as const;

const DAEMON_FIELDS = new Set(['state', 'interface', 'syncId', 'maxLength', 'group', 'port', 'ttl']);

/**
 * Checks a daemon spec. port (IPVS_DAEMON_ATTR_MCAST_PORT) is a host-order u16 on the wire
 * (nla_get_u16; the kernel applies htons itself) and 0 would mean the default 8848, so 1–65535;
 * ttl (MCAST_TTL, u8) 0 would mean the default 1, so 1–255. The group must be multicast, as
 * ip_vs_genl_new_daemon() checks (ipv4_is_multicast / IPV6_ADDR_MULTICAST, else EINVAL).
 */
export function checkDaemonSpec(value: unknown, field = 'daemon'): WireDaemon {
  const spec = expectObject(value, field);
  rejectUnknownKeys(spec, DAEMON_FIELDS, field);
  const stateName = expectOneOf(spec.state, `${field}.state`, Object.keys(DAEMON_STATES) as DaemonState[]);
  const wire: WireDaemon = {
    state: DAEMON_STATES[stateName],
    interface: checkInterfaceName(spec.interface, `${field}.interface`),
    syncId: optionalInteger(spec.syncId, `${field}.syncId`, 0, SYNC_ID_MAX) ?? 0,
  };
  let groupFamily: 'inet' | 'inet6' = 'inet';
  if (spec.group !== undefined) {
    const { address, family } = expectAddress(spec.group, `${field}.group`);
    const bytes = encodeAddress(address);
    const multicast = family === 'inet' ? (bytes[0]! & 0xf0) === 0xe0 : bytes[0] === 0xff;
    if (!multicast) throw new RangeError(`${field}.group must be a multicast address, got ${describe(spec.group)}`);
    if (family === 'inet') wire.group4 = bytes.subarray(0, 4);
    else wire.group6 = bytes;
    groupFamily = family;
  }
  const maxLength = optionalInteger(
    spec.maxLength, `${field}.maxLength`,
    SYNC_MAXLEN_LIMITS[stateName].min, SYNC_MAXLEN_LIMITS.max[groupFamily],
  );
  if (maxLength !== undefined) wire.maxLength = maxLength;
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

