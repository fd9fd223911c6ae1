// Host diagnostic for the /metrics scrape (not part of `npm run bench`; the host has no IPVS):
// serves the metrics of the stand-in kernel's 1,000 x 10 table (bench/cli-host-fake.cjs), has
// bench/scrape-client.mjs scrape it N times, and reports what the serving process's event loop
// went through: its longest callbacks (async_hooks), the turns over 2 ms seen by a 1 ms timer,
// and the garbage collector's pauses. Run with --cpu-prof or --trace-gc for more.
//
//   node -r ./bench/cli-host-fake.cjs bench/metrics-host-probe.mjs [--gzip] [--count 5]
import { execFile } from 'node:child_process';
import { createHook } from 'node:async_hooks';
import path from 'node:path';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';

import { Ipvs } from '../dist/index.js';
import { serveMetrics } from '../dist/metrics/index.js';

const args = process.argv.slice(2);
const gzip = args.includes('--gzip');
const count = Number(args[args.indexOf('--count') + 1] || 5);
const hooks = !args.includes('--no-hooks');

const ipvs = await Ipvs.open();
const endpoint = await serveMetrics({ ipvs, listen: '127.0.0.1:0', ...(gzip ? { compression: 'always' } : {}) });
const url = `${endpoint.url}metrics`;
const client = (n) => new Promise((resolve, reject) => {
  execFile(process.execPath, [path.join(import.meta.dirname, 'scrape-client.mjs'), url, ...(gzip ? ['--gzip'] : []), '--count', String(n)],
    (error, stdout) => (error ? reject(error) : resolve(stdout.trim().split('\n').map((l) => JSON.parse(l)))));
});
await client(2); // warm-up: label rows built, code optimized

const types = new Map();
const tasks = [];
let depth = 0;
let started = 0;
let current;
const hook = createHook({
  init: (id, type) => { types.set(id, type); },
  before: (id) => { if (depth++ === 0) { started = performance.now(); current = types.get(id); } },
  after: () => { if (depth > 0 && --depth === 0) tasks.push([performance.now() - started, current]); },
  destroy: (id) => { types.delete(id); },
});
const pauses = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) pauses.push([e.duration, e.detail?.kind]); }).observe({ entryTypes: ['gc'] });
const gaps = [];
let last = performance.now();
const timer = setInterval(() => { const now = performance.now(); if (now - last > 2) gaps.push(now - last); last = now; }, 1);
const histogram = monitorEventLoopDelay({ resolution: 1 });
histogram.enable();
if (hooks) hook.enable();
const cpu = process.cpuUsage();
const scrapes = await client(count);
const cpuMs = (process.cpuUsage(cpu).user + process.cpuUsage(cpu).system) / 1000;
hook.disable();
histogram.disable();
clearInterval(timer);
tasks.sort((a, b) => b[0] - a[0]);
gaps.sort((a, b) => b - a);
pauses.sort((a, b) => b[0] - a[0]);
const r = (x) => Math.round(x * 100) / 100;
console.log(JSON.stringify({
  gzip, scrapesMs: scrapes.map((s) => r(s.ms)), scraperCpuMs: scrapes.map((s) => r(s.cpuMs)), bytes: scrapes[0].bytes, wire: scrapes[0].wireBytes, serverCpuMsPerScrape: r(cpuMs / count),
  p99: r(histogram.percentile(99) / 1e6), max: r(histogram.max / 1e6),
  callbacks: tasks.length, over1ms: tasks.filter(([d]) => d > 1).length, longest: tasks.slice(0, 10).map(([d, t]) => `${t} ${r(d)}`),
  gapsOver2ms: gaps.length, longestGaps: gaps.slice(0, 10).map(r),
  gc: pauses.length, gcLongest: pauses.slice(0, 8).map(([d, k]) => `${k}:${r(d)}`), gcTotal: r(pauses.reduce((s, [d]) => s + d, 0)),
}));
await endpoint.close();
await ipvs.close();
