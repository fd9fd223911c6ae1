// The object-based formatter the service listing had before it read the packed records
// directly (lib/cli/ipvsadm/service-listing.ts): it prints Service and Destination objects as
// tableFromNative() builds them, and was checked byte for byte against the real ipvsadm. The
// unit tests use it as the oracle: both must print the same text for any packed table. The
// column headings and the address sort keys are the command's own (the kernel suite's
// differential checks those against the real ipvsadm).
import { addressKey, type Namer, type TableEntry, largeNumber, sortServices } from '../../../lib/cli/ipvsadm/format';
import { AF_INET, AF_INET6 } from '../../../lib/cli/ipvsadm/names';
import { Fmt, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from '../../../lib/cli/ipvsadm/options';
import { listingHeader } from '../../../lib/cli/ipvsadm/service-listing';
import { TextBuffer } from '../../../lib/cli/ipvsadm/text-buffer';
import type { Destination, Service, Stats } from '../../../lib/types';

const PROTOCOL_NUMBERS: Record<string, number> = { tcp: IPPROTO_TCP, udp: IPPROTO_UDP, sctp: IPPROTO_SCTP };

/** The service's protocol number; 0 for fwmark services (the kernel reports none for them). */
function protocolNumber(service: Service): number {
  if (!('protocol' in service)) return 0;
  return PROTOCOL_NUMBERS[service.protocol] ?? Number(/\d+$/.exec(service.protocol)?.[0] ?? 0);
}

/** ipvs_cmp_dests with unsigned comparisons: address (by the first one's family), then port. */
function sortDestinations(destinations: readonly Destination[]): Destination[] {
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

// ---- the service table -------------------------------------------------------------------------

const FORWARD_NAMES: Record<string, string> = { masq: 'Masq', local: 'Local', tunnel: 'Tunnel', route: 'Route' };
const FORWARD_SWITCHES: Record<string, string> = { masq: '-m', tunnel: '-i', local: '-g', route: '-g' };
const TUNNEL_FLAG_TEXT: Record<string, string> = { none: '-c', csum: '+c', remcsum: 'r+c' };
const TUNNEL_FLAG_OPTIONS: Record<string, string> = { none: '--tun-nocsum', csum: '--tun-csum', remcsum: '--tun-remcsum' };

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
export function referenceFormatTable(
  table: TableEntry[], format: number, namer: Namer, info: { version: string; connectionTableSize: number },
): string {
  const text = new TextBuffer();
  if (!(format & Fmt.RULE)) text.text(`IP Virtual Server version ${info.version} (size=${info.connectionTableSize})\n`);
  text.text(listingHeader(format));
  const services = format & Fmt.NOSORT ? table : sortServices(table);
  for (const service of services) writeService(text, service, format, namer);
  return text.toString();
}

/** list_service: the title and one service (no header). */
export function referenceFormatOneService(service: TableEntry, format: number, namer: Namer): string {
  const text = new TextBuffer().text(listingHeader(format));
  writeService(text, service, format, namer);
  return text.toString();
}

