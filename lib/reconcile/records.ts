// Destinations as packed records (native/record_layout.h), on both sides of a comparison: the
// live table as listTable and queryMany resolve it, and the desired state as it was checked
// (a request record's destination part has the same layout). A plan compares the records of a
// service word by word and builds Destination objects only for services that differ: on a
// large table almost every service matches, and decoding tens of thousands of destinations
// cost more than the rest of the plan.
import { decodeAddress, familyName, type AddressFamily } from '../address';
import { AF_INET, AF_INET6 } from '../constants';
import { makeDestination } from '../destination';
import type { NativeTable } from '../native';
import { recordLayout, statsAt } from '../records';
import { bytesOf, layoutOf } from '../table-view';
import { ZERO_STATS, serviceFromWire, type WireService } from '../service';
import type { Destination, Service } from '../types';
import type { TableService } from './settings';

/**
 * The destination records of one service: `count` records, the first at word `start` of
 * `words`, each `stride` words after the one before (a reply's records are packed one after
 * the other; a request's destination part is one field of a longer record).
 */
export interface DestinationRecords {
  words: Uint32Array;
  start: number;
  stride: number;
  count: number;
  /** The service's family, for records without one. */
  family: AddressFamily;
}

const byteViews = new WeakMap<Uint32Array, Uint8Array>();
function bytesFor(words: Uint32Array): Uint8Array {
  let bytes = byteViews.get(words);
  if (!bytes) byteViews.set(words, (bytes = bytesOf(words)));
  return bytes;
}

const addressWords = new Uint32Array(4);
const addressBytes = new Uint8Array(addressWords.buffer);

/**
 * The Service of the service record at `base`: its key and settings, no destinations, and
 * zero stats (a plan never reads counters, and a table of them is a thousand objects).
 */
export function serviceAt(w: Uint32Array, base: number, strings: readonly string[]): Service {
  const L = layoutOf();
  const present = w[base]!;
  const at = L.svc;
  const has = L.svcHas;
  let address: Uint8Array | undefined;
  if ((present & has.address) !== 0) {
    // Copied into one scratch buffer rather than viewed (a view per service is an object the
    // collector must trace): serviceFromWire reads it into a string and keeps no reference.
    for (let i = 0; i < 4; i++) addressWords[i] = w[base + at.address + i]!;
    address = addressBytes;
  }
  const wire: WireService = {
    af: (present & has.af) !== 0 ? w[base + at.af] : undefined,
    protocol: (present & has.protocol) !== 0 ? w[base + at.protocol] : undefined,
    address,
    port: (present & has.port) !== 0 ? w[base + at.port] : undefined,
    fwmark: (present & has.fwmark) !== 0 ? w[base + at.fwmark] : undefined,
    scheduler: (present & has.scheduler) !== 0 ? strings[w[base + at.scheduler]!] : undefined,
    flags: (present & has.flags) !== 0 ? w[base + at.flags] : undefined,
    timeout: (present & has.timeout) !== 0 ? w[base + at.timeout] : undefined,
    netmask: (present & has.netmask) !== 0 ? w[base + at.netmask] : undefined,
    peName: (present & has.peName) !== 0 ? strings[w[base + at.peName]!] : undefined,
  };
  return serviceFromWire(wire);
}

/**
 * The canonical text of the address of destination `i` of `records`, and its family. IPv4
 * texts are kept in `texts` by address word: a table has many destinations per address.
 */
export function addressTextAt(records: DestinationRecords, i: number, texts: Map<number, string>): string {
  const L = layoutOf();
  const w = records.words;
  const base = records.start + i * records.stride;
  const family = (w[base]! & L.dstHas.af) !== 0 ? familyName(w[base + L.dst.af]) : records.family;
  if (family !== 'inet') return decodeAddress(bytesFor(w), family, (base + L.dst.address) * 4);
  const word = w[base + L.dst.address]!;
  let text = texts.get(word);
  if (text === undefined) texts.set(word, (text = decodeAddress(bytesFor(w), family, (base + L.dst.address) * 4)));
  return text;
}

