// The director's configuration: the shapes (the contract shared with the keepalived and
// ldirectord importers), the defaults, and the validation that turns a config into the
// resolved form the engine runs. Durations are seconds; the file loader also takes '500ms'.
import { isIP } from 'node:net';

import { canonicalAddress } from '../address';
import { checkDestinationSpec } from '../destination';
import { checkServiceDefinition, type CheckedKey } from '../service';
import { checkDesiredState } from '../reconcile/desired';
import { checkScope } from '../reconcile/scope';
import { destinationKeyText, serviceKeyText } from '../reconcile/settings';
import type { ReconcileScope, ScopeFilter } from '../reconcile/types';
import type { DestinationSpec, Protocol, ServiceKey, ServiceSpec } from '../types';
import {
  describe, expectBoolean, expectInteger, expectObject, expectOneOf, expectString, rejectUnknownKeys, type Fields,
} from '../validate';
import { checkVrrpConfig, type ResolvedVrrp, type VrrpConfig } from './vrrp';

/** What happens to a destination whose checks fail. */
export type FailureAction = 'quiesce' | 'remove';

/**
 * Services the director owns besides the listed ones, as reconcile's scopes: 'listed' (default)
 * owns only the configured services; 'all' owns the whole namespace and deletes every other
 * service; a {@link ScopeFilter} owns every service it matches.
 */
export type DirectorScope = ReconcileScope;
export type { ScopeFilter };

/** Timing and target shared by every check type. Durations in seconds. */
export interface CheckCommon {
  /** Seconds between the starts of two checks. Default 5 (see {@link CHECK_DEFAULTS}). */
  interval?: number;
  /** Seconds a check may take; must be less than the interval. Default 2, or interval/2 when shorter. */
  timeout?: number;
  /** Consecutive successes that bring a down check up. Default 2. */
  rise?: number;
  /** Consecutive failures that take an up check down. Default 2. */
  fall?: number;
  /** Check this address instead of the destination's. */
  address?: string;
  /** Check this port instead of the destination's. */
  port?: number;
  /** Source address of the check's socket. */
  bindAddress?: string;
}

export interface TcpCheck extends CheckCommon { type: 'tcp' }
export interface HttpCheck extends CheckCommon {
  type: 'http' | 'https';
  /** Default 'GET'. */
  method?: string;
  /** Default '/'. */
  path?: string;
  /** Host header; default the target address (and port when not the scheme's). */
  host?: string;
  /** Accepted statuses: codes and 'low-high' ranges, e.g. [200, '300-399']. Default 200–299. */
  expectStatus?: Array<number | string>;
  /** A substring the body must contain. */
  body?: string;
  /** A regular expression the body must match. */
  bodyRegex?: string;
  /** Hex MD5 of the whole body (keepalived's `digest`). */
  bodyMd5?: string;
  /** https: verify the certificate chain and name. Default false, as keepalived and ldirectord. */
  tlsVerify?: boolean;
  /** https: TLS server name; default `host` when it is a name. */
  sni?: string;
}
export interface UdpCheck extends CheckCommon {
  type: 'udp';
  /** Datagram to send; `\xNN`, `\n`, `\r`, `\t`, `\0`, `\\` escapes allowed. Default empty. */
  payload?: string;
  /** A regular expression the reply must match (latin1). Absent: any reply passes. */
  expect?: string;
}
export interface DnsCheck extends CheckCommon {
  type: 'dns';
  /** The name to query. */
  name: string;
  /** A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT or ANY. Default 'A'. */
  queryType?: string;
  /** NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP or REFUSED. Default 'NOERROR'. */
  expectRcode?: string;
  /** An answer record of the queried type must equal this (address, or name for CNAME/NS/PTR/MX). */
  expectAnswer?: string;
}
export interface ExecCheck extends CheckCommon {
  type: 'exec';
  /** argv; run without a shell. Its environment adds IPVS_SERVICE_*, IPVS_DEST_ADDRESS and IPVS_DEST_PORT. */
  command: string[];
  /** As keepalived's misc_dynamic: exit 2–255 passes and sets the weight to code − 2. */
  dynamicWeight?: boolean;
}
export interface NoneCheck extends CheckCommon {
  type: 'none';
  /** 'up' (default) always passes, 'down' always fails (ldirectord checktype on / off). */
  result?: 'up' | 'down';
}
export type CheckSpec = TcpCheck | HttpCheck | UdpCheck | DnsCheck | ExecCheck | NoneCheck;
export type CheckType = CheckSpec['type'];

