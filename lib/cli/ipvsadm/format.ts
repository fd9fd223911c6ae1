// ipvsadm 1.31's output, byte for byte: the service table (-L with each option, -S), the
// connection table (-c), timeouts and daemons. Two of ipvsadm's bugs are not copied: fwmarks
// of 2^31 and more are printed unsigned (1.31 printed them negative, and -R then refused its
// own save), and services are sorted by unsigned address and mark (1.31 subtracted u32s into
// an int, so addresses 2^31 or more apart sorted the wrong way round).
import { parseAddress } from '../../address';
import type { ConnectionTable } from '../../connections';
import type { DaemonConfig, Destination, Service, Stats, Timeouts } from '../../types';
import { AF_INET, AF_INET6, addressToHost, ntop4, ntop6, portToAnyName } from './names';
import { Fmt, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from './options';
import { TextBuffer } from './text-buffer';

export type TableEntry = Service & { destinations: Destination[] };

const PROTOCOL_NUMBERS: Record<string, number> = { tcp: IPPROTO_TCP, udp: IPPROTO_UDP, sctp: IPPROTO_SCTP };

/** The service's protocol number; 0 for fwmark services (the kernel reports none for them). */
function protocolNumber(service: Service): number {
  if (!('protocol' in service)) return 0;
  return PROTOCOL_NUMBERS[service.protocol] ?? Number(/\d+$/.exec(service.protocol)?.[0] ?? 0);
}

// ---- addresses as ipvsadm prints them ---------------------------------------------------------

const scratch = new Uint8Array(16);
const v6Text = new Map<string, string>();

/** glibc's inet_ntop text of an address the library printed (RFC 5952): IPv6 may differ. */
function cText(address: string, af: number): string {
  if (af !== AF_INET6) return address;
  let text = v6Text.get(address);
  if (text === undefined) {
    text = parseAddress(address, scratch) === 'inet6' ? ntop6(scratch) : address;
    v6Text.set(address, text);
  }
  return text;
}

/** Turns an address and port into ipvsadm's `addr:port` text, numeric or with names. */
export class Namer {
  readonly #numeric: boolean;
  readonly #hosts = new Map<string, string>();

  constructor(numeric: boolean) {
    this.#numeric = numeric;
  }

  get numeric(): boolean {
    return this.#numeric;
  }

  /** Looks up the host names of `addresses` (all at once) before formatting, unless numeric. */
  async resolve(addresses: Iterable<string>): Promise<void> {
    if (this.#numeric) return;
    const pending: Array<Promise<void>> = [];
    for (const address of new Set(addresses)) {
      if (this.#hosts.has(address)) continue;
      this.#hosts.set(address, address);
      pending.push(addressToHost(address).then((name) => { if (name) this.#hosts.set(address, name); }));
    }
    await Promise.all(pending);
  }

  addrPort(af: number, address: string, port: number, protocol: number): string {
    const open = af === AF_INET6 ? '[' : '';
    const close = af === AF_INET6 ? ']' : '';
    if (this.#numeric) return `${open}${cText(address, af)}${close}:${port}`;
    const host = this.#hosts.get(address);
    const name = host !== undefined && host !== address ? host : cText(address, af);
    return `${open}${name}${close}:${portToAnyName(port, protocol)}`;
  }
}

/** Every address a listing of `table` prints, for Namer.resolve. */
export function tableAddresses(table: readonly TableEntry[]): string[] {
  const out: string[] = [];
  for (const service of table) {
    if ('address' in service) out.push(service.address);
    for (const d of service.destinations) out.push(d.address);
  }
  return out;
}

// ---- sorting ---------------------------------------------------------------------------------

const keyScratch = new Uint8Array(16);

/** An address as sort keys: its first 32 bits as a number, the other 96 (IPv6) as hex text. */
function addressKey(address: string): { high: number; low: string } {
  const family = parseAddress(address, keyScratch);
  const b = keyScratch;
  const high = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  if (family !== 'inet6') return { high, low: '' };
  let low = '';
  for (let i = 4; i < 16; i++) low += (b[i]! < 16 ? '0' : '') + b[i]!.toString(16);
  return { high, low };
}

/** ipvs_cmp_services with unsigned comparisons: fwmark, family, protocol, address, port. */
export function sortServices(table: TableEntry[]): TableEntry[] {
  const keyed = table.map((service) => ({
    service,
    fwmark: 'fwmark' in service ? service.fwmark : 0,
    af: service.family === 'inet6' ? AF_INET6 : AF_INET,
    protocol: protocolNumber(service),
    ...('address' in service ? addressKey(service.address) : { high: 0, low: '' }),
    port: 'port' in service ? service.port : 0,
  }));
  keyed.sort((a, b) => (a.fwmark - b.fwmark) || (a.af - b.af) || (a.protocol - b.protocol) || (a.high - b.high) ||
    (a.af === AF_INET6 ? (a.low < b.low ? -1 : a.low > b.low ? 1 : 0) : 0) || (a.port - b.port));
  return keyed.map((k) => k.service);
}

/** ipvs_cmp_dests with unsigned comparisons: address (by the first one's family), then port. */
export function sortDestinations(destinations: readonly Destination[]): Destination[] {
  // IPv4 (the usual case): address and port in one number, 2^48 at most, compared as numbers.
  const keys = new Float64Array(destinations.length);
  for (let i = 0; i < destinations.length; i++) {
    const d = destinations[i]!;
    const address = d.family === 'inet6' ? undefined : ipv4Number(d.address);
    if (address === undefined) return sortDestinationsByKey(destinations);
    keys[i] = address * 65536 + d.port;
  }
  const order = Array.from(destinations.keys()).sort((a, b) => keys[a]! - keys[b]!);
  return order.map((i) => destinations[i]!);
}

/** A dotted quad as an unsigned 32-bit number, without allocating; undefined if it is not one. */
function ipv4Number(text: string): number | undefined {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || ++dots > 3) return undefined;
      value = value * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39 && digits < 3) {
      part = part * 10 + (c - 0x30);
      digits++;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0 || part > 255) return undefined;
  return value * 256 + part;
}

function sortDestinationsByKey(destinations: readonly Destination[]): Destination[] {
  const keyed = destinations.map((d) => ({ d, v6: d.family === 'inet6', ...addressKey(d.address) }));
  keyed.sort((a, b) => (a.high - b.high) || (a.v6 ? (a.low < b.low ? -1 : a.low > b.low ? 1 : 0) : 0) || (a.d.port - b.d.port));
  return keyed.map((k) => k.d);
}

// ---- numbers ---------------------------------------------------------------------------------

/** print_largenum: right-aligned in 9 columns, with K/M/G/T once large, or exact with --exact. */
export function largeNumber(value: bigint, format: number): string {
  if (format & Fmt.EXACT) {
    const text = value.toString();
    return text.padStart(text.length <= 8 ? 9 : text.length + 1);
  }
  if (value < 100000000n) return value.toString().padStart(9);
  if (value < 1000000000n) return `${(value / 1000n).toString().padStart(8)}K`;
  if (value < 100000000000n) return `${(value / 1000000n).toString().padStart(8)}M`;
  if (value < 100000000000000n) return `${(value / 1000000000n).toString().padStart(8)}G`;
  return `${(value / 1000000000000n).toString().padStart(8)}T`;
}

// ---- the service table -------------------------------------------------------------------------

const FORWARD_NAMES: Record<string, string> = { masq: 'Masq', local: 'Local', tunnel: 'Tunnel', route: 'Route' };
const FORWARD_SWITCHES: Record<string, string> = { masq: '-m', tunnel: '-i', local: '-g', route: '-g' };
const TUNNEL_FLAG_TEXT: Record<string, string> = { none: '-c', csum: '+c', remcsum: 'r+c' };
const TUNNEL_FLAG_OPTIONS: Record<string, string> = { none: '--tun-nocsum', csum: '--tun-csum', remcsum: '--tun-remcsum' };

function title(format: number): string {
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

/** print_sched_flags: sh and mh name their two flags (and drop flag-3); others flag-1..3. */
function schedFlags(service: Service): string {
  const flags = service.schedulerFlags;
  const named = service.scheduler === 'sh' || service.scheduler === 'mh';
  return flags.filter((f) => !named || f !== 'flag-3').join(',');
}

function statsColumns(stats: Stats, format: number): string {
  return largeNumber(stats.connections, format) + largeNumber(stats.packetsIn, format) +
    largeNumber(stats.packetsOut, format) + largeNumber(stats.bytesIn, format) + largeNumber(stats.bytesOut, format);
}

function rateColumns(stats: Stats, format: number): string {
  return largeNumber(stats.connectionRate, format) + largeNumber(stats.packetRateIn, format) +
    largeNumber(stats.packetRateOut, format) + largeNumber(stats.byteRateIn, format) + largeNumber(stats.byteRateOut, format);
}

function netmaskIsDefault(service: Service): boolean {
  return service.family === 'inet6' ? service.netmask === 128 : service.netmask === '255.255.255.255';
}

function tunnelInfo(d: Destination): string {
  if (d.forward !== 'tunnel') return 'n/a';
  const t = d.tunnel ?? { type: 'ipip', checksum: 'none' };
  if (t.type === 'ipip') return 'ipip';
  if (t.type === 'gue') return `gue:${t.port ?? 0}:${TUNNEL_FLAG_TEXT[t.checksum]}`;
  return `gre:${TUNNEL_FLAG_TEXT[t.checksum]}`;
}

function tunnelRule(d: Destination): string {
  const t = d.tunnel ?? { type: 'ipip', checksum: 'none' };
  if (t.type === 'gre') return ` --tun-type gre ${TUNNEL_FLAG_OPTIONS[t.checksum]}`;
  if (t.type === 'gue') return ` --tun-type gue --tun-port ${t.port ?? 0} ${TUNNEL_FLAG_OPTIONS[t.checksum]}`;
  return ' --tun-type ipip';
}

/** print_service_entry: one service line and its destination lines, into `text`. */
function writeService(text: TextBuffer, service: TableEntry, format: number, namer: Namer): void {
  const rule = (format & Fmt.RULE) !== 0;
  const af = service.family === 'inet6' ? AF_INET6 : AF_INET;
  const protocol = protocolNumber(service);
  let name: string;
  if ('fwmark' in service) {
    // Unsigned, unlike 1.31's %d (see the file comment).
    name = rule ? `-f ${service.fwmark}${af === AF_INET6 ? ' -6' : ''}` : `FWM  ${service.fwmark}${af === AF_INET6 ? ' IPv6' : ''}`;
  } else {
    const vname = namer.addrPort(af, service.address, service.port, protocol);
    if (rule) {
      const option = protocol === IPPROTO_TCP ? '-t' : protocol === IPPROTO_UDP ? '-u' : protocol === IPPROTO_SCTP ? '--sctp-service' : '--xxx-service';
      name = `${option} ${vname}`;
    } else {
      const proto = protocol === IPPROTO_TCP ? 'TCP' : protocol === IPPROTO_UDP ? 'UDP' : protocol === IPPROTO_SCTP ? 'SCTP' : '?';
      name = `${proto.padEnd(4)} ${vname}`;
      if (af !== AF_INET6) name = name.slice(0, 33);
    }
  }

  let out: string;
  const sflags = schedFlags(service);
  const hasSchedFlags = service.schedulerFlags.length > 0;
  if (rule) {
    out = `-A ${name} -s ${service.scheduler}`;
    if (service.persistent !== undefined) {
      out += ` -p ${service.persistent}`;
      if (!netmaskIsDefault(service)) out += ` -M ${service.netmask}`;
    }
    if (service.persistenceEngine) out += ` --pe ${service.persistenceEngine}`;
    if (service.onePacket) out += ' -o';
    if (hasSchedFlags) out += ` -b ${sflags}`;
  } else if (format & Fmt.STATS) {
    out = name.padEnd(33) + statsColumns(service.stats, format);
  } else if (format & Fmt.RATE) {
    out = name.padEnd(33) + rateColumns(service.stats, format);
  } else {
    out = `${name} ${service.scheduler}`;
    if (hasSchedFlags) out += ` (${sflags})`;
    if (service.persistent !== undefined) {
      out += ` persistent ${service.persistent}`;
      if (!netmaskIsDefault(service)) out += ` mask ${service.netmask}`;
      if (service.persistenceEngine) out += ` pe ${service.persistenceEngine}`;
    }
    if (service.onePacket) out += ' ops';
  }
  text.text(out).text('\n');

  const destinations = format & Fmt.NOSORT ? service.destinations : sortDestinations(service.destinations);
  for (const d of destinations) {
    const daf = d.family === 'inet6' ? AF_INET6 : AF_INET;
    let dname = namer.addrPort(daf, d.address, d.port, protocol);
    if (!rule && daf !== AF_INET6) dname = dname.slice(0, 28);
    if (rule) {
      text.text(`-a ${name} -r ${dname} ${FORWARD_SWITCHES[d.forward] ?? '(null)'} -w ${d.weight}`);
      if (d.forward === 'tunnel') text.text(tunnelRule(d));
      text.text('\n');
    } else if (format & Fmt.STATS) {
      text.text('  -> ').padEnd(dname, 28).text(`${statsColumns(d.stats, format)}\n`);
    } else if (format & Fmt.RATE) {
      const s = d.stats;
      text.text('  -> ').padEnd(dname, 28).text(` ${s.connectionRate.toString().padStart(8)} ${s.packetRateIn.toString().padStart(8)} ` +
        `${s.packetRateOut.toString().padStart(8)}${largeNumber(s.byteRateIn, format)}${largeNumber(s.byteRateOut, format)}\n`);
    } else if (format & Fmt.THRESHOLDS) {
      text.text('  -> ').padEnd(dname, 28).text(' ').uintPadEnd(d.upperThreshold, 10).text(' ').uintPadEnd(d.lowerThreshold, 10).text(' ')
        .uintPadEnd(d.activeConnections, 10).text(' ').uintPadEnd(d.inactiveConnections, 10).text('\n');
    } else if (format & Fmt.PERSISTENTCONN) {
      text.text('  -> ').padEnd(dname, 28).text(' ').uintPadEnd(d.weight, 9).text(' ').uintPadEnd(d.persistentConnections, 11).text(' ')
        .uintPadEnd(d.activeConnections, 10).text(' ').uintPadEnd(d.inactiveConnections, 10).text('\n');
    } else if (format & Fmt.TUN_INFO) {
      text.text('  -> ').padEnd(dname, 28).text(' ').padEnd(FORWARD_NAMES[d.forward] ?? '(null)', 7).text(' ').padEnd(tunnelInfo(d), 13).text(' ')
        .uintPadEnd(d.weight, 6).text(' ').uintPadEnd(d.activeConnections, 10).text(' ').uintPadEnd(d.inactiveConnections, 10).text('\n');
    } else {
      text.text('  -> ').padEnd(dname, 28).text(' ').padEnd(FORWARD_NAMES[d.forward] ?? '(null)', 7).text(' ').uintPadEnd(d.weight, 6).text(' ')
        .uintPadEnd(d.activeConnections, 10).text(' ').uintPadEnd(d.inactiveConnections, 10).text('\n');
    }
  }
}

/** list_all: the header (unless saving), the title and every service, sorted unless --nosort. */
export function formatTable(
  table: TableEntry[], format: number, namer: Namer, info: { version: string; connectionTableSize: number },
): string {
  const text = new TextBuffer();
  if (!(format & Fmt.RULE)) text.text(`IP Virtual Server version ${info.version} (size=${info.connectionTableSize})\n`);
  text.text(title(format));
  const services = format & Fmt.NOSORT ? table : sortServices(table);
  for (const service of services) writeService(text, service, format, namer);
  return text.toString();
}

/** list_service: the title and one service (no header). */
export function formatOneService(service: TableEntry, format: number, namer: Namer): string {
  const text = new TextBuffer().text(title(format));
  writeService(text, service, format, namer);
  return text.toString();
}

export function formatTimeouts(t: Timeouts): string {
  return `Timeout (tcp tcpfin udp): ${t.tcp} ${t.tcpFin} ${t.udp}\n`;
}

export function formatDaemons(daemons: readonly DaemonConfig[]): string {
  let out = '';
  for (const d of daemons) {
    out += `${d.state} sync daemon (mcast=${d.interface}, syncid=${d.syncId}`;
    if (d.maxLength) out += `, maxlen=${d.maxLength}`;
    if (d.group !== undefined) out += `, group=${cText(d.group, d.group.includes(':') ? AF_INET6 : AF_INET)}`;
    if (d.port) out += `, port=${d.port}`;
    if (d.ttl) out += `, ttl=${d.ttl}`;
    out += ')\n';
  }
  return out;
}

// ---- the connection table ------------------------------------------------------------------------

/** Every address a -c listing prints, for Namer.resolve. */
export function connectionAddresses(table: ConnectionTable): string[] {
  const c = table.columns;
  const out = [...c.addresses];
  for (let i = 0; i < table.length; i++) {
    out.push(c.clientFamily[i] === 6 ? ntop6(c.clientAddress, i * 16) : ntop4(c.clientAddress, i * 16));
  }
  return out;
}

