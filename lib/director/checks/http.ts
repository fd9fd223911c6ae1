// http and https: one request; the check passes when the status is in the expected set
// (default 200–299) and the body, when a body condition is given, satisfies it. Plain http is
// an HTTP/1.0 request on a bare connection (a check needs no keep-alive, pooling or header
// objects, and thousands run every second): made by the native probe transport when one is
// held (probe-transport.ts), else on a Node socket. https goes through node:https for TLS.
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net, { isIP } from 'node:net';

import { parseStatusRanges, type HttpCheck } from '../config';
import { errnoCode, prepareProbe, type CompletionView, type NativeProbe } from './probe-transport';
import { describeFailure, type CheckOutcome, type CheckRunner, type CheckTarget } from './types';

type CheckResult = CheckOutcome & { latency: number };

/** Bodies are read up to this size; a body condition sees at most this much. */
const MAX_BODY_BYTES = 1 << 20;
const DEFAULT_STATUS: Array<[number, number]> = [[200, 299]];

export const runHttpCheck: CheckRunner<HttpCheck> = (spec, target, signal) =>
  (spec.type === 'https' ? runHttpRequestCheck(spec, target, signal) : runPlainHttpCheck(spec, target, signal));

/** What a plain check sends and expects, built once per check and target (they repeat every interval). */
interface PreparedRequest {
  spec: HttpCheck;
  statuses: Array<[number, number]>;
  wantsBody: boolean;
  request: Buffer;
  /** The same check as a native probe, built on first use. */
  probe?: NativeProbe;
}

const prepared = new WeakMap<object, PreparedRequest>();

function prepare(spec: HttpCheck, target: { address: string; port: number }): PreparedRequest {
  const cached = prepared.get(target);
  if (cached?.spec === spec) return cached;
  const entry: PreparedRequest = {
    spec,
    statuses: spec.expectStatus ? parseStatusRanges(spec.expectStatus, 'expectStatus') : DEFAULT_STATUS,
    wantsBody: spec.body !== undefined || spec.bodyRegex !== undefined || spec.bodyMd5 !== undefined,
    request: Buffer.from(`${spec.method ?? 'GET'} ${spec.path ?? '/'} HTTP/1.0\r\nHost: ${hostHeader(spec, target)}\r\n` +
      'User-Agent: ipvs-netlink-director\r\nConnection: close\r\n\r\n', 'latin1'),
  };
  prepared.set(target, entry);
  return entry;
}

function hostHeader(spec: HttpCheck, target: { address: string; port: number }): string {
  const defaultPort = spec.type === 'https' ? 443 : 80;
  const hostAddress = isIP(target.address) === 6 ? `[${target.address}]` : target.address;
  return spec.host ?? (target.port === defaultPort ? hostAddress : `${hostAddress}:${target.port}`);
}

/**
 * Whether the native transport can reach the target: IP addresses (no host name, no IPv6 zone),
 * and a source address of the destination's family.
 */
export function probeAddresses(target: CheckTarget): boolean {
  const family = isIP(target.address);
  if (family === 0 || target.address.includes('%')) return false;
  return target.bindAddress === undefined || (isIP(target.bindAddress) === family && !target.bindAddress.includes('%'));
}

/**
 * A plain http check as a native probe: the prepared request sent once connected; without a
 * body condition the reply is complete at the status line, with one it is read to the end of
 * the connection (at most MAX_BODY_BYTES and 64 KiB of head). Undefined for https, or a target
 * the transport cannot reach. Same messages as the Node path.
 */