/** A real server with its own checks and policies. */
export type DirectorDestination = DestinationSpec & {
  /** Replaces the service's checks for this destination. */
  checks?: CheckSpec[];
  onFailure?: FailureAction;
  slowStart?: number;
};

/** A virtual service with its real servers, checks and policies. */
export type DirectorService = ServiceSpec & {
  destinations: DirectorDestination[];
  /** All must pass for a destination to be up. Default: `defaults.checks`, else one tcp check. */
  checks?: CheckSpec[];
  /** Default 'quiesce' (weight 0, connections kept). */
  onFailure?: FailureAction;
  /** Seconds to ramp a recovered destination's weight from 1 to its weight; 0/absent = off. */
  slowStart?: number;
  /** Seconds a drain may last before the destination is deleted anyway. Default 300. */
  drainTimeout?: number;
  /** The sum of live weights the service needs. Default 1. */
  quorum?: number;
  /** Quorum is gained at ≥ quorum + hysteresis and lost below quorum − hysteresis. Default 0. */
  hysteresis?: number;
  /** Put in below quorum (weight default 1), taken out when quorum is back. */
  sorryServers?: DestinationSpec[];
  /** Shell command run on quorum-gained (keepalived quorum_up). */
  quorumUp?: string;
  /** Shell command run on quorum-lost (keepalived quorum_down). */
  quorumDown?: string;
};

export interface DirectorDefaults {
  checks?: CheckSpec[];
  onFailure?: FailureAction;
  slowStart?: number;
  drainTimeout?: number;
}

export interface DirectorConfig {
  services: DirectorService[];
  /** Default 'listed'. */
  scope?: DirectorScope;
  /** Seconds between drift repairs (re-reading the kernel). Default 10. */
  resyncInterval?: number;
  defaults?: DirectorDefaults;
  /** Follow a keepalived VRRP instance and switch the connection-sync daemon with it. */
  vrrp?: VrrpConfig;
}

/**
 * Check timing defaults. keepalived checks every 60 s (connect_timeout 5 s, down after retry+1 = 2
 * failures, up after 1 success); ldirectord every 10 s (timeout 5 s, failurecount 1, up after 1);
 * seesaw every 10 s (timeout 5 s, down after 1 failure). We check every 5 s with a 2 s timeout and
 * need 2 in a row either way: a dead server is out within about 12 s (keepalived: up to 125 s,
 * ldirectord: 15 s), and one lost packet neither takes a server out nor puts a bad one back.
 */
export const CHECK_DEFAULTS = Object.freeze({ interval: 5, timeout: 2, rise: 2, fall: 2 });
/** Other defaults, in seconds where they are durations. */
export const DIRECTOR_DEFAULTS = Object.freeze({
  resyncInterval: 10, drainTimeout: 300, quorum: 1, hysteresis: 0, onFailure: 'quiesce' as FailureAction, slowStart: 0,
});

// ---- the resolved form -------------------------------------------------------------------------

/** @internal A check with every default applied. */
export type ResolvedCheck = CheckSpec & { interval: number; timeout: number; rise: number; fall: number };

/** @internal */
export interface ResolvedDestination {
  /** 'address:port' ('[v6]:port'), unique within the service. */
  id: string;
  spec: DestinationSpec & { port: number; weight: number };
  checks: ResolvedCheck[];
  onFailure: FailureAction;
  slowStart: number;
  /** JSON of the checks: a destination whose checks did not change keeps its health. */
  checksKey: string;
}

