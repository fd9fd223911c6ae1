// The IPVS connection table (/proc/net/ip_vs_conn and ip_vs_conn_sync), read and parsed in
// native code on the thread pool: as batches of objects, as a columnar table, or as counts
// aggregated natively without creating an object per connection.
import { constants as osConstants } from 'node:os';

import { decodeAddress } from './address';
import { fromNativeError, IpvsError } from './errors';
import { nativeAddon } from './native';
import {
  describe, expectAddress, expectBoolean, expectInteger, expectObject, expectOneOf, expectPort,
  expectString, type Fields, rejectUnknownKeys,
} from './validate';

/** Protocol as the kernel names it, in lower case; unknown protocols read `ip_<number>`. */
export type ConnectionProtocol = 'tcp' | 'udp' | 'sctp' | 'icmp' | 'icmpv6' | 'ipip' | 'gre' | 'ip' | (string & {});

/** Where a connection entry came from: this director's traffic, or a master's sync message. */
export type ConnectionOrigin = 'local' | 'sync';

/** One entry of the kernel's connection table. */
export interface Connection {
  protocol: ConnectionProtocol;
  clientAddress: string;
  clientPort: number;
  /** The virtual service's address and port. */
  virtualAddress: string;
  virtualPort: number;
  /** The real server's address and port; its family may differ from the client's (tunnelling). */
  destinationAddress: string;
  destinationPort: number;
  /** Kernel state name, e.g. `ESTABLISHED`, `SYN_RECV`, `TIME_WAIT`, `UDP`, `NONE` (templates). */
  state: string;
  /** Seconds until the entry expires. */
  expires: number;
  /** Present when the table was read with `sync: true`. */
  origin?: ConnectionOrigin;
  /** Persistence engine name and data (e.g. `sip` and the Call-ID), on persistence templates. */
  peName?: string;
  peData?: string;
}

/** Restricts a read to the connections of one virtual service (any field may be left out). */
export interface ConnectionServiceFilter {
  protocol?: ConnectionProtocol;
  address?: string;
  port?: number;
}

export interface ConnectionReadOptions {
  /** Read `ip_vs_conn_sync` instead, which adds each entry's `origin`. */
  sync?: boolean;
  /** Read this file (a saved copy of the table) instead of the kernel's, in the caller's namespace. */
  path?: string;
  /** Reject with a ConnectionParseError at the first malformed line instead of counting it. */
  strict?: boolean;
  /** Only connections in this state or these states (kernel names, any case). */
  state?: string | readonly string[];
  /** Only connections of this virtual service. */
  service?: ConnectionServiceFilter;
}

export interface ConnectionStreamOptions extends ConnectionReadOptions {
  /** Connections per batch, 1 to 1,000,000 (default 256). */
  batchSize?: number;
}

export type ConnectionGroupBy = 'client' | 'destination' | 'service' | 'state';

export interface CountConnectionsOptions extends ConnectionReadOptions {
  /**
   * The key to count by: `client` (address, e.g. `10.0.0.2`), `destination` (`10.9.0.2:80`,
   * `[fd00::2]:80`), `service` (`tcp 10.0.0.1:80`) or `state` (`ESTABLISHED`).
   */
  by: ConnectionGroupBy;
  /** Only keys with at least this many connections (default 1). */
  minCount?: number;
  /** Only the this many keys with the most connections. */
  top?: number;
}

export interface ConnectionCount {
  key: string;
  count: number;
}

/** What a scan of the table saw. */
export interface ConnectionScanSummary {
  /** Lines read, the header included. */
  lines: number;
  /** Lines that parsed as connections (before filtering). */
  connections: number;
  /** Connections that passed the state and service filters. */
  matched: number;
  /** Lines that did not parse, including a last line cut short; always 0 in strict mode results. */
  malformedLines: number;
  /** The first malformed line, if any (text cut at 200 bytes). */
  firstMalformed?: { line: number; text: string };
}

/** Counts sorted by count (descending) then key, with the scan summary attached. */
export type ConnectionCounts = ConnectionCount[] & { readonly scan: ConnectionScanSummary };

