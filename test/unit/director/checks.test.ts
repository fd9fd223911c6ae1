// Every check type against real local servers on 127.0.0.1 (no IPVS needed).
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { probeResult, runCheck, type CheckTarget } from '../../../lib/director/checks/index';
import { encodeCompletions } from '../../../lib/director/checks/probe-codec';
import {
  acquireProbeTransport, activeProbeTransport, CompletionView, prepareProbe, probeTransportError,
} from '../../../lib/director/checks/probe-transport';
import { decodeReply, encodeQuery } from '../../../lib/director/checks/dns';
import { decodePayload } from '../../../lib/director/checks/udp';
import { localFailure } from '../../../lib/director/checks/types';
import { checkCheckSpec } from '../../../lib/director/config';
import { CheckSchedule } from '../../../lib/director/scheduler';

import { closedPort } from './closed-port';

const service = { protocol: 'tcp' as const, address: '10.0.0.1', port: 80 };
const at = (port: number, address = '127.0.0.1'): CheckTarget => ({ address, port, service, destination: { address, port } });
// A generous timeout: the host may be loaded; tests of the timeout itself set their own.
const check = (spec: Record<string, unknown>) => checkCheckSpec({ interval: 10, timeout: 5, ...spec }, 'check');

const servers: Array<{ close(cb?: () => void): unknown }> = [];
afterAll(() => {
  for (const s of servers) s.close();
});