/** @internal */
export interface ResolvedService {
  /** 'tcp 10.0.0.1:80', 'fwmark 7 inet'. */
  id: string;
  key: ServiceKey;
  spec: ServiceSpec;
  destinations: ResolvedDestination[];
  sorryServers: Array<{ id: string; spec: DestinationSpec & { port: number; weight: number } }>;
  drainTimeout: number;
  quorum: number;
  hysteresis: number;
  quorumUp?: string;
  quorumDown?: string;
}

/** @internal */
export interface ResolvedConfig {
  services: ResolvedService[];
  scope: DirectorScope;
  resyncInterval: number;
  vrrp?: ResolvedVrrp;
}

// ---- validation --------------------------------------------------------------------------------

const TOP_FIELDS = new Set(['services', 'scope', 'resyncInterval', 'defaults', 'vrrp']);
const DEFAULTS_FIELDS = new Set(['checks', 'onFailure', 'slowStart', 'drainTimeout']);
const SERVICE_DIRECTOR_FIELDS = [
  'destinations', 'checks', 'onFailure', 'slowStart', 'drainTimeout', 'quorum', 'hysteresis', 'sorryServers',
  'quorumUp', 'quorumDown',
];
const DESTINATION_DIRECTOR_FIELDS = ['checks', 'onFailure', 'slowStart'];
const COMMON_FIELDS = ['type', 'interval', 'timeout', 'rise', 'fall', 'address', 'port', 'bindAddress'];
const CHECK_FIELDS: Record<CheckType, ReadonlySet<string>> = {
  tcp: new Set(COMMON_FIELDS),
  http: new Set([...COMMON_FIELDS, 'method', 'path', 'host', 'expectStatus', 'body', 'bodyRegex', 'bodyMd5', 'tlsVerify', 'sni']),
  https: new Set([...COMMON_FIELDS, 'method', 'path', 'host', 'expectStatus', 'body', 'bodyRegex', 'bodyMd5', 'tlsVerify', 'sni']),
  udp: new Set([...COMMON_FIELDS, 'payload', 'expect']),
  dns: new Set([...COMMON_FIELDS, 'name', 'queryType', 'expectRcode', 'expectAnswer']),
  exec: new Set([...COMMON_FIELDS, 'command', 'dynamicWeight']),
  none: new Set([...COMMON_FIELDS, 'result']),
};
const CHECK_TYPES = Object.keys(CHECK_FIELDS) as CheckType[];
/** Ports a check type implies when neither the check nor the destination has one (fwmark services). */
export const DEFAULT_CHECK_PORTS: Partial<Record<CheckType, number>> = { http: 80, https: 443, dns: 53 };
const FAILURE_ACTIONS: FailureAction[] = ['quiesce', 'remove'];
/** Query types the DNS check can ask for, with their numbers (RFC 1035, 3596, 2782). */
export const DNS_TYPES: Readonly<Record<string, number>> = Object.freeze({
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, ANY: 255,
});
export const DNS_RCODES: Readonly<Record<string, number>> = Object.freeze({
  NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5,
});
const MAX_SECONDS = 86_400 * 365;

/** A duration in seconds: a finite number > 0 (or ≥ 0 with allowZero). */
function expectSeconds(value: unknown, field: string, allowZero = false): number {
  if (typeof value !== 'number') throw new TypeError(`${field} must be a number of seconds, got ${describe(value)}`);
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0) || value > MAX_SECONDS) {
    throw new RangeError(`${field} must be ${allowZero ? '0 or more' : 'more than 0'} seconds (at most ${MAX_SECONDS}), got ${value}`);
  }
  return value;
}

function expectAddressText(value: unknown, field: string): string {
  const text = expectString(value, field);
  if (!isAddress(text)) throw new RangeError(`${field} must be an IPv4 or IPv6 address, got ${describe(text)}`);
  return text;
}

function isAddress(text: string): boolean {
  return isIP(text) !== 0 && !text.includes('%');
}

