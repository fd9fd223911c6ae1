// A prom-client metric whose series are rebuilt from the shared sample on every scrape.
// Rebuilding (rather than updating) is what makes a deleted service's series disappear.
//
// It is a custom metric object (registry.registerMetric) rather than a Counter or Gauge with
// a collect(): a 1,000 × 10 table has some 200,000 series, and prom-client's per-series
// label hashing and formatting would cost seconds per scrape. The table-sized families say
// which rows they read (`table`), and the server's exposition writes them as bytes from label
// sets encoded once per reading and shared by every family (lib/metrics/table-series.ts);
// get() still serves the structured values that registry.getMetricsAsJSON() needs, and
// registry.metrics() renders the same text.
import type { MetricObjectWithValues, MetricValue, Registry } from 'prom-client';

import { formatValue, type ExpositionWriter } from './exposition-writer';
import type { IpvsSample, IpvsSampler } from './sampler';
import { escapeLabelValue, type LabelRows, type TableSeries } from './table-series';
import type { TableView } from '../table-view';

export type Put<L extends string> = (labels: Record<L, string>, value: number | bigint) => void;

export interface SampledMetricSpec<L extends string> {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  labelNames: readonly L[];
  /**
   * Emits the series of one sample. Returns false when the sample lacks the data (a failed
   * reading): labelled series are then dropped, an unlabelled value keeps its last reading,
   * since dropping to 0 would read as a counter reset.
   */
  fill(sample: IpvsSample, put: Put<L>): boolean;
  /**
   * For a family with a series per service, destination or backend: the same series as
   * `fill` (in the same order), read from the packed records, so that the exposition can
   * write them from the shared rows without building objects.
   */
  table?: TableFamily;
}

/**
 * Where a table family's values come from: a u64 counter of the row's stats (0 connections
 * … 9 byteRateOut, see lib/table-view.ts Counter), a number read from the records, or one of
 * the backends' sums.
 */
export type TableFamily =
  | { rows: 'services' | 'destinations'; counter: number; value?: undefined; extra?: undefined }
  | { rows: 'services' | 'destinations'; counter?: undefined; value: (view: TableView, row: number) => number; extra?: ExtraLabels }
  | { rows: 'backends'; counter?: undefined; value: 'activeConnections' | 'inactiveConnections' | 'weight'; extra?: undefined };

/**
 * Labels of the family's own, after the shared ones: their names, and a row's values in that
 * order (for a family with a line per destination, return arrays kept rather than made per row).
 */
export interface ExtraLabels {
  names: readonly string[];
  values: (view: TableView, row: number) => readonly string[];
}

// `{a="x",b="y"}`, kept on the label object itself (a symbol key, invisible to prom-client
// and JSON): label objects are shared by the families of one sample, so each is formatted
// once. (A WeakMap of 10,000s of entries made garbage collection the main cost.)
const FORMATTED = Symbol('formatted labels');


/** `text` as UTF-8 in a plain Uint8Array (not a Buffer: see ExpositionWriter.rows). */
function plainBytes(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'utf8'));
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function labelString(labels: Record<string, string>, names: readonly string[]): string {
  const holder = labels as { [FORMATTED]?: string };
  let text = holder[FORMATTED];
  if (text === undefined) {
    text = '';
    for (let i = 0; i < names.length; i++) text += `${i === 0 ? '{' : ','}${names[i]}="${escapeLabelValue(labels[names[i]!] ?? '')}"`;
    if (names.length > 0) text += '}';
    Object.defineProperty(holder, FORMATTED, { value: text, enumerable: false });
  }
  return text;
}

interface Rows<L extends string> {
  labels: Array<Record<L, string>>;
  values: number[];
}

/** Yield to the event loop after this many formatted lines. */
const LINES_PER_SLICE = 2000;