/** The Destinations of `records`, as the rest of the API reports them (absent counters are 0). */
export function decodeDestinations(records: DestinationRecords): Destination[] {
  const L = layoutOf();
  const { words: w, start, stride, count, family: serviceFamily } = records;
  const bytes = bytesFor(w);
  const at = L.dst;
  const has = L.dstHas;
  const list = new Array<Destination>(count);
  for (let i = 0; i < count; i++) {
    const base = start + i * stride;
    const present = w[base]!;
    const family = (present & has.af) !== 0 ? familyName(w[base + at.af]) : serviceFamily;
    list[i] = makeDestination(
      decodeAddress(bytes, family, (base + at.address) * 4), family, w[base + at.port]!, w[base + at.forward]!,
      w[base + at.weight]!, w[base + at.upperThreshold]!, w[base + at.lowerThreshold]!,
      w[base + at.activeConnections]!, w[base + at.inactiveConnections]!, w[base + at.persistentConnections]!,
      (present & has.stats) !== 0 ? statsAt(w, base + at.stats) : ZERO_STATS,
      (present & has.tunnelType) !== 0 ? w[base + at.tunnelType] : undefined, w[base + at.tunnelPort]!, w[base + at.tunnelFlags]!,
    );
  }
  return list;
}

const RECORDS = Symbol('destination records');

interface RecordBacked {
  [RECORDS]?: DestinationRecords;
}

/**
 * The prototype of record-backed services: `destinations` is decoded from the records when
 * first read, then an own data property. (A getter defined on each object, or a WeakMap of
 * records, made building a table of them several times slower.)
 */
const RECORD_BACKED = {
  get destinations(): Destination[] {
    const self = this as unknown as TableService & RecordBacked;
    return own(self, decodeDestinations(self[RECORDS]!));
  },
  set destinations(value: Destination[]) {
    const self = this as unknown as TableService & RecordBacked;
    self[RECORDS] = undefined;
    own(self, value);
  },
};

function own(service: TableService, value: Destination[]): Destination[] {
  Object.defineProperty(service, 'destinations', { value, writable: true, enumerable: true, configurable: true });
  return value;
}

/** The records `service.destinations` decodes to, or undefined for a service that has none (or had them replaced). */
export function destinationRecordsOf(service: TableService): DestinationRecords | undefined {
  return (service as TableService & RecordBacked)[RECORDS];
}

/**
 * A TableService with the settings of `service` whose `destinations` are decoded from
 * `records` when first read. Assigning `destinations` forgets the records.
 */
export function withDestinationRecords(service: Service, records: DestinationRecords): TableService {
  const backed = Object.assign(Object.create(RECORD_BACKED) as RecordBacked, service);
  backed[RECORDS] = records;
  return backed as TableService;
}

/** The service records of a listing, one after the other, and the strings they refer to. */
export interface ServiceRecords {
  services: Uint32Array;
  strings: readonly string[];
}

// The records each live table was built from: a later read of the same services can tell, by
// comparing records, which of its services are these very ones with the same settings.
const listedFrom = new WeakMap<TableService[], ServiceRecords>();

/** The records `live` was built from by liveTable or LiveListing (service i from record i), or undefined. */
export function recordsOfLive(live: TableService[]): ServiceRecords | undefined {
  return listedFrom.get(live);
}

/**
 * Whether service record `a` of `aWords` (strings `aStrings`) and `b` of `bWords` hold the same
 * key and settings: the words serviceAt decodes (schedulers and persistence engines by name, as
 * each reply numbers its own strings), counters and destination counts aside. Equal records
 * decode to equal services; unequal ones may still (the caller then decodes them).
 */
export function sameServiceRecord(
  aWords: Uint32Array, a: number, aStrings: readonly string[], bWords: Uint32Array, b: number, bStrings: readonly string[],
): boolean {
  const L = layoutOf();
  const at = L.svc;
  const present = aWords[a]!;
  if (present !== bWords[b]) return false;
  for (const word of SERVICE_SETTING_WORDS) if (aWords[a + word] !== bWords[b + word]) return false;
  return ((present & L.svcHas.scheduler) === 0 || aStrings[aWords[a + at.scheduler]!] === bStrings[bWords[b + at.scheduler]!]) &&
    ((present & L.svcHas.peName) === 0 || aStrings[aWords[a + at.peName]!] === bStrings[bWords[b + at.peName]!]);
}

