// The HTTP listener: /metrics for Prometheus, the status page at /, its JSON snapshot at
// /api/status and its live stream at /api/events. Read-only: only GET and HEAD are served.
import { readFile } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline, type Writable } from 'node:stream';
import path from 'node:path';
import zlib from 'node:zlib';

import type { Registry } from 'prom-client';

import { writeExposition } from './exposition';
import { CHUNK_BYTES, recycleChunk } from './exposition-writer';
import { isLoopback, parseListenAddress, requestToken, tokenMatches, type ListenAddress } from './access';
import type { FeedMessage, StatusFeed } from './status-feed';

/** The page's files, shipped in the package (no build step, no CDN). */
const PAGE_DIR = path.join(__dirname, '..', '..', 'lib', 'metrics', 'page');
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/assets/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/assets/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

/** The page runs only our own script and style: a planted <script> or handler could not run. */
const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-store',
};

/**
 * When /metrics is gzipped, for a scraper that accepts gzip (Prometheus always does):
 * - `remote` (the default): unless the scraper is on a loopback address. There, the 30 MB of a
 *   1,000 × 10 table are a memory copy that costs less than compressing them and decoding them
 *   again (measured in the VM: 1.26 s a scrape without, 1.83 s with); on a network they are what
 *   a scrape waits for, and gzip makes them 35 times smaller. A loopback scraper that refuses
 *   the identity coding (`identity;q=0`) still gets gzip.
 * - `always`: whenever the scraper accepts it.
 * - `never`: never.
 */
export type MetricsCompression = 'remote' | 'always' | 'never';

const COMPRESSIONS: readonly MetricsCompression[] = ['remote', 'always', 'never'];

/** @internal Throws a TypeError unless `value` is undefined or a {@link MetricsCompression}. */
export function checkCompression(value: unknown): void {
  if (value !== undefined && !COMPRESSIONS.includes(value as MetricsCompression)) {
    throw new TypeError(`compression must be one of ${COMPRESSIONS.join(', ')}, got ${JSON.stringify(value)}`);
  }
}

/**
 * gzip level for /metrics when it is compressed. The exposition
 * is label sets repeated 200,000 times: the fastest level already makes it some 20-40 times
 * smaller, and the compression runs on libuv's thread pool, not the event loop.
 */
const GZIP_LEVEL = 1;
/** zlib's output buffers: a 128 KiB chunk of exposition compresses to a few KiB, one write. */
const GZIP_CHUNK_BYTES = 64 * 1024;
/**
 * Exposition queued for zlib before a write waits for it: a few chunks, so that the next
 * chunk is written on the event loop while the thread pool compresses the previous ones.
 */
const GZIP_QUEUE_BYTES = 4 * CHUNK_BYTES;

/** A slow SSE reader is dropped once this much is queued for it. */
const MAX_QUEUED_BYTES = 16 * 1024 * 1024;

export interface MetricsServerOptions {
  /** `HOST:PORT`, `[V6]:PORT`, `:PORT` or `PORT` (loopback). */
  listen: string;
  /** Required unless the address is loopback; then every request but the page's assets needs it. */
  token?: string;
  registry: Registry;
  feed: StatusFeed;
  /** When /metrics is gzipped (see {@link MetricsCompression}). Default `remote`. */
  compression?: MetricsCompression;
}

export class MetricsServer {
  readonly #server: http.Server;
  readonly #options: MetricsServerOptions;
  readonly #assets: Map<string, { body: Buffer; type: string }>;
  readonly #streams = new Set<ServerResponse>();