/** Raw columns of a ConnectionTable: one typed-array element per connection. */
export interface ConnectionColumns {
  /** Index into `protocols` (kernel names, upper case as printed). */
  protocol: Uint8Array;
  /** 4 or 6 per row. */
  clientFamily: Uint8Array;
  /** 16 bytes per row, network order; IPv4 uses the first 4. */
  clientAddress: Uint8Array;
  clientPort: Uint16Array;
  /** Index into `addresses`. */
  virtualAddress: Uint32Array;
  virtualPort: Uint16Array;
  /** Index into `addresses`. */
  destinationAddress: Uint32Array;
  destinationPort: Uint16Array;
  /** Index into `states`. */
  state: Uint16Array;
  /** 0 none, 1 local, 2 sync. */
  origin: Uint8Array;
  expires: Uint32Array;
  /** 0 none, else 1 + index into `peNames` and `peData`. */
  pe: Uint32Array;
  protocols: string[];
  states: string[];
  addresses: string[];
  peNames: string[];
  peData: string[];
}

/**
 * A malformed line met in strict mode. `code` is `ERR_IPVS_CONNECTION_LINE`; `line` is the
 * 1-based line number, `text` the line (cut at 200 bytes), `path` the file read.
 */
export class ConnectionParseError extends Error {
  readonly code = 'ERR_IPVS_CONNECTION_LINE';
  constructor(
    readonly line: number,
    readonly text: string,
    readonly path: string,
  ) {
    super(`malformed line ${line} in ${path}: ${JSON.stringify(text)}`);
    this.name = 'ConnectionParseError';
  }
}

// ----- Native interface ---------------------------------------------------------------

interface NativeRequest {
  netns: string;
  path: string;
  sync: boolean;
  strict: boolean;
  states?: string[];
  serviceProtocol?: string;
  serviceAddress?: string;
  servicePort?: number;
}

interface NativeScan {
  lines: number;
  connections: number;
  malformed: number;
  syncLayout: boolean;
  firstMalformedLine?: number;
  firstMalformedText?: string;
  failed: boolean;
}

interface NativeColumns extends NativeScan, ConnectionColumns {
  length: number;
}

interface NativeCounts extends NativeScan {
  keys: string[];
  counts: Float64Array;
  matched: number;
}

interface NativeBatch extends NativeColumns {
  done: boolean;
}

interface NativeConnectionStream {
  read(batchSize: number): Promise<NativeBatch>;
  close(): void;
}

/** @internal The connection-table reader's part of the addon (lib/native.ts NativeAddon). */
export interface ConnectionAddon {
  countConnections(request: NativeRequest & { by: ConnectionGroupBy; minCount: number; top: number }): Promise<NativeCounts>;
  readConnectionTable(request: NativeRequest): Promise<NativeColumns>;
  ConnectionStream: new (request: NativeRequest) => NativeConnectionStream;
}

function addon(): ConnectionAddon {
  return nativeAddon();
}

// ----- Validation ---------------------------------------------------------------------

const READ_OPTION_KEYS = ['sync', 'path', 'strict', 'state', 'service'] as const;
const SERVICE_KEYS = new Set(['protocol', 'address', 'port']);
const GROUP_BY: readonly ConnectionGroupBy[] = ['client', 'destination', 'service', 'state'];
// What the caller's loop over one batch costs is one turn of the event loop: keep it short.
const DEFAULT_BATCH_SIZE = 256;
const MAX_BATCH_SIZE = 1_000_000;

const STATE_NAME = /^[A-Za-z0-9_!?]{1,32}$/;
const PROTOCOL_NAME = /^[A-Za-z][A-Za-z0-9_]{0,15}$/;

/** A file-system path: a non-empty string without NUL. */
function expectPath(value: unknown, field: string): string {
  const text = expectString(value, field);
  if (text.length === 0 || text.includes('\0')) throw new TypeError(`${field} must be a non-empty path`);
  return text;
}