export function plainHttpProbe(spec: HttpCheck & { timeout: number }, target: CheckTarget): NativeProbe | undefined {
  // Every attempt comes here: the probe made for this spec and target is looked up first, and
  // only a first call looks at the addresses.
  const cached = prepared.get(target);
  if (cached?.spec === spec && cached.probe) return cached.probe;
  if (spec.type !== 'http' || !probeAddresses(target)) return undefined;
  const entry = prepare(spec, target);
  entry.probe = {
    prepared: prepareProbe({
      address: target.address, port: target.port, ...(target.bindAddress ? { bindAddress: target.bindAddress } : {}),
      payload: entry.request, timeoutMs: Math.max(1, Math.round(spec.timeout * 1000)),
      ...(entry.wantsBody ? { maxReply: MAX_BODY_BYTES + 65536 } : { maxReply: MAX_STATUS_LINE + 1, firstLine: true }),
    }),
    judge: (completion) => judgeProbe(entry, completion),
  };
  return entry.probe;
}

function judgeProbe(entry: PreparedRequest, c: CompletionView): CheckResult {
  const latency = c.latencyMs;
  const outcome = c.outcome;
  if (outcome === 'timeout') return { ok: false, message: 'request timed out', latency };
  if (outcome === 'error') return { ok: false, message: `request ${errnoCode(c.errno)}`, latency };
  const replies = c.replies;
  const start = c.replyStart;
  const end = start + c.replyLength;
  if (end > replies.length) throw new RangeError(`completion reply ${start}+${end - start} outside ${replies.length} bytes`);
  // The status line read in place: a check that passes allocates its result only.
  let lineEnd = start;
  while (lineEnd + 1 < end && !(replies[lineEnd] === 13 && replies[lineEnd + 1] === 10)) lineEnd++;
  if (lineEnd + 1 >= end) {
    return {
      ok: false, latency,
      message: end - start > MAX_STATUS_LINE ? 'response: no status line' : 'response: connection closed before the status line',
    };
  }
  const status = statusCode(replies, start, lineEnd);
  if (status < 0) return { ok: false, message: 'response: malformed status line', latency };
  const expected = entry.statuses;
  let ok = false;
  for (let i = 0; i < expected.length; i++) if (status >= expected[i]![0] && status <= expected[i]![1]) ok = true;
  if (!ok || !entry.wantsBody) return { ok, message: statusMessage(status), latency };
  const verdict = judgeResponse(entry.spec, status, replies.subarray(start, end));
  return { ok: verdict.ok, message: verdict.message, latency };
}

/**
 * The status of a status line (bytes start to lineEnd, its CRLF left out) that begins as
 * `HTTP/d.d ddd` (STATUS_LINE), else -1.
 */
function statusCode(b: Buffer, start: number, lineEnd: number): number {
  if (lineEnd - start < 12 || b[start] !== 0x48 || b[start + 1] !== 0x54 || b[start + 2] !== 0x54 || b[start + 3] !== 0x50 ||
      b[start + 4] !== 0x2f || !isDigit(b[start + 5]!) || b[start + 6] !== 0x2e || !isDigit(b[start + 7]!) || b[start + 8] !== 0x20) {
    return -1;
  }
  const d0 = b[start + 9]!;
  const d1 = b[start + 10]!;
  const d2 = b[start + 11]!;
  if (!isDigit(d0) || !isDigit(d1) || !isDigit(d2)) return -1;
  return (d0 - 0x30) * 100 + (d1 - 0x30) * 10 + (d2 - 0x30);
}

const isDigit = (byte: number): boolean => byte >= 0x30 && byte <= 0x39;

/** 'HTTP 200', one string per status however many checks report it. */
const STATUS_MESSAGES: string[] = [];
function statusMessage(status: number): string {
  return (STATUS_MESSAGES[status] ??= `HTTP ${status}`);
}

/** The verdict on a whole response (status line, headers, body) whose status is expected. */
function judgeResponse(spec: HttpCheck, status: number, all: Buffer): CheckOutcome {
  const headerEnd = all.indexOf(HEADER_END);
  if (headerEnd < 0) return { ok: false, message: `HTTP ${status}, headers not terminated` };
  const headers = all.subarray(0, headerEnd).toString('latin1');
  let body: Buffer = all.subarray(headerEnd + 4);
  if (/^transfer-encoding:[ \t]*chunked[ \t]*$/im.test(headers)) {
    const decoded = dechunk(body);
    if (!decoded) return { ok: false, message: `HTTP ${status}, malformed chunked body` };
    body = decoded;
  }
  const md5 = spec.bodyMd5 ? createHash('md5').update(body).digest('hex') : undefined;
  const failure = bodyFailure(spec, status, body, md5);
  return { ok: failure === undefined, message: failure ?? `HTTP ${status}` };
}