function expectStringArray(value: unknown, field: string, minLength = 0): string[] {
  if (!Array.isArray(value)) throw new TypeError(`${field} must be an array, got ${describe(value)}`);
  if (value.length < minLength) throw new RangeError(`${field} must have at least ${minLength} element(s)`);
  return value.map((item, i) => expectString(item, `${field}[${i}]`));
}

function expectRegex(value: unknown, field: string): string {
  const text = expectString(value, field);
  try {
    new RegExp(text);
  } catch (error) {
    throw new RangeError(`${field} is not a valid regular expression: ${(error as Error).message}`);
  }
  return text;
}

/** Parses an expectStatus list into [low, high] ranges. @throws {TypeError|RangeError} */
export function parseStatusRanges(value: unknown, field: string): Array<[number, number]> {
  if (!Array.isArray(value)) throw new TypeError(`${field} must be an array of status codes or 'low-high' ranges, got ${describe(value)}`);
  if (value.length === 0) throw new RangeError(`${field} must not be empty`);
  return value.map((item, i): [number, number] => {
    const at = `${field}[${i}]`;
    if (typeof item === 'number') {
      expectInteger(item, at, 100, 599);
      return [item, item];
    }
    const text = expectString(item, at);
    const match = /^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$/.exec(text);
    if (!match) throw new RangeError(`${at} must be a status code or a 'low-high' range such as '200-299', got ${describe(text)}`);
    const low = Number(match[1]);
    const high = match[2] === undefined ? low : Number(match[2]);
    if (low < 100 || high > 599 || low > high) throw new RangeError(`${at} must be a range within 100–599 with low ≤ high, got ${describe(text)}`);
    return [low, high];
  });
}

/**
 * Checks one check spec and applies the timing defaults.
 * @throws {TypeError} for a wrong type or unknown field, {RangeError} for a value out of range
 *   (timeout not less than interval, rise/fall below 1, an unknown DNS type, a bad regex…).
 */
