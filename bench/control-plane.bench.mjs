// Control-plane benchmark, run inside the test VM (scripts/vm/run.sh or scripts/bench.sh):
//   apply S services x D destinations with (a) one batch, (b) one await per call, (c) ipvsadm -R,
//   (d) the floor: bench/floor/batch_floor, the same requests pre-encoded in C and sent with raw
//   sockets; list the same table with stats: listTable vs ipvsadm -S -n, ipvsadm -Ln --stats
//   and bench/floor/dump_floor (the same dumps, nothing decoded); event-loop delay while applying.
// The batch and listTable run both warm (in this process, after a warm-up) and cold: the first
// call in a fresh node process, as a one-shot restore sees it (timed inside the child, from the
// open handle to the result, so process start and module loading are in neither side).
// Every number is a median over --reps runs in this VM; ratios compare with ipvsadm in the same
// run. Each apply run gets a fresh network namespace: after a flush the kernel keeps deleted
// destinations in a trash list for a minute and scans it on every add, which would penalise
// whichever method runs after another. Prints a table and writes
// bench/results/control-plane-<kernel>.json.
//
//   node bench/control-plane.bench.mjs [--size 1000x10] [--reps 3] [--only list]   (IPVS_BENCH_SIZES=1000x10)
// --only list: the listing rows alone (the table is loaded with one batch), for short runs.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { Ipvs } from '../dist/index.js';
import { option, requireTestVm } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const self = fileURLToPath(import.meta.url);

// A cold child: `--cold apply|list <netns>`; prints one JSON line and exits.
const coldMode = process.argv.indexOf('--cold');
if (coldMode > 0) {
  const [mode, name, size] = process.argv.slice(coldMode + 1);
  const [services, destinations] = size.split('x').map(Number);
  const ipvs = await Ipvs.open({ netns: `/run/netns/${name}` });
  let out;
  if (mode === 'apply') {
    const start = performance.now();
    const batch = ipvs.batch();
    for (let s = 0; s < services; s++) {
      const service = { protocol: 'tcp', address: `10.${(s >> 16) & 255}.${(s >> 8) & 255}.${s & 255}`, port: 80, scheduler: 'wlc' };
      batch.addService(service);
      for (let d = 0; d < destinations; d++) {
        batch.addDestination(service, { address: `172.16.${(s >> 8) & 255}.${d + 1}`, port: 80, forward: 'route', weight: 1 + (d % 5) });
      }
    }
    const queued = performance.now();
    const results = await batch.commit();
    const end = performance.now();
    out = { ms: end - start, queueMs: queued - start, commitMs: end - queued, failed: results.filter((r) => !r.ok).length };
  } else {
    const start = performance.now();
    const table = await ipvs.listTable();
    out = { ms: performance.now() - start, services: table.length };
  }
  await ipvs.close();
  console.log(JSON.stringify(out));
  process.exit(0);
}

requireTestVm('control-plane.bench.mjs');
const size = option('size', (process.env.IPVS_BENCH_SIZES ?? '1000x10').split(/[ ,]/)[0]);
const [SERVICES, DESTINATIONS] = size.split('x').map(Number);
const REPS = Number(option('reps', '3'));
const ONLY = option('only', '');
if (ONLY !== '' && ONLY !== 'list') throw new Error(`bad --only ${ONLY}: only 'list' is known`);
const LIST_ONLY = ONLY === 'list';
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

// ---- the floor: minimal C programs on raw netlink sockets ----------------------------------------

const floorDir = path.join(here, '..', '.cache', 'floor');
fs.mkdirSync(floorDir, { recursive: true });
for (const program of ['batch_floor', 'dump_floor']) {
  sh('cc', ['-O2', '-Wall', '-pthread', '-o', path.join(floorDir, program), path.join(here, 'floor', `${program}.c`)]);
}
/** Runs a floor program inside namespace `name`; it times itself and prints one JSON line. */
const floor = (program, name, input) => JSON.parse(sh('ip', ['netns', 'exec', name, path.join(floorDir, program)], input));

/** A fresh node process whose first call is `mode` ('apply' or 'list') in namespace `name`. */
function cold(mode, name) {
  return JSON.parse(sh(process.execPath, [self, '--cold', mode, name, `${SERVICES}x${DESTINATIONS}`]));
}

// ---- apply ---------------------------------------------------------------------------------------

