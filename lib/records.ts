// Packed records: how services and destinations cross into the addon and back. The layout
// (word offsets, present bits, sizes) is the addon's (native/record_layout.h), read from its
// export once; nothing here repeats a number from it.
import { nativeAddon, type RecordLayout } from './native';
import type { WireDestination } from './destination';
import type { WireService } from './service';
import type { Stats } from './types';

/**
 * @internal Absolute word offsets and present bits of a request record, flattened from the
 * addon's layout so that writing a field is one property load.
 */
export class RequestOffsets {
  readonly words: number;
  readonly command: number;
  readonly svc: number;
  readonly svcAf: number; readonly svcProtocol: number; readonly svcAddress: number; readonly svcPort: number;
  readonly svcFwmark: number; readonly svcScheduler: number; readonly svcFlags: number; readonly svcFlagsMask: number;
  readonly svcTimeout: number; readonly svcNetmask: number; readonly svcPeName: number;
  readonly dst: number;
  readonly dstAddress: number; readonly dstPort: number; readonly dstForward: number; readonly dstWeight: number;
  readonly dstUpperThreshold: number; readonly dstLowerThreshold: number; readonly dstAf: number;
  readonly dstTunnelType: number; readonly dstTunnelPort: number; readonly dstTunnelFlags: number;
  readonly svcBit: RecordLayout['service']['bit'];
  readonly dstBit: RecordLayout['destination']['bit'];

  constructor(layout: RecordLayout) {
    const { request, service, destination } = layout;
    this.words = request.words;
    this.command = request.command;
    const s = request.service;
    const sa = service.at;
    this.svc = s;
    this.svcAf = s + sa.af; this.svcProtocol = s + sa.protocol; this.svcAddress = s + sa.address; this.svcPort = s + sa.port;
    this.svcFwmark = s + sa.fwmark; this.svcScheduler = s + sa.scheduler; this.svcFlags = s + sa.flags;
    this.svcFlagsMask = s + sa.flagsMask; this.svcTimeout = s + sa.timeout; this.svcNetmask = s + sa.netmask;
    this.svcPeName = s + sa.peName;
    const d = request.destination;
    const da = destination.at;
    this.dst = d;
    this.dstAddress = d + da.address; this.dstPort = d + da.port; this.dstForward = d + da.forward; this.dstWeight = d + da.weight;
    this.dstUpperThreshold = d + da.upperThreshold; this.dstLowerThreshold = d + da.lowerThreshold; this.dstAf = d + da.af;
    this.dstTunnelType = d + da.tunnelType; this.dstTunnelPort = d + da.tunnelPort; this.dstTunnelFlags = d + da.tunnelFlags;
    this.svcBit = service.bit;
    this.dstBit = destination.bit;
  }
}

const SERVICE_FIELDS = ['af', 'protocol', 'address', 'port', 'fwmark', 'scheduler', 'flags', 'flagsMask', 'timeout',
  'netmask', 'peName', 'destinationCount', 'stats'] as const;
const DESTINATION_FIELDS = ['address', 'port', 'forward', 'weight', 'upperThreshold', 'lowerThreshold', 'af', 'tunnelType',
  'tunnelPort', 'tunnelFlags', 'activeConnections', 'inactiveConnections', 'persistentConnections', 'stats'] as const;

// statsAt reads the counters in this order.
const STATS_COUNTERS = ['connections', 'packetsIn', 'packetsOut', 'bytesIn', 'bytesOut', 'connectionRate', 'packetRateIn',
  'packetRateOut', 'byteRateIn', 'byteRateOut'] as const satisfies ReadonlyArray<keyof Stats>;

/** Refuses an addon whose layout lacks a field this code reads (a stale build). */
function checkLayout(layout: RecordLayout | undefined): RecordLayout {
  const fail = (what: string): never => {
    throw new Error(`ipvs-netlink: the native addon's record layout has no ${what}; rebuild it (npm rebuild ipvs-netlink)`);
  };
  if (!layout || typeof layout !== 'object') return fail('layout at all');
  for (const [kind, fields] of [['service', SERVICE_FIELDS], ['destination', DESTINATION_FIELDS]] as const) {
    const k = layout[kind] as { words?: unknown; at?: Record<string, unknown>; bit?: Record<string, unknown> } | undefined;
    if (typeof k?.words !== 'number') fail(`${kind} size`);
    for (const field of fields) {
      if (typeof k?.at?.[field] !== 'number' || typeof k.bit?.[field] !== 'number') fail(`${kind}.${field}`);
    }
  }
  if (layout.statsCounters?.join() !== STATS_COUNTERS.join()) fail(`the stats counters ${STATS_COUNTERS.join(', ')}, in that order`);
  return layout;
}

let layout: RecordLayout | undefined;
let offsets: RequestOffsets | undefined;

/** @internal The addon's record layout (loads the addon). */
export function recordLayout(): RecordLayout {
  layout ??= checkLayout(nativeAddon().recordLayout);
  return layout;
}

/** @internal Request offsets (loads the addon). */
export function requestOffsets(): RequestOffsets {
  offsets ??= new RequestOffsets(recordLayout());
  return offsets;
}

