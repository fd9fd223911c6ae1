// The client half of the kit's servers, run inside a namespace (one process for many connections).
import { createHash, randomBytes } from 'node:crypto';

import type { Netns } from './netns';
import { peerCommand } from './peer-script';

/** Options of {@link tcpClient}. */
export interface TcpClientOptions {
  /** Address to connect to (the VIP). */
  host: string;
  port: number;
  /** Sent on every connection. Default: 64 KiB of random bytes. */
  payload?: Buffer | string;
  /** Connections, made one after the other, each from a new source port. Default 1. */
  connections?: number;
  /** Source address (one of the namespace's). */
  localAddress?: string;
  /** Per-connection inactivity limit. Default 10,000 ms. */
  timeoutMs?: number;
}

/** What one connection of {@link tcpClient} saw. */
export interface TcpExchange {
  /** The name the server greeted with, or null if it closed first. */
  server: string | null;
  localAddress: string;
  localPort: number;
  /** Bytes sent and bytes echoed back. */
  sent: number;
  received: number;
  /** SHA-256 (hex) of what was sent and of what came back. */
  sentSha256: string;
  receivedSha256: string;
  /** The echo is byte for byte what was sent. */
  intact: boolean;
}

/** Options of {@link httpClient}. */
export interface HttpClientOptions {
  url: string;
  /** Requests, one after the other, each on a new connection. Default 1. */
  requests?: number;
  /** Default GET, or POST when there is a body. */
  method?: string;
  body?: Buffer | string;
  localAddress?: string;
  /** Per-request limit. Default 10,000 ms. */
  timeoutMs?: number;
}

/** What one request of {@link httpClient} got. */
export interface HttpExchange {
  status: number;
  /** The `x-served-by` header of the kit's HTTP server, or null. */
  server: string | null;
  localPort: number;
  body: string;
}

function count(value: number | undefined, what: string): number {
  const n = value ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new RangeError(`${what} must be an integer between 1 and 10000, got ${String(value)}`);
  return n;
}

function common(options: { localAddress?: string; timeoutMs?: number }): string[] {
  const args: string[] = [];
  if (options.localAddress !== undefined) args.push('--local-address', options.localAddress);
  if (options.timeoutMs !== undefined) {
    if (!Number.isInteger(options.timeoutMs) || options.timeoutMs <= 0) throw new RangeError(`options.timeoutMs must be a positive integer, got ${String(options.timeoutMs)}`);
    args.push('--timeout', String(options.timeoutMs));
  }
  return args;
}

function parseLines<T>(stdout: string): T[] {
  return stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as T);
}

/**
 * Connects from inside `ns` to `host:port` `connections` times, sends the payload on each,
 * and reports who answered and whether the echo came back intact (to be used with
 * {@link startTcpServer}). Rejects with a {@link CommandError} if a connection fails.
 */
export async function tcpClient(ns: Netns, options: TcpClientOptions): Promise<TcpExchange[]> {
  if (typeof options !== 'object' || options === null || typeof options.host !== 'string') throw new TypeError('options.host must be an address');
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) throw new RangeError(`options.port must be between 1 and 65535, got ${String(options.port)}`);
  const connections = count(options.connections, 'options.connections');
  const payload = options.payload === undefined ? randomBytes(64 * 1024) : Buffer.from(options.payload);
  const sentSha256 = createHash('sha256').update(payload).digest('hex');
  const argv = [...peerCommand(), 'tcp-client', '--host', options.host, '--port', String(options.port), '--connections', String(connections), ...common(options)];
  const timeoutMs = connections * (options.timeoutMs ?? 10_000) + 30_000;
  const lines = parseLines<Omit<TcpExchange, 'sentSha256' | 'intact'>>(await ns.exec(argv, { input: payload, timeoutMs }));
  return lines.map((line) => ({ ...line, sentSha256, intact: line.received === payload.length && line.receivedSha256 === sentSha256 }));
}

/**
 * Sends `requests` HTTP requests from inside `ns`, each on a new connection, and reports the
 * status, the answering server and the body of each. Rejects with a {@link CommandError} if
 * a request fails (an HTTP error status is a result, not a failure).
 */
export async function httpClient(ns: Netns, options: HttpClientOptions): Promise<HttpExchange[]> {
  if (typeof options !== 'object' || options === null || typeof options.url !== 'string') throw new TypeError('options.url must be a URL');
  const requests = count(options.requests, 'options.requests');
  const argv = [...peerCommand(), 'http-client', '--url', options.url, '--requests', String(requests), ...common(options)];
  if (options.method !== undefined) argv.push('--method', options.method);
  const timeoutMs = requests * (options.timeoutMs ?? 10_000) + 30_000;
  return parseLines<HttpExchange>(await ns.exec(argv, { input: options.body === undefined ? '' : Buffer.from(options.body), timeoutMs }));
}
