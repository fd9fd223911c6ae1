// A prom-client metric whose series are rebuilt from the shared sample on every scrape.
// Rebuilding (rather than updating) is what makes a deleted service's series disappear.
//
// It is a custom metric object (registry.registerMetric) rather than a Counter or Gauge with
// a collect(): a 1,000 × 10 table has some 200,000 series, and prom-client's per-series
// label hashing and formatting would cost seconds per scrape. Here each label set is
// formatted once per reading and shared by every family, and get() still serves the
// structured values that registry.getMetricsAsJSON() needs.
import type { MetricObjectWithValues, MetricValue, Registry } from 'prom-client';

import type { IpvsSample, IpvsSampler } from './sampler';

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
}

// `{a="x",b="y"}`, kept on the label object itself (a symbol key, invisible to prom-client
// and JSON): label objects are shared by the families of one sample, so each is formatted
// once. (A WeakMap of 10,000s of entries made garbage collection the main cost.)
const FORMATTED = Symbol('formatted labels');

function escapeLabelValue(value: string): string {
  return /[\\"\n]/.test(value) ? value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : value;
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
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
   * yielding to the event loop between them: the fast path of the server's /metrics. Pass
   * the scrape's sample so that every family of one scrape shows the same reading.
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

  reset(): void {
    this.#last = { labels: [], values: [] };
  }
}

/** Registers `spec` on `registry`; every scrape awaits the sampler's shared reading. */
export function registerSampledMetric<L extends string>(registry: Registry, sampler: IpvsSampler, spec: SampledMetricSpec<L>): void {
  registry.registerMetric(new SampledMetric(sampler, spec) as never);
}