export function checkCheckSpec(value: unknown, field: string): ResolvedCheck {
  const spec = expectObject(value, field);
  const type = expectOneOf(spec.type, `${field}.type`, CHECK_TYPES);
  rejectUnknownKeys(spec, CHECK_FIELDS[type], field);
  const interval = spec.interval === undefined ? CHECK_DEFAULTS.interval : expectSeconds(spec.interval, `${field}.interval`);
  const timeout = spec.timeout === undefined
    ? Math.min(CHECK_DEFAULTS.timeout, interval / 2)
    : expectSeconds(spec.timeout, `${field}.timeout`);
  if (timeout >= interval) {
    throw new RangeError(`${field}.timeout (${timeout} s) must be less than ${field}.interval (${interval} s)`);
  }
  const rise = spec.rise === undefined ? CHECK_DEFAULTS.rise : expectInteger(spec.rise, `${field}.rise`, 1, 1000);
  const fall = spec.fall === undefined ? CHECK_DEFAULTS.fall : expectInteger(spec.fall, `${field}.fall`, 1, 1000);
  if (spec.address !== undefined) expectAddressText(spec.address, `${field}.address`);
  if (spec.port !== undefined) expectInteger(spec.port, `${field}.port`, 1, 65535);
  if (spec.bindAddress !== undefined) expectAddressText(spec.bindAddress, `${field}.bindAddress`);

  switch (type) {
    case 'tcp':
      break;
    case 'http':
    case 'https': {
      if (spec.method !== undefined && !/^[A-Z]+$/.test(expectString(spec.method, `${field}.method`))) {
        throw new RangeError(`${field}.method must be an upper-case HTTP method such as 'GET', got ${describe(spec.method)}`);
      }
      if (spec.path !== undefined && !expectString(spec.path, `${field}.path`).startsWith('/')) {
        throw new RangeError(`${field}.path must start with '/', got ${describe(spec.path)}`);
      }
      if (spec.host !== undefined) expectString(spec.host, `${field}.host`);
      if (spec.expectStatus !== undefined) parseStatusRanges(spec.expectStatus, `${field}.expectStatus`);
      if (spec.body !== undefined) expectString(spec.body, `${field}.body`);
      if (spec.bodyRegex !== undefined) expectRegex(spec.bodyRegex, `${field}.bodyRegex`);
      if (spec.bodyMd5 !== undefined && !/^[0-9a-fA-F]{32}$/.test(expectString(spec.bodyMd5, `${field}.bodyMd5`))) {
        throw new RangeError(`${field}.bodyMd5 must be 32 hex digits, got ${describe(spec.bodyMd5)}`);
      }
      if (spec.tlsVerify !== undefined) expectBoolean(spec.tlsVerify, `${field}.tlsVerify`);
      if (spec.sni !== undefined) expectString(spec.sni, `${field}.sni`);
      if (type === 'http' && (spec.tlsVerify !== undefined || spec.sni !== undefined)) {
        throw new RangeError(`${field}: tlsVerify and sni apply only to type 'https'`);
      }
      break;
    }
    case 'udp':
      if (spec.payload !== undefined) expectString(spec.payload, `${field}.payload`);
      if (spec.expect !== undefined) expectRegex(spec.expect, `${field}.expect`);
      break;
    case 'dns': {
      const name = expectString(spec.name, `${field}.name`);
      if (name.length === 0 || name.length > 253 || name.split('.').some((label, i, all) => label.length > 63 || (label.length === 0 && i !== all.length - 1))) {
        throw new RangeError(`${field}.name must be a domain name (labels of 1–63 characters, 253 at most), got ${describe(name)}`);
      }
      if (spec.queryType !== undefined) expectOneOf(spec.queryType, `${field}.queryType`, Object.keys(DNS_TYPES));
      if (spec.expectRcode !== undefined) expectOneOf(spec.expectRcode, `${field}.expectRcode`, Object.keys(DNS_RCODES));
      if (spec.expectAnswer !== undefined) expectString(spec.expectAnswer, `${field}.expectAnswer`);
      break;
    }
    case 'exec':
      expectStringArray(spec.command, `${field}.command`, 1);
      if ((spec.command as string[])[0] === '') throw new RangeError(`${field}.command[0] must not be empty`);
      if (spec.dynamicWeight !== undefined) expectBoolean(spec.dynamicWeight, `${field}.dynamicWeight`);
      if (spec.bindAddress !== undefined) throw new RangeError(`${field}.bindAddress does not apply to an exec check`);
      break;
    case 'none':
      if (spec.result !== undefined) expectOneOf(spec.result, `${field}.result`, ['up', 'down'] as const);
      if (spec.bindAddress !== undefined) throw new RangeError(`${field}.bindAddress does not apply to a none check`);
      break;
  }
  return { ...(spec as unknown as CheckSpec), interval, timeout, rise, fall };
}

function checkChecks(value: unknown, field: string): ResolvedCheck[] {
  if (!Array.isArray(value)) throw new TypeError(`${field} must be an array of checks, got ${describe(value)}`);
  if (value.length === 0) throw new RangeError(`${field} must have at least one check (use { type: 'none' } for none)`);
  return value.map((check, i) => checkCheckSpec(check, `${field}[${i}]`));
}

function pick(obj: Fields, omit: readonly string[]): Fields {
  const out: Fields = {};
  for (const [k, v] of Object.entries(obj)) if (!omit.includes(k) && v !== undefined) out[k] = v;
  return out;
}

/** 'tcp 10.0.0.1:80', 'fwmark 7', 'fwmark 7 inet6' — the id events and status use for a service. */
export function serviceId(key: ServiceKey): string {
  if ('fwmark' in key && key.fwmark !== undefined) return serviceKeyText(key);
  const k = key as { protocol: Protocol; address: string; port: number };
  return serviceKeyText({ protocol: k.protocol, address: canonicalAddress(k.address), port: k.port });
}

/** '10.0.0.2:80', '[2001:db8::2]:80' — the id of a destination within its service. */
export function hostPort(address: string, port: number): string {
  return destinationKeyText({ address: canonicalAddress(address), port });
}

