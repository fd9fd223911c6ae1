// Where apply's time goes in the VM: the reconcile benchmark's workload, with every native call
// of apply timed (the rest is JavaScript), and the floor's parts timed the same way.
//   node bench/reconcile-probe.mjs [--reps 5]
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { Ipvs } from '../dist/index.js';
import { median, option, requireTestVm } from './lib.mjs';
import { reconcileWorkload } from './reconcile-workload.mjs';

requireTestVm('reconcile-probe.mjs');
const REPS = Number(option('reps', '5'));
const SERVICES = 1000, DESTINATIONS = 10;
const { base, changed, floorOps } = reconcileWorkload(SERVICES, DESTINATIONS);

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
  ipvs.enqueue = (op, work) => original(op, async (h) => { const s = performance.now(); try { return await work(h); } finally { calls.push([op, performance.now() - s]); } });
  return calls;
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
    const s = performance.now();
    const r = await ipvs.apply(changed);
    const total = performance.now() - s;
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
for (let rep = 0; rep < REPS; rep++) {
  for (const [name, fn] of Object.entries(methods)) await withBase((ipvs) => fn(ipvs, name));
}
for (const [k, v] of Object.entries(rows)) console.log(`${k.padEnd(40)} median ${median(v).toFixed(1).padStart(7)}  runs ${v.map((x) => x.toFixed(0)).join(' ')}`);
