// ipvsadm's -c listing (list_conn) of a columnar ConnectionTable, written as bytes into one
// buffer sized up front. 100k connections are 100k lines that repeat a few cells: the protocol
// and state cells, and the virtual and real-server endpoints, are encoded once each; numeric
// IPv4 clients are written digit by digit from a table. Only the rare rows (IPv6 or named
// clients, persistence-engine data) go through strings.
import type { ConnectionTable } from '../../connections';
import { AF_INET, AF_INET6, ntop4, ntop6 } from './names';
import type { Namer } from './format';
import { Fmt, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from './options';

const CONN_PROTOCOLS: Record<string, number> = { TCP: IPPROTO_TCP, UDP: IPPROTO_UDP, SCTP: IPPROTO_SCTP };
const SPACE = 0x20;
const COLON = 0x3a;

/** Each octet's decimal digits: [count, d0, d1, d2] at 4 * value. */
const OCTETS = new Uint8Array(256 * 4);
for (let value = 0; value < 256; value++) {
  const digits = String(value);
  OCTETS[value * 4] = digits.length;
  for (let i = 0; i < digits.length; i++) OCTETS[value * 4 + 1 + i] = digits.charCodeAt(i);
}

const encode = (text: string): Buffer => Buffer.from(text, 'utf8');

export interface ConnectionListingOptions {
  /** `ipvs-netlink conns --sync`: an `origin` column (local or sync) after ipvsadm's columns. */
  origins?: boolean;
}

/**
 * The -c listing of `table` as ipvsadm prints it (with Fmt.PERSISTENTCONN, the persistence
 * engine columns), addresses through `namer`; the same bytes as the text of list_conn.
 */
export function formatConnections(table: ConnectionTable, format: number, namer: Namer, options: ConnectionListingOptions = {}): Buffer {
  const persistent = (format & Fmt.PERSISTENTCONN) !== 0;
  const origins = options.origins === true;
  const c = table.columns;
  const rows = table.length;
  let header = persistent
    ? `pro expire ${'state'.padEnd(11)} ${'source'.padEnd(18)} ${'virtual'.padEnd(18)} ${'destination'.padEnd(18)} ${'pe name'.padEnd(16)} pe_data`
    : `pro expire ${'state'.padEnd(11)} ${'source'.padEnd(18)} ${'virtual'.padEnd(18)} destination`;
  if (origins) header += ' origin';
  const head = encode(`IPVS connection entries\n${header}\n`);

  const addressFamily = c.addresses.map((a) => (a.includes(':') ? AF_INET6 : AF_INET));
  const protocolNumbers = c.protocols.map((p) => CONN_PROTOCOLS[p] ?? 0);
  const protocolCells = c.protocols.map((p) => encode(`${p.padEnd(3)} `));
  const stateCells = c.states.map((s) => encode(`${s.padEnd(11)} `));
  // The end of a line: with the origin column, `sync` for a synced entry, else `local`.
  const local = encode(origins ? ' local\n' : '\n');
  const synced = encode(origins ? ' sync\n' : '\n');
  // Endpoint cells by (address index, port, protocol): `virtual` padded and a space, or
  // `destination` and the end of the line.
  const virtualCells = new Map<number, Buffer>();
  const destinationCells = new Map<number, Buffer>();
  const endpointKey = (index: number, port: number, proto: number): number =>
    (index * 65536 + port) * 4 + (proto === IPPROTO_TCP ? 0 : proto === IPPROTO_UDP ? 1 : proto === IPPROTO_SCTP ? 2 : 3);

  let widest = 0;
  for (const cell of protocolCells) widest = Math.max(widest, cell.length);
  let widestState = 0;
  for (const cell of stateCells) widestState = Math.max(widestState, cell.length);
  // A line's fixed part: protocol, expiry (up to 10 digits of minutes), state, an IPv4 client,
  // the origin and the newline; the endpoint cells are counted as they are met.
  const fixed = widest + 16 + widestState + 22 + 8;
  let out: Buffer = Buffer.allocUnsafe(head.length + rows * (fixed + 48));
  let at = head.copy(out, 0);
  const numeric = namer.numeric;
  // The columns as locals: the loop below runs once per connection.
  const { protocol, state, clientFamily, clientAddress, clientPort, virtualAddress, virtualPort, destinationAddress,
    destinationPort, expires, pe: peColumn, origin } = c;

  for (let i = 0; i < rows; i++) {
    const proto = protocolNumbers[protocol[i]!]!;
    const pe = persistent ? peColumn[i]! : 0;
    const vi = virtualAddress[i]!;
    const vport = virtualPort[i]!;
    const vkey = endpointKey(vi, vport, proto);
    let vcell = virtualCells.get(vkey);
    if (vcell === undefined) {
      vcell = encode(`${namer.addrPort(addressFamily[vi]!, c.addresses[vi]!, vport, proto).padEnd(18)} `);
      virtualCells.set(vkey, vcell);
    }
    const di = destinationAddress[i]!;
    const dport = destinationPort[i]!;
    let dcell: Buffer | undefined;
    if (pe === 0) {
      const dkey = endpointKey(di, dport, proto);
      dcell = destinationCells.get(dkey);
      if (dcell === undefined) {
        dcell = encode(namer.addrPort(addressFamily[di]!, c.addresses[di]!, dport, proto));
        destinationCells.set(dkey, dcell);
      }
    } else {
      const dname = namer.addrPort(addressFamily[di]!, c.addresses[di]!, dport, proto);
      dcell = encode(`${dname.padEnd(16)} ${c.peNames[pe - 1]!.padEnd(18)} ${c.peData[pe - 1]}`);
    }
    let client: Buffer | undefined;
    if (!numeric || clientFamily[i] === 6) {
      const cf = clientFamily[i] === 6 ? AF_INET6 : AF_INET;
      const caddr = cf === AF_INET6 ? ntop6(clientAddress, i * 16) : ntop4(clientAddress, i * 16);
      client = encode(`${namer.addrPort(cf, caddr, clientPort[i]!, proto).padEnd(18)} `);
    }
    const need = fixed + vcell.length + dcell.length + (client ? client.length : 0);
    if (at + need > out.length) out = grow(out, at, need);

    at = copy(out, at, protocolCells[protocol[i]!]!);
    // The expiry as mm:ss (minutes may run past 99), padded to 6.
    const start = at;
    const expiry = expires[i]!;
    let minutes = Math.floor(expiry / 60);
    const seconds = expiry - minutes * 60;
    let digits = 2;
    for (let rest = minutes; rest >= 100; rest = Math.floor(rest / 10)) digits++;
    for (let k = digits - 1; k >= 0; k--) {
      out[at + k] = 0x30 + (minutes % 10);
      minutes = Math.floor(minutes / 10);
    }
    at += digits;
    out[at] = COLON;
    out[at + 1] = 0x30 + Math.floor(seconds / 10);
    out[at + 2] = 0x30 + (seconds % 10);
    at += 3;
    while (at < start + 6) out[at++] = SPACE;
    out[at++] = SPACE;
    at = copy(out, at, stateCells[state[i]!]!);

    if (client === undefined) {
      const begin = at;
      const a = i * 16;
      for (let octet = 0; octet < 4; octet++) {
        const t = clientAddress[a + octet]! * 4;
        const count = OCTETS[t]!;
        out[at] = OCTETS[t + 1]!;
        if (count > 1) out[at + 1] = OCTETS[t + 2]!;
        if (count > 2) out[at + 2] = OCTETS[t + 3]!;
        at += count;
        out[at++] = octet === 3 ? COLON : 0x2e;
      }
      const port = clientPort[i]!;
      let portDigits = 1;
      for (let rest = port; rest >= 10; rest = Math.floor(rest / 10)) portDigits++;
      for (let k = portDigits - 1, rest = port; k >= 0; k--, rest = Math.floor(rest / 10)) out[at + k] = 0x30 + (rest % 10);
      at += portDigits;
      while (at < begin + 18) out[at++] = SPACE;
      out[at++] = SPACE;
    } else {
      at = copy(out, at, client);
    }
    at = copy(out, at, vcell);
    at = copy(out, at, dcell);
    at = copy(out, at, origin[i] === 2 ? synced : local);
  }
  return out.subarray(0, at);
}

/** `cell` copied into `out` at `at`; returns the end. Cells are short: a loop beats a call into set(). */
function copy(out: Uint8Array, at: number, cell: Uint8Array): number {
  const length = cell.length;
  for (let k = 0; k < length; k++) out[at + k] = cell[k]!;
  return at + length;
}

/** A buffer twice as large (or large enough for `need` more bytes) holding out[0, at). */
function grow(out: Buffer, at: number, need: number): Buffer {
  const bigger = Buffer.allocUnsafe(Math.max(out.length * 2, at + need));
  out.copy(bigger, 0, 0, at);
  return bigger;
}
