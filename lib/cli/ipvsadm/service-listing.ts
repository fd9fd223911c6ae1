// ipvsadm 1.31's service table (-L with each of its options, and -S), byte for byte, written
// straight from the addon's packed records (lib/table-view.ts): a listing of 1,000 × 10
// builds no Service or Destination objects and no BigInts. Each service's lines are joined
// as one string and copied into the output buffer: in a one-shot command the code runs
// mostly unoptimised, where a few string joins (builtins) cost far less than writing bytes
// one by one. Sorting is ipvs_cmp_services and ipvs_cmp_dests with unsigned comparisons
// (see lib/cli/ipvsadm/format.ts for the two ipvsadm bugs not copied).
import { FWD_MASK, SVC_F_ONEPACKET, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3 } from '../../constants';
import type { NativeTable } from '../../native';
import { TableView, layoutOf, u64Text } from '../../table-view';
import { type Namer, largeNumber } from './format';
import { AF_INET, AF_INET6, ntop6 } from './names';
import { Fmt, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from './options';
import { TextBuffer } from './text-buffer';

// Destination.forward's names by kernel number (FWD_MASK bits): 4 is bypass, which ipvsadm
// prints as (null); 5 to 7 read as masq, as lib/destination.ts names them.
const FORWARD_NAMES = ['Masq   ', 'Local  ', 'Tunnel ', 'Route  ', '(null) ', 'Masq   ', 'Masq   ', 'Masq   '];  // padded to 7
const FORWARD_SWITCHES = ['-m', '-g', '-i', '-g', '(null)', '-m', '-m', '-m'];
const FORWARD_TUNNEL = 2;
const TUNNEL_GUE = 1;
const TUNNEL_GRE = 2;
const CSUM = 1;
const REMCSUM = 2;

const TWO_32 = 4294967296;
const ZERO_WORDS = new Uint32Array(2);
/** Counters below 2^53 (high word below 2^21) are exact as numbers. */
const SAFE_HIGH = 0x200000;

/** The listing's column headings for `format` (none for `-S`). */
export function listingHeader(format: number): string {
  const prot = 'Prot LocalAddress:Port'.padEnd(33);
  if (format & Fmt.STATS) {
    return `${prot} ${['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes'].map((h) => h.padStart(8)).join(' ')}\n  -> RemoteAddress:Port\n`;
  }
  if (format & Fmt.RATE) {
    return `${prot} ${['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS'].map((h) => h.padStart(8)).join(' ')}\n  -> RemoteAddress:Port\n`;
  }
  if (format & Fmt.THRESHOLDS) {
    return `${prot} ${['Uthreshold', 'Lthreshold', 'ActiveConn', 'InActConn'].map((h) => h.padEnd(10)).join(' ')}\n  -> RemoteAddress:Port\n`;
  }
  if (format & Fmt.PERSISTENTCONN) {
    return `${prot} ${'Weight'.padEnd(9)} ${'PersistConn'.padEnd(11)} ${'ActiveConn'.padEnd(10)} ${'InActConn'.padEnd(10)}\n  -> RemoteAddress:Port\n`;
  }
  if (format & Fmt.TUN_INFO) {
    return 'Prot LocalAddress:Port Scheduler Flags\n' +
      '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n';
  }
  if (!(format & Fmt.RULE)) {
    return 'Prot LocalAddress:Port Scheduler Flags\n' +
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';
  }
  return '';
}

// ---- numbers ---------------------------------------------------------------------------------

const SPACES: readonly string[] = Array.from({ length: 41 }, (_, n) => ' '.repeat(n));
const OCTETS: readonly string[] = Array.from({ length: 256 }, (_, n) => String(n));

/** `text` padded with spaces to `width` (text.padEnd(width)). */
function padEnd(text: string, width: number): string {
  const n = width - text.length;
  return n <= 0 ? text : n < SPACES.length ? text + SPACES[n] : text.padEnd(width);
}

/** `text` right-aligned in `width` columns (text.padStart(width)). */
function padStart(text: string, width: number): string {
  const n = width - text.length;
  return n <= 0 ? text : n < SPACES.length ? SPACES[n] + text : text.padStart(width);
}

/** The u64 counter at words[at] (low) and words[at + 1] (high) in decimal. */
function counterText(words: Uint32Array, at: number): string {
  const high = words[at + 1]!;
  return high < SAFE_HIGH ? `${high * TWO_32 + words[at]!}` : u64Text(words[at]!, high);
}

/** print_largenum of the u64 counter at words[at]: 9 columns, K/M/G/T unless --exact. */
function largeNumberAt(words: Uint32Array, at: number, format: number): string {
  const high = words[at + 1]!;
  if (high >= SAFE_HIGH) return largeNumber((BigInt(high) << 32n) | BigInt(words[at]!), format);
  const value = high * TWO_32 + words[at]!;
  if (format & Fmt.EXACT) {
    const text = `${value}`;
    return text.length <= 8 ? padStart(text, 9) : ` ${text}`;
  }
  if (value < 1e8) return padStart(`${value}`, 9);
  if (value < 1e9) return `${padStart(`${Math.floor(value / 1e3)}`, 8)}K`;
  if (value < 1e11) return `${padStart(`${Math.floor(value / 1e6)}`, 8)}M`;
  if (value < 1e14) return `${padStart(`${Math.floor(value / 1e9)}`, 8)}G`;
  return `${padStart(`${Math.floor(value / 1e12)}`, 8)}T`;
}

/** Five counters from `first` (Conns..OutBytes, or CPS..OutBPS) as print_largenum columns. */
function countersText(words: Uint32Array, first: number, format: number): string {
  if ((words[first]! | words[first + 1]! | words[first + 2]! | words[first + 3]! | words[first + 4]! | words[first + 5]! |
    words[first + 6]! | words[first + 7]! | words[first + 8]! | words[first + 9]!) === 0) {
    let zeros = zeroCounters.get(format);
    if (zeros === undefined) {
      zeros = largeNumberAt(ZERO_WORDS, 0, format).repeat(5);
      zeroCounters.set(format, zeros);
    }
    return zeros;
  }
  return largeNumberAt(words, first, format) + largeNumberAt(words, first + 2, format) + largeNumberAt(words, first + 4, format) +
    largeNumberAt(words, first + 6, format) + largeNumberAt(words, first + 8, format);
}

/**
 * The default listing's columns after the address: forward, weight, active and inactive
 * connections, and the line's end. Most servers of a table share a few such tails (small
 * weights, no or few connections): those are made once.
 */
const defaultTails = new Map<number, string>();

function defaultColumns(forward: number, weight: number, active: number, inactive: number): string {
  const small = weight < 256 && active < 512 && inactive < 512;
  const key = small ? ((forward * 256 + weight) * 512 + active) * 512 + inactive : -1;
  let tail = small ? defaultTails.get(key) : undefined;
  if (tail === undefined) {
    tail = ` ${FORWARD_NAMES[forward]} ${padEnd(`${weight}`, 6)} ${padEnd(`${active}`, 10)} ${padEnd(`${inactive}`, 10)}\n`;
    if (small) defaultTails.set(key, tail);
  }
  return tail;
}

/** Five zero counters, as countersText writes them for each format (an idle server's, often). */
const zeroCounters = new Map<number, string>();

// ---- the default numeric line of an IPv4 server -------------------------------------------------
// Most of a large listing: `  -> a.b.c.d:port` padded, then the columns. Built from the address
// as one word (its first three octets' text shared by neighbours) and cached port texts, so that
// a line costs a few array reads and string joins rather than one per character or octet: a
// one-shot command runs this code barely optimised, where every read of an array or a property
// is a call.

/** Whether a Uint32Array reads the address's first octet in its low byte. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** `  -> a.b.c.` by the address's first three octets (as the address word holds them). */
const linePrefixes = new Map<number, string>();
/** `:port` by port. */
const portTexts: string[] = [];

/** `  -> a.b.c.d:port`, padded to 33 columns, from the address as its word in the records. */
function ipv4LineStart(word: number, port: number): string {
  const key = LITTLE_ENDIAN ? word & 0xffffff : word >>> 8;
  let prefix = linePrefixes.get(key);
  if (prefix === undefined) {
    prefix = LITTLE_ENDIAN
      ? `  -> ${word & 0xff}.${(word >>> 8) & 0xff}.${(word >>> 16) & 0xff}.`
      : `  -> ${word >>> 24}.${(word >>> 16) & 0xff}.${(word >>> 8) & 0xff}.`;
    linePrefixes.set(key, prefix);
  }
  const portText = portTexts[port] ?? (portTexts[port] = `:${port}`);
  const text = prefix + OCTETS[LITTLE_ENDIAN ? word >>> 24 : word & 0xff]! + portText;
  return text.length < 33 ? text + SPACES[33 - text.length]! : text;
}

/** An IPv4 address word (as the records hold it) as the big-endian number ipvs_cmp_dests compares. */
function ipv4Number(word: number): number {
  return LITTLE_ENDIAN ? (((word & 0xff) << 24) | ((word & 0xff00) << 8) | ((word >>> 8) & 0xff00) | (word >>> 24)) >>> 0 : word >>> 0;
}

// ---- sorting ---------------------------------------------------------------------------------

/** The first 32 bits of an address, big-endian, as an unsigned number. */
function high32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/** The other 96 bits of an IPv6 address, compared byte by byte (as their hex text compares). */
function compareLow96(a: Uint8Array, at: number, b: Uint8Array, bt: number): number {
  for (let i = 4; i < 16; i++) {
    const d = a[at + i]! - b[bt + i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** TCP, UDP and SCTP in protocol number order: their rank in a service's sort key. */
const PROTOCOL_RANK: Readonly<Record<number, number>> = { [IPPROTO_TCP]: 0, [IPPROTO_UDP]: 1, [IPPROTO_SCTP]: 2 };

/**
 * Service `s`'s place among IPv4 TCP, UDP and SCTP services as one number (protocol rank,
 * address, port: 50 bits); undefined for any other service.
 */
function ipv4ServiceKey(view: TableView, s: number): number | undefined {
  if (view.fwmark(s) !== 0 || view.serviceAf(s) !== AF_INET) return undefined;
  const rank = PROTOCOL_RANK[view.protocol(s) ?? 0];
  if (rank === undefined) return undefined;
  return (rank * 4294967296 + high32(view.serviceBytes, view.serviceAddressAt(s))) * 65536 + view.port(s);
}

/**
 * Sort keys of services (ipv4ServiceKey()), each with its service's index, added in any order;
 * gives up (order() is undefined) at the first service without one, or a repeated one.
 */
class Ipv4ServiceKeys {
  #keys: number[] | undefined = [];
  readonly #byKey = new Map<number, number>();

  add(view: TableView, s: number, index: number): void {
    if (this.#keys === undefined) return;
    const key = ipv4ServiceKey(view, s);
    if (key === undefined || this.#byKey.has(key)) {
      this.#keys = undefined;
      return;
    }
    this.#byKey.set(key, index);
    this.#keys.push(key);
  }

  /** The indexes in their keys' order, by the typed array's own numeric sort (no JavaScript comparator). */
  order(): number[] | undefined {
    if (this.#keys === undefined) return undefined;
    const byKey = this.#byKey;
    return Array.from(Float64Array.from(this.#keys).sort(), (key) => byKey.get(key)!);
  }
}

/** serviceOrder() of a table of IPv4 TCP, UDP and SCTP services; undefined for any other table. */
function ipv4ServiceOrder(view: TableView): number[] | undefined {
  const keys = new Ipv4ServiceKeys();
  for (let s = 0; s < view.serviceCount; s++) keys.add(view, s, s);
  return keys.order();
}

/** Service indexes in ipvs_cmp_services order, unsigned: fwmark, family, protocol, address, port. */
export function serviceOrder(view: TableView): number[] {
  const fast = ipv4ServiceOrder(view);
  if (fast) return fast;
  const n = view.serviceCount;
  const fwmark = new Float64Array(n);
  const af = new Float64Array(n);
  const protocol = new Float64Array(n);
  const high = new Float64Array(n);
  const port = new Float64Array(n);
  const bytes = view.serviceBytes;
  for (let s = 0; s < n; s++) {
    fwmark[s] = view.fwmark(s);
    af[s] = view.serviceAf(s);
    if (fwmark[s] === 0) {
      protocol[s] = view.protocol(s) ?? 0;
      high[s] = high32(bytes, view.serviceAddressAt(s));
      port[s] = view.port(s);
    }
  }
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => (fwmark[a]! - fwmark[b]!) || (af[a]! - af[b]!) || (protocol[a]! - protocol[b]!) ||
    (high[a]! - high[b]!) ||
    (af[a] === AF_INET6 && fwmark[a] === 0 && fwmark[b] === 0 ? compareLow96(bytes, view.serviceAddressAt(a), bytes, view.serviceAddressAt(b)) : 0) ||
    (port[a]! - port[b]!));
  return order;
}

/**
 * The destinations of service `s` in ipvs_cmp_dests order, unsigned (address, then port),
 * written to `out` (grown as needed, returned); undefined when they are in that order already.
 */
function destinationOrder(view: TableView, s: number, serviceAf: number, out: Float64Array[]): Float64Array | undefined {
  const first = view.firstDestination[s]!;
  const count = view.firstDestination[s + 1]! - first;
  if (out[0]!.length < count) {
    out[0] = new Float64Array(count * 2);
    out[1] = new Float64Array(count * 2);
  }
  const order = out[0]!;
  const keys = out[1]!;
  const words = view.destinations;
  const L = view.L.dst;
  const afAt = L.af;
  const addressAt = L.address;
  const portAt = L.port;
  const hasAf = view.L.dstHas.af;
  const stride = view.L.dstWords;
  let allV4 = true;
  let inOrder = true;
  let previous = -1;
  for (let i = 0, base = first * stride; i < count; i++, base += stride) {
    if ((words[base]! & hasAf) === 0 ? serviceAf === AF_INET6 : words[base + afAt] === AF_INET6) {
      allV4 = false;
      break;
    }
    const key = ipv4Number(words[base + addressAt]!) * 65536 + words[base + portAt]!;
    inOrder &&= key >= previous;
    keys[i] = previous = key;
  }
  if (!allV4) return mixedDestinationOrder(view, first, count, serviceAf, order);
  // Servers added in order (a restored table) are listed in order already.
  if (inOrder) return undefined;
  // Insertion sort, stable: a service has a handful of destinations.
  for (let i = 0; i < count; i++) {
    const key = keys[i]!;
    let j = i;
    while (j > 0 && keys[j - 1]! > key) {
      keys[j] = keys[j - 1]!;
      order[j] = order[j - 1]!;
      j--;
    }
    keys[j] = key;
    order[j] = first + i;
  }
  return order;
}

/** With an IPv6 destination: the first 32 bits, then the other 96 for IPv6 ones, then the port. */
function mixedDestinationOrder(view: TableView, first: number, count: number, serviceAf: number, out: Float64Array): Float64Array {
  const bytes = view.destinationBytes;
  const indexes = Array.from({ length: count }, (_, i) => first + i);
  const v6 = indexes.map((d) => view.destinationAf(d, serviceAf) === AF_INET6);
  indexes.sort((a, b) => {
    const at = view.destinationAddressAt(a);
    const bt = view.destinationAddressAt(b);
    const byHigh = high32(bytes, at) - high32(bytes, bt);
    if (byHigh !== 0) return byHigh;
    if (v6[a - first]) {
      // An IPv4 address has no low part, so it sorts first (as an empty key did).
      const byLow = v6[b - first] ? compareLow96(bytes, at, bytes, bt) : 1;
      if (byLow !== 0) return byLow;
    }
    return view.destinationPort(a) - view.destinationPort(b);
  });
  for (let i = 0; i < count; i++) out[i] = indexes[i]!;
  return out;
}

// ---- endpoints -------------------------------------------------------------------------------

/** `addr:port` of a service as ipvsadm prints it (numeric, or names from the namer). */
function serviceEndpoint(view: TableView, s: number, af: number, protocol: number, namer: Namer): string {
  const port = view.port(s);
  if (namer.numeric) {
    if (af === AF_INET6) return `[${ntop6(view.serviceBytes, view.serviceAddressAt(s))}]:${port}`;
    const b = view.serviceBytes;
    const at = view.serviceAddressAt(s);
    return `${OCTETS[b[at]!]}.${OCTETS[b[at + 1]!]}.${OCTETS[b[at + 2]!]}.${OCTETS[b[at + 3]!]}:${port}`;
  }
  return namer.addrPort(af, view.serviceAddress(s), port, protocol);
}

/** `addr:port` of destination `d` (numeric, or names from the namer). */
function destinationEndpoint(view: TableView, d: number, af: number, protocol: number, namer: Namer): string {
  const port = view.destinationPort(d);
  if (namer.numeric) {
    const b = view.destinationBytes;
    const at = view.destinationAddressAt(d);
    return af === AF_INET6 ? `[${ntop6(b, at)}]:${port}`
      : `${OCTETS[b[at]!]}.${OCTETS[b[at + 1]!]}.${OCTETS[b[at + 2]!]}.${OCTETS[b[at + 3]!]}:${port}`;
  }
  return namer.addrPort(af, view.destinationAddress(d, af), port, protocol);
}

/** Every address a listing prints, for Namer.resolve (without -n). */
export function viewAddresses(view: TableView): string[] {
  const out: string[] = [];
  for (let s = 0; s < view.serviceCount; s++) {
    const af = view.serviceAf(s);
    if (view.fwmark(s) === 0) out.push(view.serviceAddress(s));
    for (let d = view.firstDestination[s]!; d < view.firstDestination[s + 1]!; d++) {
      out.push(view.destinationAddress(d, view.destinationAf(d, af)));
    }
  }
  return out;
}

// ---- one service -----------------------------------------------------------------------------

const TUNNEL_FLAG_TEXT = (flags: number): string => (flags & REMCSUM ? 'r+c' : flags & CSUM ? '+c' : '-c');
const TUNNEL_FLAG_OPTION = (flags: number): string => (flags & REMCSUM ? '--tun-remcsum' : flags & CSUM ? '--tun-csum' : '--tun-nocsum');

function tunnelInfo(view: TableView, d: number): string {
  const type = view.tunnelType(d);
  if (type === TUNNEL_GUE) return `gue:${view.tunnelPort(d)}:${TUNNEL_FLAG_TEXT(view.tunnelFlags(d))}`;
  if (type === TUNNEL_GRE) return `gre:${TUNNEL_FLAG_TEXT(view.tunnelFlags(d))}`;
  return 'ipip';
}

function tunnelRule(view: TableView, d: number): string {
  const type = view.tunnelType(d);
  if (type === TUNNEL_GRE) return ` --tun-type gre ${TUNNEL_FLAG_OPTION(view.tunnelFlags(d))}`;
  if (type === TUNNEL_GUE) return ` --tun-type gue --tun-port ${view.tunnelPort(d)} ${TUNNEL_FLAG_OPTION(view.tunnelFlags(d))}`;
  return ' --tun-type ipip';
}

/**
 * print_sched_flags: sh and mh name their two flags (and drop flag-3); other schedulers print
 * flag-1..3. `undefined` when the service has no scheduler flag at all.
 */
function schedulerFlags(flags: number, scheduler: string): string | undefined {
  if ((flags & (SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3)) === 0) return undefined;
  const named = scheduler === 'sh' || scheduler === 'mh';
  const names: string[] = [];
  if (flags & SVC_F_SCHED1) names.push(named ? `${scheduler}-fallback` : 'flag-1');
  if (flags & SVC_F_SCHED2) names.push(named ? `${scheduler}-port` : 'flag-2');
  if (flags & SVC_F_SCHED3 && !named) names.push('flag-3');
  return names.join(',');
}

/** Service.netmask's text: a dotted mask for IPv4, a prefix length for IPv6; and whether it is the default. */
function netmaskOf(view: TableView, s: number, af: number): { text: string; isDefault: boolean } {
  const mask = view.netmask(s);
  if (af === AF_INET6) return { text: String(mask ?? 128), isDefault: (mask ?? 128) === 128 };
  const m = mask ?? 0;
  return { text: `${m >>> 24}.${(m >>> 16) & 0xff}.${(m >>> 8) & 0xff}.${m & 0xff}`, isDefault: m === 0xffffffff };
}

/** print_service_entry: the service line and its destination lines, as one string. */
function serviceText(view: TableView, s: number, format: number, namer: Namer, order: Float64Array[]): string {
  const rule = (format & Fmt.RULE) !== 0;
  const af = view.serviceAf(s);
  const fwmark = view.fwmark(s);
  const protocol = fwmark !== 0 ? 0 : view.protocol(s) ?? 0;
  let name: string;
  if (fwmark !== 0) {
    // Unsigned, unlike 1.31's %d (see lib/cli/ipvsadm/format.ts).
    name = rule ? `-f ${fwmark}${af === AF_INET6 ? ' -6' : ''}` : `FWM  ${fwmark}${af === AF_INET6 ? ' IPv6' : ''}`;
  } else {
    const vname = serviceEndpoint(view, s, af, protocol, namer);
    if (rule) {
      const option = protocol === IPPROTO_TCP ? '-t' : protocol === IPPROTO_UDP ? '-u' : protocol === IPPROTO_SCTP ? '--sctp-service' : '--xxx-service';
      name = `${option} ${vname}`;
    } else {
      const proto = protocol === IPPROTO_TCP ? 'TCP ' : protocol === IPPROTO_UDP ? 'UDP ' : protocol === IPPROTO_SCTP ? 'SCTP' : '?   ';
      name = `${proto} ${vname}`;
      if (af !== AF_INET6) name = name.slice(0, 33);
    }
  }

  const scheduler = view.scheduler(s);
  const flags = view.flags(s);
  const sflags = schedulerFlags(flags, scheduler);
  const persistent = view.persistent(s);
  const pe = view.persistenceEngine(s);
  const onePacket = (flags & SVC_F_ONEPACKET) !== 0;
  let out: string;
  if (rule) {
    out = `-A ${name} -s ${scheduler}`;
    if (persistent !== undefined) {
      out += ` -p ${persistent}`;
      const mask = netmaskOf(view, s, af);
      if (!mask.isDefault) out += ` -M ${mask.text}`;
    }
    if (pe) out += ` --pe ${pe}`;
    if (onePacket) out += ' -o';
    if (sflags !== undefined) out += ` -b ${sflags}`;
  } else if (format & (Fmt.STATS | Fmt.RATE)) {
    out = padEnd(name, 33) + countersText(view.services, view.serviceCounterAt(s, format & Fmt.STATS ? 0 : 5), format);
  } else {
    out = `${name} ${scheduler}`;
    if (sflags !== undefined) out += ` (${sflags})`;
    if (persistent !== undefined) {
      out += ` persistent ${persistent}`;
      const mask = netmaskOf(view, s, af);
      if (!mask.isDefault) out += ` mask ${mask.text}`;
      if (pe) out += ` pe ${pe}`;
    }
    if (onePacket) out += ' ops';
  }
  out += '\n';

  const first = view.firstDestination[s]!;
  const count = view.firstDestination[s + 1]! - first;
  const sorted = format & Fmt.NOSORT ? undefined : destinationOrder(view, s, af, order);
  const dw = view.destinations;
  const bytes = view.destinationBytes;
  const L = view.L.dst;
  const hasAf = view.L.dstHas.af;
  const dstWords = view.L.dstWords;
  const numeric = namer.numeric;
  const afAt = L.af;
  const forwardAt = L.forward;
  const addressAt = L.address;
  const portAt = L.port;
  const weightAt = L.weight;
  const activeAt = L.activeConnections;
  const inactiveAt = L.inactiveConnections;
  const plain = numeric && !rule && (format & (Fmt.STATS | Fmt.RATE | Fmt.THRESHOLDS | Fmt.PERSISTENTCONN | Fmt.TUN_INFO)) === 0;
  for (let i = 0; i < count; i++) {
    const d = sorted ? sorted[i]! : first + i;
    const base = d * dstWords;
    const daf = (dw[base]! & hasAf) === 0 ? af : dw[base + afAt] === AF_INET6 ? AF_INET6 : AF_INET;
    const forward = dw[base + forwardAt]! & FWD_MASK;
    if (plain && daf !== AF_INET6) {
      out += ipv4LineStart(dw[base + addressAt]!, dw[base + portAt]!) +
        defaultColumns(forward, dw[base + weightAt]!, dw[base + activeAt]!, dw[base + inactiveAt]!);
      continue;
    }
    if (rule) {
      out += `-a ${name} -r ${destinationEndpoint(view, d, daf, protocol, namer)} ${FORWARD_SWITCHES[forward]} -w ${dw[base + L.weight]}` +
        `${forward === FORWARD_TUNNEL ? tunnelRule(view, d) : ''}\n`;
      continue;
    }
    let dname: string;
    if (numeric && daf !== AF_INET6) {
      const at = (base + L.address) * 4;
      dname = OCTETS[bytes[at]!] + '.' + OCTETS[bytes[at + 1]!] + '.' + OCTETS[bytes[at + 2]!] + '.' + OCTETS[bytes[at + 3]!] + ':' +
        dw[base + L.port];
    } else {
      dname = destinationEndpoint(view, d, daf, protocol, namer);
      if (daf !== AF_INET6) dname = dname.slice(0, 28);
    }
    out += '  -> ' + padEnd(dname, 28);
    if (format & Fmt.STATS) {
      out += countersText(dw, base + L.stats, format);
    } else if (format & Fmt.RATE) {
      const at = base + L.stats + 10;  // connectionRate, the sixth counter
      out += ` ${padStart(counterText(dw, at), 8)} ${padStart(counterText(dw, at + 2), 8)} ${padStart(counterText(dw, at + 4), 8)}` +
        largeNumberAt(dw, at + 6, format) + largeNumberAt(dw, at + 8, format);
    } else if (format & Fmt.THRESHOLDS) {
      out += ` ${padEnd(`${dw[base + L.upperThreshold]}`, 10)} ${padEnd(`${dw[base + L.lowerThreshold]}`, 10)} ` +
        `${padEnd(`${dw[base + L.activeConnections]}`, 10)} ${padEnd(`${dw[base + L.inactiveConnections]}`, 10)}`;
    } else if (format & Fmt.PERSISTENTCONN) {
      out += ` ${padEnd(`${dw[base + L.weight]}`, 9)} ${padEnd(`${dw[base + L.persistentConnections]}`, 11)} ` +
        `${padEnd(`${dw[base + L.activeConnections]}`, 10)} ${padEnd(`${dw[base + L.inactiveConnections]}`, 10)}`;
    } else if (format & Fmt.TUN_INFO) {
      out += ` ${FORWARD_NAMES[forward]} ${padEnd(forward === FORWARD_TUNNEL ? tunnelInfo(view, d) : 'n/a', 13)} ` +
        `${padEnd(`${dw[base + L.weight]}`, 6)} ${padEnd(`${dw[base + L.activeConnections]}`, 10)} ${padEnd(`${dw[base + L.inactiveConnections]}`, 10)}`;
    } else {
      out += defaultColumns(forward, dw[base + weightAt]!, dw[base + activeAt]!, dw[base + inactiveAt]!);
      continue;
    }
    out += '\n';
  }
  return out;
}

// ---- listings --------------------------------------------------------------------------------

/** list_all: the header (unless saving), the title and every service, sorted unless --nosort. */
export function formatTable(
  view: TableView, format: number, namer: Namer, info: { version: string; connectionTableSize: number },
): TextBuffer {
  // Roughly what a default listing takes, so the buffer rarely grows.
  const text = new TextBuffer(256 + view.serviceCount * 64 + view.destinationCount * (format & (Fmt.STATS | Fmt.RATE) ? 80 : 70));
  if (!(format & Fmt.RULE)) text.text(`IP Virtual Server version ${info.version} (size=${info.connectionTableSize})\n`);
  text.text(listingHeader(format));
  const order: Float64Array[] = [new Float64Array(64), new Float64Array(64)];
  if (format & Fmt.NOSORT) {
    for (let s = 0; s < view.serviceCount; s++) text.text(serviceText(view, s, format, namer, order));
  } else {
    for (const s of serviceOrder(view)) text.text(serviceText(view, s, format, namer, order));
  }
  return text;
}

/**
 * list_all of a table that arrives in parts of whole services (the addon's onPart): add()
 * formats each part's services as it arrives, while the kernel dumps the next one, into that
 * part's bytes; finish() sorts the whole table's services and copies their bytes in that order,
 * as formatTable() would have written them. Each service's text is written out as soon as it is
 * made: a text kept as a string until the end is a rope of some forty pieces that survives the
 * scavenges meanwhile, and flattening a thousand of them after the last part doubled the work
 * left once the kernel was done.
 */
export class PartwiseListing {
  readonly #format: number;
  readonly #namer: Namer;
  readonly #parts: NativeTable[] = [];
  /** Each part's formatted services, one after another. */
  readonly #bytes: Uint8Array[] = [];
  /** Per service, in the kernel's order: its part, and where its text starts and ends there. */
  readonly #partOf: number[] = [];
  readonly #starts: number[] = [];
  readonly #ends: number[] = [];
  readonly #order: Float64Array[] = [new Float64Array(64), new Float64Array(64)];
  /** The services' sort keys, made as they arrive (the sort after the last part is then all that is left). */
  readonly #keys = new Ipv4ServiceKeys();

  /** `namer`: a numeric one (names are resolved for the whole table at once). */
  constructor(format: number, namer: Namer) {
    if (!namer.numeric) throw new Error('PartwiseListing: numeric listings only');
    this.#format = format;
    this.#namer = namer;
  }

  /** Formats the services of the next part (parts come in the kernel's order). */
  add(part: NativeTable): void {
    const view = new TableView(part);
    const index = this.#parts.length;
    const text = new TextBuffer(64 + view.serviceCount * 64 + view.destinationCount * (this.#format & (Fmt.STATS | Fmt.RATE) ? 80 : 70));
    for (let s = 0; s < view.serviceCount; s++) {
      this.#keys.add(view, s, this.#partOf.length);
      this.#partOf.push(index);
      this.#starts.push(text.length);
      text.text(serviceText(view, s, this.#format, this.#namer, this.#order));
      this.#ends.push(text.length);
    }
    this.#parts.push(part);
    // A plain Uint8Array: finish() takes a subarray per service, and a Buffer's runs Buffer's
    // own constructor each time.
    const bytes = text.bytes();
    this.#bytes.push(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
  }

  /** The listing, once every part has been added. */
  finish(info: { version: string; connectionTableSize: number }): TextBuffer {
    const format = this.#format;
    let size = 256;
    for (const bytes of this.#bytes) size += bytes.length;
    const text = new TextBuffer(size);
    if (!(format & Fmt.RULE)) text.text(`IP Virtual Server version ${info.version} (size=${info.connectionTableSize})\n`);
    text.text(listingHeader(format));
    const partOf = this.#partOf;
    const starts = this.#starts;
    const ends = this.#ends;
    const bytes = this.#bytes;
    if (format & Fmt.NOSORT) {
      for (let s = 0; s < partOf.length; s++) text.append(bytes[partOf[s]!]!, starts[s]!, ends[s]!);
      return text;
    }
    for (const s of this.#keys.order() ?? serviceOrder(servicesOnly(this.#parts))) text.append(bytes[partOf[s]!]!, starts[s]!, ends[s]!);
    return text;
  }
}

/**
 * The services of `parts` in one view, without their destinations (what serviceOrder() reads):
 * the destinations' records, ten times as many words, are not copied into one array.
 */
function servicesOnly(parts: readonly NativeTable[]): TableView {
  const services = concatWords(parts.map((part) => part.services));
  const L = layoutOf();
  for (let at = L.svc.destinationCount; at < services.length; at += L.svcWords) services[at] = 0;
  return new TableView({ services, destinations: new Uint32Array(0), strings: parts.at(-1)!.strings });
}

/** The table that arrived in `parts` (at least one), in one. */
export function wholeTable(parts: readonly NativeTable[]): NativeTable {
  if (parts.length === 1) return parts[0]!;
  return {
    services: concatWords(parts.map((part) => part.services)),
    destinations: concatWords(parts.map((part) => part.destinations)),
    // Every part's strings are all of the listing's so far: the last one's are the whole table's.
    strings: parts.at(-1)!.strings,
  };
}

function concatWords(arrays: readonly Uint32Array[]): Uint32Array {
  let length = 0;
  for (const array of arrays) length += array.length;
  const out = new Uint32Array(length);
  let at = 0;
  for (const array of arrays) {
    out.set(array, at);
    at += array.length;
  }
  return out;
}

/** list_service: the title and the view's one service (no header). */
export function formatOneService(view: TableView, format: number, namer: Namer): TextBuffer {
  const text = new TextBuffer().text(listingHeader(format));
  const order: Float64Array[] = [new Float64Array(64), new Float64Array(64)];
  for (let s = 0; s < view.serviceCount; s++) text.text(serviceText(view, s, format, namer, order));
  return text;
}
