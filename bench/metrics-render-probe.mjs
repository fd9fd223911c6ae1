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
const { registry } = createMetricsRegistry({ ipvs });
let bytes = 0;
const sink = (taken) => { for (const chunk of taken) { bytes += chunk.length; recycleChunk(chunk); } };
const times = [];
for (let i = 0; i <= count; i++) {
  if (moving) globalThis.ipvsFakeTick?.(i);
  const started = performance.now();
  await writeExposition(registry, sink);
  if (i > 0) times.push(performance.now() - started);
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({ renders: count, bytesPerRender: bytes / (count + 1), medianMs: times[times.length >> 1] }));
await ipvs.close();
