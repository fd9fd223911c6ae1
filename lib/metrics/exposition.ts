// Writes a registry in the Prometheus text format, byte for byte as registry.metrics() does,
// but reads the table once for all families, writes the table-sized ones as bytes from label
// sets shared by all of them, and hands the text out in chunks, yielding to the event loop
// between them, so that a 10,000-destination scrape never holds the loop for long.
import type { Registry } from 'prom-client';

import { ExpositionWriter } from './exposition-writer';
import { SampledMetric } from './sampled-metric';
import type { IpvsSample, IpvsSampler } from './sampler';
import { nextTick, tableSeries } from './table-series';

/** The exposition text in chunks; their concatenation equals `await registry.metrics()`. */
export async function* exposition(registry: Registry): AsyncGenerator<Buffer> {
  const metrics = registry.getMetricsAsArray() as unknown[] as Array<SampledMetric<string> | { name: string }>;
  const samples = new Map<IpvsSampler, Promise<IpvsSample>>();
  for (const metric of metrics) {
    if (metric instanceof SampledMetric && !samples.has(metric.sampler)) samples.set(metric.sampler, metric.sampler.sample());
  }
  const writer = new ExpositionWriter();
  // registry.metrics() joins the families with a blank line and ends with a newline: each
  // family is written here ending in its newline, with a newline before every family but the first.
  let first = true;
  for (const metric of metrics) {
    if (!first) writer.text('\n');
    first = false;
    if (metric instanceof SampledMetric && metric.fromTable) {
      const rows = await tableSeries(await samples.get(metric.sampler)!);
      for await (const chunks of metric.render(rows, writer)) yield* chunks;
    } else if (metric instanceof SampledMetric) {
      const sample = await samples.get(metric.sampler)!;
      for await (const piece of metric.lines(sample)) writer.text(piece);
      writer.text('\n');
    } else {
      writer.text(`${await registry.getSingleMetricAsString(metric.name)}\n`);
    }
    if (writer.hasChunks) {
      yield* writer.take();
      await nextTick();
    }
  }
  yield* writer.take(true);
}
