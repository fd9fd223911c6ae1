// Control-plane benchmark, run inside the test VM (scripts/vm/run.sh or scripts/bench.sh):
//   apply S services x D destinations with (a) one batch, (b) one await per call, (c) ipvsadm -R;
//   list the same table with stats: listTable vs ipvsadm -S -n and ipvsadm -Ln --stats;
//   event-loop delay while applying.
// Every number is a median over --reps runs in this VM; ratios compare with ipvsadm in the same
// run. Each apply run gets a fresh network namespace: after a flush the kernel keeps deleted
// destinations in a trash list for a minute and scans it on every add, which would penalise
// whichever method runs after another. Prints a table and writes
// bench/results/control-plane-<kernel>.json.
//
//   node bench/control-plane.bench.mjs [--size 1000x10] [--reps 3]   (IPVS_BENCH_SIZES=1000x10)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { Ipvs } from '../dist/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

if (process.env.IPVS_VM !== '1') {
  console.error('control-plane.bench: runs inside the IPVS test VM (it flushes the IPVS table): use scripts/vm/run.sh');
  process.exit(2);
}
const size = option('size', (process.env.IPVS_BENCH_SIZES ?? '1000x10').split(/[ ,]/)[0]);
const [SERVICES, DESTINATIONS] = size.split('x').map(Number);
const REPS = Number(option('reps', '3'));
if (!(SERVICES > 0 && DESTINATIONS >= 0 && REPS > 0)) throw new Error(`bad --size ${size} or --reps ${REPS}`);
const OPERATIONS = SERVICES * (1 + DESTINATIONS);

// ---- the rules: the same table for every method ------------------------------------------------

const rules = [];
for (let s = 0; s < SERVICES; s++) {
  const service = { protocol: 'tcp', address: `10.${(s >> 16) & 255}.${(s >> 8) & 255}.${s & 255}`, port: 80, scheduler: 'wlc' };
  const destinations = [];
  for (let d = 0; d < DESTINATIONS; d++) {
    destinations.push({ address: `172.16.${(s >> 8) & 255}.${d + 1}`, port: 80, forward: 'route', weight: 1 + (d % 5) });
  }
  rules.push({ service, destinations });
}
const restoreText = rules.map(({ service, destinations }) => {
  const svc = `-t ${service.address}:${service.port}`;
  return [`-A ${svc} -s ${service.scheduler}`, ...destinations.map((d) => `-a ${svc} -r ${d.address}:${d.port} -g -w ${d.weight}`)].join('\n');
}).join('\n') + '\n';

// ---- helpers -------------------------------------------------------------------------------------

const sh = (command, args, input) => execFileSync(command, args, { input, encoding: 'utf8', maxBuffer: 256 << 20 });
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function timed(fn) {
  const start = performance.now();
  const extra = await fn();
  return { ms: performance.now() - start, ...extra };
}

/** Event-loop delay (ms) over `fn`, sampled every millisecond. */
async function withLoopDelay(fn) {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const value = await fn();
  histogram.disable();
  return { value, p99: histogram.percentile(99) / 1e6, max: histogram.max / 1e6, samples: histogram.count };
}

let namespaces = 0;
/** A fresh network namespace with an Ipvs handle in it; `ipvsadm(args)` runs inside it. */
async function withNamespace(fn) {
  const name = `cpbench-${process.pid}-${namespaces++}`;
  sh('ip', ['netns', 'add', name]);
  // With loopback down the kernel rejects the destinations (EINVAL: not a unicast address here).
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  const ipvs = await Ipvs.open({ netns: `/run/netns/${name}` });
  const ipvsadm = (args, input) => sh('ip', ['netns', 'exec', name, 'ipvsadm', ...args], input);
  try {
    return await fn({ ipvs, ipvsadm, name });
  } finally {
    await ipvs.close();
    sh('ip', ['netns', 'delete', name]);
  }
}

