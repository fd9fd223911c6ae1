// The native probe transport against real sockets on loopback (no IPVS needed): outcomes and
// their phases, replies cut at the limit or the first line, a bound source, IPv6, timeouts
// enforced by the probe thread, descriptor exhaustion as a per-probe error, and teardown
// (close with probes in flight, garbage collection, process exit, an idle transport).
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { nativeAddon } from '../../../lib/native';
import { encodeProbes, type ProbeSpec } from '../../../lib/director/checks/probe-codec';
import { errnoCode, prepareProbe, ProbeTransport } from '../../../lib/director/checks/probe-transport';

import { closedPort } from './closed-port';

const root = path.join(__dirname, '..', '..', '..');
const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();
afterAll(() => {
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
});

/** A server on `host`; `onSocket` gets each connection. */
async function listen(onSocket: (socket: net.Socket) => void, host = '127.0.0.1'): Promise<number> {
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    onSocket(socket);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as net.AddressInfo).port;
}

async function until(what: string, probe: () => boolean, ms = 5000): Promise<void> {
  for (const deadline = Date.now() + ms; !probe();) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const threads = (): number => readdirSync('/proc/self/task').length;
const descriptors = (): number => readdirSync('/proc/self/fd').length;
const request = Buffer.from('GET / HTTP/1.0\r\n\r\n');
const spec = (port: number, more: Partial<ProbeSpec> = {}): Omit<ProbeSpec, 'id'> =>
  ({ address: '127.0.0.1', port, timeoutMs: 3000, maxReply: 65536, ...more });
const base = (port: number, more: Partial<ProbeSpec> = {}) => prepareProbe(spec(port, more));

let transport: ProbeTransport;
beforeAll(() => {
  transport = new ProbeTransport(nativeAddon().ProbeTransport);
});
afterAll(() => transport.close());

describe('outcomes', () => {
  it('connects, sends and reads to the end of the connection', async () => {
    const port = await listen((s) => s.once('data', (d) => s.end(`echo ${d.toString('latin1').split('\r\n')[0]}`)));
    const connected = await transport.probe(base(port, { maxReply: 0 }));
    expect(connected).toMatchObject({ outcome: 'ok', phase: 'connect', errno: 0, limited: false, firstLine: false });
    expect(connected.reply.length).toBe(0);
    const read = await transport.probe(base(port, { payload: request }));
    expect(read).toMatchObject({ outcome: 'ok', phase: 'receive', limited: false });
    expect(read.reply.toString()).toBe('echo GET / HTTP/1.0');
    expect(read.latencyMs).toBeGreaterThan(0);
    expect(read.latencyMs).toBeLessThan(3000);
  });

  it('reports a refused connection with its errno in the connect phase', async () => {
    const refused = await transport.probe(base(await closedPort(), { payload: request }));
    expect(refused).toMatchObject({ outcome: 'error', phase: 'connect' });
    expect(errnoCode(refused.errno)).toBe('ECONNREFUSED');
  });

  it('times out in the connect phase on a listener whose queue is full, and in the receive phase on one that never answers', async () => {
    // A listener with a backlog of 0 that never accepts: once its queue holds a connection,
    // further SYNs are dropped and the connect never completes.
    const python = spawn('python3', ['-c',
      'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(30)'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<number>((resolve) => python.stdout!.once('data', (d) => resolve(Number(String(d).trim()))));
      const fillers = Array.from({ length: 3 }, () => net.connect(port, '127.0.0.1').on('error', () => {}));
      await new Promise((resolve) => setTimeout(resolve, 200));
      const started = Date.now();
      // Connect only, and with a request (its early send is refused until the handshake ends).
      const [stuck, stuckRequest] = await Promise.all([
        transport.probe(base(port, { timeoutMs: 300 })), transport.probe(base(port, { payload: request, timeoutMs: 300 })),
      ]);
      expect(stuck).toMatchObject({ outcome: 'timeout', phase: 'connect', errno: 0 });
      expect(stuck.latencyMs).toBeGreaterThanOrEqual(300);
      expect(stuckRequest).toMatchObject({ outcome: 'timeout', phase: 'connect', errno: 0 });
      expect(Date.now() - started).toBeLessThan(2500);
      for (const f of fillers) f.destroy();
    } finally {
      python.kill();
    }
    const silent = await listen(() => {});
    const unanswered = await transport.probe(base(silent, { payload: request, timeoutMs: 200 }));
    expect(unanswered).toMatchObject({ outcome: 'timeout', phase: 'receive' });
    expect(unanswered.latencyMs).toBeGreaterThanOrEqual(200);
  });

  it('keeps a reply that comes in pieces, with what came before a timeout', async () => {
    const port = await listen((s) => s.once('data', async () => {
      for (const piece of ['HTTP/1.0 2', '00 OK\r', '\nX: 1\r\n', '\r\nbody']) {
        s.write(piece);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      s.end();
    }));
    const whole = await transport.probe(base(port, { payload: request }));
    expect(whole.reply.toString()).toBe('HTTP/1.0 200 OK\r\nX: 1\r\n\r\nbody');
    // The CRLF split across two reads still ends a first-line probe.
    const line = await transport.probe(base(port, { payload: request, firstLine: true }));
    expect(line).toMatchObject({ outcome: 'ok', firstLine: true });
    expect(line.reply.toString()).toMatch(/^HTTP\/1\.0 200 OK\r\n(X: 1\r\n)?$/);
    const held = await listen((s) => s.once('data', () => s.write('HTTP/1.0 200')));
    const partial = await transport.probe(base(held, { payload: request, timeoutMs: 200 }));
    expect(partial).toMatchObject({ outcome: 'timeout', phase: 'receive' });
    expect(partial.reply.toString()).toBe('HTTP/1.0 200');
  });

  it('stops at the byte limit, or at the first line on a server that keeps the connection open', async () => {
    const big = await listen((s) => s.once('data', () => s.end(Buffer.alloc(200_000, 0x61))));
    const limited = await transport.probe(base(big, { payload: request, maxReply: 1000 }));
    expect(limited).toMatchObject({ outcome: 'ok', limited: true });
    expect(limited.reply.length).toBe(1000);
    const whole = await transport.probe(base(big, { payload: request, maxReply: 200_000 }));
    expect(whole.reply.length).toBe(200_000);
    const open = await listen((s) => s.once('data', () => s.write('HTTP/1.0 204 No Content\r\nX-Later: 1\r\n')));
    const line = await transport.probe(base(open, { payload: request, firstLine: true, timeoutMs: 2000 }));
    expect(line).toMatchObject({ outcome: 'ok', firstLine: true });
    expect(line.reply.toString().startsWith('HTTP/1.0 204 No Content\r\n')).toBe(true);
    expect(line.latencyMs).toBeLessThan(2000);
  });

  it('binds the source address, and probes IPv6', async () => {
    const seen: string[] = [];
    const port = await listen((s) => { seen.push(s.remoteAddress ?? ''); s.end(); });
    expect(await transport.probe(base(port, { bindAddress: '127.0.0.2', maxReply: 0 }))).toMatchObject({ outcome: 'ok' });
    await until('the server to see the connection', () => seen.length === 1);
    expect(seen).toEqual(['127.0.0.2']);
    const notLocal = await transport.probe(base(port, { bindAddress: '192.0.2.7', maxReply: 0 }));
    expect(notLocal).toMatchObject({ outcome: 'error', phase: 'connect' });
    expect(errnoCode(notLocal.errno)).toBe('EADDRNOTAVAIL');

    const port6 = await listen((s) => s.once('data', () => s.end(`from ${s.remoteAddress}`)), '::1');
    const six = await transport.probe(prepareProbe({ address: '::1', port: port6, bindAddress: '::1', payload: request, timeoutMs: 3000, maxReply: 100 }));
    expect(six).toMatchObject({ outcome: 'ok' });
    expect(six.reply.toString()).toBe('from ::1');
  });

  it('answers many probes of one batch in few callbacks', async () => {
    const port = await closedPort();
    let calls = 0;
    let completions = 0;
    const native = new (nativeAddon().ProbeTransport)((records) => { calls++; completions += records.length / 24; });
    try {
      native.submit(encodeProbes(Array.from({ length: 200 }, (_, id) => ({ id, ...spec(port, { maxReply: 0 }) }))));
      await until('200 completions', () => completions === 200);
      expect(calls).toBeLessThan(20);
    } finally {
      native.close();
    }
  });

  it('refuses a malformed batch whole, before anything is sent', async () => {
    let connections = 0;
    const port = await listen((s) => { connections++; s.end(); });
    const native = new (nativeAddon().ProbeTransport)(() => {});
    try {
      const good = encodeProbes([{ id: 1, ...spec(port, { maxReply: 0 }) }]);
      const bad = Buffer.from(good);
      bad[4] = 5;
      expect(() => native.submit(Buffer.concat([good, bad]))).toThrow(/probe 1: family must be 4 or 6/);
      expect(() => native.submit(good.subarray(0, 40))).toThrow(/probe 0: truncated header/);
      expect(() => native.submit('x' as unknown as Uint8Array)).toThrow(TypeError);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(connections).toBe(0);
    } finally {
      native.close();
    }
    expect(() => native.submit(Buffer.alloc(0))).toThrow(/closed/);
  });
});

describe('teardown', () => {
  let own: ProbeTransport | undefined;
  afterEach(() => own?.close());

  it('close() with probes in flight rejects them, closes their sockets and joins the thread', async () => {
    const threadsBefore = threads();
    const fdsBefore = descriptors();
    let open = 0;
    const port = await listen((s) => { open++; s.resume(); s.on('close', () => open--); });
    own = new ProbeTransport(nativeAddon().ProbeTransport);
    expect(threads()).toBe(threadsBefore + 1);
    const inFlight = Array.from({ length: 20 }, () => own!.probe(base(port, { payload: request, timeoutMs: 60_000 })));
    await until('20 connections', () => open === 20);
    expect(own.pending).toBe(20);
    own.close();
    for (const p of inFlight) await expect(p).rejects.toThrow('the probe transport is closed');
    await until('the server to see every connection closed', () => open === 0);
    expect(threads()).toBe(threadsBefore);
    expect(descriptors()).toBeLessThanOrEqual(fdsBefore + 1);  // the listener
    await expect(own.probe(base(port))).rejects.toThrow('closed');
    own.close();  // idempotent
  });

  // Each in a process of its own: exit, GC and descriptor limits are per process.
  const script = (body: string) => `
    const { ProbeTransport } = require(${JSON.stringify(path.join(root, 'build', 'Release', 'ipvs_netlink.node'))});
    const net = require('net');
    const probe = (id, port, timeout, payload = '') => {
      const p = Buffer.from(payload), b = Buffer.alloc(52 + p.length);
      b.writeUInt32LE(id, 0); b[4] = 4; b.writeUInt16LE(port, 6); b.writeUInt32LE(timeout, 8); b.writeUInt32LE(100, 12);
      b.writeUInt32LE(p.length, 16); b[20] = 127; b[23] = 1; p.copy(b, 52); return b;
    };
    const threads = () => require('fs').readdirSync('/proc/self/task').length;
    ${body}`;
  const run = (body: string, shell = '') => spawnSync('sh', ['-c', `${shell} exec "${process.execPath}" --expose-gc -e "$0"`, script(body)],
    { encoding: 'utf8', timeout: 20_000 });

  it('an idle transport lets the process exit; one with probes in flight keeps it until they end', () => {
    const result = run(`
      const server = net.createServer((s) => s.end()).listen(0, '127.0.0.1', () => {
        const t = new ProbeTransport((records) => { console.log('done', records.readUInt32LE(0)); server.close(); });
        t.submit(probe(7, server.address().port, 5000));
      });`);
    expect(result.signal).toBeNull();
    expect(result.status).toBe(0);
    expect(result.stdout).toBe('done 7\n');
    // A probe that can only time out: the process waits for it (about 300 ms), then exits.
    const waited = run(`
      const server = net.createServer(() => {}).listen(0, '127.0.0.1', () => {
        const t = new ProbeTransport((records) => { console.log('outcome', records[4]); server.close(); });
        t.submit(probe(1, server.address().port, 300, 'GET / HTTP/1.0\\r\\n\\r\\n'));
        server.unref();
      });`);
    expect(waited.status).toBe(0);
    expect(waited.stdout).toBe('outcome 2\n');
  });

  it('process exit with probes in flight, and garbage collection of an open transport, stop the thread cleanly', () => {
    const exited = run(`
      const server = net.createServer(() => {}).listen(0, '127.0.0.1', () => {
        const t = new ProbeTransport(() => {});
        for (let i = 0; i < 50; i++) t.submit(probe(i, server.address().port, 60000, 'GET / HTTP/1.0\\r\\n\\r\\n'));
        setTimeout(() => { console.log('exiting'); process.exit(0); }, 100);
      });`);
    expect(exited.signal).toBeNull();
    expect(exited.status).toBe(0);
    expect(exited.stdout).toBe('exiting\n');
    const collected = run(`
      const before = threads();
      (() => { new ProbeTransport(() => {}); })();
      const opened = threads();
      setTimeout(() => { globalThis.gc(); setTimeout(() => { globalThis.gc(); console.log(opened - before, threads() - before); }, 50); }, 10);`);
    expect(collected.status).toBe(0);
    expect(collected.stdout).toBe('1 0\n');
  });

  it('keeps its sockets below the descriptor limit: the probes beyond wait, and end as notStarted when no slot frees in time', async () => {
    // The server lives here: in the child it would run out of descriptors too.
    const silent = await listen(() => {});
    const result = run(`
      const server = { address: () => ({ port: ${silent} }), close() {} };
      {
        const outcomes = {};
        let left = 200;
        const t = new ProbeTransport((records) => {
          for (let i = 0; i < records.length; i += 24) {
            const key = records[i + 4] + ':' + records.readInt32LE(i + 8);
            outcomes[key] = (outcomes[key] || 0) + 1;
            left--;
          }
          if (left === 0) { console.log(JSON.stringify({ cap: t.maxInFlight, outcomes })); t.close(); server.close(); }
        });
        const batch = [];
        for (let i = 0; i < 200; i++) batch.push(probe(i, server.address().port, 300, 'GET / HTTP/1.0\\r\\n\\n'));
        t.submit(Buffer.concat(batch));
      }`, 'ulimit -n 100;');
    expect(result.status, result.stderr).toBe(0);
    const { cap, outcomes } = JSON.parse(result.stdout) as { cap: number; outcomes: Record<string, number> };
    // Half of a limit of 100 is left to the process: 50 sockets time out (outcome 2), the
    // other 150 never got a slot (outcome 3); none failed with EMFILE (1:24).
    expect(cap).toBe(50);
    expect(outcomes).toEqual({ '2:0': 50, '3:0': 150 });
  });

  it('starts waiting probes as slots free, in submission order, each with its whole timeout', async () => {
    // The server (this process) answers each probe ROUND ms after its request. A probe has
    // TIMEOUT ms, less than three rounds (waiting counted in, the last two would time out) but
    // more than the two rounds the last two wait for a slot (waiting past its timeout, a probe
    // ends as notStarted): what is left over is for a busy host's late answers.
    const ROUND = 1000;
    const TIMEOUT = 2900;
    const order: number[] = [];
    const port = await listen((s) => {
      s.once('data', (d) => {
        order.push(Number(/\/(\d+)/.exec(d.toString('latin1'))![1]));
        // A timer counts from the loop's cached clock, which a busy host leaves behind: it can
        // fire early by Date.now(), so the reply waits until ROUND ms have passed by that clock.
        const due = Date.now() + ROUND;
        const reply = (): void => {
          if (Date.now() < due) setTimeout(reply, due - Date.now());
          else s.end('HTTP/1.0 200 OK\r\n\r\n');
        };
        setTimeout(reply, ROUND);
      });
    });
    own = new ProbeTransport(nativeAddon().ProbeTransport, { maxInFlight: 2 });
    expect(own.maxInFlight).toBe(2);
    const probes = Array.from({ length: 6 }, (_, i) =>
      own!.probe(base(port, { payload: Buffer.from(`GET /${i} HTTP/1.0\r\n\r\n`), timeoutMs: TIMEOUT, firstLine: true })));
    const started = Date.now();
    const done = await Promise.all(probes);
    // Two at a time, three rounds: the last two waited two rounds, which does not count against
    // their timeout (their latency is from their own start), though with it they would be over.
    expect(Date.now() - started).toBeGreaterThanOrEqual(3 * ROUND - 10);
    expect(done.map((c) => c.outcome)).toEqual(Array(6).fill('ok'));
    for (const c of done) expect(c.latencyMs).toBeLessThan(TIMEOUT);
    expect(order.map((i) => Math.floor(i / 2))).toEqual([0, 0, 1, 1, 2, 2]);  // two by two, in order
  });

  it('a probe waiting for a slot longer than its timeout ends as notStarted, and a started one times out', async () => {
    const silent = await listen(() => {});
    own = new ProbeTransport(nativeAddon().ProbeTransport, { maxInFlight: 2 });
    const done = await Promise.all(Array.from({ length: 6 }, () => own!.probe(base(silent, { payload: request, timeoutMs: 200 }))));
    expect(done.map((c) => c.outcome).sort()).toEqual(['notStarted', 'notStarted', 'notStarted', 'notStarted', 'timeout', 'timeout']);
    for (const c of done.filter((d) => d.outcome === 'notStarted')) expect(c).toMatchObject({ errno: 0, phase: 'connect' });
  });

  it('refuses options out of range', () => {
    expect(() => new (nativeAddon().ProbeTransport)(() => {}, { maxInFlight: -1 })).toThrow(/maxInFlight must be an integer/);
    expect(() => new (nativeAddon().ProbeTransport)(() => {}, { deliveryDelayMs: 1.5 })).toThrow(RangeError);
  });

  it('hands completions over with the next submit, or after the delivery delay', async () => {
    // The delay is long beside the waits below, so that a busy host cannot let it pass meanwhile.
    const DELAY = 2000;
    let closed = 0;
    const port = await listen((s) => {
      s.once('data', () => s.end('HTTP/1.0 200 OK\r\n\r\n'));
      s.on('close', () => closed++);
    });
    const silent = await listen(() => {});
    const calls: number[] = [];
    let t0 = 0;
    const native = new (nativeAddon().ProbeTransport)((records) => calls.push(records.length / 24), { deliveryDelayMs: DELAY });
    try {
      // One probe stays in flight (so the transport is not idle, which delivers at once).
      native.submit(encodeProbes([{ id: 1, ...spec(silent, { payload: request, timeoutMs: 30_000 }) }]));
      t0 = Date.now();
      native.submit(encodeProbes([{ id: 2, ...spec(port, { payload: request, firstLine: true }) }]));
      // The probe thread closes the probe's socket as it finishes it; a moment more, for the
      // thread to queue the completion.
      await until('the second probe to finish', () => closed === 1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(calls).toEqual([]);  // finished, waiting for a submit or the delay
      native.submit(encodeProbes([{ id: 3, ...spec(port, { payload: request, firstLine: true }) }]));
      expect(calls).toEqual([1]);  // taken by that submit, synchronously
      await until('the third by the delay', () => calls.length === 2, DELAY + 10_000);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(DELAY);
    } finally {
      native.close();
    }
  });
});
