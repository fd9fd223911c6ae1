// IP address text <-> the kernel's 16-byte union nf_inet_addr (IPv4 in the first 4 bytes).
// Parsing and checking are one pass over the text that writes straight into the target bytes:
// batches parse one address per operation, so this runs thousands of times per commit. It
// accepts exactly what node:net's isIPv4/isIPv6 accept, minus zones ('fe80::1%eth0'), which
// IPVS addresses cannot carry.
import { AF_INET, AF_INET6 } from './constants';

export type AddressFamily = 'inet' | 'inet6';

const DOT = 0x2e;
const COLON = 0x3a;
const scratch = new Uint8Array(16);

/** Dotted-quad IPv4 in text[start, end): four decimal octets 0-255 without leading zeros. */
function parseIPv4(text: string, start: number, end: number, out: Uint8Array, at: number): boolean {
  let octet = 0;
  let digits = 0;
  let octets = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && octet === 0) return false;  // a leading zero ('01', '00')
      octet = octet * 10 + (c - 0x30);
      if (octet > 255) return false;
      digits++;
    } else if (c === DOT && digits > 0 && octets < 3) {
      out[at + octets++] = octet;
      octet = 0;
      digits = 0;
    } else {
      return false;
    }
  }
  if (digits === 0 || octets !== 3) return false;
  out[at + 3] = octet;
  return true;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/**
 * RFC 4291 §2.2 text: eight groups of 1-4 hex digits, or fewer with one '::' standing for at
 * least one zero group, optionally ending in an IPv4 address that counts as two groups.
 */
function parseIPv6(text: string, out: Uint8Array, at: number): boolean {
  const end = text.length;
  let groups = 0;  // groups written so far, at out[at + 2 * group]
  let gap = -1;    // the group index '::' stands at
  let i = 0;
  if (text.charCodeAt(0) === COLON) {
    if (text.charCodeAt(1) !== COLON) return false;
    gap = 0;
    i = 2;
  }
  while (i < end) {
    if (groups === 8) return false;
    let value = 0;
    let j = i;
    for (; j < end && j - i <= 4; j++) {
      const digit = hexDigit(text.charCodeAt(j));
      if (digit < 0) break;
      value = (value << 4) | digit;
    }
    if (j < end && text.charCodeAt(j) === DOT) {
      // An IPv4 tail ends the text: it re-reads the digits just taken as hex.
      if (groups > 6 || !parseIPv4(text, i, end, out, at + 2 * groups)) return false;
      groups += 2;
      break;
    }
    const digits = j - i;
    if (digits === 0 || digits > 4) return false;
    out[at + 2 * groups] = value >> 8;
    out[at + 2 * groups + 1] = value & 0xff;
    groups++;
    if (j === end) break;
    if (text.charCodeAt(j) !== COLON || j + 1 === end) return false;  // a trailing single ':'
    i = j + 1;
    if (text.charCodeAt(i) === COLON) {
      if (gap >= 0) return false;  // a second '::'
      gap = groups;
      i++;
    }
  }
  if (gap < 0) return groups === 8;
  if (groups > 7) return false;
  const start = at + 2 * gap;
  const tailBytes = 2 * (groups - gap);
  out.copyWithin(at + 16 - tailBytes, start, start + tailBytes);
  zero(out, start, at + 16 - tailBytes);
  return true;
}

// A loop, not fill(): on a Buffer, fill() is Node's argument-checking version, which cost more
// than parsing the address.
function zero(out: Uint8Array, start: number, end: number): void {
  for (let i = start; i < end; i++) out[i] = 0;
}

/**
 * Parses IPv4 or IPv6 text and writes its 16 bytes (union nf_inet_addr) at `out[offset]`.
 * Returns the family, or undefined when `text` is not an address; those 16 bytes are then
 * unspecified. Never throws.
 */
export function parseAddress(text: string, out: Uint8Array, offset = 0): AddressFamily | undefined {
  if (parseIPv4(text, 0, text.length, out, offset)) {
    zero(out, offset + 4, offset + 16);
    return 'inet';
  }
  return parseIPv6(text, out, offset) ? 'inet6' : undefined;
}

export function familyOf(address: string): AddressFamily | undefined {
  return parseAddress(address, scratch);
}

export function familyNumber(family: AddressFamily): number {
  return family === 'inet' ? AF_INET : AF_INET6;
}

export function familyName(af: number | undefined): AddressFamily {
  return af === AF_INET6 ? 'inet6' : 'inet';
}

/**
 * Encodes an IPv4 or IPv6 address as 16 bytes.
 * @throws {RangeError} when `address` is not one (callers validate first).
 */
export function encodeAddress(address: string): Buffer {
  const out = Buffer.allocUnsafe(16);
  if (!parseAddress(address, out)) throw new RangeError(`not an IPv4 or IPv6 address: ${JSON.stringify(address)}`);
  return out;
}

const groupValues = new Uint16Array(8);
/** The decimal text of every byte value: IPv4 text is then four loads and three joins. */
const OCTETS: readonly string[] = Array.from({ length: 256 }, (_, i) => String(i));
/** The same with the dot that follows: three joins, not six, and two short-lived strings, not five. */
const OCTETS_DOT: readonly string[] = OCTETS.map((octet) => `${octet}.`);

function ipv4Text(bytes: Uint8Array, at: number): string {
  return OCTETS_DOT[bytes[at]!]! + OCTETS_DOT[bytes[at + 1]!]! + OCTETS_DOT[bytes[at + 2]!]! + OCTETS[bytes[at + 3]!]!;
}

/**
 * Decodes the 16 bytes at `bytes[offset]` of the given family to canonical text: IPv6
 * compressed per RFC 5952, with an IPv4-mapped address in mixed notation (::ffff:10.0.0.1)
 * as RFC 5952 §5 and inet_ntop do. Never throws.
 */
export function decodeAddress(bytes: Uint8Array, family: AddressFamily, offset = 0): string {
  const b = offset;
  if (family === 'inet') return ipv4Text(bytes, b);
  const groups = groupValues;
  for (let g = 0; g < 8; g++) groups[g] = ((bytes[b + 2 * g] ?? 0) << 8) | (bytes[b + 2 * g + 1] ?? 0);
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `::ffff:${bytes[b + 12]}.${bytes[b + 13]}.${bytes[b + 14]}.${bytes[b + 15]}`;
  }
  // RFC 5952 §4.2: compress the first longest run of two or more zero groups.
  let bestStart = -1;
  let bestLength = 1;
  for (let g = 0; g < 8; ) {
    if (groups[g] !== 0) { g++; continue; }
    let run = g;
    while (run < 8 && groups[run] === 0) run++;
    if (run - g > bestLength) { bestStart = g; bestLength = run - g; }
    g = run;
  }
  let text = '';
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      text += '::';
      g += bestLength - 1;
      continue;
    }
    if (text.length > 0 && g !== bestStart + bestLength) text += ':';
    text += (groups[g] as number).toString(16);
  }
  return text;
}

/** Canonical text for comparison: what decodeAddress(encodeAddress(a)) gives; non-addresses unchanged. */
export function canonicalAddress(address: string): string {
  const family = parseAddress(address, scratch);
  return family ? decodeAddress(scratch, family) : address;
}