function checkApplied(ipvsadm, method) {
  const lines = ipvsadm(['-S', '-n']).split('\n').filter(Boolean).length;
  if (lines !== OPERATIONS) throw new Error(`${method} applied ${lines} rules, expected ${OPERATIONS}`);
}

function queueAll(batch) {
  for (const { service, destinations } of rules) {
    batch.addService(service);
    for (const d of destinations) batch.addDestination(service, d);
  }
}

// ---- apply ---------------------------------------------------------------------------------------

async function applyBatch({ ipvs }) {
  const start = performance.now();
  const batch = ipvs.batch();
  queueAll(batch);
  const queued = performance.now();
  const { value: results, p99, max, samples } = await withLoopDelay(() => batch.commit());
  const end = performance.now();
  const failed = results.filter((r) => !r.ok).length;
  if (failed) throw new Error(`batch: ${failed} operations failed`);
  return { ms: end - start, queueMs: queued - start, commitMs: end - queued, p99, max, samples };
}

async function applyPerCall({ ipvs }) {
  const { value: ms, p99, max, samples } = await withLoopDelay(async () => {
    const start = performance.now();
    for (const { service, destinations } of rules) {
      await ipvs.addService(service);
      for (const d of destinations) await ipvs.addDestination(service, d);
    }
    return performance.now() - start;
  });
  return { ms, p99, max, samples };
}

async function applyIpvsadm({ ipvsadm }) {
  return timed(async () => {
    ipvsadm(['-R'], restoreText);
  });
}

// The noise floor: event-loop delay while idle, and what `ip netns exec` adds to each ipvsadm run.
const idle = await withLoopDelay(() => new Promise((resolve) => setTimeout(resolve, 2000)));
const execOverhead = await withNamespace(async ({ name }) => {
  const runs = [];
  for (let i = 0; i < 5; i++) runs.push((await timed(async () => { sh('ip', ['netns', 'exec', name, 'true']); })).ms);
  return median(runs);
});

const apply = { batch: [], perCall: [], ipvsadm: [] };
for (let rep = 0; rep < REPS; rep++) {
  for (const [name, fn] of [['batch', applyBatch], ['perCall', applyPerCall], ['ipvsadm', applyIpvsadm]]) {
    apply[name].push(await withNamespace(async (ns) => {
      const run = await fn(ns);
      if (rep === 0) checkApplied(ns.ipvsadm, name);
      return run;
    }));
  }
}

// ---- list ----------------------------------------------------------------------------------------

const list = { listTable: [], ipvsadmSave: [], ipvsadmStats: [] };
await withNamespace(async ({ ipvs, ipvsadm }) => {
  const batch = ipvs.batch();
  queueAll(batch);
  await batch.commit();
  checkApplied(ipvsadm, 'batch (listing table)');
  for (let rep = 0; rep < REPS; rep++) {
    list.listTable.push(await timed(async () => {
      const table = await ipvs.listTable();
      const destinations = table.reduce((n, s) => n + s.destinations.length, 0);
      if (table.length !== SERVICES || destinations !== SERVICES * DESTINATIONS) throw new Error('listTable: wrong table');
    }));
    list.ipvsadmSave.push(await timed(async () => { ipvsadm(['-S', '-n']); }));
    list.ipvsadmStats.push(await timed(async () => { ipvsadm(['-L', '-n', '--stats']); }));
  }
});

// ---- report --------------------------------------------------------------------------------------