function serviceKeyOf(spec: Fields, key: CheckedKey): ServiceKey {
  return key.fwmark
    ? { fwmark: spec.fwmark as number, family: key.family }
    : { protocol: spec.protocol as Protocol, address: canonicalAddress(spec.address as string), port: key.port };
}

function checkPolicies(
  spec: Fields, field: string, inherited: { onFailure: FailureAction; slowStart: number },
): { onFailure: FailureAction; slowStart: number } {
  return {
    onFailure: spec.onFailure === undefined ? inherited.onFailure : expectOneOf(spec.onFailure, `${field}.onFailure`, FAILURE_ACTIONS),
    slowStart: spec.slowStart === undefined ? inherited.slowStart : expectSeconds(spec.slowStart, `${field}.slowStart`, true),
  };
}

/**
 * Validates a whole director configuration and applies every default. Nothing is sent to the
 * kernel: a config that fails here changes nothing.
 * @throws {TypeError} for a wrong type, a missing or unknown field (misspelt options are errors).
 * @throws {RangeError} for a value out of range, a duplicate service or destination, a timeout
 *   not less than its interval. Messages start with the field's path, e.g.
 *   `services[0].destinations[1].checks[0].timeout must be …`.
 */
export function resolveConfig(value: unknown): ResolvedConfig {
  const config = expectObject(value, 'config');
  rejectUnknownKeys(config, TOP_FIELDS, 'config');
  {
    const resyncInterval = config.resyncInterval === undefined
      ? DIRECTOR_DEFAULTS.resyncInterval
      : expectSeconds(config.resyncInterval, 'resyncInterval');
    const checkedScope = checkScope(config.scope, 'scope');
    const scope = checkedScope.value;
    const defaults = config.defaults === undefined ? {} : expectObject(config.defaults, 'defaults');
    rejectUnknownKeys(defaults, DEFAULTS_FIELDS, 'defaults');
    const defaultChecks = defaults.checks === undefined ? undefined : checkChecks(defaults.checks, 'defaults.checks');
    const defaultPolicies = checkPolicies(defaults, 'defaults', { onFailure: DIRECTOR_DEFAULTS.onFailure, slowStart: DIRECTOR_DEFAULTS.slowStart });
    const defaultDrain = defaults.drainTimeout === undefined
      ? DIRECTOR_DEFAULTS.drainTimeout
      : expectSeconds(defaults.drainTimeout, 'defaults.drainTimeout', true);

    if (!Array.isArray(config.services)) throw new TypeError(`services must be an array, got ${describe(config.services)}`);
    const seenServices = new Map<string, number>();
    const services = config.services.map((raw, s): ResolvedService => {
      const field = `services[${s}]`;
      const spec = expectObject(raw, field);
      const serviceSpec = pick(spec, SERVICE_DIRECTOR_FIELDS);
      const { key } = checkServiceDefinition(serviceSpec, field);
      const serviceKey = serviceKeyOf(spec, key);
      const id = serviceId(serviceKey);
      const earlier = seenServices.get(id);
      if (earlier !== undefined) throw new RangeError(`${field} duplicates services[${earlier}] (${id})`);
      seenServices.set(id, s);

      const serviceChecks = spec.checks === undefined ? defaultChecks ?? [checkCheckSpec({ type: 'tcp' }, `${field}.checks[0]`)] : checkChecks(spec.checks, `${field}.checks`);
      const policies = checkPolicies(spec, field, defaultPolicies);
      const drainTimeout = spec.drainTimeout === undefined ? defaultDrain : expectSeconds(spec.drainTimeout, `${field}.drainTimeout`, true);
      const quorum = spec.quorum === undefined ? DIRECTOR_DEFAULTS.quorum : expectInteger(spec.quorum, `${field}.quorum`, 0, 0x7fffffff);
      const hysteresis = spec.hysteresis === undefined ? DIRECTOR_DEFAULTS.hysteresis : expectInteger(spec.hysteresis, `${field}.hysteresis`, 0, 0x7fffffff);
      if (hysteresis > quorum) throw new RangeError(`${field}.hysteresis (${hysteresis}) must not exceed quorum (${quorum})`);
      const quorumUp = spec.quorumUp === undefined ? undefined : expectString(spec.quorumUp, `${field}.quorumUp`);
      const quorumDown = spec.quorumDown === undefined ? undefined : expectString(spec.quorumDown, `${field}.quorumDown`);

      if (!Array.isArray(spec.destinations)) throw new TypeError(`${field}.destinations must be an array, got ${describe(spec.destinations)}`);
      const seenDestinations = new Map<string, string>();
      const destinationId = (d: Fields, at: string): { id: string; port: number } => {
        const port = d.port === undefined ? key.port : (d.port as number);
        const destId = hostPort(d.address as string, port);
        const earlierDest = seenDestinations.get(destId);
        if (earlierDest !== undefined) throw new RangeError(`${at} duplicates ${earlierDest} (${destId})`);
        seenDestinations.set(destId, at);
        return { id: destId, port };
      };
      const destinations = spec.destinations.map((rawDest, d): ResolvedDestination => {
        const at = `${field}.destinations[${d}]`;
        const dest = expectObject(rawDest, at);
        const destSpec = pick(dest, DESTINATION_DIRECTOR_FIELDS);
        checkDestinationSpec(destSpec, key, at);
        const { id: destId, port } = destinationId(dest, at);
        const checks = dest.checks === undefined ? serviceChecks : checkChecks(dest.checks, `${at}.checks`);
        checks.forEach((check, c) => {
          const needsPort = check.type !== 'exec' && check.type !== 'none';
          if (needsPort && !check.port && !port && !DEFAULT_CHECK_PORTS[check.type]) {
            const where = dest.checks === undefined ? `${at} (checks from the service)` : `${at}.checks[${c}]`;
            throw new RangeError(`${where}: a ${check.type} check needs a port (the destination has none); set the check's port`);
          }
        });
        const destPolicies = checkPolicies(dest, at, policies);
        const weight = (destSpec.weight as number | undefined) ?? 1;
        return {
          id: destId,
          spec: { ...(destSpec as unknown as DestinationSpec), address: canonicalAddress(dest.address as string), port, weight },
          checks,
          ...destPolicies,
          checksKey: JSON.stringify(checks),
        };
      });
      const sorryServers = spec.sorryServers === undefined ? [] : (() => {
        if (!Array.isArray(spec.sorryServers)) throw new TypeError(`${field}.sorryServers must be an array, got ${describe(spec.sorryServers)}`);
        return spec.sorryServers.map((rawSorry, i) => {
          const at = `${field}.sorryServers[${i}]`;
          checkDestinationSpec(rawSorry, key, at);
          const sorry = rawSorry as Fields;
          const { id: sorryId, port } = destinationId(sorry, at);
          const weight = (sorry.weight as number | undefined) ?? 1;
          return { id: sorryId, spec: { ...(sorry as unknown as DestinationSpec), address: canonicalAddress(sorry.address as string), port, weight } };
        });
      })();
      return {
        id, key: serviceKey, spec: { ...(serviceSpec as unknown as ServiceSpec), ...serviceKey } as ServiceSpec,
        destinations, sorryServers, drainTimeout, quorum, hysteresis,
        ...(quorumUp !== undefined ? { quorumUp } : {}), ...(quorumDown !== undefined ? { quorumDown } : {}),
      };
    });
    // The table side: reconcile's own check of the desired state (scope membership included).
    checkDesiredState(config.services.map((raw) => {
      const spec = raw as Fields;
      return { ...pick(spec, SERVICE_DIRECTOR_FIELDS), destinations: (spec.destinations as Fields[]).map((d) => pick(d, DESTINATION_DIRECTOR_FIELDS)) };
    }), checkedScope, 'services');
    const vrrp = config.vrrp === undefined ? undefined : checkVrrpConfig(config.vrrp, 'vrrp');
    return { services, scope, resyncInterval, ...(vrrp ? { vrrp } : {}) };
  }
}
