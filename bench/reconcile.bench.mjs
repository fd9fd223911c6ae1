// Declarative apply benchmark, run inside the test VM (scripts/bench.sh):
//   a 1,000 x 10 table, then a change that edits 1% of the weights, adds 5 destinations and
//   removes 5. Measures ipvs.apply(desired) (plan + apply in one call) against
//   - what scripts do: `ipvsadm -C && ipvsadm -R` of the whole new table;
//   - the floor: one listTable() plus one batch of exactly the changed operations;
//   and, for reference, plan() then apply(plan) (two listings: the staleness check reads the
//   table again) and apply with verify: 'full'.
// Every method starts from the same table in a fresh namespace (a flush leaves destinations in
// the kernel's trash list for a minute, which would favour whichever method runs later), after
// a full collection (loading the table leaves this process's heap full of garbage, which would
// otherwise fall to whichever method happens to need a collection first). One untimed round
// first (a process's first apply runs code V8 has not optimised yet, 3-5x slower: with few
// rounds it would decide the median), then --reps rounds in a balanced order (Williams
// designs: every ten rounds each method runs in each place twice and follows every other
// method twice), so no method always runs after the same one. Median of the rounds. Prints a
// table and writes bench/results/reconcile-<kernel>.json.
//
//   node bench/reconcile.bench.mjs [--size 1000x10] [--reps 5] [--methods apply,floor,...]
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

import { Ipvs } from '../dist/index.js';
import { median, ms, option, printTable, ratio, requireTestVm, writeResult } from './lib.mjs';
import { reconcileWorkload } from './reconcile-workload.mjs';

requireTestVm('reconcile.bench.mjs');
const [SERVICES, DESTINATIONS] = option('size', '1000x10').split('x').map(Number);
const REPS = Number(option('reps', process.env.IPVS_BENCH_ROUNDS ?? '5'));
if (!(SERVICES >= 10 && DESTINATIONS >= 2 && REPS > 0)) throw new Error('bad --size or --reps');
v8.setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc');

// ---- the tables ----------------------------------------------------------------------------------

const { base, changed, floorOps } = reconcileWorkload(SERVICES, DESTINATIONS);
const CHANGES = floorOps.length;

const restoreText = changed.map((service) => {
  const svc = `-t ${service.address}:${service.port}`;
  return [`-A ${svc} -s ${service.scheduler}`, ...service.destinations.map((d) => `-a ${svc} -r ${d.address}:${d.port} -g -w ${d.weight}`)].join('\n');
}).join('\n') + '\n';
const RULES = changed.reduce((n, s) => n + 1 + s.destinations.length, 0);

// ---- helpers ---------------------------------------------------------------------------------------

const sh = (command, args, input) => execFileSync(command, args, { input, encoding: 'utf8', maxBuffer: 256 << 20 });

let namespaces = 0;
/** A fresh namespace holding the base table, with a handle; `fn` is timed by the caller. */
async function withBaseTable(fn) {
  const name = `rcbench-${process.pid}-${namespaces++}`;
  sh('ip', ['netns', 'add', name]);
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  const ipvs = await Ipvs.open({ netns: `/run/netns/${name}` });
  const ipvsadm = (args, input) => sh('ip', ['netns', 'exec', name, 'ipvsadm', ...args], input);
  try {
    const batch = ipvs.batch();
    for (const { destinations, ...service } of base) {
      batch.addService(service);
      for (const d of destinations) batch.addDestination(service, d);
    }
    if ((await batch.commit()).some((r) => !r.ok)) throw new Error('base table: an operation failed');
    return await fn({ ipvs, ipvsadm, name });
  } finally {
    await ipvs.close();
    sh('ip', ['netns', 'delete', name]);
  }
}

/** The namespace now holds the changed table, whatever method got it there. */
async function checkChanged(ipvs) {
  const plan = await ipvs.plan(changed, { scope: 'all' });
  if (plan.operations.length !== 0) throw new Error(`the table differs from the changed table by ${plan.operations.length} operations`);
}

function expectChanges(result, label) {
  if (!result.ok) throw new Error(`${label}: not ok (${result.results.filter((r) => !r.ok).length} failed, drift ${result.drift.length})`);
  if (result.plan.operations.length !== CHANGES) throw new Error(`${label}: planned ${result.plan.operations.length} operations, expected ${CHANGES}`);
}

// ---- the methods -------------------------------------------------------------------------------------

const methods = {
  async apply({ ipvs }) {
    const start = performance.now();
    const result = await ipvs.apply(changed);
    const elapsed = performance.now() - start;
    expectChanges(result, 'apply');
    return elapsed;
  },
  async planThenApply({ ipvs }) {
    const start = performance.now();
    const plan = await ipvs.plan(changed);
    const result = await ipvs.apply(plan);
    const elapsed = performance.now() - start;
    expectChanges(result, 'plan then apply');
    return elapsed;
  },
  async applyVerifyFull({ ipvs }) {
    const start = performance.now();
    const result = await ipvs.apply(changed, { verify: 'full' });
    const elapsed = performance.now() - start;
    expectChanges(result, 'apply (verify full)');
    return elapsed;
  },
  async floor({ ipvs }) {
    const start = performance.now();
    const table = await ipvs.listTable();
    const batch = ipvs.batch();
    for (const [op, service, arg] of floorOps) batch[op](service, arg);
    const results = await batch.commit();
    const elapsed = performance.now() - start;
    if (table.length !== SERVICES || results.some((r) => !r.ok)) throw new Error('floor: wrong table or a failed operation');
    return elapsed;
  },
  async ipvsadmRestore({ name }) {
    const start = performance.now();
    sh('ip', ['netns', 'exec', name, 'sh', '-c', 'ipvsadm -C && ipvsadm -R'], restoreText);
    return performance.now() - start;
  },
};

