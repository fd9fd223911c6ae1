// Where the server listens, and who may read it: loopback is open, anything else needs the
// bearer token.
import { timingSafeEqual, createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import net from 'node:net';

export interface ListenAddress {
  host: string;
  port: number;
}

/** The default: loopback only, on node_exporter's neighbour port. */
export const DEFAULT_LISTEN = '127.0.0.1:9110';

/**
 * Parses `HOST:PORT`, `[V6]:PORT`, `:PORT` (every address) or `PORT` (loopback).
 * @throws {TypeError} for anything else, naming the value.
 */
export function parseListenAddress(text: string): ListenAddress {
  if (typeof text !== 'string') throw new TypeError(`listen address must be a string, got ${typeof text}`);
  let host: string;
  let portText: string;
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2]!;
    if (net.isIPv6(host) === false) throw new TypeError(`listen address ${JSON.stringify(text)}: ${host} is not an IPv6 address`);
  } else if (/^\d+$/.test(text)) {
    host = '127.0.0.1';
    portText = text;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0 || text.indexOf(':') !== colon) {
      throw new TypeError(`listen address ${JSON.stringify(text)} must be HOST:PORT, [IPV6]:PORT, :PORT or PORT`);
    }
    host = text.slice(0, colon) || '::';
    portText = text.slice(colon + 1);
    if (!/^\d+$/.test(portText)) throw new TypeError(`listen address ${JSON.stringify(text)}: the port must be a number`);
  }
  const port = Number(portText);
  if (port > 65535) throw new RangeError(`listen address ${JSON.stringify(text)}: the port must be between 0 and 65535`);
  return { host, port };
}

/** True for 127.0.0.0/8, ::1, ::ffff:127.x and `localhost`: reachable from this host only. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) {
    const lower = host.toLowerCase();
    if (lower === '::1' || lower === '0:0:0:0:0:0:0:1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
    return mapped !== null && mapped[1]!.startsWith('127.');
  }
  return false;
}

/** The token from `Authorization: Bearer …` or `?token=…`, if any. */
export function requestToken(request: IncomingMessage, url: URL): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match) return match[1];
  }
  return url.searchParams.get('token') ?? undefined;
}

/** Constant-time comparison (of digests, so lengths leak nothing either). */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * A token file's content without its trailing newline.
 * @throws {TypeError} when it is empty or holds more than one line.
 */
export function parseTokenFile(text: string, path: string): string {
  const token = text.replace(/\r?\n$/, '');
  if (token.length === 0) throw new TypeError(`token file ${path} is empty`);
  if (/[\s]/.test(token)) throw new TypeError(`token file ${path} must hold one token without spaces or line breaks`);
  return token;
}
