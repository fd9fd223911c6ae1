// Where apply(desired)'s time goes, inside the test VM: each phase of the reconcile benchmark's
// workload timed apart (the listing's native job, reading its records, checking the desired
// state, the diff, the batch, the read-back's native job, its diff), next to the floor's
// listTable() (objects) in the same namespace state. Not part of `npm run bench`.
//
//   scripts/vm/run.sh --kernel 6.17 -- node bench/reconcile-probe.mjs [--reps 6]
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

import { Ipvs } from '../dist/index.js';
import { median, option, requireTestVm } from './lib.mjs';

requireTestVm('reconcile-probe.mjs');
const require = createRequire(import.meta.url);
const { checkPlanInput, buildPlan } = require('../dist/reconcile/plan.js');
const { liveTable, layout, serviceAt, withDestinationRecords, destinationRecordsOf } = require('../dist/reconcile/records.js');
const { diffTables, indexLive } = require('../dist/reconcile/diff.js');
const { RequestWriter } = require('../dist/records.js');
const { checkServiceKey, serviceFromWire } = require('../dist/service.js');
const { serviceKeyText } = require('../dist/reconcile/settings.js');
const { tableFromNative } = require('../dist/table.js');

const REPS = Number(option('reps', '6'));
const serviceOf = (s) => ({ protocol: 'tcp', address: `10.${(s >> 16) & 255}.${(s >> 8) & 255}.${s & 255}`, port: 80, scheduler: 'wlc' });
const destinationOf = (s, d, weight) => ({ address: `172.16.${(s >> 8) & 255}.${d + 1}`, port: 80, forward: 'route', weight });
const base = [];
for (let s = 0; s < 1000; s++) {
  const destinations = [];
  for (let d = 0; d < 10; d++) destinations.push(destinationOf(s, d, 1 + (d % 5)));
  base.push({ ...serviceOf(s), destinations });
}
const changed = base.map((service) => ({ ...service, destinations: service.destinations.map((d) => ({ ...d })) }));
for (let i = 0; i < 100; i++) changed[i * 10].destinations[i % 10].weight += 10;
for (let s = 0; s < 5; s++) changed[s].destinations.push(destinationOf(s, 10, 1));
for (let s = 5; s < 10; s++) changed[s].destinations.pop();

const sh = (command, args) => execFileSync(command, args, { encoding: 'utf8' });
const phases = {};
const mark = (name, start) => { (phases[name] ??= []).push(performance.now() - start); return performance.now(); };

for (let rep = 0; rep < REPS; rep++) {
  const name = `rcprobe-${rep}`;
  sh('ip', ['netns', 'add', name]);
  const ipvs = await Ipvs.open({ netns: `/run/netns/${name}` });
  try {
    const batch = ipvs.batch();
    for (const { destinations, ...service } of base) {
      batch.addService(service);
      for (const d of destinations) batch.addDestination(service, d);
    }
    await batch.commit();
    let t = performance.now();
    const objects = await ipvs.listTable();
    t = mark('floor listTable() (objects)', t);
    const native = await ipvs.enqueue('probe', (h) => h.listTable());
    t = mark('listTable native job', t);
    const live = liveTable(native);
    t = mark('liveTable (records)', t);
    const input = checkPlanInput(changed, undefined, undefined);
    t = mark('checkPlanInput', t);
    const plan = buildPlan(input, live, true);
    t = mark('buildPlan (diff, order)', t);
    const commit = ipvs.batch();
    for (const op of plan.operations) {
      if (op.op === 'addDestination') commit.addDestination(op.service, op.destination);
      else if (op.op === 'editDestination') commit.editDestination(op.service, op.destination);
      else if (op.op === 'deleteDestination') commit.deleteDestination(op.service, op.destination);
    }
    t = mark('batch queue', t);
    const results = await commit.commit();
    t = mark('batch commit', t);
    const writer = new RequestWriter(120);
    const touched = new Map();
    for (const op of plan.operations) {
      const { wire } = checkServiceKey(op.service);
      const key = serviceKeyText(serviceFromWire(wire));
      if (touched.has(key)) continue;
      touched.set(key, touched.size);
      writer.add(8, wire, undefined);
    }
    writer.add(4, undefined, undefined);
    t = mark('read-back requests', t);
    const answer = await ipvs.enqueue('probe', (h) => h.queryMany(writer.records(), writer.strings));
    t = mark('read-back native job', t);
    const firsts = new Uint32Array(answer.counts.length);
    for (let i = 1; i < firsts.length; i++) firsts[i] = firsts[i - 1] + answer.counts[i - 1];
    const earlier = indexLive(live);
    const after = [];
    for (let b = 0; b < answer.services.length; b += layout().svcWords) {
      const service = serviceAt(answer.services, b, answer.strings);
      const key = serviceKeyText(service);
      const r = touched.get(key);
      after.push(r !== undefined
        ? withDestinationRecords(service, {
          words: answer.destinations, start: firsts[r] * layout().dstWords, stride: layout().dstWords, count: answer.counts[r], family: service.family,
        })
        : withDestinationRecords(service, destinationRecordsOf(earlier.get(key))));
    }
    t = mark('read-back assembly', t);
    const drift = diffTables(input.desired, after, input.scope, input.removal);
    t = mark('read-back diff', t);
    const result = await ipvs.apply(changed);
    mark('ipvs.apply (no-op, a second time)', t);
    if (objects.length !== 1000 || results.some((r) => !r.ok) || plan.operations.length !== 110 || result.plan.operations.length !== 0 ||
      drift.services.some((s) => s.service || s.additions.length || s.edits.length || s.removals.length)) {
      throw new Error('probe: unexpected state');
    }
    t = performance.now();
    tableFromNative(native);
    mark('tableFromNative of the same records', t);
  } finally {
    await ipvs.close();
    sh('ip', ['netns', 'delete', name]);
  }
}
console.log(`reconcile probe, median of ${REPS - 1} (the first, cold, left out), first run in brackets:`);
for (const [name, values] of Object.entries(phases)) {
  console.log(`  ${name.padEnd(38)} ${median(values.slice(1)).toFixed(1).padStart(8)} ms   [${values[0].toFixed(1)}]   all: ${values.map((v) => v.toFixed(0)).join(' ')}`);
}