const med = (runs, key = 'ms') => median(runs.map((r) => r[key]));
const kernel = process.env.IPVS_VM_KERNEL ?? os.release();
const result = {
  benchmark: 'control-plane',
  kernel: os.release(),
  machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cpus: os.cpus().length, memoryMiB: Math.round(os.totalmem() / 2 ** 20), note: 'qemu TCG guest (scripts/vm/run.sh)' },
  node: process.version,
  size: { services: SERVICES, destinationsPerService: DESTINATIONS, operations: OPERATIONS },
  reps: REPS,
  noise: { idleEventLoopDelayP99Ms: idle.p99, idleEventLoopDelayMaxMs: idle.max, ipNetnsExecMs: execOverhead, loadAverage: os.loadavg() },
  apply: {
    batchMs: med(apply.batch),
    batchQueueMs: med(apply.batch, 'queueMs'),
    batchCommitMs: med(apply.batch, 'commitMs'),
    perCallMs: med(apply.perCall),
    ipvsadmRestoreMs: med(apply.ipvsadm),
    speedupBatchVsIpvsadm: med(apply.ipvsadm) / med(apply.batch),
    speedupBatchCommitVsIpvsadm: med(apply.ipvsadm) / med(apply.batch, 'commitMs'),
    speedupPerCallVsIpvsadm: med(apply.ipvsadm) / med(apply.perCall),
    eventLoopDelayP99Ms: { batchCommit: med(apply.batch, 'p99'), perCall: med(apply.perCall, 'p99') },
    eventLoopDelayMaxMs: { batchCommit: med(apply.batch, 'max'), perCall: med(apply.perCall, 'max') },
  },
  list: {
    listTableMs: med(list.listTable),
    ipvsadmSaveMs: med(list.ipvsadmSave),
    ipvsadmListStatsMs: med(list.ipvsadmStats),
    speedupVsIpvsadmSave: med(list.ipvsadmSave) / med(list.listTable),
    speedupVsIpvsadmListStats: med(list.ipvsadmStats) / med(list.listTable),
  },
  targets: {
    batchAtLeast5xIpvsadm: med(apply.ipvsadm) / med(apply.batch) >= 5,
    listingAtLeast2xIpvsadm: Math.min(med(list.ipvsadmSave), med(list.ipvsadmStats)) / med(list.listTable) >= 2,
    eventLoopP99Under10ms: med(apply.batch, 'p99') < 10,
  },
  runs: { apply, list },
};

const f = (ms) => `${ms.toFixed(0)} ms`;
const x = (r) => `${r.toFixed(2)}x`;
const rows = [
  ['apply', `batch (queue ${f(result.apply.batchQueueMs)} + commit ${f(result.apply.batchCommitMs)})`, f(result.apply.batchMs), x(result.apply.speedupBatchVsIpvsadm)],
  ['apply', 'one await per call', f(result.apply.perCallMs), x(result.apply.speedupPerCallVsIpvsadm)],
  ['apply', 'ipvsadm -R', f(result.apply.ipvsadmRestoreMs), '1.00x'],
  ['list', 'listTable (with stats)', f(result.list.listTableMs), `${x(result.list.speedupVsIpvsadmSave)} / ${x(result.list.speedupVsIpvsadmListStats)}`],
  ['list', 'ipvsadm -S -n', f(result.list.ipvsadmSaveMs), '1.00x'],
  ['list', 'ipvsadm -Ln --stats', f(result.list.ipvsadmListStatsMs), '1.00x'],
  ['loop', 'event-loop delay p99: batch commit / per call / idle', `${result.apply.eventLoopDelayP99Ms.batchCommit.toFixed(1)} / ${result.apply.eventLoopDelayP99Ms.perCall.toFixed(1)} / ${idle.p99.toFixed(1)} ms`, ''],
];
console.log(`\ncontrol plane: ${SERVICES} services x ${DESTINATIONS} destinations (${OPERATIONS} operations), Linux ${result.kernel}, ${result.machine.cpus} x ${result.machine.cpu}, median of ${REPS}`);
console.log('| phase | method | time | vs ipvsadm |\n|---|---|---|---|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
console.log(`ipvsadm times include \`ip netns exec\` (${execOverhead.toFixed(0)} ms each); guest load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(`targets: batch >= 5x ipvsadm -R: ${result.targets.batchAtLeast5xIpvsadm}; listing >= 2x: ${result.targets.listingAtLeast2xIpvsadm}; p99 < 10 ms: ${result.targets.eventLoopP99Under10ms}`);

const out = path.join(here, 'results', `control-plane-${kernel}.json`);
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
console.log(`wrote ${path.relative(process.cwd(), out)}`);
