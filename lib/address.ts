// IP address text <-> the kernel's 16-byte union nf_inet_addr (IPv4 in the first 4 bytes).
import { isIPv4, isIPv6 } from 'node:net';

import { AF_INET, AF_INET6 } from './constants';

export type AddressFamily = 'inet' | 'inet6';

export function familyOf(address: string): AddressFamily | undefined {
  // node:net accepts a zone ('fe80::1%eth0'); IPVS addresses have none, so it would be lost.
  if (address.includes('%')) return undefined;
  if (isIPv4(address)) return 'inet';
  if (isIPv6(address)) return 'inet6';
  return undefined;
}

export function familyNumber(family: AddressFamily): number {
  return family === 'inet' ? AF_INET : AF_INET6;
}

export function familyName(af: number | undefined): AddressFamily {
  return af === AF_INET6 ? 'inet6' : 'inet';
}

function ipv4Bytes(address: string): number[] {
  return address.split('.').map(Number);
}

function ipv6Bytes(address: string): number[] {
  let text = address;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {  // an embedded IPv4 tail, e.g. ::ffff:10.0.0.1
    tail = ipv4Bytes(text.slice(lastColon + 1));
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const headGroups = head ? head.split(':') : [];
  const restGroups = rest ? rest.split(':') : [];
  const zeros = rest === undefined ? 0 : 8 - headGroups.length - restGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...restGroups].map((g) => parseInt(g, 16));
  const bytes = groups.flatMap((g) => [g >> 8, g & 0xff]);
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** Encodes a validated IPv4 or IPv6 address as 16 bytes. */
export function encodeAddress(address: string): Buffer {
  const out = Buffer.alloc(16);
  const bytes = isIPv4(address) ? ipv4Bytes(address) : ipv6Bytes(address);
  Buffer.from(bytes).copy(out);
  return out;
}

/**
 * Decodes 16 bytes of the given family to canonical text: IPv6 compressed per RFC 5952, with
 * an IPv4-mapped address in mixed notation (::ffff:10.0.0.1) as RFC 5952 §5 and inet_ntop do.
 */
export function decodeAddress(bytes: Uint8Array, family: AddressFamily): string {
  if (family === 'inet') return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  let bestStart = -1;
  let bestLength = 1;  // RFC 5952: a single zero group is not compressed
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) { bestStart = i; bestLength = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLength).join(':');
  return `${head}::${tail}`;
}

/** Canonical text for comparison: what decodeAddress(encodeAddress(a)) gives. */
export function canonicalAddress(address: string): string {
  const family = familyOf(address);
  if (!family) return address;
  return decodeAddress(encodeAddress(address), family);
}

export function afNumberOf(address: string): number {
  return isIPv4(address) ? AF_INET : AF_INET6;
}
