// Child of bench/conn-loop-probe.mjs: one warm-up and one timed run of a reader in the caller's
// namespace (or of IPVS_PROBE_PATH); prints one JSON line.
//   node bench/conn-loop-child.mjs idle|read|count|objects
import { createHook } from 'node:async_hooks';
import { openSync, readSync, closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

const require = createRequire(import.meta.url);
const { countConnections, streamConnections } = require(path.join(process.env.IPVS_PROBE_DIST ?? path.join(import.meta.dirname, '..', 'dist'), 'connections.js'));
const mode = process.argv[2];
const file = process.env.IPVS_PROBE_PATH;
const source = file ? { path: file } : {};
const batchOption = process.env.IPVS_PROBE_BATCH ? { batchSize: Number(process.env.IPVS_PROBE_BATCH) } : {};

const gcs = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) gcs.push(e); }).observe({ entryTypes: ['gc'] });

const modes = {
  // Nothing but the delay sampler for 5 s: the event-loop delay of this guest at this moment.
  async idle() {
    await new Promise((resolve) => setTimeout(resolve, 5000));
    return {};
  },
  read() {
    const fd = openSync(file ?? '/proc/net/ip_vs_conn', 'r');
    const buffer = Buffer.allocUnsafe(128 * 1024);
    let bytes = 0;
    for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0;) bytes += n;
    closeSync(fd);
    return { bytes };
  },
  async count() {
    const counts = await countConnections({ ...source, by: 'client', state: 'ESTABLISHED', minCount: 101 });
    return { rows: counts.scan.connections, keys: counts.length };
  },
  async objects() {
    const counts = new Map();
    let rows = 0;
    for await (const batch of streamConnections({ ...source, ...batchOption })) {
      rows += batch.length;
      for (const c of batch) if (c.state === 'ESTABLISHED') counts.set(c.clientAddress, (counts.get(c.clientAddress) ?? 0) + 1);
    }
    return { rows, keys: counts.size };
  },
};

await modes[mode]();
gcs.length = 0;
// Turns of the loop longer than 5 ms, seen from a 1 ms interval timer.
const gaps = [];
let last = performance.now();
const timer = setInterval(() => {
  const now = performance.now();
  if (now - last > 5) gaps.push([last, now]);
  last = now;
}, 1);
// IPVS_PROBE_HOOKS=1: also time every top-level callback (async_hooks; slows the run).
const tasks = [];
let depth = 0;
let taskStart = 0;
let taskType;
const types = new Map();
const hook = createHook({
  init: (id, type) => { types.set(id, type); },
  before: (id) => { if (depth++ === 0) { taskStart = performance.now(); taskType = types.get(id); } },
  after: () => { if (depth > 0 && --depth === 0) { const d = performance.now() - taskStart; if (d > 2) tasks.push([d, taskType]); } },
  destroy: (id) => { types.delete(id); },
});
if (process.env.IPVS_PROBE_HOOKS) hook.enable();
const histogram = monitorEventLoopDelay({ resolution: 1 });
histogram.enable();
const started = performance.now();
const result = await modes[mode]();
const ms = performance.now() - started;
histogram.disable();
hook.disable();
clearInterval(timer);
tasks.sort((x, y) => y[0] - x[0]);
await new Promise((resolve) => setTimeout(resolve, 20));
const gcIn = (a, b) => gcs.filter((e) => e.startTime >= a && e.startTime < b).reduce((sum, e) => sum + e.duration, 0);
const inRun = gcs.filter((e) => e.startTime >= started && e.startTime < started + ms);
const kinds = {};
for (const e of inRun) {
  const k = e.detail?.kind ?? e.kind;
  const entry = (kinds[k] ??= { n: 0, sum: 0, max: 0 });
  entry.n++; entry.sum += e.duration; entry.max = Math.max(entry.max, e.duration);
}
// Long turns by length, each bucket with how many held a collection.
const buckets = {};
for (const [a, b] of gaps) {
  const d = b - a;
  const name = d < 10 ? '5-10' : d < 20 ? '10-20' : d < 50 ? '20-50' : '50+';
  const bucket = (buckets[name] ??= { n: 0, withGc: 0 });
  bucket.n++;
  if (gcIn(a, b) > 0) bucket.withGc++;
}
gaps.sort((x, y) => (y[1] - y[0]) - (x[1] - x[0]));
const round = (x) => Math.round(x * 10) / 10;
console.log(JSON.stringify({
  mode, ms: round(ms), ...result,
  p50: round(histogram.percentile(50) / 1e6), p99: round(histogram.percentile(99) / 1e6), max: round(histogram.max / 1e6),
  gaps: gaps.length, buckets, samples: histogram.count, longest: gaps.slice(0, 12).map(([a, b]) => [round(b - a), round(gcIn(a, b))]),
  ...(process.env.IPVS_PROBE_HOOKS ? { tasksOver2ms: tasks.length, tasks: tasks.slice(0, 10).map(([d, t]) => `${t} ${round(d)}`) } : {}),
  gc: Object.fromEntries(Object.entries(kinds).map(([k, v]) => [k, { n: v.n, sum: round(v.sum), max: round(v.max) }])),
}));
