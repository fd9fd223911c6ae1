// The rows of the table-sized families, shared by all of them for one sample: every service,
// every destination and node_exporter's backends, each with its label set encoded once as
// bytes (`{a="x",b="y"}`, and without the closing brace for a family that appends a label of
// its own). Written straight from the packed records (lib/table-view.ts) into one buffer per
// kind of row: a scrape builds no Service or Destination objects and no string per row, and
// yields to the event loop whenever a slice has run for a few milliseconds. A reading whose
// services and destinations are those of the last one built (the usual case) writes no label
// at all: it reuses those rows and reads only the backends' values.
import { AF_INET6 } from '../constants';
import { TableView, writeUint } from '../table-view';
import type { IpvsSample } from './sampler';

/**
 * Label sets, one per row, written back to back into one buffer, each closed with its `}`:
 * row i is bytes[start(i), ends[i]). {@link closed} and {@link open} (without the brace, for a
 * family that adds a label) are views of it, made once per sample and shared by every family:
 * a line is then two copies, the metric name and the labels.
 */
export class LabelRows {
  bytes: Buffer;
  ends: Uint32Array;
  count = 0;
  #length = 0;
  #closed: Uint8Array[] | undefined;
  #open: Uint8Array[] | undefined;

  constructor(rows: number, bytesPerRow: number) {
    this.bytes = Buffer.allocUnsafe(Math.max(256, rows * bytesPerRow));
    this.ends = new Uint32Array(Math.max(1, rows));
  }

  start(row: number): number {
    return row === 0 ? 0 : this.ends[row - 1]!;
  }

