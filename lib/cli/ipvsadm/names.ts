// Address, port and name conversions with the C library's semantics that ipvsadm relies on:
// inet_aton's forms ('10.1', '0x0a000001'), glibc inet_ntop's IPv6 text, /etc/services, and
// host names through the system resolver (getaddrinfo/getnameinfo via node:dns).
import { readFileSync } from 'node:fs';

import { parseAddress } from '../../address';

export const AF_INET = 2;
export const AF_INET6 = 10;

/** strtoul-style digits of one inet_aton part in base 16, 8 or 10; undefined if malformed. */
function atonPart(text: string): number | undefined {
  if (text.length > 0 && text.length <= 10 && text.charCodeAt(0) !== 48) {
    let value = 0;
    let i = 0;
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      value = value * 10 + c;
    }
    if (i === text.length) return value;
  }
  let base = 10;
  let digits = text;
  if (/^0[xX]/.test(text)) {
    base = 16;
    digits = text.slice(2);
    if (!/^[0-9a-fA-F]*$/.test(digits)) return undefined;
    if (digits === '') return 0;  // glibc accepts a bare "0x" as 0
  } else if (text.startsWith('0')) {
    base = 8;
    if (!/^[0-7]+$/.test(text)) return undefined;
  } else if (!/^[0-9]+$/.test(text)) {
    return undefined;
  }
  const value = parseInt(digits, base);
  return Number.isFinite(value) ? value : undefined;
}

/**
 * inet_aton(3): one to four dot-separated numbers (decimal, 0-octal or 0x-hex), the last one
 * filling the remaining bytes. Writes the 4 bytes at out[0..3] and returns true on success.
 */
export function inetAton(text: string, out: Uint8Array): boolean {
  // glibc stops at the first whitespace and ignores the rest.
  const end = text.search(/[ \t\n\v\f\r]/);
  const body = end >= 0 ? text.slice(0, end) : text;
  if (body === '') return false;
  const parts = body.split('.');
  if (parts.length > 4) return false;
  const values: number[] = [];
  for (const part of parts) {
    if (part === '') return false;
    const value = atonPart(part);
    if (value === undefined) return false;
    values.push(value);
  }
  const last = values[values.length - 1]!;
  const head = values.slice(0, -1);
  if (head.some((v) => v > 0xff)) return false;
  const lastMax = [0xffffffff, 0xffffff, 0xffff, 0xff][head.length]!;
  if (last > lastMax) return false;
  let value = last;
  for (let i = 0; i < head.length; i++) value += head[i]! * 2 ** (8 * (3 - i));
  out[0] = Math.floor(value / 2 ** 24) & 0xff;
  out[1] = (value >>> 16) & 0xff;
  out[2] = (value >>> 8) & 0xff;
  out[3] = value & 0xff;
  return true;
}

/** inet_pton(AF_INET6, …): writes 16 bytes and returns true for an IPv6 address. */
export function inetPton6(text: string, out: Uint8Array): boolean {
  if (!text.includes(':')) return false;
  return parseAddress(text, out, 0) === 'inet6';
}

/** inet_pton(AF_INET, …): a strict dotted quad. */
export function inetPton4(text: string, out: Uint8Array): boolean {
  const scratch = new Uint8Array(16);
  if (parseAddress(text, scratch, 0) !== 'inet') return false;
  out.set(scratch.subarray(0, 4));
  return true;
}

/** IPv4 text of the 4 bytes at bytes[offset]. */
export function ntop4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/**
 * glibc inet_ntop(AF_INET6): the first longest run of two or more zero groups becomes '::',
 * and an address whose first 96 bits are zero (IPv4-compatible, but not ::1 or ::) or that is
 * IPv4-mapped ends in dotted IPv4.
 */
export function ntop6(bytes: Uint8Array, offset = 0): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((bytes[offset + 2 * i]! << 8) | bytes[offset + 2 * i + 1]!);
  let bestBase = -1;
  let bestLength = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) { bestBase = i; bestLength = j - i; }
    i = j;
  }
  if (bestLength < 2) bestBase = -1;
  let text = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLength) {
      if (i === bestBase) text += ':';
      continue;
    }
    if (i !== 0) text += ':';
    if (i === 6 && bestBase === 0 && (bestLength === 6 || (bestLength === 5 && words[5] === 0xffff))) {
      text += ntop4(bytes, offset + 12);
      break;
    }
    text += words[i]!.toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLength === 8) text += ':';
  return text;
}

export function ntop(af: number, bytes: Uint8Array, offset = 0): string {
  return af === AF_INET6 ? ntop6(bytes, offset) : ntop4(bytes, offset);
}

// ---- /etc/services -------------------------------------------------------------------------

interface ServicesDb {
  byName: Map<string, number>;
  byPort: Map<string, string>;
}

let services: ServicesDb | undefined;

/** /etc/services, read once, as getservbyname/getservbyport see it (first entry wins). */
function servicesDb(): ServicesDb {
  if (services) return services;
  const db: ServicesDb = { byName: new Map(), byPort: new Map() };
  let text = '';
  try {
    text = readFileSync('/etc/services', 'utf8');
  } catch {
    // no services database: only numeric ports resolve
  }
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [name, portProto, ...aliases] = line.split(/\s+/);
    const match = /^(\d+)\/(\w+)$/.exec(portProto ?? '');
    if (!name || !match) continue;
    const port = Number(match[1]);
    const proto = match[2]!;
    for (const n of [name, ...aliases]) {
      const key = `${n}/${proto}`;
      if (!db.byName.has(key)) db.byName.set(key, port);
    }
    const portKey = `${port}/${proto}`;
    if (!db.byPort.has(portKey)) db.byPort.set(portKey, name);
  }
  services = db;
  return db;
}

const PROTOCOL_DB_NAMES: Record<number, string> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };

/** getservbyname(name, proto) for TCP, UDP and SCTP; -1 when unknown. */
export function serviceToPort(name: string, protocol: number): number {
  const proto = PROTOCOL_DB_NAMES[protocol];
  if (!proto) return -1;
  return servicesDb().byName.get(`${name}/${proto}`) ?? -1;
}

/** getservbyport(port, proto) or the number, as ipvsadm's port_to_anyname. */
export function portToAnyName(port: number, protocol: number): string {
  const proto = PROTOCOL_DB_NAMES[protocol];
  return (proto && servicesDb().byPort.get(`${port}/${proto}`)) || String(port);
}

// ---- host names ----------------------------------------------------------------------------

/** gethostbyname(3) for IPv4, through the system resolver; undefined when it does not resolve. */
export async function hostToAddress4(name: string): Promise<Uint8Array | undefined> {
  if (name === '') return undefined;
  const dns = await import('node:dns');
  try {
    const { address } = await dns.promises.lookup(name, { family: 4 });
    const out = new Uint8Array(4);
    return inetPton4(address, out) ? out : undefined;
  } catch {
    return undefined;
  }
}

const reverseCache = new Map<string, Promise<string | undefined>>();

/** The host name of an address (getnameinfo with NI_NAMEREQD), cached; undefined when none. */
export function addressToHost(address: string): Promise<string | undefined> {
  let pending = reverseCache.get(address);
  if (!pending) {
    pending = import('node:dns').then((dns) => dns.promises.lookupService(address, 0))
      .then(({ hostname }) => hostname, () => undefined);
    reverseCache.set(address, pending);
  }
  return pending;
}
