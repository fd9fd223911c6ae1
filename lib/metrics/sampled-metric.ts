// A prom-client metric whose series are rebuilt from the shared sample on every scrape.
// Rebuilding (rather than updating) is what makes a deleted service's series disappear.
import { Counter, Gauge, type Registry } from 'prom-client';

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

/** Registers `spec` on `registry`; every collect() awaits the sampler's shared reading. */
export function registerSampledMetric<L extends string>(registry: Registry, sampler: IpvsSampler, spec: SampledMetricSpec<L>): void {
  const labelNames = spec.labelNames as L[];
  async function collect(this: Counter<L> | Gauge<L>): Promise<void> {
    const sample = await sampler.sample();
    const rows: Array<[Record<L, string>, number]> = [];
    const ok = spec.fill(sample, (labels, value) => rows.push([labels, Number(value)]));
    if (!ok && labelNames.length === 0) return;
    // Filled synchronously after the await: a concurrent scrape cannot interleave with it.
    this.reset();
    if (this instanceof Counter) for (const [labels, value] of rows) this.inc(labels, value);
    else for (const [labels, value] of rows) this.set(labels, value);
  }
  const config = { name: spec.name, help: spec.help, labelNames, registers: [registry], collect };
  if (spec.type === 'counter') new Counter<L>(config);
  else new Gauge<L>(config);
}