  private constructor(options: MetricsServerOptions, assets: Map<string, { body: Buffer; type: string }>) {
    this.#options = options;
    this.#assets = assets;
    this.#server = http.createServer((request, response) => {
      this.#handle(request, response).catch((error: unknown) => {
        if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', `${String(error)}\n`);
        else response.destroy();
      });
    });
  }

  /**
   * Starts listening.
   * @throws {TypeError} for a malformed address, or a non-loopback address without a token.
   * @throws {Error} EADDRINUSE, EACCES, EADDRNOTAVAIL from the listen() call.
   */
  static async start(options: MetricsServerOptions): Promise<MetricsServer> {
    const address = parseListenAddress(options.listen);
    if (options.token !== undefined && (typeof options.token !== 'string' || options.token.length === 0)) {
      throw new TypeError('token must be a non-empty string');
    }
    checkCompression(options.compression);
    if (!isLoopback(address.host) && options.token === undefined) {
      throw new TypeError(`listening on ${options.listen}, which is not a loopback address, needs a token (--token-file)`);
    }
    const assets = new Map<string, { body: Buffer; type: string }>();
    for (const [route, { file, type }] of Object.entries(ASSETS)) {
      assets.set(route, { body: await readFile(path.join(PAGE_DIR, file)), type });
    }
    const server = new MetricsServer(options, assets);
    await server.#listen(address);
    return server;
  }

  /** The bound address (the real port when 0 was asked for). */
  get address(): ListenAddress {
    const info = this.#server.address() as AddressInfo;
    return { host: info.address, port: info.port };
  }

  /** `http://host:port/`. */
  get url(): string {
    const { host, port } = this.address;
    return `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  }

  /** Ends the event streams and closes the listener. */
  async close(): Promise<void> {
    for (const stream of this.#streams) stream.end();
    this.#streams.clear();
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #listen(address: ListenAddress): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(address.port, address.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('Allow', 'GET, HEAD');
      send(response, 405, 'text/plain; charset=utf-8', 'read-only: only GET and HEAD\n');
      return;
    }
    const asset = this.#assets.get(url.pathname);
    // The page's script and style hold no data; everything else does.
    const needsToken = this.#options.token !== undefined && !url.pathname.startsWith('/assets/');
    if (needsToken && !tokenMatches(requestToken(request, url), this.#options.token!)) {
      response.setHeader('WWW-Authenticate', 'Bearer realm="ipvs-netlink"');
      send(response, 401, 'text/plain; charset=utf-8', 'a token is needed: Authorization: Bearer TOKEN, or ?token=TOKEN\n');
      return;
    }
    if (asset) {
      send(response, 200, asset.type, asset.body, request.method === 'HEAD');
      return;
    }
    switch (url.pathname) {
      case '/metrics':
        await this.#metrics(request, response);
        return;
      case '/api/status': {
        const snapshot = await this.#options.feed.current();
        send(response, 200, 'application/json; charset=utf-8', JSON.stringify(snapshot), request.method === 'HEAD');
        return;
      }
      case '/api/events':
        await this.#stream(request, response);
        return;
      default:
        send(response, 404, 'text/plain; charset=utf-8', 'not found\n');
    }
  }

  /**
   * Streamed in slices (chunked encoding), waiting for the socket when it is full; gzipped
   * when the request accepts it.
   */
  async #metrics(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const gzip = this.#gzips(request);
    let sink: Writable | undefined;
    try {
      await writeExposition(this.#options.registry, async (chunks) => {
        // The headers wait for the first chunk, so that a failing scrape can still be a 500.
        if (!sink) {
          response.writeHead(200, {
            ...SECURITY_HEADERS, 'Content-Type': this.#options.registry.contentType, Vary: 'Accept-Encoding',
            ...(gzip ? { 'Content-Encoding': 'gzip' } : {}),
          });
          if (request.method === 'HEAD') throw STOP;
          sink = gzip ? compressInto(response) : response;
        }
        if (response.destroyed) throw STOP;
        let room = true;
        // Each chunk's buffer is reused once the socket (or zlib) has taken it.
        for (const chunk of chunks) room = sink.write(chunk, () => recycleChunk(chunk));
        if (!room) await drained(sink);
      });
    } catch (error) {
      if (error !== STOP) throw error;
      if (sink) sink.destroy();
      else response.end();
      return;
    }
    if (!sink) response.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': this.#options.registry.contentType });
    (sink ?? response).end();
  }

  /** Whether this request's /metrics is gzipped. */
  #gzips(request: IncomingMessage): boolean {
    const header = request.headers['accept-encoding'];
    const compression = this.#options.compression ?? 'remote';
    if (compression === 'never' || !acceptsGzip(header)) return false;
    if (compression === 'always') return true;
    return !isLoopback(request.socket.remoteAddress ?? '') || !acceptsIdentity(header);
  }

  async #stream(request: IncomingMessage, response: ServerResponse): Promise<void> {
    response.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8', 'X-Accel-Buffering': 'no' });
    if (request.method === 'HEAD') {
      response.end();
      return;
    }
    this.#streams.add(response);
    const write = (message: FeedMessage): void => {
      if (response.writableLength > MAX_QUEUED_BYTES) {
        response.destroy();
        return;
      }
      const data = message.type === 'status' ? message.snapshot : message.event;
      response.write(`event: ${message.type}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const unsubscribe = this.#options.feed.subscribe(write);
    response.on('close', () => {
      unsubscribe();
      this.#streams.delete(response);
    });
    response.write('retry: 2000\n\n');
  }
}

/** Thrown from the exposition's sink to stop it: a HEAD request, or a client gone. */
const STOP = Symbol('stop the exposition');

/** Resolves when `stream` can take more, or is gone. */
function drained(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

/**
 * What an Accept-Encoding header says of `codings` (RFC 9110 12.5.3): accepted with a nonzero q
 * or no q, refused with q=0; `*` stands for any coding not named; undefined when neither appears.
 */
function codingAccepted(header: string, codings: readonly string[]): boolean | undefined {
  let star: boolean | undefined;
  for (const part of header.split(',')) {
    const [coding = '', ...parameters] = part.split(';').map((item) => item.trim().toLowerCase());
    const q = parameters.find((parameter) => parameter.startsWith('q='));
    const accepted = q === undefined || Number(q.slice(2)) > 0;
    if (codings.includes(coding)) return accepted;
    if (coding === '*') star = accepted;
  }
  return star;
}

/** @internal Whether an Accept-Encoding header accepts gzip (`x-gzip` is the same coding). */
export function acceptsGzip(header: string | undefined): boolean {
  return header ? codingAccepted(header, ['gzip', 'x-gzip']) ?? false : false;
}

/**
 * @internal Whether an Accept-Encoding header leaves the identity coding acceptable: unless
 * `identity;q=0`, or `*;q=0` without an `identity` of its own.
 */
export function acceptsIdentity(header: string | undefined): boolean {
  return header ? codingAccepted(header, ['identity']) ?? true : true;
}

/** A gzip stream into `response`: an error on either side ends both. */
function compressInto(response: ServerResponse): zlib.Gzip {
  // zlib hands its options on to the Transform it is (its types leave the stream's out).
  const options: zlib.ZlibOptions & { writableHighWaterMark: number } = {
    level: GZIP_LEVEL, chunkSize: GZIP_CHUNK_BYTES, writableHighWaterMark: GZIP_QUEUE_BYTES,
  };
  const gzip = zlib.createGzip(options);
  pipeline(gzip, response, () => undefined);
  return gzip;
}

function send(response: ServerResponse, status: number, type: string, body: string | Buffer, headOnly = false): void {
  response.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  response.end(headOnly ? undefined : body);
}