// The event-loop delay is sampled in a run of its own (batchLoop): a 1 ms sampling timer wakes
// the main thread a thousand times a second, which in the emulated guest slows the commit it
// is measuring, and the cold run and the floor have no such timer.
async function applyBatch({ ipvs }, sampleLoop = false) {
  const start = performance.now();
  const batch = ipvs.batch();
  queueAll(batch);
  const queued = performance.now();
  const { value: results, p99, max, samples } = sampleLoop
    ? await withLoopDelay(() => batch.commit())
    : { value: await batch.commit() };
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

async function applyCold({ name }) {
  const run = cold('apply', name);
  if (run.failed) throw new Error(`cold batch: ${run.failed} operations failed`);
  return run;
}

async function applyFloor({ name }) {
  const run = floor('batch_floor', name, restoreText);
  if (run.acks !== OPERATIONS || run.errors) throw new Error(`batch floor: ${run.acks} acks, ${run.errors} errors`);
  return run;
}

// The noise floor: event-loop delay while idle, and what `ip netns exec` adds to each ipvsadm run.
const idle = await withLoopDelay(() => new Promise((resolve) => setTimeout(resolve, 2000)));
const execOverhead = await withNamespace(async ({ name }) => {
  const runs = [];
  for (let i = 0; i < 5; i++) runs.push((await timed(async () => { sh('ip', ['netns', 'exec', name, 'true']); })).ms);
  return median(runs);
});

// Warm means warm: one untimed batch first, so this process has compiled the hot paths.
if (!LIST_ONLY) await withNamespace((ns) => applyBatch(ns));

const apply = { batch: [], batchLoop: [], cold: [], perCall: [], ipvsadm: [], floor: [] };
const methods = [
  ['batch', applyBatch], ['cold', applyCold], ['perCall', applyPerCall], ['ipvsadm', applyIpvsadm], ['floor', applyFloor],
  ['batchLoop', (ns) => applyBatch(ns, true)],
];
for (let rep = 0; rep < (LIST_ONLY ? 0 : REPS); rep++) {
  for (const [name, fn] of methods) {
    apply[name].push(await withNamespace(async (ns) => {
      const run = await fn(ns);
      if (rep === 0) checkApplied(ns.ipvsadm, name);
      return run;
    }));
  }
}

// ---- list ----------------------------------------------------------------------------------------

const list = { listTable: [], cold: [], ipvsadmSave: [], ipvsadmStats: [], floor: [] };
await withNamespace(async ({ ipvs, ipvsadm, name }) => {
  const batch = ipvs.batch();
  queueAll(batch);
  await batch.commit();
  checkApplied(ipvsadm, 'batch (listing table)');
  await ipvs.listTable();  // warm-up
  for (let rep = 0; rep < REPS; rep++) {
    const coldList = cold('list', name);
    if (coldList.services !== SERVICES) throw new Error('cold listTable: wrong table');
    list.cold.push(coldList);
    const dumped = floor('dump_floor', name);
    if (dumped.services !== SERVICES || dumped.destinations !== SERVICES * DESTINATIONS) throw new Error(`dump floor: ${dumped.services} services, ${dumped.destinations} destinations`);
    list.floor.push(dumped);
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
    coldBatchMs: med(apply.cold),
    coldBatchQueueMs: med(apply.cold, 'queueMs'),
    coldBatchCommitMs: med(apply.cold, 'commitMs'),
    floorMs: med(apply.floor),
    speedupColdBatchVsIpvsadm: med(apply.ipvsadm) / med(apply.cold),
    commitVsFloor: med(apply.batch, 'commitMs') / med(apply.floor),
    coldCommitVsFloor: med(apply.cold, 'commitMs') / med(apply.floor),
    batchVsFloor: med(apply.batch) / med(apply.floor),
    coldBatchVsFloor: med(apply.cold) / med(apply.floor),
    batchMs: med(apply.batch),
    batchQueueMs: med(apply.batch, 'queueMs'),
    batchCommitMs: med(apply.batch, 'commitMs'),
    perCallMs: med(apply.perCall),
    ipvsadmRestoreMs: med(apply.ipvsadm),
    speedupBatchVsIpvsadm: med(apply.ipvsadm) / med(apply.batch),
    speedupBatchCommitVsIpvsadm: med(apply.ipvsadm) / med(apply.batch, 'commitMs'),
    speedupPerCallVsIpvsadm: med(apply.ipvsadm) / med(apply.perCall),
    eventLoopDelayP99Ms: { batchCommit: med(apply.batchLoop, 'p99'), perCall: med(apply.perCall, 'p99') },
    batchCommitWithLoopSamplingMs: med(apply.batchLoop, 'commitMs'),
    eventLoopDelayMaxMs: { batchCommit: med(apply.batchLoop, 'max'), perCall: med(apply.perCall, 'max') },
  },
  list: {
    coldListTableMs: med(list.cold),
    floorMs: med(list.floor),
    coldSpeedupVsIpvsadmSave: med(list.ipvsadmSave) / med(list.cold),
    coldSpeedupVsIpvsadmListStats: med(list.ipvsadmStats) / med(list.cold),
    listTableVsFloor: med(list.listTable) / med(list.floor),
    coldListTableVsFloor: med(list.cold) / med(list.floor),
    listTableMs: med(list.listTable),
    ipvsadmSaveMs: med(list.ipvsadmSave),
    ipvsadmListStatsMs: med(list.ipvsadmStats),
    speedupVsIpvsadmSave: med(list.ipvsadmSave) / med(list.listTable),
    speedupVsIpvsadmListStats: med(list.ipvsadmStats) / med(list.listTable),
  },
  targets: {
    batchAtLeast5xIpvsadm: med(apply.ipvsadm) / med(apply.batch) >= 5,
    coldBatchAtLeast5xIpvsadm: med(apply.ipvsadm) / med(apply.cold) >= 5,
    listingAtLeast2xIpvsadm: Math.min(med(list.ipvsadmSave), med(list.ipvsadmStats)) / med(list.listTable) >= 2,
    coldListingAtLeast2_5xIpvsadm: Math.min(med(list.ipvsadmSave), med(list.ipvsadmStats)) / med(list.cold) >= 2.5,
    commitWithin1_3xFloor: med(apply.batch, 'commitMs') / med(apply.floor) <= 1.3,
    listTableWithin1_3xFloor: med(list.listTable) / med(list.floor) <= 1.3,
    eventLoopP99Under10ms: med(apply.batchLoop, 'p99') < 10,
  },
  runs: { apply, list },
};

const f = (ms) => (Number.isFinite(ms) ? `${ms.toFixed(0)} ms` : '-');
const x = (r) => (Number.isFinite(r) ? `${r.toFixed(2)}x` : '-');
const d1 = (ms) => (Number.isFinite(ms) ? ms.toFixed(1) : '-');
const A = result.apply;
const L = result.list;
const rows = [
  ['apply', `batch, cold (queue ${f(A.coldBatchQueueMs)} + commit ${f(A.coldBatchCommitMs)})`, f(A.coldBatchMs), x(A.speedupColdBatchVsIpvsadm), `${x(A.coldBatchVsFloor)} (commit ${x(A.coldCommitVsFloor)})`],
  ['apply', `batch, warm (queue ${f(A.batchQueueMs)} + commit ${f(A.batchCommitMs)})`, f(A.batchMs), x(A.speedupBatchVsIpvsadm), `${x(A.batchVsFloor)} (commit ${x(A.commitVsFloor)})`],
  ['apply', 'one await per call', f(A.perCallMs), x(A.speedupPerCallVsIpvsadm), x(A.perCallMs / A.floorMs)],
  ['apply', 'ipvsadm -R', f(A.ipvsadmRestoreMs), '1.00x', x(A.ipvsadmRestoreMs / A.floorMs)],
  ['apply', 'floor: batch_floor (C, pre-encoded)', f(A.floorMs), x(A.ipvsadmRestoreMs / A.floorMs), '1.00x'],
  ['list', 'listTable, cold (with stats)', f(L.coldListTableMs), `${x(L.coldSpeedupVsIpvsadmSave)} / ${x(L.coldSpeedupVsIpvsadmListStats)}`, x(L.coldListTableVsFloor)],
  ['list', 'listTable, warm (with stats)', f(L.listTableMs), `${x(L.speedupVsIpvsadmSave)} / ${x(L.speedupVsIpvsadmListStats)}`, x(L.listTableVsFloor)],
  ['list', 'ipvsadm -S -n', f(L.ipvsadmSaveMs), '1.00x', x(L.ipvsadmSaveMs / L.floorMs)],
  ['list', 'ipvsadm -Ln --stats', f(L.ipvsadmListStatsMs), '1.00x', x(L.ipvsadmListStatsMs / L.floorMs)],
  ['list', 'floor: dump_floor (C, same dumps)', f(L.floorMs), '', '1.00x'],
  ['apply', `batch, warm, with a 1 ms loop-delay sampler (commit only)`, f(A.batchCommitWithLoopSamplingMs), '', x(A.batchCommitWithLoopSamplingMs / A.floorMs)],
  ['loop', 'event-loop delay p99: batch commit / per call / idle', `${d1(A.eventLoopDelayP99Ms.batchCommit)} / ${d1(A.eventLoopDelayP99Ms.perCall)} / ${d1(idle.p99)} ms`, '', ''],
];
console.log(`\ncontrol plane: ${SERVICES} services x ${DESTINATIONS} destinations (${OPERATIONS} operations), Linux ${result.kernel}, ${result.machine.cpus} x ${result.machine.cpu}, median of ${REPS}`);
console.log('| phase | method | time | ipvsadm ÷ this | this ÷ floor |\n|---|---|---|---|---|');
for (const row of LIST_ONLY ? rows.filter(([phase]) => phase === 'list') : rows) console.log(`| ${row.join(' | ')} |`);
console.log(`ipvsadm times include \`ip netns exec\` (${execOverhead.toFixed(0)} ms each); guest load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(`targets: ${Object.entries(result.targets).filter(([k]) => !LIST_ONLY || /list/i.test(k)).map(([k, v]) => `${k} ${v}`).join('; ')}`);

const out = path.join(here, 'results', `control-plane${LIST_ONLY ? '-list' : ''}-${kernel}.json`);
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
console.log(`wrote ${path.relative(process.cwd(), out)}`);