function listen(server: net.Server): Promise<number> {
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

const handler: http.RequestListener = (req, res) => {
  if (req.url === '/health') return void res.end('status: OK, version 7');
  if (req.url === '/down') { res.statusCode = 503; return void res.end('maintenance'); }
  if (req.url === '/redirect') { res.statusCode = 302; res.setHeader('location', '/'); return void res.end(); }
  if (req.url === '/host') return void res.end(`host=${req.headers.host}`);
  if (req.url === '/method') return void res.end(`method=${req.method}`);
  if (req.url === '/slow') return void setTimeout(() => res.end('late'), 3000);
  res.end('hello');
};

describe('a check that cannot run for a reason of this host', () => {
  it('knows the local errno codes at the end of a failure message', () => {
    expect(localFailure('connect EMFILE')).toBe('EMFILE');
    expect(localFailure('request ENOBUFS')).toBe('ENOBUFS');
    expect(localFailure('check error: spawn ENFILE')).toBe('ENFILE');
    expect(localFailure('connect ECONNREFUSED')).toBeUndefined();
    expect(localFailure('HTTP 503, body lacks EMFILE here')).toBeUndefined();
  });

  it('is marked notRun (the health state ignores it) when no probe slot frees within its timeout', async () => {
    // A transport of one socket (the internal hook; the real cap is three quarters of
    // RLIMIT_NOFILE) and a server that never answers: the first probe times out (a real
    // failure), the two others wait for the slot until their timeout and never run.
    const release = acquireProbeTransport({ maxInFlight: 1 });
    try {
      expect(activeProbeTransport()?.maxInFlight).toBe(1);
      const port = await listen(net.createServer(() => {}));
      const results = await Promise.all([0, 1, 2].map(() => runCheck(check({ type: 'http', timeout: 0.3 }), at(port))));
      expect(results.map((r) => r.message).sort()).toEqual([
        'not run: no socket slot free within the timeout', 'not run: no socket slot free within the timeout', 'request timed out',
      ]);
      expect(results.filter((r) => r.notRun !== undefined)).toHaveLength(2);
      expect(results.find((r) => r.notRun === undefined)).toMatchObject({ ok: false });
    } finally {
      release();
    }
    expect(activeProbeTransport()).toBeUndefined();
  });
});

// Plain tcp and http run on Node's sockets, or on the native probe transport while one is held
// (a running director holds it): the same tests, the same messages, on both.
describe.each(['node socket', 'native probe'] as const)('%s', (mode) => {
  let release: (() => void) | undefined;
  beforeAll(() => {
    if (mode === 'native probe') {
      release = acquireProbeTransport();
      expect(activeProbeTransport(), String(probeTransportError())).toBeDefined();
    } else {
      expect(activeProbeTransport()).toBeUndefined();
    }
  });
  afterAll(() => release?.());

  describe('tcp', () => {
    it('passes when the port accepts a connection and fails with the errno when refused', async () => {
      const port = await listen(net.createServer((s) => s.end()));
      expect(await runCheck(check({ type: 'tcp' }), at(port))).toMatchObject({ ok: true, message: 'connected' });
      const refused = await runCheck(check({ type: 'tcp' }), at(await closedPort()));
      expect(refused).toMatchObject({ ok: false, message: 'connect ECONNREFUSED' });
      expect(refused.latency).toBeGreaterThanOrEqual(0);
    });

    it('fails within its timeout against an unreachable address, and binds the source address', async () => {
      // 192.0.2.1 (TEST-NET-1) is unroutable or dropped here; the check must end at its timeout.
      const result = await runCheck(check({ type: 'tcp', timeout: 0.3 }), at(80, '192.0.2.1'));
      expect(result.ok).toBe(false);
      expect(result.latency).toBeLessThan(1500);
      let seenFrom = '';
      const port = await listen(net.createServer((s) => { seenFrom = s.remoteAddress ?? ''; s.end(); }));
      const bound = await runCheck(check({ type: 'tcp', bindAddress: '127.0.0.2' }), { ...at(port), bindAddress: '127.0.0.2' });
      expect(bound.ok).toBe(true);
      // The check ends at connect; the server may see the connection a moment later.
      for (const deadline = Date.now() + 5000; seenFrom === '' && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 5));
      expect(seenFrom).toBe('127.0.0.2');
    });
  });

  describe('http', () => {
    let port: number;
    beforeAll(async () => {
      port = await listen(http.createServer(handler));
    });

    it('passes on 2xx and fails on any other status by default', async () => {
      expect(await runCheck(check({ type: 'http', path: '/health' }), at(port))).toMatchObject({ ok: true, message: 'HTTP 200' });
      expect(await runCheck(check({ type: 'http', path: '/down' }), at(port))).toMatchObject({ ok: false, message: 'HTTP 503' });
      expect(await runCheck(check({ type: 'http', path: '/redirect' }), at(port))).toMatchObject({ ok: false, message: 'HTTP 302' });
    });

    it('takes an expected status set of codes and ranges', async () => {
      expect(await runCheck(check({ type: 'http', path: '/redirect', expectStatus: [200, '300-399'] }), at(port))).toMatchObject({ ok: true });
      expect(await runCheck(check({ type: 'http', path: '/down', expectStatus: [503] }), at(port))).toMatchObject({ ok: true });
      expect(await runCheck(check({ type: 'http', path: '/health', expectStatus: ['500-599'] }), at(port))).toMatchObject({ ok: false });
    });

    it('checks the body by substring, regex and MD5', async () => {
      const body = 'status: OK, version 7';
      expect(await runCheck(check({ type: 'http', path: '/health', body: 'OK' }), at(port))).toMatchObject({ ok: true });
      expect(await runCheck(check({ type: 'http', path: '/health', body: 'FAIL' }), at(port))).toMatchObject({ ok: false, message: 'HTTP 200, body lacks "FAIL"' });
      expect(await runCheck(check({ type: 'http', path: '/health', bodyRegex: 'version \\d+$' }), at(port))).toMatchObject({ ok: true });
      expect(await runCheck(check({ type: 'http', path: '/health', bodyRegex: '^OK' }), at(port))).toMatchObject({ ok: false });
      const md5 = createHash('md5').update(body).digest('hex');
      expect(await runCheck(check({ type: 'http', path: '/health', bodyMd5: md5.toUpperCase() }), at(port))).toMatchObject({ ok: true });
      const wrong = await runCheck(check({ type: 'http', path: '/health', bodyMd5: '0'.repeat(32) }), at(port));
      expect(wrong).toMatchObject({ ok: false, message: `HTTP 200, body MD5 ${md5}` });
    });

    it('sends the method and Host header, defaulting Host to address:port', async () => {
      expect(await runCheck(check({ type: 'http', path: '/host', body: `host=127.0.0.1:${port}` }), at(port))).toMatchObject({ ok: true });
      expect(await runCheck(check({ type: 'http', path: '/host', host: 'www.example.com', body: 'host=www.example.com' }), at(port))).toMatchObject({ ok: true });
      expect(await runCheck(check({ type: 'http', path: '/method', method: 'HEAD' }), at(port))).toMatchObject({ ok: true });
      expect(await runCheck(check({ type: 'http', path: '/method', method: 'POST', body: 'method=POST' }), at(port))).toMatchObject({ ok: true });
    });

    it('fails at the timeout on a slow server, and on a refused connection', async () => {
      const slow = await runCheck(check({ type: 'http', path: '/slow', timeout: 0.3 }), at(port));
      expect(slow).toMatchObject({ ok: false, message: 'request timed out' });
      expect(slow.latency).toBeLessThan(1500);
      expect(await runCheck(check({ type: 'http' }), at(await closedPort()))).toMatchObject({ ok: false, message: 'request ECONNREFUSED' });
    });

    it('reads a chunked body, and fails on a malformed status line or a connection closed before it', async () => {
      const replies: Record<string, string> = {
        '/chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nOK \r\n7\r\nchunked\r\n0\r\n\r\n',
        '/garbage': 'SSH-2.0-OpenSSH_9.2\r\n\r\n',
        '/nothing': '',
      };
      const raw = net.createServer((socket) => {
        socket.once('data', (chunk) => {
          const requestPath = chunk.toString('latin1').split(' ')[1]!;
          socket.end(replies[requestPath] ?? '');
        });
      });
      const rawPort = await listen(raw);
      try {
        expect(await runCheck(check({ type: 'http', path: '/chunked', body: 'OK chunked' }), at(rawPort))).toMatchObject({ ok: true, message: 'HTTP 200' });
        expect(await runCheck(check({ type: 'http', path: '/garbage' }), at(rawPort))).toMatchObject({ ok: false, message: 'response: malformed status line' });
        expect(await runCheck(check({ type: 'http', path: '/nothing' }), at(rawPort))).toMatchObject({ ok: false, message: 'response: connection closed before the status line' });
      } finally {
        raw.close();
      }
    });

    it('reads a response that arrives a few bytes at a time, status line included', async () => {
      const reply = 'HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nmaintenance until 9';
      const trickle = net.createServer((socket) => {
        socket.setNoDelay(true);
        socket.once('data', async () => {
          for (let at = 0; at < reply.length; at += 5) {
            if (socket.destroyed) return;
            socket.write(reply.slice(at, at + 5));
            await new Promise((resolve) => setTimeout(resolve, 2));
          }
          socket.end();
        });
        socket.on('error', () => {});
      });
      const port = await listen(trickle);
      expect(await runCheck(check({ type: 'http' }), at(port))).toMatchObject({ ok: false, message: 'HTTP 503' });
      expect(await runCheck(check({ type: 'http', expectStatus: [503], body: 'until 9' }), at(port))).toMatchObject({ ok: true, message: 'HTTP 503' });
      expect(await runCheck(check({ type: 'http', expectStatus: [503], body: 'until 8' }), at(port))).toMatchObject({ ok: false, message: 'HTTP 503, body lacks "until 8"' });
    });

    it('counts a reply that arrived while the event loop was blocked past the timeout', async () => {
      // The server runs in another process, so it answers while this one is blocked; it says
      // when the request came, and answers 50 ms later.
      const server = spawn(process.execPath, ['-e', `require('net').createServer((s) => s.once('data', () => {
        console.log('request'); setTimeout(() => s.end('HTTP/1.0 200 OK\\r\\n\\r\\n'), 50);
      })).listen(0, '127.0.0.1', function () { console.log('port ' + this.address().port); });`], { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        const lines = createInterface({ input: server.stdout! });
        const seen: string[] = [];
        lines.on('line', (line) => {
          seen.push(line);
          // Blocked for 1.5 s from the request on: the reply comes and the 0.5 s timeout passes meanwhile.
          if (line === 'request') for (const until = Date.now() + 1500; Date.now() < until;);
        });
        const port = await new Promise<number>((resolve) => lines.once('line', (line) => resolve(Number(line.split(' ')[1]))));
        const result = await runCheck(check({ type: 'http', timeout: 0.5 }), at(port));
        expect(seen).toContain('request');
        expect(result).toMatchObject({ ok: true, message: 'HTTP 200' });
        // Node's socket learns of the reply after the block; the probe thread when it came.
        if (mode === 'native probe') expect(result.latency).toBeLessThan(1400);
        else expect(result.latency).toBeGreaterThan(1400);
      } finally {
        server.kill();
      }
    });

    it('sends each check its own request when one target is checked with several specs', async () => {
      const target = at(port);
      expect(await runCheck(check({ type: 'http', path: '/method', method: 'POST', body: 'method=POST' }), target)).toMatchObject({ ok: true });
      expect(await runCheck(check({ type: 'http', path: '/method', body: 'method=GET' }), target)).toMatchObject({ ok: true });
      expect(await runCheck(check({ type: 'http', path: '/down' }), target)).toMatchObject({ ok: false, message: 'HTTP 503' });
    });
  });
});

describe('https', () => {
  let port: number;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'director-tls-'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=www.example.test',
      '-addext', 'subjectAltName=DNS:www.example.test', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    const server = https.createServer({ key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) }, (req, res) => {
      res.end(`sni=${(req.socket as import('node:tls').TLSSocket).servername || ''}`);
    });
    port = await listen(server);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts a self-signed certificate unless tlsVerify is on', async () => {
    expect(await runCheck(check({ type: 'https' }), at(port))).toMatchObject({ ok: true, message: 'HTTP 200' });
    const verified = await runCheck(check({ type: 'https', tlsVerify: true, sni: 'www.example.test' }), at(port));
    expect(verified.ok).toBe(false);
    expect(verified.message).toMatch(/SELF_SIGNED|DEPTH_ZERO|self.signed/i);
  });

  it('sends the SNI given, or the Host name', async () => {
    expect(await runCheck(check({ type: 'https', sni: 'a.example.test', body: 'sni=a.example.test' }), at(port))).toMatchObject({ ok: true });
    expect(await runCheck(check({ type: 'https', host: 'b.example.test', body: 'sni=b.example.test' }), at(port))).toMatchObject({ ok: true });
  });
});

