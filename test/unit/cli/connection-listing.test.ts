// The -c listing written as bytes gives the text of list_conn, line for line as plain padded
// strings would write it, on generated tables (IPv6 and IPv4 clients, long expiry times,
// persistence-engine rows, the origin column).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import type { ConnectionTable } from '../../../lib/connections';
import { formatConnections } from '../../../lib/cli/ipvsadm/connection-listing';
import { Namer } from '../../../lib/cli/ipvsadm/format';
import { AF_INET, AF_INET6, ntop4, ntop6 } from '../../../lib/cli/ipvsadm/names';
import { Fmt } from '../../../lib/cli/ipvsadm/options';

const PROTOCOLS: Record<string, number> = { TCP: 6, UDP: 17, SCTP: 132 };

/** list_conn with padEnd, one string per line. */
function reference(table: ConnectionTable, format: number, namer: Namer, origins: boolean): string {
  const c = table.columns;
  const persistent = (format & Fmt.PERSISTENTCONN) !== 0;
  const family = (address: string): number => (address.includes(':') ? AF_INET6 : AF_INET);
  let header = persistent
    ? `pro expire ${'state'.padEnd(11)} ${'source'.padEnd(18)} ${'virtual'.padEnd(18)} ${'destination'.padEnd(18)} ${'pe name'.padEnd(16)} pe_data`
    : `pro expire ${'state'.padEnd(11)} ${'source'.padEnd(18)} ${'virtual'.padEnd(18)} destination`;
  if (origins) header += ' origin';
  let out = `IPVS connection entries\n${header}\n`;
  for (let i = 0; i < table.length; i++) {
    const name = c.protocols[c.protocol[i]!]!;
    const proto = PROTOCOLS[name] ?? 0;
    const e = c.expires[i]!;
    const expiry = `${String(Math.floor(e / 60)).padStart(2, '0')}:${String(e % 60).padStart(2, '0')}`;
    const v6 = c.clientFamily[i] === 6;
    const client = namer.addrPort(v6 ? AF_INET6 : AF_INET, v6 ? ntop6(c.clientAddress, i * 16) : ntop4(c.clientAddress, i * 16), c.clientPort[i]!, proto);
    const va = c.addresses[c.virtualAddress[i]!]!;
    const da = c.addresses[c.destinationAddress[i]!]!;
    const vname = namer.addrPort(family(va), va, c.virtualPort[i]!, proto);
    const dname = namer.addrPort(family(da), da, c.destinationPort[i]!, proto);
    const pe = c.pe[i]!;
    const tail = persistent && pe !== 0 ? `${dname.padEnd(16)} ${c.peNames[pe - 1]!.padEnd(18)} ${c.peData[pe - 1]}` : dname;
    const origin = origins ? (c.origin[i] === 2 ? ' sync' : ' local') : '';
    out += `${name.padEnd(3)} ${expiry.padEnd(6)} ${c.states[c.state[i]!]!.padEnd(11)} ${client.padEnd(18)} ${vname.padEnd(18)} ${tail}${origin}\n`;
  }
  return out;
}

const ADDRESSES = ['10.0.0.1', '192.168.100.200', '2001:db8::1', 'fd00::10:1', '0.0.0.0', '::ffff:10.1.2.3'];
const PE = { names: ['sip', 'longer-engine-name-x'], data: ['abc@example', ''] };

const row = fc.record({
  protocol: fc.nat(3), v6: fc.boolean(), client: fc.uint8Array({ minLength: 16, maxLength: 16 }), clientPort: fc.nat(65535),
  virtual: fc.nat(ADDRESSES.length - 1), virtualPort: fc.nat(65535), destination: fc.nat(ADDRESSES.length - 1),
  destinationPort: fc.nat(65535), state: fc.nat(3), origin: fc.nat(2),
  expires: fc.oneof(fc.nat(5999), fc.nat(4_000_000_000)), pe: fc.nat(PE.names.length),
});

type Row = typeof row extends fc.Arbitrary<infer T> ? T : never;

function tableOf(rows: Row[]): ConnectionTable {
  const n = rows.length;
  const clientAddress = new Uint8Array(16 * n);
  rows.forEach((r, i) => clientAddress.set(r.client, i * 16));
  const columns = {
    protocol: Uint8Array.from(rows, (r) => r.protocol), clientFamily: Uint8Array.from(rows, (r) => (r.v6 ? 6 : 4)), clientAddress,
    clientPort: Uint16Array.from(rows, (r) => r.clientPort), virtualAddress: Uint32Array.from(rows, (r) => r.virtual),
    virtualPort: Uint16Array.from(rows, (r) => r.virtualPort), destinationAddress: Uint32Array.from(rows, (r) => r.destination),
    destinationPort: Uint16Array.from(rows, (r) => r.destinationPort), state: Uint16Array.from(rows, (r) => r.state),
    origin: Uint8Array.from(rows, (r) => r.origin), expires: Uint32Array.from(rows, (r) => r.expires),
    pe: Uint32Array.from(rows, (r) => r.pe), protocols: ['TCP', 'UDP', 'SCTP', 'IP_253'],
    states: ['ESTABLISHED', 'SYN_RECV', 'TIME_WAIT', 'A_VERY_LONG_STATE_NAME'], addresses: ADDRESSES, peNames: PE.names, peData: PE.data,
  };
  return { length: n, columns } as unknown as ConnectionTable;
}

describe('the -c listing', () => {
  it('writes the same text as padded strings, for every format and with the origin column', () => {
    fc.assert(
      fc.property(fc.array(row, { maxLength: 40 }), fc.constantFrom(0, Fmt.NUMERIC, Fmt.PERSISTENTCONN), fc.boolean(), (rows, format, origins) => {
        const table = tableOf(rows);
        const namer = new Namer(true);
        expect(formatConnections(table, format, namer, { origins }).toString()).toBe(reference(table, format, namer, origins));
      }),
      { numRuns: 500 },
    );
  });

  it('grows its buffer past the first estimate', () => {
    const rows = Array.from({ length: 3000 }, (_, i) => ({
      protocol: 0, v6: true, client: new Uint8Array(16).fill(0xab), clientPort: i, virtual: 2, virtualPort: 80, destination: 3,
      destinationPort: 8080, state: 3, origin: 2, expires: 4_000_000_000, pe: 2,
    }));
    const table = tableOf(rows);
    const namer = new Namer(true);
    expect(formatConnections(table, Fmt.PERSISTENTCONN, namer, { origins: true }).toString())
      .toBe(reference(table, Fmt.PERSISTENTCONN, namer, true));
  });
});
