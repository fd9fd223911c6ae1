#!/usr/bin/env node
// Fills an IPVS backup daemon's connection table by sending it sync protocol v1 messages.
//
// Real traffic is far too slow under emulation; a backup daemon creates one connection entry
// per synced entry instead. Run this in a namespace whose interface reaches the backup's
// --mcast-interface (e.g. the other end of a veth):
//
//   ip netns exec PEER node scripts/sync-flood.mjs --count 1000000 --source 192.168.77.2
//
// The sequence is deterministic, so running it twice re-sends the same connections (the
// backup updates them): a caller that finds entries missing after a run simply runs it again.
//
// Options (all optional except --source):
//   --source ADDR        IPv4 address of the sending interface (selects IP_MULTICAST_IF)
//   --count N            connections to send (default 1000)
//   --clients N          distinct client addresses, skewed so a few clients own many (default count/50)
//   --vip ADDR --vport P virtual service (default 10.1.0.1:80)
//   --dests N            real servers 10.2.0.1..N, port 8080 (default 4)
//   --states LIST        TCP state mix, e.g. ESTABLISHED=80,TIME_WAIT=15,FIN_WAIT=5 (the default)
//   --timeout S          entry lifetime in seconds (default 3600)
//   --syncid N           sync id (default 0)
//   --ipv6               send IPv6 entries (fd00:1::/64 clients, fd00:2::1 VIP, fd00:3:: dests)
//   --template-pe NAME:DATA  send one persistence template carrying PE name and data, then exit
//   --rate N             entries per second (default 40000); the backup drops what overflows its socket
//   --group ADDR --port P    multicast group and port (default 224.0.0.81:8848)
//   --json               print what was sent as JSON: { sent, datagrams, seconds, states, clients }
import dgram from 'node:dgram';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const TCP_STATES = {
  NONE: 0, ESTABLISHED: 1, SYN_SENT: 2, SYN_RECV: 3, FIN_WAIT: 4, TIME_WAIT: 5,
  CLOSE: 6, CLOSE_WAIT: 7, LAST_ACK: 8, LISTEN: 9, SYNACK: 10,
};
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const CONN_F_TEMPLATE = 0x1000;
const HEADER_BYTES = 8;
const V4_ENTRY_BYTES = 36;
const V6_ENTRY_BYTES = 72;
// The backup reads at most (MTU - 28) bytes per datagram; stay inside a 1500-byte MTU.
const MAX_DATAGRAM_BYTES = 1472;
const OPT_PE_DATA = 2;
const OPT_PE_NAME = 3;