function validateReadOptions(netns: string | undefined, options: Fields): NativeRequest {
  const request: NativeRequest = {
    netns: netns ?? '',
    path: options.path === undefined ? '' : expectPath(options.path, 'options.path'),
    sync: options.sync === undefined ? false : expectBoolean(options.sync, 'options.sync'),
    strict: options.strict === undefined ? false : expectBoolean(options.strict, 'options.strict'),
  };
  if (options.state !== undefined) {
    const states = typeof options.state === 'string' ? [options.state] : options.state;
    if (!Array.isArray(states) || states.length === 0) {
      throw new TypeError(`options.state must be a state name or a non-empty array of them, got ${describe(options.state)}`);
    }
    request.states = states.map((value: unknown, i) => {
      const field = typeof options.state === 'string' ? 'options.state' : `options.state[${i}]`;
      const state = expectString(value, field);
      if (!STATE_NAME.test(state)) throw new RangeError(`${field} must be a connection state name, got ${describe(state)}`);
      return state.toUpperCase();
    });
  }
  if (options.service !== undefined) {
    const service = expectObject(options.service, 'options.service');
    rejectUnknownKeys(service, SERVICE_KEYS, 'options.service');
    if (service.protocol !== undefined) {
      const protocol = expectString(service.protocol, 'options.service.protocol');
      if (!PROTOCOL_NAME.test(protocol)) {
        throw new RangeError(`options.service.protocol must be a protocol name (tcp, udp, sctp, ...), got ${describe(protocol)}`);
      }
      request.serviceProtocol = protocol;
    }
    if (service.address !== undefined) request.serviceAddress = expectAddress(service.address, 'options.service.address').address;
    if (service.port !== undefined) request.servicePort = expectPort(service.port, 'options.service.port');
  }
  return request;
}

/** The options object and its namespace: `options.netns` for the standalone functions. */
function optionsWithNetns(options: unknown, allowed: readonly string[]): { netns: string | undefined; object: Fields } {
  const object = expectObject(options, 'options');
  rejectUnknownKeys(object, new Set(['netns', ...allowed]), 'options');
  return { netns: object.netns === undefined ? undefined : expectPath(object.netns, 'options.netns'), object };
}

// ----- Conversions --------------------------------------------------------------------

/** The protocol names of a batch as Connection.protocol gives them, made once per batch. */
function protocolNames(c: ConnectionColumns): string[] {
  return c.protocols.map((name) => name.toLowerCase());
}

// Client addresses repeat across a table (a client holds many connections): a stream keeps the
// text of each IPv4 client it has made, so a connection costs one lookup instead of a new string
// (and the caller's Map or Set of clients hashes each text once).
const MAX_CACHED_CLIENTS = 1 << 16;

class ClientTexts {
  readonly #texts = new Map<number, string>();

