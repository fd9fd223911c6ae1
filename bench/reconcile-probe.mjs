// Where apply's time goes in the VM: the reconcile benchmark's workload, with every native call
// of apply timed (the rest is JavaScript), and the floor's parts timed the same way.
//   node bench/reconcile-probe.mjs [--reps 5]
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { Ipvs } from '../dist/index.js';
import { median, option, requireTestVm } from './lib.mjs';
import { reconcileWorkload } from './reconcile-workload.mjs';

requireTestVm('reconcile-probe.mjs');
const REPS = Number(option('reps', '5'));
const MARK = process.argv.includes('--mark');  // with node --trace-gc: which collections fall inside apply
const SERVICES = 1000, DESTINATIONS = 10;
const { base, changed, floorOps } = reconcileWorkload(SERVICES, DESTINATIONS);

// apply's JavaScript phases: the exports apply.js and plan.js call through (CommonJS module
// objects, looked up at each call), wrapped to time themselves while `phases` is set.
const require = createRequire(import.meta.url);
let phases;
const timing = (name, original) => function (...args) {
  const s = performance.now();
  try { return original.apply(this, args); } finally { phases?.push([name, s, performance.now()]); }
};
for (const [file, names] of [['plan', ['checkPlanInput', 'buildPlan']], ['records', ['liveTable']], ['diff', ['diffTables', 'indexLive']], ['order', ['orderOperations']]]) {
  const module = require(`../dist/reconcile/${file}.js`);
  for (const name of names) module[name] = timing(name, module[name]);
}
// apply(desired) makes and compares each part of the listing as it arrives (LiveListing.add,
// then PlanBuilder.add per service, not timed one by one) and orders the plan in finish().
for (const [file, type, names] of [['records', 'LiveListing', ['add', 'finish']], ['plan', 'PlanBuilder', ['finish']]]) {
  const { prototype } = require(`../dist/reconcile/${file}.js`)[type];
  for (const name of names) prototype[name] = timing(`${type}.${name}`, prototype[name]);
}

const sh = (c, a) => execFileSync(c, a, { encoding: 'utf8' });
let n = 0;
async function withBase(fn) {
  const name = `rcprobe-${process.pid}-${n++}`;
  sh('ip', ['netns', 'add', name]);
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  const ipvs = await Ipvs.open({ netns: `/run/netns/${name}` });
  try {
    const batch = ipvs.batch();
    for (const { destinations, ...service } of base) { batch.addService(service); for (const d of destinations) batch.addDestination(service, d); }
    await batch.commit();
    return await fn(ipvs);
  } finally { await ipvs.close(); sh('ip', ['netns', 'delete', name]); }
}
function timed(ipvs) {
  const calls = [];
  const original = ipvs.enqueue.bind(ipvs);
  ipvs.enqueue = (op, work) => original(op, async (h) => {
    const s = performance.now();
    try { return await work(h); } finally { const e = performance.now(); calls.push([op, e - s]); phases?.push([`native ${op}`, s, e]); }
  });
  return calls;
}
/** The phases of one call, in order, as `tag phase i name` rows, and the time between them. */
function addPhases(tag, start, end) {
  let last = start;
  phases.sort((a, b) => a[1] - b[1]).forEach(([name, s, e], i) => {
    add(`${tag} phase ${String(i).padStart(2)} gap`, s - last);
    add(`${tag} phase ${String(i).padStart(2)} ${name}`, e - s);
    last = Math.max(last, e);
  });
  add(`${tag} phase end gap`, end - last);
  phases = undefined;
}
function report(tag, r) {
  if (r.ok && r.plan.operations.length === 110) return;
  console.log(`${tag}: ok ${r.ok}, ${r.plan.operations.length} operations, failed ${JSON.stringify(r.results.filter((x) => !x.ok).slice(0, 3))}, drift ${r.drift.length}: ${JSON.stringify(r.drift.slice(0, 4))}`);
}
const rows = {};
const add = (k, v) => (rows[k] ??= []).push(v);
const methods = {
  async apply(ipvs, tag) {
    const calls = timed(ipvs);
    phases = [];
    if (MARK) console.log(`--- ${tag} start`);
    const s = performance.now();
    const r = await ipvs.apply(changed);
    const total = performance.now() - s;
    if (MARK) console.log(`--- ${tag} end ${total.toFixed(0)} ms`);
    addPhases(tag, s, s + total);
    report(tag, r);
    let native = 0;
    calls.forEach(([op, t], i) => { add(`${tag} native ${i} ${op}`, t); native += t; });
    add(`${tag} total`, total); add(`${tag} js (total - native)`, total - native);
  },
  async planApply(ipvs, tag) {
    const calls = timed(ipvs);
    const s = performance.now();
    const plan = await ipvs.plan(changed);
    const m = performance.now();
    const r = await ipvs.apply(plan);
    const total = performance.now() - s;
    report(tag, r);
    let native = 0;
    calls.forEach(([op, t], i) => { add(`${tag} native ${i} ${op}`, t); native += t; });
    add(`${tag} plan()`, m - s); add(`${tag} total`, total); add(`${tag} js (total - native)`, total - native);
  },
  // What the desired state's check costs beside the listing: one after the other (as apply
  // does), and the listing started first, the check made while it runs.
  async checkThenList(ipvs, tag) {
    const s = performance.now();
    checkPlanInput(changed, undefined, undefined);
    const m = performance.now();
    await ipvs.enqueue('listTable', (h) => h.listTable());
    add(`${tag} check`, m - s); add(`${tag} total`, performance.now() - s);
  },
  async listWhileChecking(ipvs, tag) {
    const s = performance.now();
    const listing = ipvs.enqueue('listTable', (h) => h.listTable());
    checkPlanInput(changed, undefined, undefined);
    const m = performance.now();
    await listing;
    add(`${tag} check`, m - s); add(`${tag} total`, performance.now() - s);
  },
  async floor(ipvs, tag) {
    const calls = timed(ipvs);
    const s = performance.now();
    const table = await ipvs.listTable();
    const m = performance.now();
    const batch = ipvs.batch();
    for (const [op, service, arg] of floorOps) batch[op](service, arg);
    await batch.commit();
    const total = performance.now() - s;
    if (table.length !== SERVICES) throw new Error('floor');
    calls.forEach(([op, t], i) => add(`${tag} native ${i} ${op}`, t));
    add(`${tag} listTable() with objects`, m - s); add(`${tag} total`, total);
  },
};
// The check's request records: 74 words each (a whole request, half of it the service part), or
// 37 (the destination part alone), for 11,000 destinations, fresh memory each time.
for (const words of [74, 37]) {
  for (let rep = 0; rep < REPS; rep++) {
    const s = performance.now();
    const array = new Uint32Array(words * SERVICES * (DESTINATIONS + 1));
    for (let i = 0; i < array.length; i += 37) array[i] = i;
    add(`allocate and touch ${words} words x 11,000`, performance.now() - s);
  }
}
const { checkPlanInput } = require('../dist/reconcile/plan.js');
for (let rep = 0; rep < REPS; rep++) {
  for (const [name, fn] of Object.entries(methods)) await withBase((ipvs) => fn(ipvs, name));
}
for (const [k, v] of Object.entries(rows)) console.log(`${k.padEnd(40)} median ${median(v).toFixed(1).padStart(7)}  runs ${v.map((x) => x.toFixed(0)).join(' ')}`);