/** The body conditions on a complete body: undefined when they hold, else the failure message. */
function bodyFailure(spec: HttpCheck, status: number, bodyBytes: Buffer, md5: string | undefined): string | undefined {
  const body = bodyBytes.subarray(0, MAX_BODY_BYTES).toString('utf8');
  if (spec.body !== undefined && !body.includes(spec.body)) return `HTTP ${status}, body lacks ${JSON.stringify(spec.body)}`;
  if (spec.bodyRegex !== undefined && !new RegExp(spec.bodyRegex).test(body)) return `HTTP ${status}, body does not match /${spec.bodyRegex}/`;
  if (md5 !== undefined && md5 !== spec.bodyMd5!.toLowerCase()) return `HTTP ${status}, body MD5 ${md5}`;
  return undefined;
}

const STATUS_LINE = /^HTTP\/\d\.\d (\d{3})/;
/** A status line longer than this fails the check ('response: no status line'). */
const MAX_STATUS_LINE = 8192;
const HEADER_END = Buffer.from('\r\n\r\n');

/**
 * Every plain check reads into this one buffer: a read's bytes are looked at (or copied, when
 * kept) in its callback, before the next read, so no buffer is allocated per read.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/**
 * Plain http: `METHOD PATH HTTP/1.0` with Host, User-Agent and `Connection: close`. Without a
 * body condition the outcome is known from the status line and the socket is closed at once;
 * with one, the body is read to the end of the connection (a chunked body is decoded).
 */
export const runPlainHttpCheck: CheckRunner<HttpCheck> = (spec, target, signal) => new Promise((resolve) => {
  const { statuses, wantsBody, request } = prepare(spec, target);
  // The response so far, copied out of READ_BUFFER: a status line that comes in pieces, and
  // the whole response when a body condition needs it.
  const chunks: Buffer[] = [];
  let kept = 0;
  let status = 0;
  let settled = false;
  const onRead = (length: number, buffer: Uint8Array): boolean => {
    if (settled) return false;
    const bytes = (buffer as Buffer).subarray(0, length);
    if (status === 0) {
      const head = chunks.length === 0 ? bytes : Buffer.concat([...chunks, bytes]);
      const lineEnd = head.indexOf('\r\n');
      if (lineEnd < 0) {
        if (head.length > MAX_STATUS_LINE) finish(false, 'response: no status line');
        else chunks.push(Buffer.from(bytes));
        return true;
      }
      const match = STATUS_LINE.exec(head.toString('latin1', 0, lineEnd));
      if (!match) return finish(false, 'response: malformed status line');
      status = Number(match[1]);
      if (!statuses.some(([low, high]) => status >= low && status <= high)) return finish(false, `HTTP ${status}`);
      if (!wantsBody) return finish(true, `HTTP ${status}`);
    }
    if (kept < MAX_BODY_BYTES + 65536) chunks.push(Buffer.from(bytes));
    kept += length;
    return true;
  };
  const socket = net.connect({
    host: target.address, port: target.port, onread: { buffer: READ_BUFFER, callback: onRead },
    ...(target.bindAddress ? { localAddress: target.bindAddress } : {}),
  });
  /** Settles the attempt and closes the socket; returns false (for onRead: read no more). */
  const finish = (ok: boolean, message: string): false => {
    if (!settled) {
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve({ ok, message });
    }
    return false;
  };
  const onAbort = (): void => void finish(false, 'request timed out');
  if (signal.aborted) return onAbort();
  signal.addEventListener('abort', onAbort, { once: true });
  // One write: Nagle's algorithm never holds it back, so no TCP_NODELAY (a syscall per check).
  socket.write(request);
  socket.once('end', () => {
    if (settled) return;
    if (status === 0) return finish(false, 'response: connection closed before the status line');
    const verdict = judgeResponse(spec, status, Buffer.concat(chunks));
    return finish(verdict.ok, verdict.message);
  });
  socket.once('error', (error) => finish(false, describeFailure('request', error)));
  socket.once('close', () => finish(false, 'response: connection closed'));
});