  at(c: ConnectionColumns, i: number): string {
    if (c.clientFamily[i] === 6) return decodeAddress(c.clientAddress, 'inet6', i * 16);
    const b = c.clientAddress;
    const at = i * 16;
    const key = (b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!;
    let text = this.#texts.get(key);
    if (text === undefined) {
      if (this.#texts.size >= MAX_CACHED_CLIENTS) this.#texts.clear();
      text = decodeAddress(b, 'inet', at);
      this.#texts.set(key, text);
    }
    return text;
  }
}

function connectionAt(c: ConnectionColumns, i: number, protocols: readonly string[], clientAddress: string): Connection {
  const connection: Connection = {
    protocol: protocols[c.protocol[i] ?? 0] ?? '',
    clientAddress,
    clientPort: c.clientPort[i] ?? 0,
    virtualAddress: c.addresses[c.virtualAddress[i] ?? 0] ?? '',
    virtualPort: c.virtualPort[i] ?? 0,
    destinationAddress: c.addresses[c.destinationAddress[i] ?? 0] ?? '',
    destinationPort: c.destinationPort[i] ?? 0,
    state: c.states[c.state[i] ?? 0] ?? '',
    expires: c.expires[i] ?? 0,
  };
  const origin = c.origin[i];
  if (origin === 1) connection.origin = 'local';
  else if (origin === 2) connection.origin = 'sync';
  const pe = c.pe[i] ?? 0;
  if (pe !== 0) {
    connection.peName = c.peNames[pe - 1] ?? '';
    connection.peData = c.peData[pe - 1] ?? '';
  }
  return connection;
}

function clientText(c: ConnectionColumns, i: number): string {
  return decodeAddress(c.clientAddress, c.clientFamily[i] === 6 ? 'inet6' : 'inet', i * 16);
}

function summaryOf(scan: NativeScan, matched: number): ConnectionScanSummary {
  const summary: ConnectionScanSummary = {
    lines: scan.lines,
    connections: scan.connections,
    matched,
    malformedLines: scan.malformed,
  };
  if (scan.firstMalformedLine !== undefined) {
    summary.firstMalformed = { line: scan.firstMalformedLine, text: scan.firstMalformedText ?? '' };
  }
  return summary;
}

function displayPath(request: NativeRequest): string {
  if (request.path) return request.path;
  return request.sync ? '/proc/net/ip_vs_conn_sync' : '/proc/net/ip_vs_conn';
}

function checkStrict(scan: NativeScan, request: NativeRequest): void {
  if (scan.failed) {
    throw new ConnectionParseError(scan.firstMalformedLine ?? 0, scan.firstMalformedText ?? '', displayPath(request));
  }
}

// ENOENT on the kernel's own table means the ip_vs module (which creates it) is not loaded;
// an error naming the namespace is about the namespace.
function convertError(error: unknown, request: NativeRequest, operation: string): Error {
  const { errno, path } = (error ?? {}) as { errno?: unknown; path?: unknown };
  if (request.netns && path === request.netns && typeof errno === 'number') {
    const problem =
      errno === osConstants.errno.ENOENT ? 'network namespace not found' :
      errno === osConstants.errno.EINVAL ? 'not a network namespace' : undefined;
    if (problem) return new IpvsError({ errno, operation, path, cause: error }, `${problem}: ${request.netns}`);
  }
  if (errno === osConstants.errno.ENOENT && !request.path) {
    return new IpvsError(
      { errno, operation, path: displayPath(request), cause: error },
      `IPVS is not loaded: ${displayPath(request)} does not exist in this network namespace ` +
        '(load the ip_vs kernel module, e.g. `modprobe ip_vs`)',
    );
  }
  return fromNativeError(error, operation);
}

// ----- Public API ---------------------------------------------------------------------

/**
 * The connection table as columns (typed arrays and string tables), with `length`, `at(i)`
 * and iteration creating Connection objects only on demand.
 */
export class ConnectionTable implements Iterable<Connection> {
  /** The raw columns, for scans that should not create objects. */
  readonly columns: ConnectionColumns;
  readonly length: number;
  readonly scan: ConnectionScanSummary;
  readonly #protocols: readonly string[];

  /** @internal */
  constructor(columns: ConnectionColumns, length: number, scan: ConnectionScanSummary) {
    this.columns = columns;
    this.length = length;
    this.scan = scan;
    this.#protocols = protocolNames(columns);
  }

  /** The connection at `index` (negative counts from the end), or undefined out of range. */
  at(index: number): Connection | undefined {
    const i = Math.trunc(index) < 0 ? this.length + Math.trunc(index) : Math.trunc(index);
    if (!(i >= 0 && i < this.length)) return undefined;
    return connectionAt(this.columns, i, this.#protocols, clientText(this.columns, i));
  }

  *[Symbol.iterator](): Iterator<Connection> {
    for (let i = 0; i < this.length; i++) yield connectionAt(this.columns, i, this.#protocols, clientText(this.columns, i));
  }
}

// Making objects is the one part of a stream that runs on the event loop. It gives the loop
// back whenever it has held it this long, whatever the machine's speed, and it hands each batch
// to the caller in a turn of its own: the caller's loop over a batch shares its turn with no
// building, and the loop runs between any two of them.
const SLICE_BUDGET_MS = 2;
const SLICE_CHECK_EVERY = 64;
// Rows per read on the thread pool: each read is a round trip into native code, so it takes
// a few thousand rows, whatever the batches the caller gets them in.
const READ_ROWS = 4096;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Makes the connections of `rows` from row `from` into `batch` (which holds `filled`) until
 * the batch is full, the rows end or the slice's time is up; returns the next row.
 */
function fillBatch(
  rows: NativeBatch, from: number, protocols: readonly string[], clients: ClientTexts,
  batch: Connection[], filled: number, batchSize: number,
): number {
  const end = Math.min(rows.length, from + batchSize - filled);
  const sliceEnds = performance.now() + SLICE_BUDGET_MS;
  let i = from;
  for (; i < end; i++) {
    if (i % SLICE_CHECK_EVERY === SLICE_CHECK_EVERY - 1 && performance.now() > sliceEnds) break;
    batch[filled++] = connectionAt(rows, i, protocols, clients.at(rows, i));
  }
  return i;
}

/**
 * Batches of connections read as the table is scanned. The table is read and parsed on the
 * thread pool, a few thousand rows (or a batch, if larger) at a time, the next while this one
 * becomes objects: at most two reads are held at a time.
 * Iterate it once; breaking out of the loop closes the file. `scan` summarizes what was read
 * so far.
 */
export class ConnectionStream implements AsyncIterable<Connection[]> {
  readonly #request: NativeRequest;
  readonly #batchSize: number;
  #started = false;
  #summary: ConnectionScanSummary = { lines: 0, connections: 0, matched: 0, malformedLines: 0 };

  /** @internal */
  constructor(request: NativeRequest, batchSize: number) {
    this.#request = request;
    this.#batchSize = batchSize;
  }

  get scan(): ConnectionScanSummary {
    return { ...this.#summary };
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Connection[]> {
    if (this.#started) throw new Error('a connection stream can be iterated only once');
    this.#started = true;
    const stream = new (addon().ConnectionStream)(this.#request);
    const batchSize = this.#batchSize;
    const readRows = Math.max(batchSize, READ_ROWS);
    const read = (): Promise<NativeBatch> => {
      const next = stream.read(readRows);
      next.catch(() => undefined);  // observed when awaited; a stream abandoned early never awaits it
      return next;
    };
    const clients = new ClientTexts();
    let matched = 0;
    // A batch is allocated at its size once (a batch larger than a read grows as it fills).
    const newBatch = (): Connection[] => (batchSize <= READ_ROWS ? new Array<Connection>(batchSize) : []);
    let connections = newBatch();
    let filled = 0;
    try {
      let pending = read();
      for (;;) {
        let rows: NativeBatch;
        try {
          rows = await pending;
        } catch (error) {
          throw convertError(error, this.#request, 'connections');
        }
        this.#summary = summaryOf(rows, matched);
        checkStrict(rows, this.#request);
        // The next rows are read and parsed on the thread pool while these become objects.
        if (!rows.done) pending = read();
        const protocols = protocolNames(rows);
        for (let i = 0; i < rows.length;) {
          await nextTurn();
          const next = fillBatch(rows, i, protocols, clients, connections, filled, batchSize);
          filled += next - i;
          i = next;
          if (filled === batchSize) {
            matched += batchSize;
            this.#summary = summaryOf(rows, matched);
            await nextTurn();
            yield connections;
            connections = newBatch();
            filled = 0;
          }
        }
        if (rows.done) {
          if (filled > 0) {
            connections.length = filled;
            matched += filled;
            this.#summary = summaryOf(rows, matched);
            await nextTurn();
            yield connections;
          }
          return;
        }
      }
    } finally {
      stream.close();
    }
  }
}

/** Where the standalone readers look: a namespace, as in `Ipvs.open({ netns })`. */
export interface ConnectionNamespaceOption {
  /** Network namespace to read (e.g. `/run/netns/lb`); the caller's when left out. */
  netns?: string;
}

/** @internal The stream behind `Ipvs.connections()` and {@link streamConnections}. */
export function streamConnectionsIn(netns: string | undefined, options: unknown, allowNetns = false): ConnectionStream {
  const keys = [...READ_OPTION_KEYS, 'batchSize'];
  const { netns: own, object } = allowNetns ? optionsWithNetns(options, keys) : withoutNetns(options, keys);
  const request = validateReadOptions(own ?? netns, object);
  const batchSize =
    object.batchSize === undefined ? DEFAULT_BATCH_SIZE : expectInteger(object.batchSize, 'options.batchSize', 1, MAX_BATCH_SIZE);
  return new ConnectionStream(request, batchSize);
}

/** @internal The reader behind `Ipvs.connectionTable()` and {@link readConnectionTable}. */
export function readConnectionTableIn(netns: string | undefined, options: unknown, allowNetns = false): Promise<ConnectionTable> {
  const { netns: own, object } = allowNetns ? optionsWithNetns(options, READ_OPTION_KEYS) : withoutNetns(options, READ_OPTION_KEYS);
  const request = validateReadOptions(own ?? netns, object);
  return addon()
    .readConnectionTable(request)
    .catch((error: unknown) => {
      throw convertError(error, request, 'connectionTable');
    })
    .then((columns) => {
      checkStrict(columns, request);
      return new ConnectionTable(columns, columns.length, summaryOf(columns, columns.length));
    });
}

/** @internal The counter behind `Ipvs.countConnections()` and {@link countConnections}. */
export function countConnectionsIn(netns: string | undefined, options: unknown, allowNetns = false): Promise<ConnectionCounts> {
  const keys = [...READ_OPTION_KEYS, 'by', 'minCount', 'top'];
  const { netns: own, object } = allowNetns ? optionsWithNetns(options, keys) : withoutNetns(options, keys);
  const request = validateReadOptions(own ?? netns, object);
  const by = expectOneOf(object.by, 'options.by', GROUP_BY);
  const minCount = object.minCount === undefined ? 1 : expectInteger(object.minCount, 'options.minCount', 0, Number.MAX_SAFE_INTEGER);
  const top = object.top === undefined ? 0 : expectInteger(object.top, 'options.top', 1, 2 ** 32 - 1);
  return addon()
    .countConnections({ ...request, by, minCount, top })
    .catch((error: unknown) => {
      throw convertError(error, request, 'countConnections');
    })
    .then((result) => {
      checkStrict(result, request);
      const counts = result.keys.map((key, i) => ({ key, count: result.counts[i] ?? 0 }));
      Object.defineProperty(counts, 'scan', { value: summaryOf(result, result.matched), enumerable: false });
      return counts as ConnectionCounts;
    });
}

function withoutNetns(options: unknown, allowed: readonly string[]): { netns: undefined; object: Fields } {
  const object = expectObject(options ?? {}, 'options');
  rejectUnknownKeys(object, new Set(allowed), 'options');
  return { netns: undefined, object };
}

/**
 * Reads the connection table in batches of plain objects, without a handle.
 *
 * @throws {TypeError|RangeError} at once for bad options, naming the option.
 * Iteration rejects with an IpvsError (`ENOENT`: IPVS not loaded, no such `path` or no such
 * `netns`; `EACCES`, `EPERM`: entering the namespace needs CAP_SYS_ADMIN) or, with `strict`,
 * a ConnectionParseError.
 */
export function streamConnections(options: ConnectionStreamOptions & ConnectionNamespaceOption = {}): ConnectionStream {
  return streamConnectionsIn(undefined, options, true);
}

/**
 * Reads the whole connection table into a columnar ConnectionTable, without a handle.
 *
 * @throws {TypeError|RangeError} for bad options (synchronously, before any I/O).
 * Rejects with an IpvsError (`ENOENT`: IPVS not loaded, no such `path` or no such `netns`;
 * `EACCES`, `EPERM`: entering the namespace needs CAP_SYS_ADMIN; `EIO` and other read errors)
 * or, with `strict`, a ConnectionParseError.
 */
export function readConnectionTable(options: ConnectionReadOptions & ConnectionNamespaceOption = {}): Promise<ConnectionTable> {
  return readConnectionTableIn(undefined, options, true);
}

/**
 * Counts connections per client, destination, service or state entirely in native code,
 * without a handle: no object is created per connection. For example the clients with more
 * than 100 established connections: `{ by: 'client', state: 'ESTABLISHED', minCount: 101 }`.
 *
 * @throws {TypeError|RangeError} for bad options (synchronously, before any I/O).
 * Rejects with an IpvsError (`ENOENT`: IPVS not loaded, no such `path` or no such `netns`;
 * `EACCES`, `EPERM`: entering the namespace needs CAP_SYS_ADMIN) or, with `strict`, a
 * ConnectionParseError.
 */
export function countConnections(options: CountConnectionsOptions & ConnectionNamespaceOption): Promise<ConnectionCounts> {
  return countConnectionsIn(undefined, options, true);
}