  /** Row `i`, `{…}`: a view, made on first use (once the rows are complete) and kept. */
  closed(i: number): Uint8Array {
    const views = (this.#closed ??= new Array<Uint8Array>(this.count));
    return (views[i] ??= this.#view(this.start(i), this.ends[i]!));
  }

  // A plain Uint8Array: cheaper to make than Buffer.subarray's FastBuffer.
  #view(start: number, end: number): Uint8Array {
    return new Uint8Array(this.bytes.buffer, this.bytes.byteOffset + start, end - start);
  }

  /** Every row, `{…}`, as views (made once, kept): what the exposition's loops copy from. */
  closedRows(): Uint8Array[] {
    for (let i = 0; i < this.count; i++) this.closed(i);
    return this.#closed ?? [];
  }

  /** Every row without its closing brace, `{…`. */
  openRows(): Uint8Array[] {
    for (let i = 0; i < this.count; i++) this.open(i);
    return this.#open ?? [];
  }

  /** Row `i` without its closing brace, `{…`. */
  open(i: number): Uint8Array {
    const views = (this.#open ??= new Array<Uint8Array>(this.count));
    return (views[i] ??= this.#view(this.start(i), this.ends[i]! - 1));
  }

  /** Makes room for `bytes` more bytes at `at`, in the row being written (kept); returns the buffer. */
  room(at: number, bytes: number): Buffer {
    if (at + bytes > this.bytes.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, at + bytes));
      this.bytes.copy(bigger, 0, 0, at);
      this.bytes = bigger;
    }
    return this.bytes;
  }

  get length(): number {
    return this.#length;
  }

  /** Ends the row being written at `end` (a position in `bytes`), closing it with `}`. */
  endRow(end: number): void {
    if (this.count === this.ends.length) {
      const more = new Uint32Array(this.ends.length * 2);
      more.set(this.ends);
      this.ends = more;
    }
    this.room(end, 1)[end++] = 0x7d;
    this.#length = end;
    this.ends[this.count++] = end;
  }

  /** Appends `text` (UTF-8) to the row being written; returns the position after it. */
  write(at: number, text: string): number {
    return at + this.room(at, text.length * 3).write(text, at, 'utf8');
  }
}

/** node_exporter's backends: one per destination, summed where two share their labels. */
export interface Backends {
  labels: LabelRows;
  activeConnections: Float64Array;
  inactiveConnections: Float64Array;
  weight: Float64Array;
}

export interface TableSeries {
  view: TableView;
  serviceLabels: LabelRows;
  /** One per destination, in the view's order. */
  destinationLabels: LabelRows;
  backends: Backends;
  /** The backend row of each destination (fwmark services' families may share one). */
  backendOf: Uint32Array;
}

/** How long one slice of building may hold the event loop, ms. */
const SLICE_MS = 4;
/** Rows between two looks at the clock. */
const ROWS_PER_CHECK = 64;

export function escapeLabelValue(value: string): string {
  return /[\\"\n]/.test(value) ? value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : value;
}

/** `{a="x",b="y"` (no closing brace) for `names` of `labels`. */
export function openLabels(labels: Record<string, string>, names: readonly string[]): string {
  let text = '';
  for (let i = 0; i < names.length; i++) text += `${i === 0 ? '{' : ','}${names[i]}="${escapeLabelValue(labels[names[i]!] ?? '')}"`;
  return text;
}

export const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const cache = new WeakMap<IpvsSample, Promise<TableSeries | undefined>>();

/** The last rows built: the next reading reuses their label sets when its table has the same rows. */
let latest: TableSeries | undefined;

/** The rows of `sample` (undefined when its reading failed), built once per sample. */
export function tableSeries(sample: IpvsSample): Promise<TableSeries | undefined> {
  let series = cache.get(sample);
  if (!series) {
    const view = sample.table;
    series = !view ? Promise.resolve(undefined)
      : latest && sameRows(latest.view, view) ? Promise.resolve(withValues(latest, view))
      : build(view).then((built) => (latest = built));
    cache.set(sample, series);
  }
  return series;
}

/**
 * Whether two readings have the same services and destinations in the same order: the
 * words their labels are written from (which fields are present, family, fwmark, protocol,
 * address, port) are equal, so their label rows would be the same bytes. The usual case: a
 * table's services and servers change far less often than it is scraped. Reads some 10
 * words per row, without allocating.
 */
function sameRows(before: TableView, view: TableView): boolean {
  if (before.serviceCount !== view.serviceCount || before.destinationCount !== view.destinationCount) return false;
  const { svc: S, dst: D, svcWords, dstWords } = view.L;
  const a = before.services;
  const b = view.services;
  for (let base = 0; base < b.length; base += svcWords) {
    if (a[base] !== b[base] || a[base + S.af] !== b[base + S.af] || a[base + S.fwmark] !== b[base + S.fwmark] ||
      a[base + S.protocol] !== b[base + S.protocol] || a[base + S.port] !== b[base + S.port] ||
      a[base + S.destinationCount] !== b[base + S.destinationCount] || a[base + S.address] !== b[base + S.address] ||
      a[base + S.address + 1] !== b[base + S.address + 1] || a[base + S.address + 2] !== b[base + S.address + 2] ||
      a[base + S.address + 3] !== b[base + S.address + 3]) return false;
  }
  const c = before.destinations;
  const d = view.destinations;
  for (let base = 0; base < d.length; base += dstWords) {
    if (c[base] !== d[base] || c[base + D.af] !== d[base + D.af] || c[base + D.port] !== d[base + D.port] ||
      c[base + D.address] !== d[base + D.address] || c[base + D.address + 1] !== d[base + D.address + 1] ||
      c[base + D.address + 2] !== d[base + D.address + 2] || c[base + D.address + 3] !== d[base + D.address + 3]) return false;
  }
  return true;
}

/** `series`' label rows with the backends' values of `view` (which has the same rows). */
function withValues(series: TableSeries, view: TableView): TableSeries {
  const rows = series.backends.labels.count;
  const active = new Float64Array(rows);
  const inactive = new Float64Array(rows);
  const weight = new Float64Array(rows);
  const L = view.L.dst;
  const stride = view.L.dstWords;
  const words = view.destinations;
  const backendOf = series.backendOf;
  for (let d = 0; d < view.destinationCount; d++) {
    const base = d * stride;
    const row = backendOf[d]!;
    active[row] = active[row]! + words[base + L.activeConnections]!;
    inactive[row] = inactive[row]! + words[base + L.inactiveConnections]!;
    weight[row] = weight[row]! + words[base + L.weight]!;
  }
  return {
    view, serviceLabels: series.serviceLabels, destinationLabels: series.destinationLabels, backendOf,
    backends: { labels: series.backends.labels, activeConnections: active, inactiveConnections: inactive, weight },
  };
}

const QUOTE = 0x22;
const DOT = 0x2e;

/**
 * Writes destination `d`'s address (16 bytes at bytes[at]) as Destination.address reads (IPv4
 * in place); `bracketed` puts an IPv6 one in brackets, as hostPort writes it before a port.
 */
function writeAddress(rows: LabelRows, to: number, view: TableView, bytes: Uint8Array, at: number, af: number, d: number,
  bracketed: boolean): number {
  if (af === AF_INET6) {
    const address = escapeLabelValue(view.destinationAddress(d, af));
    return rows.write(to, bracketed ? `[${address}]` : address);
  }
  const out = rows.room(to, 16);
  to = writeUint(out, to, bytes[at]!);
  out[to++] = DOT;
  to = writeUint(out, to, bytes[at + 1]!);
  out[to++] = DOT;
  to = writeUint(out, to, bytes[at + 2]!);
  out[to++] = DOT;
  return writeUint(out, to, bytes[at + 3]!);
}

/** Copies the pre-encoded `part` into the row at `to`. */
function put(rows: LabelRows, to: number, part: Uint8Array): number {
  rows.room(to, part.length).set(part, to);
  return to + part.length;
}

function writePort(rows: LabelRows, to: number, port: number): number {
  return writeUint(rows.room(to, 8), to, port);
}

const SERVER = Buffer.from(',server="');
const COLON = Buffer.from(':');
const REMOTE_PORT = Buffer.from('",remote_port="');
const CLOSE_QUOTE = Buffer.from('"');

async function build(view: TableView): Promise<TableSeries> {
  const services = new LabelRows(view.serviceCount, 80);
  const destinations = new LabelRows(view.destinationCount, 120);
  const backendLabels = new LabelRows(view.destinationCount, 140);
  const backendOf = new Uint32Array(view.destinationCount);
  const active = new Float64Array(view.destinationCount);
  const inactive = new Float64Array(view.destinationCount);
  const weight = new Float64Array(view.destinationCount);
  // Backends share labels only across the address families of one fwmark: only those are merged.
  const fwmarkBackends = new Map<string, number>();
  const L = view.L.dst;
  const stride = view.L.dstWords;
  const words = view.destinations;
  const bytes = view.destinationBytes;
  let sliceStart = performance.now();
  let sinceCheck = 0;
  for (let s = 0; s < view.serviceCount; s++) {
    const af = view.serviceAf(s);
    const fwmark = view.fwmark(s);
    const family = af === AF_INET6 ? 'inet6' : 'inet';
    let serviceText: string;
    let backendHead: Buffer;
    let backendTail: Buffer;
    if (fwmark !== 0) {
      serviceText = `{service="fwmark ${fwmark}${af === AF_INET6 ? ' inet6' : ''}"`;
      backendHead = Buffer.from('{local_address="",local_port="0",remote_address="');
      backendTail = Buffer.from(`",proto="FWM",local_mark="${fwmark}"`);
    } else {
      const address = escapeLabelValue(view.serviceAddress(s));
      const protocol = escapeLabelValue(view.protocolName(s));
      const port = view.port(s);
      serviceText = `{service="${protocol} ${af === AF_INET6 ? `[${address}]` : address}:${port}"`;
      backendHead = Buffer.from(`{local_address="${address}",local_port="${port}",remote_address="`);
      backendTail = Buffer.from(`",proto="${protocol.toUpperCase()}",local_mark=""`);
    }
    const serviceBytes = Buffer.from(serviceText, 'utf8');
    services.endRow(put(services, services.length, serviceBytes));
    const end = view.firstDestination[s + 1]!;
    for (let d = view.firstDestination[s]!; d < end; d++) {
      const base = d * stride;
      const daf = view.destinationAf(d, af);
      const addressAt = (base + L.address) * 4;
      const port = words[base + L.port]!;

      let to = put(destinations, destinations.length, serviceBytes);
      to = put(destinations, to, SERVER);
      to = writeAddress(destinations, to, view, bytes, addressAt, daf, d, true);
      to = put(destinations, to, COLON);
      to = writePort(destinations, to, port);
      destinations.endRow(put(destinations, to, CLOSE_QUOTE));

      const rowStart = backendLabels.length;
      to = put(backendLabels, rowStart, backendHead);
      to = writeAddress(backendLabels, to, view, bytes, addressAt, daf, d, false);
      to = put(backendLabels, to, REMOTE_PORT);
      to = writePort(backendLabels, to, port);
      to = put(backendLabels, to, backendTail);
      const a = words[base + L.activeConnections]!;
      const i = words[base + L.inactiveConnections]!;
      const w = words[base + L.weight]!;
      let merged = false;
      if (fwmark !== 0) {
        const key = backendLabels.bytes.toString('utf8', rowStart, to);
        const row = fwmarkBackends.get(key);
        if (row !== undefined) {
          active[row] = active[row]! + a;
          inactive[row] = inactive[row]! + i;
          weight[row] = weight[row]! + w;
          backendOf[d] = row;
          merged = true;
        } else {
          fwmarkBackends.set(key, backendLabels.count);
        }
      }
      if (!merged) {
        const row = backendLabels.count;
        backendOf[d] = row;
        active[row] = a;
        inactive[row] = i;
        weight[row] = w;
        backendLabels.endRow(to);
      }
      if (++sinceCheck === ROWS_PER_CHECK) {
        sinceCheck = 0;
        if (performance.now() - sliceStart >= SLICE_MS) {
          await nextTick();
          sliceStart = performance.now();
        }
      }
    }
  }
  return {
    view, serviceLabels: services, destinationLabels: destinations, backendOf,
    backends: { labels: backendLabels, activeConnections: active, inactiveConnections: inactive, weight },
  };
}