function parseArgs(argv) {
  const options = {
    count: 1000, clients: 0, vip: '', vport: 80, dests: 4,
    states: 'ESTABLISHED=80,TIME_WAIT=15,FIN_WAIT=5', timeout: 3600, syncid: 0,
    ipv6: false, templatePe: '', rate: 40000, group: '224.0.0.81', port: 8848, source: '', json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    const integer = (min, max) => {
      const v = Number(value());
      if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${arg} must be an integer in [${min}, ${max}]`);
      return v;
    };
    switch (arg) {
      case '--count': options.count = integer(0, 50_000_000); break;
      case '--clients': options.clients = integer(1, 1 << 24); break;
      case '--vip': options.vip = value(); break;
      case '--vport': options.vport = integer(1, 65535); break;
      case '--dests': options.dests = integer(1, 250); break;
      case '--states': options.states = value(); break;
      case '--timeout': options.timeout = integer(1, 1 << 30); break;
      case '--syncid': options.syncid = integer(0, 255); break;
      case '--ipv6': options.ipv6 = true; break;
      case '--template-pe': options.templatePe = value(); break;
      case '--rate': options.rate = integer(1, 100_000_000); break;
      case '--group': options.group = value(); break;
      case '--port': options.port = integer(1, 65535); break;
      case '--source': options.source = value(); break;
      case '--json': options.json = true; break;
      default: throw new Error(`unknown option ${arg}`);
    }
  }
  if (!net.isIPv4(options.source)) throw new Error('--source must be the IPv4 address of the sending interface');
  options.vip ||= options.ipv6 ? 'fd00:2::1' : '10.1.0.1';
  if (options.ipv6 ? !net.isIPv6(options.vip) : !net.isIPv4(options.vip)) throw new Error('--vip has the wrong family');
  options.clients ||= Math.max(1, Math.ceil(options.count / 50));
  options.stateTable = parseStates(options.states);
  return options;
}

function parseStates(text) {
  const table = [];
  let total = 0;
  for (const part of text.split(',')) {
    const [name, weight] = part.split('=');
    const state = TCP_STATES[name?.toUpperCase() ?? ''];
    const w = Number(weight ?? 1);
    if (state === undefined || !(w > 0)) throw new Error(`--states: bad entry '${part}'`);
    total += w;
    table.push({ state, until: total });
  }
  return table.map((s) => ({ state: s.state, until: s.until / total }));
}

function ipv4ToBytes(address) {
  return address.split('.').map(Number);
}

function ipv6ToBytes(address) {
  const [head, tail] = address.split('::');
  const groups = (s) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}

// A small deterministic generator (xorshift32), so every run produces the same entries.
function makeRandom(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 4294967296;
  };
}

// Yields { client, cport, state, dest } for each connection. Client i is chosen with a
// quadratic skew, so low-numbered clients hold many connections (autoban candidates).
function* connections(options) {
  const random = makeRandom(0x1f2e3d4c);
  const nextPort = new Uint32Array(options.clients).fill(1024);
  for (let i = 0; i < options.count; i++) {
    const u = random();
    let client = Math.floor(options.clients * u * u);
    while (nextPort[client] > 65535) client = (client + 1) % options.clients;
    const cport = nextPort[client]++;
    const r = random();
    const state = options.stateTable.find((s) => r < s.until)?.state ?? TCP_STATES.ESTABLISHED;
    yield { client, cport, state, dest: i % options.dests };
  }
}

function clientAddress(options, index) {
  if (options.ipv6) {
    const bytes = ipv6ToBytes('fd00:1::');
    bytes[12] = (index >>> 24) & 0xff; bytes[13] = (index >>> 16) & 0xff;
    bytes[14] = (index >>> 8) & 0xff; bytes[15] = index & 0xff;
    return bytes;
  }
  const n = 0x0a800000 + index; // 10.128.0.0 upwards
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

function formatClient(options, index) {
  const bytes = clientAddress(options, index);
  if (!options.ipv6) return bytes.join('.');
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return canonicalIpv6(groups);
}

// RFC 5952: the longest run of two or more zero groups becomes '::'.
function canonicalIpv6(groups) {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLength) { bestStart = i; bestLength = j - i; }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLength).join(':')}`;
}

function destAddress(options, index) {
  if (options.ipv6) {
    const bytes = ipv6ToBytes('fd00:3::');
    bytes[15] = index + 1;
    return bytes;
  }
  return [10, 2, 0, index + 1];
}

function writeEntry(view, offset, options, entry, extra = {}) {
  const size = options.ipv6 ? V6_ENTRY_BYTES : V4_ENTRY_BYTES;
  const optionBytes = extra.optionBytes ?? 0;
  view.setUint8(offset, options.ipv6 ? 1 : 0);                 // type: bit 0 = IPv6
  view.setUint8(offset + 1, extra.protocol ?? IPPROTO_TCP);
  view.setUint16(offset + 2, size + optionBytes);               // version 0 in the top 4 bits
  view.setUint32(offset + 4, extra.flags ?? 0);                 // 0 = masquerading
  view.setUint16(offset + 8, entry.state);
  view.setUint16(offset + 10, entry.cport);
  view.setUint16(offset + 12, extra.vport ?? options.vport);
  view.setUint16(offset + 14, extra.dport ?? 8080);
  view.setUint32(offset + 16, 0);                               // fwmark
  view.setUint32(offset + 20, options.timeout);
  const addrBytes = options.ipv6 ? 16 : 4;
  const addresses = [clientAddress(options, entry.client),
    options.ipv6 ? ipv6ToBytes(options.vip) : ipv4ToBytes(options.vip), destAddress(options, entry.dest)];
  addresses.forEach((bytes, k) => bytes.forEach((b, j) => view.setUint8(offset + 24 + k * addrBytes + j, b)));
  return size;
}

function writeHeader(view, options, nrConns, length) {
  view.setUint8(0, 0);             // reserved: 0 marks a version 1 message
  view.setUint8(1, options.syncid);
  view.setUint16(2, length);
  view.setUint8(4, nrConns);
  view.setUint8(5, 1);             // version
  view.setUint16(6, 0);
}

async function send(socket, options, datagram) {
  await new Promise((resolve, reject) =>
    socket.send(datagram, options.port, options.group, (error) => (error ? reject(error) : resolve())));
}

// One persistence template (UDP, no client port) carrying PE name and data options.
function templateDatagram(options) {
  const [peName, peData = ''] = options.templatePe.split(':');
  if (!peName || !peData) throw new Error('--template-pe needs NAME:DATA');
  const name = Buffer.from(peName);
  const data = Buffer.from(peData);
  const optionBytes = 2 + data.length + 2 + name.length;
  const entrySize = (options.ipv6 ? V6_ENTRY_BYTES : V4_ENTRY_BYTES) + optionBytes;
  const padded = (entrySize + 3) & ~3;
  const buffer = Buffer.alloc(HEADER_BYTES + padded);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.length);
  let offset = HEADER_BYTES;
  offset += writeEntry(view, offset, options, { client: 0, cport: 0, state: 0, dest: 0 },
    { protocol: IPPROTO_UDP, flags: CONN_F_TEMPLATE, vport: options.vport, dport: options.vport, optionBytes });
  buffer[offset++] = OPT_PE_DATA; buffer[offset++] = data.length; data.copy(buffer, offset); offset += data.length;
  buffer[offset++] = OPT_PE_NAME; buffer[offset++] = name.length; name.copy(buffer, offset);
  writeHeader(view, options, 1, buffer.length);
  return buffer;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const socket = dgram.createSocket({ type: 'udp4' });
  await new Promise((resolve) => socket.bind(0, options.source, resolve));
  socket.setMulticastInterface(options.source);
  socket.setMulticastTTL(1);
  socket.setMulticastLoopback(false);

  if (options.templatePe) {
    await send(socket, options, templateDatagram(options));
    socket.close();
    console.log(options.json ? JSON.stringify({ sent: 1, datagrams: 1, states: { NONE: 1 }, clients: { [formatClient(options, 0)]: 1 } }) : 'sent 1 template');
    return;
  }

  const entrySize = options.ipv6 ? V6_ENTRY_BYTES : V4_ENTRY_BYTES;
  const perDatagram = Math.min(255, Math.floor((MAX_DATAGRAM_BYTES - HEADER_BYTES) / entrySize));
  const started = performance.now();
  const stateNames = Object.fromEntries(Object.entries(TCP_STATES).map(([name, value]) => [value, name]));
  const sentStates = {};
  const sentClients = new Map();
  let sent = 0;
  let datagrams = 0;
  let batch = [];
  const flush = async () => {
    const length = HEADER_BYTES + batch.length * entrySize;
    const buffer = Buffer.alloc(length);
    const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.length);
    writeHeader(view, options, batch.length, length);
    let offset = HEADER_BYTES;
    for (const entry of batch) offset += writeEntry(view, offset, options, entry);
    await send(socket, options, buffer);
    sent += batch.length;
    datagrams++;
    batch = [];
    // Pace to the requested rate: sleep whenever we are ahead of schedule.
    const ahead = (sent / options.rate) * 1000 - (performance.now() - started);
    if (ahead > 2) await sleep(ahead);
  };
  for (const entry of connections(options)) {
    if (options.json) {
      const name = stateNames[entry.state];
      sentStates[name] = (sentStates[name] ?? 0) + 1;
      sentClients.set(entry.client, (sentClients.get(entry.client) ?? 0) + 1);
    }
    batch.push(entry);
    if (batch.length === perDatagram) await flush();
  }
  if (batch.length > 0) await flush();
  socket.close();
  const seconds = (performance.now() - started) / 1000;
  if (options.json) {
    const clients = {};
    for (const [index, count] of sentClients) clients[formatClient(options, index)] = count;
    console.log(JSON.stringify({ sent, datagrams, seconds, states: sentStates, clients }));
  } else {
    console.log(`sent ${sent} entries in ${datagrams} datagrams in ${seconds.toFixed(1)} s`);
  }
}

main().catch((error) => {
  console.error(`sync-flood: ${error.message}`);
  process.exit(1);
});
