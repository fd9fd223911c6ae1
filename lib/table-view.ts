// Read access to the addon's packed table (native/table_records.h) without building Service
// and Destination objects: for code that only prints or counts the table (the ipvsadm
// listings, the metrics exposition), where ten BigInts and some forty properties per
// destination cost more than the kernel's dump itself. Field for field, it reads what
// lib/table.ts builds objects from, with the same defaults for absent fields.
import { AF_INET, AF_INET6, FORWARD_METHODS, FWD_MASK, PROTOCOL_NUMBERS, SVC_F_PERSISTENT } from './constants';
import { decodeAddress } from './address';
import type { NativeTable } from './native';
import { recordLayout } from './records';

/** @internal Absolute word offsets and present bits of the reply records, read once from the addon. */
export class ReplyLayout {
  readonly svcWords: number;
  readonly svc;
  readonly svcHas;
  readonly dstWords: number;
  readonly dst;
  readonly dstHas;

  constructor() {
    const { service, destination } = recordLayout();
    this.svcWords = service.words;
    this.svc = { ...service.at };
    this.svcHas = { ...service.bit };
    this.dstWords = destination.words;
    this.dst = { ...destination.at };
    this.dstHas = { ...destination.bit };
  }
}

let replyLayout: ReplyLayout | undefined;
/** @internal */
export const layoutOf = (): ReplyLayout => (replyLayout ??= new ReplyLayout());

export const bytesOf = (words: Uint32Array): Uint8Array => new Uint8Array(words.buffer, words.byteOffset, words.byteLength);

/** The ten counters of a stats field, by their position in it (two words each). */
export const Counter = {
  connections: 0, packetsIn: 1, packetsOut: 2, bytesIn: 3, bytesOut: 4,
  connectionRate: 5, packetRateIn: 6, packetRateOut: 7, byteRateIn: 8, byteRateOut: 9,
} as const;

const TWO_32 = 4294967296;

/** Destination.forward by kernel number; numbers without a method read as masq, as lib/destination.ts names them. */
const FORWARD_NAMES: readonly string[] = Array.from({ length: FWD_MASK + 1 },
  (_, n) => Object.entries(FORWARD_METHODS).find(([, v]) => v === n)?.[0] ?? 'masq');

/**
 * @internal The packed table, read in place. Services are numbered 0..serviceCount-1 and
 * destinations 0..destinationCount-1 in the kernel's order; service s owns destinations
 * firstDestination[s] up to firstDestination[s + 1]. Word arrays and offsets are public so
 * that hot loops can read fields without a call per field.
 */
export class TableView {
  /** The records this view reads. */
  readonly native: NativeTable;
  readonly L: ReplyLayout;
  readonly services: Uint32Array;
  readonly destinations: Uint32Array;
  readonly serviceBytes: Uint8Array;
  readonly destinationBytes: Uint8Array;
  readonly strings: readonly string[];
  readonly serviceCount: number;
  readonly destinationCount: number;
  readonly firstDestination: Uint32Array;

  /** @throws {Error} when the records are inconsistent (an addon bug), never for kernel data. */
  constructor(table: NativeTable) {
    const L = layoutOf();
    this.native = table;
    this.L = L;
    this.services = table.services;
    this.destinations = table.destinations;
    this.serviceBytes = bytesOf(table.services);
    this.destinationBytes = bytesOf(table.destinations);
    this.strings = table.strings;
    this.serviceCount = Math.floor(table.services.length / L.svcWords);
    this.destinationCount = Math.floor(table.destinations.length / L.dstWords);
    const first = new Uint32Array(this.serviceCount + 1);
    let next = 0;
    const countAt = L.svc.destinationCount;
    for (let s = 0; s < this.serviceCount; s++) {
      first[s] = next;
      next += table.services[s * L.svcWords + countAt]!;
    }
    if (next > this.destinationCount) throw new Error('listTable: the addon packed fewer destinations than it counted');
    first[this.serviceCount] = next;
    this.firstDestination = first;
  }

  // ---- services -------------------------------------------------------------------------