describe('udp', () => {
  let port: number;
  beforeAll(async () => {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (msg, rinfo) => {
      if (msg.toString('latin1') === 'PING\n') socket.send(Buffer.from('PONG ready\x01'), rinfo.port, rinfo.address);
    });
    servers.push(socket);
    port = await new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve(socket.address().port)));
  });

  it('decodes escapes in the payload', () => {
    expect(decodePayload('a\\x00\\xffb\\n\\\\')).toEqual(Buffer.from([0x61, 0, 0xff, 0x62, 10, 0x5c]));
  });

  it('passes on a reply matching the regex, fails on silence, a mismatch, or port unreachable', async () => {
    expect(await runCheck(check({ type: 'udp', payload: 'PING\\n', expect: '^PONG' }), at(port))).toMatchObject({ ok: true });
    expect(await runCheck(check({ type: 'udp', payload: 'PING\\n', expect: '^READY' }), at(port))).toMatchObject({ ok: false, message: 'reply does not match /^READY/' });
    const silent = await runCheck(check({ type: 'udp', payload: 'other', timeout: 0.3 }), at(port));
    expect(silent).toMatchObject({ ok: false, message: 'no reply before the timeout' });
    const unreachable = await runCheck(check({ type: 'udp', payload: 'PING\\n' }), at(await closedPort()));
    expect(unreachable).toMatchObject({ ok: false, message: 'udp ECONNREFUSED' });
  });
});

