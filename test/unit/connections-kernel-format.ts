// Writes connection-table lines exactly as the kernel's seq_printf formats do
// (net/netfilter/ipvs/ip_vs_conn.c), so parser tests have ground truth to compare against.
import { isIPv4 } from 'node:net';

import { encodeAddress } from '../../lib/address';

export interface KernelConnection {
  protocol: string; // kernel name as printed: TCP, UDP, SCTP, IP, IP_253, ICMPv6, ...
  client: string;
  clientPort: number;
  virtual: string;
  virtualPort: number;
  destination: string;
  destinationPort: number;
  state: string;
  expires: number;
  origin?: 'LOCAL' | 'SYNC';
  pe?: { name: string; data: string };
}

export const HEADER = 'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n';
export const SYNC_HEADER = 'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires\n';

const hex = (value: number, width: number) => value.toString(16).toUpperCase().padStart(width, '0');

/** "%08X" of the host-order IPv4 address, or "%pI6": eight 4-digit lower-case groups. */
export function kernelAddress(address: string): string {
  if (isIPv4(address)) {
    return address
      .split('.')
      .map((octet) => hex(Number(octet), 2))
      .join('');
  }
  const bytes = encodeAddress(address);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16).padStart(4, '0'));
  return groups.join(':');
}

export function kernelLine(c: KernelConnection): string {
  const head =
    `${c.protocol.padEnd(3)} ${kernelAddress(c.client)} ${hex(c.clientPort, 4)} ` +
    `${kernelAddress(c.virtual)} ${hex(c.virtualPort, 4)} ${kernelAddress(c.destination)} ${hex(c.destinationPort, 4)} ` +
    `${c.state.padEnd(11)} `;
  if (c.origin) return `${head}${c.origin.padEnd(6)} ${String(c.expires).padStart(7)}\n`;
  const pe = c.pe ? ` ${c.pe.name} ${c.pe.data}` : '';
  return `${head}${String(c.expires).padStart(7)}${pe}\n`;
}

export function kernelTable(connections: KernelConnection[], sync = false): string {
  return (sync ? SYNC_HEADER : HEADER) + connections.map(kernelLine).join('');
}

/** Deterministic pseudo-random numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

const STATES = ['ESTABLISHED', 'SYN_RECV', 'TIME_WAIT', 'FIN_WAIT', 'CLOSE_WAIT', 'NONE'];

/** A mixed table: IPv4 and IPv6 clients, both destination families, PE tails, odd protocols. */
export function randomConnections(count: number, seed = 1): KernelConnection[] {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const connections: KernelConnection[] = [];
  for (let i = 0; i < count; i++) {
    const v6 = random() < 0.3;
    const clientIndex = Math.floor(random() * random() * 500);
    const client = v6 ? `2001:db8:${(clientIndex >> 8).toString(16)}::${(clientIndex & 0xff).toString(16)}` : `10.${clientIndex >> 8}.${clientIndex & 0xff}.7`;
    const virtual = v6 ? pick(['fd00:a::1', 'fd00:a::2']) : pick(['10.0.0.1', '10.0.0.2']);
    const destination = random() < 0.8 ? pick(['10.9.0.2', '10.9.0.3']) : pick(['fd00:9::2', '::ffff:10.9.0.4']);
    const protocol = pick(['TCP', 'TCP', 'TCP', 'UDP', 'SCTP', 'IP', 'IP_253', 'ICMPv6']);
    const connection: KernelConnection = {
      protocol,
      client,
      clientPort: 1024 + Math.floor(random() * 64000),
      virtual,
      virtualPort: pick([80, 443, 5060]),
      destination,
      destinationPort: pick([80, 8080, 5060]),
      state: protocol === 'UDP' ? 'UDP' : pick(STATES),
      expires: Math.floor(random() * 1000),
    };
    if (random() < 0.02) connection.pe = { name: 'sip', data: `call-${i}@host` };
    connections.push(connection);
  }
  return connections;
}