/** Decodes a complete chunked body; undefined when it is malformed or cut short. */
function dechunk(data: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) return undefined;
    const size = Number.parseInt(data.subarray(at, lineEnd).toString('latin1').split(';')[0]!.trim(), 16);
    if (!Number.isFinite(size) || size < 0) return undefined;
    if (size === 0) return Buffer.concat(parts);
    if (lineEnd + 2 + size > data.length) return undefined;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

/** http or https through node:http(s) (https always takes this path: TLS, SNI, verification). */
export const runHttpRequestCheck: CheckRunner<HttpCheck> = (spec, target, signal) => new Promise((resolve) => {
  const secure = spec.type === 'https';
  const statuses = spec.expectStatus ? parseStatusRanges(spec.expectStatus, 'expectStatus') : DEFAULT_STATUS;
  const wantsBody = spec.body !== undefined || spec.bodyRegex !== undefined || spec.bodyMd5 !== undefined;
  const defaultPort = secure ? 443 : 80;
  const hostAddress = isIP(target.address) === 6 ? `[${target.address}]` : target.address;
  const host = spec.host ?? (target.port === defaultPort ? hostAddress : `${hostAddress}:${target.port}`);
  const servername = spec.sni ?? (spec.host && isIP(spec.host.replace(/:\d+$/, '')) === 0 ? spec.host.replace(/:\d+$/, '') : undefined);
  const options: https.RequestOptions = {
    host: target.address,
    port: target.port,
    method: spec.method ?? 'GET',
    path: spec.path ?? '/',
    headers: { Host: host, 'User-Agent': 'ipvs-netlink-director', Connection: 'close' },
    agent: false,
    signal,
    ...(target.bindAddress ? { localAddress: target.bindAddress } : {}),
    ...(secure ? { rejectUnauthorized: spec.tlsVerify ?? false, ...(servername ? { servername } : {}) } : {}),
  };
  let settled = false;
  const finish = (ok: boolean, message: string): void => {
    if (settled) return;
    settled = true;
    request.destroy();
    resolve({ ok, message });
  };
  const request = (secure ? https : http).request(options, (response) => {
    const status = response.statusCode ?? 0;
    if (!statuses.some(([low, high]) => status >= low && status <= high)) {
      finish(false, `HTTP ${status}`);
      return;
    }
    if (!wantsBody) {
      finish(true, `HTTP ${status}`);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const md5 = spec.bodyMd5 ? createHash('md5') : undefined;
    response.on('data', (chunk: Buffer) => {
      md5?.update(chunk);
      if (size < MAX_BODY_BYTES) chunks.push(chunk);
      size += chunk.length;
    });
    response.once('error', (error) => finish(false, describeFailure('response', error)));
    response.once('end', () => {
      const body = Buffer.concat(chunks).subarray(0, MAX_BODY_BYTES).toString('utf8');
      if (spec.body !== undefined && !body.includes(spec.body)) return finish(false, `HTTP ${status}, body lacks ${JSON.stringify(spec.body)}`);
      if (spec.bodyRegex !== undefined && !new RegExp(spec.bodyRegex).test(body)) return finish(false, `HTTP ${status}, body does not match /${spec.bodyRegex}/`);
      if (md5) {
        const digest = md5.digest('hex');
        if (digest !== spec.bodyMd5!.toLowerCase()) return finish(false, `HTTP ${status}, body MD5 ${digest}`);
      }
      return finish(true, `HTTP ${status}`);
    });
  });
  request.once('error', (error) => {
    finish(false, signal.aborted ? 'request timed out' : describeFailure('request', error));
  });
  request.end();
});
