// Writes a registry in the Prometheus text format, byte for byte as registry.metrics() does,
// but reads the table once for all families, writes the table-sized ones as bytes from label
// sets shared by all of them, and hands the text to a sink in chunks, yielding to the event
// loop between them, so that a 10,000-destination scrape never holds the loop for long. (A
// sink rather than an async generator: a chain of generators allocated some kilobytes of
// promises per chunk, and the garbage collector's pauses were the event loop's longest.)
import type { Registry } from 'prom-client';

import { ExpositionWriter } from './exposition-writer';
import { SampledMetric } from './sampled-metric';
import type { IpvsSample, IpvsSampler } from './sampler';
import { nextTick, tableSeries } from './table-series';

/**
 * Receives the text a few chunks at a time, in order; rendering goes on once the promise
 * resolves (the server's waits for the socket to take them).
 */
export type ExpositionSink = (chunks: Buffer[]) => Promise<void> | void;

/**
 * Writes the exposition text into `sink` in chunks (their concatenation equals
 * `await registry.metrics()`), yielding to the event loop after each hand-over. Rejects with
 * what `sink` rejects with, which stops it.
 */
export async function writeExposition(registry: Registry, sink: ExpositionSink): Promise<void> {
  const metrics = registry.getMetricsAsArray() as unknown[] as Array<SampledMetric<string> | { name: string }>;
  const samples = new Map<IpvsSampler, Promise<IpvsSample>>();
  for (const metric of metrics) {
    if (metric instanceof SampledMetric && !samples.has(metric.sampler)) samples.set(metric.sampler, metric.sampler.sample());
  }
  const writer = new ExpositionWriter();
  // Filling a chunk and sending it (a system call of 128 KiB) are separate turns of the event
  // loop, so that neither waits for the other.
  const flush = async (): Promise<void> => {
    const chunks = writer.take();
    await nextTick();
    await sink(chunks);
    await nextTick();
  };
  // registry.metrics() joins the families with a blank line and ends with a newline: each
  // family is written here ending in its newline, with a newline before every family but the first.
  let first = true;
  for (const metric of metrics) {
    if (!first) writer.text('\n');
    first = false;
    if (metric instanceof SampledMetric && metric.fromTable) {
      await metric.render(await tableSeries(await samples.get(metric.sampler)!), writer, flush);
    } else if (metric instanceof SampledMetric) {
      const sample = await samples.get(metric.sampler)!;
      for await (const piece of metric.lines(sample)) writer.text(piece);
      writer.text('\n');
    } else {
      writer.text(`${await registry.getSingleMetricAsString(metric.name)}\n`);
    }
    if (writer.hasChunks) await flush();
  }
  const rest = writer.take(true);
  if (rest.length !== 0) await sink(rest);
}

/**
 * The whole exposition text as chunks (all rendered first, then handed out); their
 * concatenation equals `await registry.metrics()`.
 */
export async function* exposition(registry: Registry): AsyncGenerator<Buffer> {
  const chunks: Buffer[] = [];
  await writeExposition(registry, (taken) => {
    chunks.push(...taken);
  });
  yield* chunks;
}
