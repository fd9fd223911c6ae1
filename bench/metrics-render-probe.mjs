// Host diagnostic for the /metrics rendering alone (no socket): renders the stand-in kernel's
// 1,000 x 10 table (bench/cli-host-fake.cjs) into a sink that recycles the chunks, N times after
// one warm-up. Run under callgrind twice with different N and subtract, for instructions per
// scrape that do not depend on the host's load:
//
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null node -r ./bench/cli-host-fake.cjs bench/metrics-render-probe.mjs 1
//   node -r ./bench/cli-host-fake.cjs bench/metrics-render-probe.mjs 20      (times, for a look)
//
// --moving: the counters of every row change between renders (as under traffic).
import { performance } from 'node:perf_hooks';

import { Ipvs } from '../dist/index.js';
import { createMetricsRegistry } from '../dist/metrics/index.js';
import { writeExposition } from '../dist/metrics/exposition.js';
import { recycleChunk } from '../dist/metrics/exposition-writer.js';

const count = Number(process.argv[2] ?? 10);
const moving = process.argv.includes('--moving');
const ipvs = await Ipvs.open();
const { registry, sampler } = createMetricsRegistry({ ipvs });

/**
 * Every counter and rate of every service and destination moved, as under traffic: the stand-in
 * kernel hands out the same arrays on every listing, so the next reading sees these values.
 * Magnitudes of a busy director: counters up to some 10^12 (bytes), rates up to 10^7.
 */
function moveCounters(round) {
  const view = sampler.latest?.table;
  if (!view) return;
  const move = (words, stride, stats, rows) => {
    for (let row = 0; row < rows; row++) {
      for (let k = 0; k < 10; k++) {
        const scale = [1e5, 1e7, 1e7, 1e10, 1e12, 1e2, 1e4, 1e4, 1e6, 1e7][k];
        const value = Math.floor(scale * (1 + ((row * 7919 + k * 104729 + round * 15485863) % 1000) / 1000));
        const at = row * stride + stats + 2 * k;
        words[at] = value % 2 ** 32;
        words[at + 1] = Math.floor(value / 2 ** 32);
      }
    }
  };
  move(view.services, view.L.svcWords, view.L.svc.stats, view.serviceCount);
  move(view.destinations, view.L.dstWords, view.L.dst.stats, view.destinationCount);
}
let bytes = 0;
const sink = (taken) => { for (const chunk of taken) { bytes += chunk.length; recycleChunk(chunk); } };
const times = [];
for (let i = 0; i <= count; i++) {
  if (moving) moveCounters(i);
  const started = performance.now();
  await writeExposition(registry, sink);
  if (i > 0) times.push(performance.now() - started);
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({ renders: count, bytesPerRender: bytes / (count + 1), medianMs: times[times.length >> 1] }));
await ipvs.close();