  #svcWord(s: number, at: number, bit: number): number | undefined {
    const base = s * this.L.svcWords;
    return (this.services[base]! & bit) !== 0 ? this.services[base + at]! : undefined;
  }

  /** AF_INET6, or AF_INET for anything else (an absent family included), as familyName() reads it. */
  serviceAf(s: number): number {
    return this.#svcWord(s, this.L.svc.af, this.L.svcHas.af) === AF_INET6 ? AF_INET6 : AF_INET;
  }

  /** The mark of a fwmark service; 0 for a service by address (the kernel's zero mark). */
  fwmark(s: number): number {
    return this.#svcWord(s, this.L.svc.fwmark, this.L.svcHas.fwmark) ?? 0;
  }

  /** The protocol number; undefined when the kernel sent none. */
  protocol(s: number): number | undefined {
    return this.#svcWord(s, this.L.svc.protocol, this.L.svcHas.protocol);
  }

  /** Service.protocol: tcp, udp, sctp, or ip-proto-N (N undefined when absent, as serviceFromWire writes it). */
  protocolName(s: number): string {
    const n = this.protocol(s);
    return n === PROTOCOL_NUMBERS.tcp ? 'tcp' : n === PROTOCOL_NUMBERS.udp ? 'udp' : n === PROTOCOL_NUMBERS.sctp ? 'sctp' : `ip-proto-${n}`;
  }

  port(s: number): number {
    return this.#svcWord(s, this.L.svc.port, this.L.svcHas.port) ?? 0;
  }

  /** Byte offset of the service's 16 address bytes in serviceBytes (zero when absent). */
  serviceAddressAt(s: number): number {
    return (s * this.L.svcWords + this.L.svc.address) * 4;
  }

  /** The service's address as Service.address reads (RFC 5952 for IPv6). */
  serviceAddress(s: number): string {
    return decodeAddress(this.serviceBytes, this.serviceAf(s) === AF_INET6 ? 'inet6' : 'inet', this.serviceAddressAt(s));
  }

  scheduler(s: number): string {
    const index = this.#svcWord(s, this.L.svc.scheduler, this.L.svcHas.scheduler);
    return index === undefined ? '' : this.strings[index] ?? '';
  }

  /** The persistence engine, or undefined (none, or an empty name). */
  persistenceEngine(s: number): string | undefined {
    const index = this.#svcWord(s, this.L.svc.peName, this.L.svcHas.peName);
    return index === undefined ? undefined : this.strings[index] || undefined;
  }

  flags(s: number): number {
    return this.#svcWord(s, this.L.svc.flags, this.L.svcHas.flags) ?? 0;
  }

  /** The persistence timeout of a persistent service, else undefined (Service.persistent). */
  persistent(s: number): number | undefined {
    if ((this.flags(s) & SVC_F_PERSISTENT) === 0) return undefined;
    return this.#svcWord(s, this.L.svc.timeout, this.L.svcHas.timeout) ?? 0;
  }

  /** The raw netmask word; undefined when absent. */
  netmask(s: number): number | undefined {
    return this.#svcWord(s, this.L.svc.netmask, this.L.svcHas.netmask);
  }

  destinationCountOf(s: number): number {
    return this.firstDestination[s + 1]! - this.firstDestination[s]!;
  }

  /** Word index of counter `k` (its low word; the high word follows) of service `s`. */
  serviceCounterAt(s: number, k: number): number {
    return s * this.L.svcWords + this.L.svc.stats + 2 * k;
  }

  // ---- destinations --------------------------------------------------------------------

  #dstWord(d: number, at: number): number {
    return this.destinations[d * this.L.dstWords + at]!;
  }

  /** The destination's family: its own when the kernel sent one, else `serviceAf`. */
  destinationAf(d: number, serviceAf: number): number {
    const base = d * this.L.dstWords;
    if ((this.destinations[base]! & this.L.dstHas.af) === 0) return serviceAf;
    return this.destinations[base + this.L.dst.af] === AF_INET6 ? AF_INET6 : AF_INET;
  }

  /** Byte offset of the destination's 16 address bytes in destinationBytes. */
  destinationAddressAt(d: number): number {
    return (d * this.L.dstWords + this.L.dst.address) * 4;
  }

  destinationAddress(d: number, af: number): string {
    return decodeAddress(this.destinationBytes, af === AF_INET6 ? 'inet6' : 'inet', this.destinationAddressAt(d));
  }

  destinationPort(d: number): number { return this.#dstWord(d, this.L.dst.port); }
  /** The forwarding method number (FWD_MASK bits), as Destination.forward is named from. */
  forward(d: number): number { return this.#dstWord(d, this.L.dst.forward) & FWD_MASK; }
  /** Destination.forward: masq, local, tunnel, route or bypass. */
  forwardName(d: number): string { return FORWARD_NAMES[this.forward(d)]!; }
  weight(d: number): number { return this.#dstWord(d, this.L.dst.weight); }
  upperThreshold(d: number): number { return this.#dstWord(d, this.L.dst.upperThreshold); }
  lowerThreshold(d: number): number { return this.#dstWord(d, this.L.dst.lowerThreshold); }
  activeConnections(d: number): number { return this.#dstWord(d, this.L.dst.activeConnections); }
  inactiveConnections(d: number): number { return this.#dstWord(d, this.L.dst.inactiveConnections); }
  persistentConnections(d: number): number { return this.#dstWord(d, this.L.dst.persistentConnections); }
  /** The tunnel type number (0, ipip, when absent: the same text either way). */
  tunnelType(d: number): number { return this.#dstWord(d, this.L.dst.tunnelType); }
  tunnelPort(d: number): number { return this.#dstWord(d, this.L.dst.tunnelPort); }
  tunnelFlags(d: number): number { return this.#dstWord(d, this.L.dst.tunnelFlags); }

  /** Word index of counter `k` (its low word; the high word follows) of destination `d`. */
  destinationCounterAt(d: number, k: number): number {
    return d * this.L.dstWords + this.L.dst.stats + 2 * k;
  }
}

// ---- u64 counters as decimal, without BigInt -------------------------------------------------

const ZERO = 0x30;
const E8 = 100000000;

/**
 * Writes the u64 `high * 2^32 + low` in decimal at `out[at]`; returns the position after it.
 * `out` needs room for 20 bytes. Exact for every value: above 2^53 the number is split into
 * base-10^8 limbs from 16-bit pieces of `high`, each product well inside 2^53.
 */
export function writeU64(out: Uint8Array, at: number, low: number, high: number): number {
  if (high < 0x200000) return writeUint(out, at, high * TWO_32 + low);
  // high = a * 2^16 + b; 2^48 = 2814749 * 10^8 + 76710656; 2^32 = 42 * 10^8 + 94967296.
  const a = Math.floor(high / 65536);
  const b = high % 65536;
  const lowPart = a * 76710656 + b * 94967296 + low;
  const top = a * 2814749 + b * 42 + Math.floor(lowPart / E8);
  const rest = lowPart % E8;
  at = writeUint(out, at, top);
  for (let i = 7; i >= 0; i--) out[at + 7 - i] = ZERO + (Math.floor(rest / 10 ** i) % 10);
  return at + 8;
}

/** Writes a non-negative safe integer in decimal at `out[at]`; returns the position after it. */
export function writeUint(out: Uint8Array, at: number, value: number): number {
  if (value < 10) {
    out[at] = ZERO + value;
    return at + 1;
  }
  let digits = 1;
  for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  let end = at + digits;
  for (let rest = value; end > at; rest = Math.floor(rest / 10)) out[--end] = ZERO + (rest % 10);
  return at + digits;
}

const u64Scratch = new Uint8Array(20);

/** The u64 `high * 2^32 + low` as decimal text. */
export function u64Text(low: number, high: number): string {
  if (high < 0x200000) return String(high * TWO_32 + low);
  const end = writeU64(u64Scratch, 0, low, high);
  let text = '';
  for (let i = 0; i < end; i++) text += String.fromCharCode(u64Scratch[i]!);
  return text;
}
