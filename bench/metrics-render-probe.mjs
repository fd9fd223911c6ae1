// Host or VM diagnostic (no IPVS needed: run with -r ./bench/cli-host-fake.cjs): N renders of the
// stand-in 1,000 x 10 table into a sink that recycles the chunks, as the server does; per-render
// wall and user CPU. Add --cpu-prof to see where it goes.
//
//   node -r ./bench/cli-host-fake.cjs bench/metrics-render-probe.mjs [N]
import { performance } from 'node:perf_hooks';
import { Ipvs } from '../dist/index.js';
import { createMetricsRegistry } from '../dist/metrics/index.js';
import { writeExposition } from '../dist/metrics/exposition.js';
import { recycleChunk } from '../dist/metrics/exposition-writer.js';
const n = Number(process.argv[2] ?? 10);
const ipvs = await Ipvs.open();
const { registry, sampler } = createMetricsRegistry({ ipvs });
let bytes = 0;
const sink = (t) => { for (const c of t) { bytes += c.length; recycleChunk(c); } };
for (let i = 0; i < 3; i++) await writeExposition(registry, sink);
bytes = 0;
const cpu = process.cpuUsage();
const s = performance.now();
for (let i = 0; i < n; i++) await writeExposition(registry, sink);
const u = process.cpuUsage(cpu);
console.log('per scrape ms', ((performance.now() - s) / n).toFixed(1), 'user', (u.user / 1000 / n).toFixed(1), 'bytes', bytes / n);
await ipvs.close();