export class SampledMetric<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly aggregator = 'sum' as const;
  readonly #sampler: IpvsSampler;
  readonly #spec: SampledMetricSpec<L>;
  #last: Rows<L> = { labels: [], values: [] };
  #prefix: Uint8Array | undefined;

  constructor(sampler: IpvsSampler, spec: SampledMetricSpec<L>) {
    this.name = spec.name;
    this.help = spec.help;
    this.type = spec.type;
    this.#sampler = sampler;
    this.#spec = spec;
  }

  get sampler(): IpvsSampler {
    return this.#sampler;
  }

  async #rows(given?: IpvsSample): Promise<Rows<L>> {
    const sample = given ?? await this.#sampler.sample();
    const rows: Rows<L> = { labels: [], values: [] };
    const ok = this.#spec.fill(sample, (labels, value) => {
      rows.labels.push(labels);
      rows.values.push(Number(value));
    });
    if (!ok && this.#spec.labelNames.length === 0) return this.#last;
    this.#last = rows;
    return rows;
  }

  /** Structured values, for registry.getMetricsAsJSON(). */
  async get(): Promise<Omit<MetricObjectWithValues<MetricValue<L>>, 'collect'>> {
    const rows = await this.#rows();
    return { name: this.name, help: this.help, type: this.type as never, aggregator: this.aggregator,
      values: rows.labels.map((labels, i) => ({ labels, value: rows.values[i]! })) };
  }

  /** The same values with their label sets pre-formatted, for registry.metrics(). */
  async getForPromString(): Promise<Omit<MetricObjectWithValues<MetricValue<L>>, 'collect'>> {
    const rows = await this.#rows();
    const names = this.#spec.labelNames;
    return { name: this.name, help: this.help, type: this.type as never, aggregator: this.aggregator,
      values: rows.labels.map((labels, i) => ({ metricName: this.name + labelString(labels, names), labels: {}, value: rows.values[i]! })) as never };
  }

  /**
   * The exposition text (without a trailing newline), in slices of a few thousand lines,
   * yielding to the event loop between them: how the server's /metrics writes the families
   * that are not `table` ones. Pass the scrape's sample so that every family of one scrape
   * shows the same reading.
   */
  async *lines(sample?: IpvsSample): AsyncGenerator<string> {
    const rows = await this.#rows(sample);
    const names = this.#spec.labelNames;
    let chunk = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}`;
    for (let i = 0; i < rows.labels.length; i++) {
      chunk += `\n${this.name}${labelString(rows.labels[i]!, names)} ${formatValue(rows.values[i]!)}`;
      if ((i + 1) % LINES_PER_SLICE === 0) {
        yield chunk;
        chunk = '';
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    if (chunk) yield chunk;
  }

  /** Whether the exposition writes this family from the shared table rows (see {@link render}). */
  get fromTable(): boolean {
    return this.#spec.table !== undefined;
  }

  /**
   * Writes the family (help, type and a line per row, each ending in a newline) into
   * `writer` from the sample's shared rows (undefined when the reading failed: no series),
   * awaiting `flush` whenever a chunk is full. Only for `table` families.
   */
  async render(rows: TableSeries | undefined, writer: ExpositionWriter, flush: () => Promise<void>): Promise<void> {
    const table = this.#spec.table!;
    writer.text(`# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`);
    if (!rows) return;
    const prefix = (this.#prefix ??= plainBytes(this.name));
    const { view } = rows;
    const labels: LabelRows = table.rows === 'services' ? rows.serviceLabels
      : table.rows === 'destinations' ? rows.destinationLabels : rows.backends.labels;
    const count = labels.count;
    if (table.counter !== undefined) {
      const services = table.rows === 'services';
      const words = services ? view.services : view.destinations;
      const stride = services ? view.L.svcWords : view.L.dstWords;
      const first = (services ? view.L.svc.stats : view.L.dst.stats) + 2 * table.counter;
      const closed = labels.closedRows();
      for (let i = 0; i < count;) {
        i = writer.u64Rows(prefix, closed, words, first, stride, i, count);
        if (writer.hasChunks) await flush();
      }
      return;
    }
    let values: ArrayLike<number>;
    let suffixes: Uint8Array[] | undefined;
    if (table.rows === 'backends') {
      values = rows.backends[table.value];
    } else {
      const { value, extra } = table;
      const read = new Float64Array(count);
      for (let i = 0; i < count; i++) read[i] = value(view, i);
      values = read;
      if (extra) {
        suffixes = new Array<Uint8Array>(count);
        const byKey = new Map<string, Uint8Array>();
        for (let i = 0; i < count; i++) {
          const extraValues = extra.values(view, i);
          const key = extraValues.length === 1 ? extraValues[0]! : extraValues.join('\0');
          let suffix = byKey.get(key);
          if (!suffix) {
            let text = '';
            for (let k = 0; k < extraValues.length; k++) text += `,${extra.names[k]!}="${escapeLabelValue(extraValues[k]!)}"`;
            suffix = plainBytes(`${text}}`);
            byKey.set(key, suffix);
          }
          suffixes[i] = suffix;
        }
      }
    }
    const heads = suffixes ? labels.openRows() : labels.closedRows();
    for (let i = 0; i < count;) {
      i = writer.rows(prefix, heads, values, i, count, suffixes);
      if (writer.hasChunks) await flush();
    }
  }

  reset(): void {
    this.#last = { labels: [], values: [] };
  }
}

/** Registers `spec` on `registry`; every scrape awaits the sampler's shared reading. */
export function registerSampledMetric<L extends string>(registry: Registry, sampler: IpvsSampler, spec: SampledMetricSpec<L>): void {
  registry.registerMetric(new SampledMetric(sampler, spec) as never);
}
