// The rows of the table-sized families, shared by all of them for one sample: every service,
// every destination and node_exporter's backends, each with its label set encoded once as
// bytes (`{a="x",b="y"}`, and without the closing brace for a family that appends a label of
// its own). Written straight from the packed records (lib/table-view.ts) into one buffer per
// kind of row: a scrape builds no Service or Destination objects and no string per row, and
// yields to the event loop whenever a slice has run for a few milliseconds.
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

  /** Empties the rows for another reading, keeping the buffers. */
  clear(): void {
    this.count = 0;
    this.#length = 0;
    this.#closed = undefined;
    this.#open = undefined;
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

/** The rows of `sample` (undefined when its reading failed), built once per sample. */
export function tableSeries(sample: IpvsSample): Promise<TableSeries | undefined> {
  let series = cache.get(sample);
  if (!series) {
    series = sample.table ? build(sample.table) : Promise.resolve(undefined);
    cache.set(sample, series);
  }
  return series;
}

const QUOTE = 0x22;
const DOT = 0x2e;

/** Writes destination `d`'s address (16 bytes at bytes[at]) as Destination.address reads (IPv4 in place). */
function writeAddress(rows: LabelRows, to: number, view: TableView, bytes: Uint8Array, at: number, af: number, d: number): number {
  if (af === AF_INET6) return rows.write(to, escapeLabelValue(view.destinationAddress(d, af)));
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

const REAL_ADDRESS = Buffer.from(',real_address="');
const REAL_PORT = Buffer.from('",real_port="');
const REMOTE_PORT = Buffer.from('",remote_port="');
const CLOSE_QUOTE = Buffer.from('"');

async function build(view: TableView): Promise<TableSeries> {
  const services = rowsFor('services', view.serviceCount, 80);
  const destinations = rowsFor('destinations', view.destinationCount, 120);
  const backendLabels = rowsFor('backends', view.destinationCount, 140);
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
      serviceText = `{family="${family}",protocol="",address="",port="",fwmark="${fwmark}"`;
      backendHead = Buffer.from('{local_address="",local_port="0",remote_address="');
      backendTail = Buffer.from(`",proto="FWM",local_mark="${fwmark}"`);
    } else {
      const address = escapeLabelValue(view.serviceAddress(s));
      const protocol = escapeLabelValue(view.protocolName(s));
      const port = view.port(s);
      serviceText = `{family="${family}",protocol="${protocol}",address="${address}",port="${port}",fwmark=""`;
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
      to = put(destinations, to, REAL_ADDRESS);
      to = writeAddress(destinations, to, view, bytes, addressAt, daf, d);
      to = put(destinations, to, REAL_PORT);
      to = writePort(destinations, to, port);
      destinations.endRow(put(destinations, to, CLOSE_QUOTE));

      const rowStart = backendLabels.length;
      to = put(backendLabels, rowStart, backendHead);
      to = writeAddress(backendLabels, to, view, bytes, addressAt, daf, d);
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
          merged = true;
        } else {
          fwmarkBackends.set(key, backendLabels.count);
        }
      }
      if (!merged) {
        const row = backendLabels.count;
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
    view, serviceLabels: unchanged('services', services), destinationLabels: unchanged('destinations', destinations),
    backends: { labels: unchanged('backends', backendLabels), activeConnections: active, inactiveConnections: inactive, weight },
  };
}

/**
 * The previous reading's rows when this one's are the same bytes (the usual case: a table's
 * services and servers change far less often than it is scraped), so that their views, made
 * once, serve scrape after scrape instead of becoming garbage each time.
 */
const previousRows = new Map<string, LabelRows>();

/**
 * Rows built and then found the same as the previous reading's (so never handed out): the
 * next reading writes into them, rather than allocating megabytes of buffers per scrape.
 */
const spareRows = new Map<string, LabelRows>();

function rowsFor(kind: string, rows: number, bytesPerRow: number): LabelRows {
  const spare = spareRows.get(kind);
  if (!spare) return new LabelRows(rows, bytesPerRow);
  spareRows.delete(kind);
  spare.clear();
  return spare;
}

function unchanged(kind: string, rows: LabelRows): LabelRows {
  const previous = previousRows.get(kind);
  if (previous && previous.count === rows.count && previous.length === rows.length &&
    previous.bytes.compare(rows.bytes, 0, rows.length, 0, previous.length) === 0) {
    spareRows.set(kind, rows);
    return previous;
  }
  previousRows.set(kind, rows);
  return rows;
}
