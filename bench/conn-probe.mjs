// One of our connection-table readers, run `reps` times in a fresh process so its peak RSS is
// its own (after one untimed warm-up run). Prints one JSON line: times (ms), peak RSS, event-loop delay p99 while scanning, and
// the autoban answer (clients with more than `threshold` ESTABLISHED connections) for checking.
//
//   node bench/conn-probe.mjs count|table|objects NETNS_PATH|- THRESHOLD REPS
import { createRequire } from 'node:module';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const require = createRequire(import.meta.url);
const { countConnections, readConnectionTable, streamConnections } = require(
  path.join(import.meta.dirname, '..', 'dist', 'connections.js'),
);

const [method, netnsArg, thresholdArg, repsArg] = process.argv.slice(2);
const netns = netnsArg === '-' ? undefined : netnsArg;
const threshold = Number(thresholdArg);
const reps = Number(repsArg);

function answerOf(counts) {
  return [...counts]
    .filter(([, n]) => n > threshold)
    .map(([key, count]) => ({ key, count }))
    .sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : 1));
}

const readers = {
  // The question answered natively.
  async count() {
    const result = await countConnections({ netns, by: 'client', state: 'ESTABLISHED', minCount: threshold + 1 });
    return { rows: result.scan.connections, answer: result.map(({ key, count }) => ({ key, count })) };
  },
  // The columnar table; the answer is computed from its columns afterwards (not timed).
  async table() {
    const table = await readConnectionTable({ netns });
    return {
      rows: table.length,
      later: () => {
        const { columns } = table;
        const established = columns.states.indexOf('ESTABLISHED');
        const counts = new Map();
        for (let i = 0; i < table.length; i++) {
          if (columns.state[i] !== established) continue;
          const b = columns.clientAddress;
          const key = `${b[i * 16]}.${b[i * 16 + 1]}.${b[i * 16 + 2]}.${b[i * 16 + 3]}`;
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
        return answerOf(counts);
      },
    };
  },
  // Batches of objects, aggregated in JavaScript as a script would.
  async objects() {
    const counts = new Map();
    let rows = 0;
    for await (const batch of streamConnections({ netns })) {
      rows += batch.length;
      for (const c of batch) if (c.state === 'ESTABLISHED') counts.set(c.clientAddress, (counts.get(c.clientAddress) ?? 0) + 1);
    }
    return { rows, answer: answerOf(counts) };
  },
};

const read = readers[method];
if (!read) throw new Error(`unknown method ${method}`);
// One untimed run first: loads the addon, starts the thread pool and warms the paths, as in
// a long-running daemon (the reference commands also run on warm kernel paths).
await read();
const baselineRssKiB = Math.round(process.memoryUsage().rss / 1024);
const times = [];
const delaysP99 = [];
let last;
for (let i = 0; i < reps; i++) {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const started = performance.now();
  last = await read();
  times.push(performance.now() - started);
  histogram.disable();
  delaysP99.push(histogram.percentile(99) / 1e6);
  if (last.later) last.answer = last.later();
}
console.log(
  JSON.stringify({
    method,
    times,
    rows: last.rows,
    answer: last.answer,
    peakRssKiB: process.resourceUsage().maxRSS,
    baselineRssKiB,
    eventLoopDelayP99Ms: Math.max(...delaysP99),
  }),
);