// --methods (while iterating: fewer methods, shorter runs); the ratios need apply and the floor.
const chosen = option('methods', Object.keys(methods).join()).split(',');
for (const name of chosen) if (!methods[name]) throw new Error(`--methods: no method ${name} (${Object.keys(methods).join(', ')})`);
for (const name of ['apply', 'floor']) if (!chosen.includes(name)) throw new Error(`--methods must include ${name}`);

/**
 * Williams designs for n methods: each row is an order of 0..n-1; over all the rows every
 * method runs in every place equally often and directly after every other method equally often
 * (n rows for an even n, 2n for an odd one).
 */
function williamsOrders(n) {
  const first = [0];
  for (let low = 1, high = n - 1; first.length < n;) {
    first.push(low++);
    if (first.length < n) first.push(high--);
  }
  const rows = Array.from({ length: n }, (_, r) => first.map((m) => (m + r) % n));
  return n % 2 === 0 ? rows : [...rows, ...rows.map((row) => [...row].reverse())];
}
const orders = williamsOrders(chosen.length);

// This process's heap after each full collection, in order: a heap that grows from round to
// round would slow the later rounds.
const heapMiB = [];
async function timedRun(name) {
  return withBaseTable(async (context) => {
    collectGarbage();
    heapMiB.push(Math.round(process.memoryUsage().heapUsed / 2 ** 20));
    const elapsed = await methods[name](context);
    await checkChanged(context.ipvs);
    return elapsed;
  });
}

const benchStart = performance.now();
const runs = Object.fromEntries(chosen.map((m) => [m, []]));
const warmUp = Object.fromEntries(chosen.map((m) => [m, undefined]));
for (const name of chosen) warmUp[name] = await timedRun(name);
for (let rep = 0; rep < REPS; rep++) {
  for (const m of orders[rep % orders.length]) runs[chosen[m]].push(await timedRun(chosen[m]));
}

// ---- report --------------------------------------------------------------------------------------------

const med = Object.fromEntries(Object.entries(runs).map(([name, values]) => [name, median(values)]));
const result = {
  benchmark: 'reconcile',
  kernel: os.release(),
  size: { services: SERVICES, destinationsPerService: DESTINATIONS, rules: RULES, changes: CHANGES },
  reps: REPS,
  loadAverage: os.loadavg(),
  medianMs: med,
  ratios: {
    ipvsadmRestoreOverApply: med.ipvsadmRestore / med.apply,
    applyOverFloor: med.apply / med.floor,
    planThenApplyOverFloor: med.planThenApply / med.floor,
    applyVerifyFullOverFloor: med.applyVerifyFull / med.floor,
  },
  goals: {
    atLeast20xFasterThanClearAndRestore: med.ipvsadmRestore / med.apply >= 20,
    within1_5xOfFloor: med.apply / med.floor <= 1.5,
  },
  design: 'one untimed round, then rounds in Williams orders; a full collection before each timed call',
  orders: Array.from({ length: REPS }, (_, rep) => orders[rep % orders.length].map((m) => chosen[m])),
  warmUp,
  runs,
  heapMiB,
  seconds: Math.round((performance.now() - benchStart) / 1000),
};
const rows = [
    ['ipvs.apply(desired)', ms(med.apply), ratio(med.apply / med.floor), ratio(med.ipvsadmRestore / med.apply)],
    ['plan() then apply(plan)', ms(med.planThenApply), ratio(med.planThenApply / med.floor), ratio(med.ipvsadmRestore / med.planThenApply)],
    ["apply(desired, { verify: 'full' })", ms(med.applyVerifyFull), ratio(med.applyVerifyFull / med.floor), ratio(med.ipvsadmRestore / med.applyVerifyFull)],
    ['floor: listTable() + batch of the changes', ms(med.floor), '1.00x', ratio(med.ipvsadmRestore / med.floor)],
    ['ipvsadm -C && ipvsadm -R', ms(med.ipvsadmRestore), ratio(med.ipvsadmRestore / med.floor), '1.00x'],
  ].filter((_, i) => chosen.includes(['apply', 'planThenApply', 'applyVerifyFull', 'floor', 'ipvsadmRestore'][i]));
printTable(
  `reconcile: ${SERVICES} x ${DESTINATIONS} table (${RULES} rules), change of ${CHANGES} operations, Linux ${result.kernel}, ` +
    `median of ${REPS} rounds (balanced order, after one untimed round), ${result.seconds} s`,
  ['method', 'ms', 'vs floor', 'ipvsadm -C -R /'],
  rows,
);
for (const name of chosen) console.log(`${name.padEnd(16)} warm-up ${ms(warmUp[name])}, rounds ${runs[name].map((v) => v.toFixed(0)).join(' ')}`);
console.log(`heap after each full collection (MiB), in order: ${heapMiB.join(' ')}`);
console.log(`goals: >= 20x faster than clear-and-restore: ${result.goals.atLeast20xFasterThanClearAndRestore}; within 1.5x of the floor: ${result.goals.within1_5xOfFloor}`);
writeResult(`reconcile-${process.env.IPVS_VM_KERNEL ?? os.release()}`, result);
