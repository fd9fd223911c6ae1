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

// ---- sorting ---------------------------------------------------------------------------------

const keyScratch = new Uint8Array(16);

/** An address as sort keys: its first 32 bits as a number, the other 96 (IPv6) as hex text. */
export function addressKey(address: string): { high: number; low: string } {
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

