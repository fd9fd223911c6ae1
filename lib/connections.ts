// The IPVS connection table (/proc/net/ip_vs_conn and ip_vs_conn_sync), read and parsed in
// native code on the thread pool: as batches of objects, as a columnar table, or as counts
// aggregated natively without creating an object per connection.
import net from 'node:net';
import { constants as osConstants } from 'node:os';

import { decodeAddress } from './address';
import { fromNativeError, IpvsError } from './errors';
import { nativeAddon } from './native';

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
  /** Connections per batch, 1 to 1,000,000 (default 2000). */
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

const READ_OPTION_KEYS = ['sync', 'path', 'strict', 'state', 'service'];
const SERVICE_KEYS = ['protocol', 'address', 'port'];
const GROUP_BY: readonly ConnectionGroupBy[] = ['client', 'destination', 'service', 'state'];
// Small enough that turning a batch into objects keeps the event loop responsive.
const DEFAULT_BATCH_SIZE = 2000;
const MAX_BATCH_SIZE = 1_000_000;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

function checkKeys(object: object, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) throw new TypeError(`${where}: unknown option '${key}' (allowed: ${allowed.join(', ')})`);
  }
}

function checkObject(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${name} must be an object, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

function checkBoolean(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${describe(value)}`);
  return value;
}

function checkInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${describe(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

const STATE_NAME = /^[A-Za-z0-9_!?]{1,32}$/;
const PROTOCOL_NAME = /^[A-Za-z][A-Za-z0-9_]{0,15}$/;

function checkNetnsPath(netnsPath: unknown): string {
  if (netnsPath === undefined) return '';
  if (typeof netnsPath !== 'string' || netnsPath.length === 0 || netnsPath.includes('\0')) {
    throw new TypeError(`netnsPath must be a non-empty string or undefined, got ${describe(netnsPath)}`);
  }
  return netnsPath;
}

function validateReadOptions(netnsPath: unknown, options: Record<string, unknown>, where: string): NativeRequest {
  const request: NativeRequest = {
    netns: checkNetnsPath(netnsPath),
    path: '',
    sync: checkBoolean(options.sync, 'sync'),
    strict: checkBoolean(options.strict, 'strict'),
  };
  if (options.path !== undefined) {
    if (typeof options.path !== 'string' || options.path.length === 0 || options.path.includes('\0')) {
      throw new TypeError(`path must be a non-empty file path, got ${describe(options.path)}`);
    }
    request.path = options.path;
  }
  if (options.state !== undefined) {
    const states = typeof options.state === 'string' ? [options.state] : options.state;
    if (!Array.isArray(states) || states.length === 0) {
      throw new TypeError(`state must be a state name or a non-empty array of them, got ${describe(options.state)}`);
    }
    request.states = states.map((state: unknown, i) => {
      if (typeof state !== 'string') throw new TypeError(`state[${i}] must be a string, got ${describe(state)}`);
      if (!STATE_NAME.test(state)) throw new RangeError(`state: '${state}' is not a connection state name`);
      return state.toUpperCase();
    });
  }
  if (options.service !== undefined) {
    const service = checkObject(options.service, 'service');
    checkKeys(service, SERVICE_KEYS, `${where} service`);
    if (service.protocol !== undefined) {
      if (typeof service.protocol !== 'string') {
        throw new TypeError(`service.protocol must be a string, got ${describe(service.protocol)}`);
      }
      if (!PROTOCOL_NAME.test(service.protocol)) {
        throw new RangeError(`service.protocol: '${service.protocol}' is not a protocol name (tcp, udp, sctp, ...)`);
      }
      request.serviceProtocol = service.protocol;
    }
    if (service.address !== undefined) {
      if (typeof service.address !== 'string') {
        throw new TypeError(`service.address must be a string, got ${describe(service.address)}`);
      }
      if (net.isIP(service.address) === 0) {
        throw new RangeError(`service.address: '${service.address}' is not an IPv4 or IPv6 address`);
      }
      request.serviceAddress = service.address;
    }
    if (service.port !== undefined) request.servicePort = checkInteger(service.port, 'service.port', 0, 65535);
  }
  return request;
}

// ----- Conversions --------------------------------------------------------------------

function connectionAt(c: ConnectionColumns, i: number): Connection {
  const connection: Connection = {
    protocol: (c.protocols[c.protocol[i] ?? 0] ?? '').toLowerCase(),
    clientAddress: decodeAddress(c.clientAddress.subarray(i * 16, i * 16 + 16), c.clientFamily[i] === 6 ? 'inet6' : 'inet'),
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

// ENOENT on the kernel's own table means the ip_vs module (which creates it) is not loaded.
function convertError(error: unknown, request: NativeRequest, operation: string): Error {
  const errno = (error as { errno?: unknown } | null)?.errno;
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

  /** @internal */
  constructor(columns: ConnectionColumns, length: number, scan: ConnectionScanSummary) {
    this.columns = columns;
    this.length = length;
    this.scan = scan;
  }

  /** The connection at `index` (negative counts from the end), or undefined out of range. */
  at(index: number): Connection | undefined {
    const i = Math.trunc(index) < 0 ? this.length + Math.trunc(index) : Math.trunc(index);
    if (!(i >= 0 && i < this.length)) return undefined;
    return connectionAt(this.columns, i);
  }

  *[Symbol.iterator](): Iterator<Connection> {
    for (let i = 0; i < this.length; i++) yield connectionAt(this.columns, i);
  }
}

/**
 * Batches of connections read as the table is scanned; only one batch is held at a time.
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
    let matched = 0;
    try {
      for (;;) {
        let batch: NativeBatch;
        try {
          batch = await stream.read(this.#batchSize);
        } catch (error) {
          throw convertError(error, this.#request, 'connections');
        }
        matched += batch.length;
        this.#summary = summaryOf(batch, matched);
        checkStrict(batch, this.#request);
        if (batch.length > 0) {
          const connections = new Array<Connection>(batch.length);
          for (let i = 0; i < batch.length; i++) connections[i] = connectionAt(batch, i);
          yield connections;
        }
        if (batch.done) return;
      }
    } finally {
      stream.close();
    }
  }
}

/**
 * Reads the connection table in batches of plain objects.
 *
 * @param netnsPath network namespace to read (e.g. `/run/netns/lb`); undefined = the caller's.
 * @throws TypeError / RangeError at once for bad options (naming the option).
 * Iteration rejects with an IpvsError (`ENOENT`: IPVS not loaded or no such `path`; `EACCES`,
 * `EPERM`: entering the namespace needs CAP_SYS_ADMIN) or, with `strict`, a ConnectionParseError.
 */
export function streamConnections(netnsPath: string | undefined, options: ConnectionStreamOptions = {}): ConnectionStream {
  const object = checkObject(options, 'options');
  checkKeys(object, [...READ_OPTION_KEYS, 'batchSize'], 'connections()');
  const request = validateReadOptions(netnsPath, object, 'connections()');
  const batchSize =
    object.batchSize === undefined ? DEFAULT_BATCH_SIZE : checkInteger(object.batchSize, 'batchSize', 1, MAX_BATCH_SIZE);
  return new ConnectionStream(request, batchSize);
}

/**
 * Reads the whole connection table into a columnar ConnectionTable.
 *
 * @param netnsPath network namespace to read; undefined = the caller's.
 * @throws TypeError / RangeError for bad options (synchronously, before any I/O).
 * Rejects with an IpvsError (`ENOENT`: IPVS not loaded or no such `path`; `EACCES`, `EPERM`:
 * entering the namespace needs CAP_SYS_ADMIN; `EIO` and other read errors) or, with
 * `strict`, a ConnectionParseError.
 */
export function readConnectionTable(netnsPath: string | undefined, options: ConnectionReadOptions = {}): Promise<ConnectionTable> {
  const object = checkObject(options, 'options');
  checkKeys(object, READ_OPTION_KEYS, 'connectionTable()');
  const request = validateReadOptions(netnsPath, object, 'connectionTable()');
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

/**
 * Counts connections per client, destination, service or state entirely in native code:
 * no object is created per connection. For example the clients with more than 100
 * established connections: `{ by: 'client', state: 'ESTABLISHED', minCount: 101 }`.
 *
 * @param netnsPath network namespace to read; undefined = the caller's.
 * @throws TypeError / RangeError for bad options (synchronously, before any I/O).
 * Rejects with an IpvsError (`ENOENT`: IPVS not loaded or no such `path`; `EACCES`, `EPERM`:
 * entering the namespace needs CAP_SYS_ADMIN) or, with `strict`, a ConnectionParseError.
 */
export function countConnections(netnsPath: string | undefined, options: CountConnectionsOptions): Promise<ConnectionCounts> {
  const object = checkObject(options, 'options');
  checkKeys(object, [...READ_OPTION_KEYS, 'by', 'minCount', 'top'], 'countConnections()');
  const request = validateReadOptions(netnsPath, object, 'countConnections()');
  if (typeof object.by !== 'string') throw new TypeError(`by must be one of ${GROUP_BY.join(', ')}, got ${describe(object.by)}`);
  if (!GROUP_BY.includes(object.by as ConnectionGroupBy)) {
    throw new RangeError(`by must be one of ${GROUP_BY.join(', ')}, got '${object.by}'`);
  }
  const by = object.by as ConnectionGroupBy;
  const minCount = object.minCount === undefined ? 1 : checkInteger(object.minCount, 'minCount', 0, Number.MAX_SAFE_INTEGER);
  const top = object.top === undefined ? 0 : checkInteger(object.top, 'top', 1, 2 ** 32 - 1);
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