describe('dns', () => {
  let port: number;
  beforeAll(async () => {
    // A small authoritative responder: www.example.test A 192.0.2.7 (with a compressed name),
    // AAAA 2001:db8::7; anything else NXDOMAIN.
    const socket = dgram.createSocket('udp4');
    socket.on('message', (query, rinfo) => {
      const qtype = query.readUInt16BE(query.length - 4);
      const qname = query.subarray(12, query.length - 4);
      const isWww = qname.equals(Buffer.from('\x03www\x07example\x04test\x00', 'latin1'));
      const header = Buffer.from(query.subarray(0, 12));
      header.writeUInt16BE(0x8180 | (isWww ? 0 : 3), 2);  // QR RD RA, rcode
      const answers: Buffer[] = [];
      if (isWww && (qtype === 1 || qtype === 28)) {
        const rdata = qtype === 1 ? Buffer.from([192, 0, 2, 7]) : Buffer.from('20010db8000000000000000000000007', 'hex');
        const rr = Buffer.alloc(12);
        rr.writeUInt16BE(0xc00c, 0); rr.writeUInt16BE(qtype, 2); rr.writeUInt16BE(1, 4); rr.writeUInt32BE(60, 6); rr.writeUInt16BE(rdata.length, 10);
        answers.push(rr, rdata);
      }
      header.writeUInt16BE(answers.length / 2, 6);
      socket.send(Buffer.concat([header, query.subarray(12), ...answers]), rinfo.port, rinfo.address);
    });
    servers.push(socket);
    port = await new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve(socket.address().port)));
  });

  it('encodes a query as RFC 1035 lays it out', () => {
    const q = encodeQuery(0x1234, 'www.example.test.', 28);
    expect(q.toString('hex')).toBe('123401000001000000000000' + '03777777076578616d706c650474657374' + '00' + '001c0001');
  });

  it('decodes compressed names and rejects a pointer loop', () => {
    const header = (qd: string, an: string): string => `12348180${qd}${an}00000000`;
    // A CNAME whose owner and target both point back at the question name.
    const reply = Buffer.from(header('0001', '0001') + '0377777700' + '00010001' + 'c00c00050001' + '0000003c0002c00c', 'hex');
    expect(decodeReply(reply)).toEqual({ id: 0x1234, truncated: false, rcode: 0, answers: [{ type: 5, value: 'www' }] });
    const loop = Buffer.from(header('0000', '0001') + 'c00c' + '00010001' + '00000000' + '0004c0000207', 'hex');
    expect(() => decodeReply(loop)).toThrow('compression loop');
    expect(() => decodeReply(reply.subarray(0, reply.length - 3))).toThrow(RangeError);
  });

  it('passes on the expected rcode and answer', async () => {
    expect(await runCheck(check({ type: 'dns', name: 'www.example.test' }), at(port))).toMatchObject({ ok: true, message: 'NOERROR, 1 answer(s)' });
    expect(await runCheck(check({ type: 'dns', name: 'www.example.test', expectAnswer: '192.0.2.7' }), at(port))).toMatchObject({ ok: true });
    expect(await runCheck(check({ type: 'dns', name: 'www.example.test', queryType: 'AAAA', expectAnswer: '2001:db8:0::7' }), at(port))).toMatchObject({ ok: true });
    expect(await runCheck(check({ type: 'dns', name: 'nope.example.test', expectRcode: 'NXDOMAIN' }), at(port))).toMatchObject({ ok: true });
  });

  it('fails on another rcode or answer, and on silence', async () => {
    expect(await runCheck(check({ type: 'dns', name: 'nope.example.test' }), at(port))).toMatchObject({ ok: false, message: 'rcode NXDOMAIN, expected NOERROR' });
    const other = await runCheck(check({ type: 'dns', name: 'www.example.test', expectAnswer: '192.0.2.8' }), at(port));
    expect(other).toMatchObject({ ok: false, message: 'NOERROR, no A answer 192.0.2.8 (got 192.0.2.7)' });
    expect((await runCheck(check({ type: 'dns', name: 'x.test', timeout: 0.3 }), at(await closedPort()))).ok).toBe(false);
  });
});