/** The words of a service record serviceAt reads as numbers (the key, flags, timeout, netmask). */
const SERVICE_SETTING_WORDS: readonly number[] = (() => {
  const at = recordLayout().service.at;
  return [at.af, at.protocol, at.address, at.address + 1, at.address + 2, at.address + 3, at.port, at.fwmark,
    at.flags, at.timeout, at.netmask];
})();

/**
 * A live table built part by part as listTable hands its parts over (each part whole
 * services), so that each part's services can be compared while the next is being dumped.
 */
export class LiveListing {
  readonly services: TableService[] = [];
  readonly #serviceWords: Uint32Array[] = [];
  #strings: readonly string[] | undefined = [];

  /** Adds the services of `part` (after those added before); returns the index of its first. */
  add(part: NativeTable): number {
    const L = layoutOf();
    const words = part.services;
    const count = words.length / L.svcWords;
    const total = part.destinations.length / L.dstWords;
    const first = this.services.length;
    let next = 0;
    for (let i = 0; i < count; i++) {
      const base = i * L.svcWords;
      const service = serviceAt(words, base, part.strings);
      const destinations = words[base + L.svc.destinationCount]!;
      if (next + destinations > total) throw new Error('listTable: the addon packed fewer destinations than it counted');
      this.services.push(withDestinationRecords(service, {
        words: part.destinations, start: next * L.dstWords, stride: L.dstWords, count: destinations, family: service.family,
      }));
      next += destinations;
    }
    this.#serviceWords.push(words);
    // The addon numbers strings across the whole listing: each part's are those of the parts
    // before it and its own. Records that could not be read as one table are not kept.
    if (this.#strings && !this.#strings.every((text, i) => part.strings[i] === text)) this.#strings = undefined;
    else if (this.#strings) this.#strings = part.strings;
    return first;
  }

  /** The table; its service records are kept for recordsOfLive. Nothing is added afterwards. */
  finish(): TableService[] {
    const parts = this.#serviceWords;
    let services = parts[0] ?? new Uint32Array(0);
    if (parts.length > 1) {
      services = new Uint32Array(parts.reduce((n, part) => n + part.length, 0));
      let at = 0;
      for (const part of parts) {
        services.set(part, at);
        at += part.length;
      }
    }
    if (this.#strings) listedFrom.set(this.services, { services, strings: this.#strings });
    return this.services;
  }
}

/** A live table (listTable's records) as TableServices whose destinations decode when first read. */
export function liveTable(table: NativeTable): TableService[] {
  const listing = new LiveListing();
  listing.add(table);
  return listing.finish();
}

/**
 * Whether two services' destination records hold the same destinations (in any order) with the
 * same settings: address, family, port, forwarding, weight, thresholds, tunnel. Counters are
 * not compared. False also where the settings might compare equal after decoding (e.g. tunnel
 * words of a destination that is not a tunnel): the caller then compares the decoded objects.
 */
export function sameDestinationRecords(a: DestinationRecords, b: DestinationRecords): boolean {
  const count = a.count;
  if (count !== b.count) return false;
  if (count === 0) return true;
  // Keys are unique on each side, so a pair with the same key and different settings decides.
  // The two sides mostly list their destinations in the same order or in reverse (the kernel
  // lists the newest first): those are tried before a search.
  const last = count - 1;
  if (sameKey(a, 0, b, 0)) {
    let i = 0;
    while (i < count && sameKey(a, i, b, i)) {
      if (!sameSettings(a, i, b, i)) return false;
      i++;
    }
    if (i === count) return true;
  } else if (sameKey(a, 0, b, last)) {
    let i = 0;
    while (i < count && sameKey(a, i, b, last - i)) {
      if (!sameSettings(a, i, b, last - i)) return false;
      i++;
    }
    if (i === count) return true;
  }
  for (let i = 0; i < count; i++) {
    let j = 0;
    while (j < count && !sameKey(a, i, b, j)) j++;
    if (j === count || !sameSettings(a, i, b, j)) return false;
  }
  return true;
}

/** Destination `i` of `records`, decoded alone. */
export function destinationAt(records: DestinationRecords, i: number): Destination {
  return decodeDestinations({ ...records, start: records.start + i * records.stride, count: 1 })[0]!;
}

/**
 * For each destination of `want`, the index of the destination of `have` with the same key
 * (address, family and port), or -1. Keys are unique on each side. The same position and the
 * reverse one (the kernel lists the newest first) are tried before a search.
 */
export function matchDestinationRecords(want: DestinationRecords, have: DestinationRecords): Int32Array {
  const match = new Int32Array(want.count);
  const last = have.count - 1;
  let index: Map<string, number> | undefined;
  for (let i = 0; i < want.count; i++) {
    if (i <= last && sameKey(want, i, have, i)) match[i] = i;
    else if (last - i >= 0 && sameKey(want, i, have, last - i)) match[i] = last - i;
    else if (have.count <= 32) {
      let j = 0;
      while (j <= last && !sameKey(want, i, have, j)) j++;
      match[i] = j <= last ? j : -1;
    } else {
      if (!index) {
        index = new Map();
        for (let j = 0; j <= last; j++) index.set(keyWords(have, j), j);
      }
      match[i] = index.get(keyWords(want, i)) ?? -1;
    }
  }
  return match;
}

/** Destination `i`'s key as text of its words (family, address, port), for an index. */
function keyWords(records: DestinationRecords, i: number): string {
  const L = layoutOf();
  const { address, port, af } = L.dst;
  const w = records.words;
  const x = records.start + i * records.stride;
  const family = (w[x]! & L.dstHas.af) !== 0 ? w[x + af]! : records.family === 'inet6' ? AF_INET6 : AF_INET;
  return family === AF_INET
    ? `${family} ${w[x + address]} ${w[x + port]}`
    : `${family} ${w[x + address]} ${w[x + address + 1]} ${w[x + address + 2]} ${w[x + address + 3]} ${w[x + port]}`;
}

/** Whether destination `i` of `a` and `j` of `b` have the same address (and family) and port. */
function sameKey(a: DestinationRecords, i: number, b: DestinationRecords, j: number): boolean {
  const L = layoutOf();
  const { address, port, af } = L.dst;
  const hasAf = L.dstHas.af;
  const aw = a.words;
  const bw = b.words;
  const x = a.start + i * a.stride;
  const y = b.start + j * b.stride;
  if (aw[x + address] !== bw[y + address] || aw[x + port] !== bw[y + port]) return false;
  const xAf = (aw[x]! & hasAf) !== 0 ? aw[x + af]! : a.family === 'inet6' ? AF_INET6 : AF_INET;
  const yAf = (bw[y]! & hasAf) !== 0 ? bw[y + af]! : b.family === 'inet6' ? AF_INET6 : AF_INET;
  return xAf === yAf && (xAf === AF_INET || (aw[x + address + 1] === bw[y + address + 1] &&
    aw[x + address + 2] === bw[y + address + 2] && aw[x + address + 3] === bw[y + address + 3]));
}

/** Whether destination `i` of `a` and `j` of `b` have the same forwarding, weight, thresholds and tunnel words. */
export function sameSettings(a: DestinationRecords, i: number, b: DestinationRecords, j: number): boolean {
  const at = layoutOf().dst;
  const aw = a.words;
  const bw = b.words;
  const x = a.start + i * a.stride;
  const y = b.start + j * b.stride;
  return aw[x + at.forward] === bw[y + at.forward] && aw[x + at.weight] === bw[y + at.weight] &&
    aw[x + at.upperThreshold] === bw[y + at.upperThreshold] && aw[x + at.lowerThreshold] === bw[y + at.lowerThreshold] &&
    aw[x + at.tunnelType] === bw[y + at.tunnelType] && aw[x + at.tunnelPort] === bw[y + at.tunnelPort] &&
    aw[x + at.tunnelFlags] === bw[y + at.tunnelFlags];
}