/**
 * @internal Request records, appended one per operation as it is queued. Fields are written
 * one by one, by name: a loop over a table of keys made every read a generic keyed load.
 */
export class RequestWriter {
  readonly offsets = requestOffsets();
  readonly #o = this.offsets;
  words: Uint32Array;
  bytes: Uint8Array;
  count = 0;
  /** A record was begun and not ended: its slot may hold words of a check that threw. */
  #dirty = false;
  readonly strings: string[] = [];
  readonly #stringIndex = new Map<string, number>();

  constructor(capacity = 64) {
    this.words = new Uint32Array(this.#o.words * capacity);
    this.bytes = new Uint8Array(this.words.buffer);
  }

  add(command: number, service: WireService | undefined, destination: WireDestination | undefined): void {
    const o = this.#o;
    const base = this.#slot();
    const w = this.words;
    w[base + o.command] = command;
    if (service) {
      const b = o.svcBit;
      let present = 0;
      if (service.af !== undefined) { present |= b.af; w[base + o.svcAf] = service.af; }
      if (service.protocol !== undefined) { present |= b.protocol; w[base + o.svcProtocol] = service.protocol; }
      if (service.address !== undefined) { present |= b.address; this.#address(base + o.svcAddress, service.address); }
      if (service.port !== undefined) { present |= b.port; w[base + o.svcPort] = service.port; }
      if (service.fwmark !== undefined) { present |= b.fwmark; w[base + o.svcFwmark] = service.fwmark; }
      if (service.scheduler !== undefined) { present |= b.scheduler; w[base + o.svcScheduler] = this.#string(service.scheduler); }
      if (service.flags !== undefined) { present |= b.flags; w[base + o.svcFlags] = service.flags; }
      if (service.flagsMask !== undefined) { present |= b.flagsMask; w[base + o.svcFlagsMask] = service.flagsMask; }
      if (service.timeout !== undefined) { present |= b.timeout; w[base + o.svcTimeout] = service.timeout; }
      if (service.netmask !== undefined) { present |= b.netmask; w[base + o.svcNetmask] = service.netmask; }
      if (service.peName !== undefined) { present |= b.peName; w[base + o.svcPeName] = this.#string(service.peName); }
      w[base + o.svc] = present;
    }
    if (destination) {
      const b = o.dstBit;
      const d = destination;
      let present = 0;
      if (d.address !== undefined) { present |= b.address; this.#address(base + o.dstAddress, d.address); }
      if (d.port !== undefined) { present |= b.port; w[base + o.dstPort] = d.port; }
      if (d.forward !== undefined) { present |= b.forward; w[base + o.dstForward] = d.forward; }
      if (d.weight !== undefined) { present |= b.weight; w[base + o.dstWeight] = d.weight; }
      if (d.upperThreshold !== undefined) { present |= b.upperThreshold; w[base + o.dstUpperThreshold] = d.upperThreshold; }
      if (d.lowerThreshold !== undefined) { present |= b.lowerThreshold; w[base + o.dstLowerThreshold] = d.lowerThreshold; }
      if (d.af !== undefined) { present |= b.af; w[base + o.dstAf] = d.af; }
      if (d.tunnelType !== undefined) { present |= b.tunnelType; w[base + o.dstTunnelType] = d.tunnelType; }
      if (d.tunnelPort !== undefined) { present |= b.tunnelPort; w[base + o.dstTunnelPort] = d.tunnelPort; }
      if (d.tunnelFlags !== undefined) { present |= b.tunnelFlags; w[base + o.dstTunnelFlags] = d.tunnelFlags; }
      w[base + o.dst] = present;
    }
    this.count += 1;
  }

  /**
   * Starts a request record for `command` and returns its first word; fields are then written
   * at `base + offsets.*` of `words` (and `bytes`, which may be replaced by a later begin()).
   * The record counts only once end() is called, so a check that throws half-way leaves
   * nothing behind: the next begin() clears the slot again.
   */
  begin(command: number): number {
    const base = this.#slot();
    this.#dirty = true;
    this.words[base + this.#o.command] = command;
    return base;
  }

  /** Counts the record begin() started. */
  end(): void {
    this.count += 1;
    this.#dirty = false;
  }

  /** Copies a service record (such as a checked key's) into the request at `base`. */
  setService(base: number, record: Uint32Array): void {
    this.words.set(record, base + this.#o.svc);
  }

  /** The index of `text` in the strings sent beside the records. */
  string(text: string): number {
    return this.#string(text);
  }

  /** The records written so far (a view, not a copy). */
  records(): Uint32Array {
    return this.words.subarray(0, this.count * this.#o.words);
  }

  /** The first word of the next record's slot, all zero. */
  #slot(): number {
    const words = this.#o.words;
    if ((this.count + 1) * words > this.words.length) this.#grow();
    const base = this.count * words;
    // Slots past the last record are still zero, unless a record begun there was never ended.
    if (this.#dirty) {
      this.words.fill(0, base, base + words);
      this.#dirty = false;
    }
    return base;
  }

  #grow(): void {
    const grown = new Uint32Array(Math.max(this.words.length * 2, this.#o.words));
    grown.set(this.words);
    this.words = grown;
    this.bytes = new Uint8Array(grown.buffer);
  }

  #address(word: number, address: Uint8Array): void {
    // 16 bytes as they are in memory: the addon copies the words back to bytes unchanged.
    const bytes = this.bytes;
    const at = word * 4;
    for (let i = 0; i < 16; i++) bytes[at + i] = address[i] ?? 0;
  }

  #string(text: string): number {
    let index = this.#stringIndex.get(text);
    if (index === undefined) {
      index = this.strings.length;
      this.strings.push(text);
      this.#stringIndex.set(text, index);
    }
    return index;
  }
}

/**
 * @internal A service record holding only a service's key (what CheckedKey carries), copied
 * into every request for that service.
 */
export function serviceKeyRecord(af: number, protocol: number, address: Uint8Array | undefined, port: number, fwmark: number): Uint32Array {
  const { service } = recordLayout();
  const at = service.at;
  const bit = service.bit;
  const record = new Uint32Array(service.words);
  record[at.af] = af;
  let present = bit.af;
  if (fwmark) {
    record[at.fwmark] = fwmark;
    present |= bit.fwmark;
  } else {
    record[at.protocol] = protocol;
    new Uint8Array(record.buffer).set(address!, at.address * 4);
    record[at.port] = port;
    present |= bit.protocol | bit.address | bit.port;
  }
  record[0] = present;
  return record;
}

/** @internal The destination of request `base` of `writer`, as a wire object (tests, and callers that want one). */
export function destinationWireAt(writer: RequestWriter, base: number): WireDestination {
  const o = writer.offsets;
  const w = writer.words;
  const present = w[base + o.dst]!;
  const b = o.dstBit;
  const wire: WireDestination = {};
  if (present & b.address) wire.address = writer.bytes.slice((base + o.dstAddress) * 4, (base + o.dstAddress) * 4 + 16);
  if (present & b.port) wire.port = w[base + o.dstPort];
  if (present & b.af) wire.af = w[base + o.dstAf];
  if (present & b.forward) wire.forward = w[base + o.dstForward];
  if (present & b.weight) wire.weight = w[base + o.dstWeight];
  if (present & b.upperThreshold) wire.upperThreshold = w[base + o.dstUpperThreshold];
  if (present & b.lowerThreshold) wire.lowerThreshold = w[base + o.dstLowerThreshold];
  if (present & b.tunnelType) wire.tunnelType = w[base + o.dstTunnelType];
  if (present & b.tunnelPort) wire.tunnelPort = w[base + o.dstTunnelPort];
  if (present & b.tunnelFlags) wire.tunnelFlags = w[base + o.dstTunnelFlags];
  return wire;
}

/** @internal One request record (a single call is a batch of one). */
export function requestRecord(command: number, service?: WireService, destination?: WireDestination): RequestWriter {
  const writer = new RequestWriter(1);
  writer.add(command, service, destination);
  return writer;
}

/** The u64 counter at w[at] (low word) and w[at + 1] (high word). */
function counter(w: Uint32Array, at: number): bigint {
  const low = w[at]!;
  const high = w[at + 1]!;
  // Idle counters (rates above all) are zero: share the one 0n rather than allocate a BigInt.
  if (high === 0) return low === 0 ? 0n : BigInt(low);
  return (BigInt(high) << 32n) | BigInt(low);
}

/** All counters zero, frozen: what every idle service and destination shares. */
const IDLE_STATS: Stats = Object.freeze({
  connections: 0n, packetsIn: 0n, packetsOut: 0n, bytesIn: 0n, bytesOut: 0n, connectionRate: 0n, packetRateIn: 0n,
  packetRateOut: 0n, byteRateIn: 0n, byteRateOut: 0n,
});

/**
 * @internal The stats field at `at`, in the counter order of the layout (connections, packetsIn, …).
 * All-zero counters (an idle destination) are one shared frozen object, as absent stats are.
 */
export function statsAt(w: Uint32Array, at: number): Stats {
  if ((w[at]! | w[at + 1]! | w[at + 2]! | w[at + 3]! | w[at + 4]! | w[at + 5]! | w[at + 6]! | w[at + 7]! | w[at + 8]! |
    w[at + 9]! | w[at + 10]! | w[at + 11]! | w[at + 12]! | w[at + 13]! | w[at + 14]! | w[at + 15]! | w[at + 16]! |
    w[at + 17]! | w[at + 18]! | w[at + 19]!) === 0) {
    return IDLE_STATS;
  }
  return {
    connections: counter(w, at), packetsIn: counter(w, at + 2), packetsOut: counter(w, at + 4),
    bytesIn: counter(w, at + 6), bytesOut: counter(w, at + 8), connectionRate: counter(w, at + 10),
    packetRateIn: counter(w, at + 12), packetRateOut: counter(w, at + 14), byteRateIn: counter(w, at + 16),
    byteRateOut: counter(w, at + 18),
  };
}
