// Writes a registry in the Prometheus text format, as registry.metrics() does, but streams
// the table-sized families in slices so that a 10,000-destination scrape never holds the
// event loop for long, and reads the table once for all of them.
import type { Registry } from 'prom-client';

import { SampledMetric } from './sampled-metric';
import type { IpvsSample, IpvsSampler } from './sampler';

/** The exposition text in pieces; their concatenation equals `await registry.metrics()`. */
export async function* exposition(registry: Registry): AsyncGenerator<string> {
  const metrics = registry.getMetricsAsArray() as unknown[] as Array<SampledMetric<string> | { name: string }>;
  const samples = new Map<IpvsSampler, Promise<IpvsSample>>();
  for (const metric of metrics) {
    if (metric instanceof SampledMetric && !samples.has(metric.sampler)) samples.set(metric.sampler, metric.sampler.sample());
  }
  let separator = '';
  for (const metric of metrics) {
    if (metric instanceof SampledMetric) {
      const sample = await samples.get(metric.sampler)!;
      for await (const piece of metric.lines(sample)) {
        yield separator + piece;
        separator = '';
      }
    } else {
      yield separator + await registry.getSingleMetricAsString(metric.name);
    }
    separator = '\n\n';
  }
  yield '\n';
}