describe('exec', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'director-exec-'));
    writeFileSync(path.join(dir, 'env.sh'), 'echo "$IPVS_SERVICE_PROTOCOL $IPVS_SERVICE_ADDRESS $IPVS_SERVICE_PORT $IPVS_DEST_ADDRESS $IPVS_DEST_PORT" > "$1"\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('maps exit 0 to up and 1 to down', async () => {
    expect(await runCheck(check({ type: 'exec', command: ['true'] }), at(80))).toMatchObject({ ok: true, message: 'exit 0' });
    expect(await runCheck(check({ type: 'exec', command: ['false'] }), at(80))).toMatchObject({ ok: false, message: 'exit 1' });
  });

  it('sets the weight from exit 2–255 with dynamicWeight, and fails on them without it', async () => {
    expect(await runCheck(check({ type: 'exec', command: ['sh', '-c', 'exit 9'], dynamicWeight: true }), at(80))).toEqual(expect.objectContaining({ ok: true, weight: 7 }));
    expect(await runCheck(check({ type: 'exec', command: ['sh', '-c', 'exit 2'], dynamicWeight: true }), at(80))).toEqual(expect.objectContaining({ ok: true, weight: 0 }));
    expect(await runCheck(check({ type: 'exec', command: ['sh', '-c', 'exit 9'] }), at(80))).toMatchObject({ ok: false, message: 'exit 9' });
  });

  it('gives the command the service and destination in its environment', async () => {
    const out = path.join(dir, 'env.txt');
    expect((await runCheck(check({ type: 'exec', command: ['sh', path.join(dir, 'env.sh'), out] }), at(8080, '127.0.0.9'))).ok).toBe(true);
    expect(readFileSync(out, 'utf8').trim()).toBe('tcp 10.0.0.1 80 127.0.0.9 8080');
  });

  it('kills a command at the timeout and fails on a missing program', async () => {
    const slow = await runCheck(check({ type: 'exec', command: ['sleep', '5'], timeout: 0.3 }), at(80));
    expect(slow.ok).toBe(false);
    expect(slow.latency).toBeLessThan(2000);
    const missing = await runCheck(check({ type: 'exec', command: ['/nonexistent/check'] }), at(80));
    expect(missing).toMatchObject({ ok: false, message: 'command failed: ENOENT' });
  });
});

describe('none', () => {
  it('is up by default and down when told', async () => {
    expect(await runCheck(check({ type: 'none' }), at(80))).toMatchObject({ ok: true });
    expect(await runCheck(check({ type: 'none', result: 'down' }), at(80))).toMatchObject({ ok: false, message: 'forced down' });
  });
});

// A director's checks go from the scheduler to the probe thread and back with no promise per
// attempt (the scheduled check is its probes' client): the same results, on real sockets.
describe('scheduled checks on the native probe transport', () => {
  it('reports each attempt with its index, lateness and time, and nothing after stop', async () => {
    const release = acquireProbeTransport();
    try {
      const transport = activeProbeTransport();
      expect(transport, String(probeTransportError())).toBeDefined();
      const port = await listen(http.createServer(handler));
      const results: Array<{ index: number; ok: boolean; message: string; lateness: number; at: number }> = [];
      const started = Date.now();
      const schedule = new CheckSchedule(
        [check({ type: 'http', path: '/health', interval: 2, timeout: 1.9 }), check({ type: 'http', path: '/down', interval: 2, timeout: 1.9 })],
        [at(port), at(port)], undefined,
        (index, result, lateness, when) => results.push({ index, ok: result.ok, message: result.message, lateness, at: when }),
        { firstDelay: 0 },
      );
      for (const deadline = Date.now() + 10_000; results.filter((r) => r.index === 1).length < 2;) {
        if (Date.now() > deadline) throw new Error(`2 rounds not done in 10 s: ${JSON.stringify(results)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      schedule.stop();
      const seen = results.length;
      expect(results.filter((r) => r.index === 0).every((r) => r.ok && r.message === 'HTTP 200')).toBe(true);
      expect(results.filter((r) => r.index === 1).every((r) => !r.ok && r.message === 'HTTP 503')).toBe(true);
      for (const r of results) {
        expect(r.lateness).toBeGreaterThanOrEqual(0);
        expect(r.at).toBeGreaterThanOrEqual(started);
      }
      // Probes in flight at stop still complete on the thread; their outcomes are dropped.
      for (const deadline = Date.now() + 5000; transport!.pending > 0;) {
        if (Date.now() > deadline) throw new Error(`${transport!.pending} probes still pending 5 s after stop`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
      expect(results).toHaveLength(seen);
    } finally {
      release();
    }
  });

  it('reads a status line without a reason phrase, and refuses one whose code is not three digits', async () => {
    const release = acquireProbeTransport();
    try {
      const raw = net.createServer((socket) => socket.once('data', (chunk) => {
        const path = chunk.toString('latin1').split(' ')[1]!;
        socket.end(path === '/bare' ? 'HTTP/1.1 204\r\n\r\n' : path === '/short' ? 'HTTP/1.1 20 OK\r\n\r\n' : 'HTTP/1.1 2000 OK\r\n\r\n');
      }));
      const port = await listen(raw);
      expect(await runCheck(check({ type: 'http', path: '/bare' }), at(port))).toMatchObject({ ok: true, message: 'HTTP 204' });
      expect(await runCheck(check({ type: 'http', path: '/short' }), at(port))).toMatchObject({ ok: false, message: 'response: malformed status line' });
      // As the regex of the Node path reads it: the first three digits.
      expect(await runCheck(check({ type: 'http', path: '/long' }), at(port))).toMatchObject({ ok: true, message: 'HTTP 200' });
    } finally {
      release();
    }
  });
});

describe('a native probe judged', () => {
  it('is a failed attempt, never an exception, when its judge throws', () => {
    const { records, replies } = encodeCompletions([{
      id: 1, outcome: 'ok', phase: 'receive', errno: 0, latencyMs: 1.5, reply: Buffer.from('HTTP/1.0 200 OK\r\n'), limited: false, firstLine: true,
    }]);
    const view = new CompletionView();
    view.records = records;
    view.replies = replies;
    const probe = { prepared: prepareProbe({ address: '127.0.0.1', port: 1, timeoutMs: 100, maxReply: 0 }), judge: () => { throw new Error('boom'); } };
    expect(probeResult(probe, view)).toEqual({ ok: false, message: 'check error: boom', latency: 1.5 });
  });
});
