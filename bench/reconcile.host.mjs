// Host microbenchmark of apply(desired)'s JavaScript (no kernel): the reconcile benchmark's
// 1,000 x 10 workload, the live table synthesised as the packed records listTable() resolves.
// Wall times on a shared host are noisy; for comparisons, count instructions (valgrind
// --tool=callgrind) of a run with more reps against one with fewer.
//   node bench/reconcile.host.mjs [--size 1000x10] [--reps 30]
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import { option } from './lib.mjs';
import { reconcileWorkload } from './reconcile-workload.mjs';

const require = createRequire(import.meta.url);
const { recordLayout } = require('../dist/records.js');
const { tableFromNative } = require('../dist/table.js');
const { checkPlanInput, buildPlan, checkPlan } = require('../dist/reconcile/plan.js');
const { diffTables } = require('../dist/reconcile/diff.js');
const { orderOperations } = require('../dist/reconcile/order.js');
const { fingerprintOwned } = require('../dist/reconcile/fingerprint.js');
const { currentListing } = require('../dist/reconcile/stale.js');
const { applyTable, planTable } = require('../dist/reconcile/apply.js');
const { requestOffsets } = require('../dist/records.js');
const { liveTable } = require('../dist/reconcile/records.js');

const [SERVICES, DESTINATIONS] = option('size', '1000x10').split('x').map(Number);
const REPS = Number(option('reps', '30'));
const ONLY = option('only', '');  // 'apply' or 'planApply': that stand-in stage alone (callgrind)
const skip = ONLY !== '';
const { base, changed } = reconcileWorkload(SERVICES, DESTINATIONS);

// A table as packed reply records (destinations listed newest first, as the kernel does).
const L = recordLayout();
const ipv4Words = new Map();
const ipv4 = (text) => {
  let word = ipv4Words.get(text);
  if (word === undefined) { const p = text.split('.').map(Number); ipv4Words.set(text, (word = (p[0] | (p[1] << 8) | (p[2] << 16) | (p[3] << 24)) >>> 0)); }
  return word;
};
function packTable(table) {
  const svcWords = new Uint32Array(table.length * L.service.words);
  const dstWords = new Uint32Array(table.reduce((n, s) => n + s.destinations.length, 0) * L.destination.words);
  let next = 0;
  table.forEach((service, s) => {
    const b = s * L.service.words, at = L.service.at, bit = L.service.bit;
    svcWords[b] = bit.af | bit.protocol | bit.address | bit.port | bit.scheduler | bit.flags | bit.timeout | bit.netmask | bit.destinationCount | bit.stats;
    svcWords[b + at.af] = 2; svcWords[b + at.protocol] = 6; svcWords[b + at.address] = ipv4(service.address); svcWords[b + at.port] = 80;
    svcWords[b + at.scheduler] = 0; svcWords[b + at.flags] = 2; svcWords[b + at.netmask] = 0xffffffff; svcWords[b + at.destinationCount] = service.destinations.length;
    for (let d = service.destinations.length - 1; d >= 0; d--, next++) {
      const dest = service.destinations[d];
      const o = next * L.destination.words, da = L.destination.at, db = L.destination.bit;
      dstWords[o] = db.address | db.port | db.forward | db.weight | db.upperThreshold | db.lowerThreshold | db.af | db.tunnelType | db.tunnelPort | db.tunnelFlags
        | db.activeConnections | db.inactiveConnections | db.persistentConnections | db.stats;
      dstWords[o + da.address] = ipv4(dest.address); dstWords[o + da.port] = 80; dstWords[o + da.forward] = 3; dstWords[o + da.weight] = dest.weight; dstWords[o + da.af] = 2;
    }
  });
  return { services: svcWords, destinations: dstWords, strings: ['wlc'] };
}
const native = packTable(base);
const after = packTable(changed);

function time(label, fn) {
  if (skip) return undefined;
  const t = [];
  let out;
  for (let i = 0; i < REPS; i++) { const s = performance.now(); out = fn(); t.push(performance.now() - s); }
  t.sort((a, b) => a - b);
  console.log(`${label.padEnd(48)} median ${t[t.length >> 1].toFixed(2)} ms, best ${t[0].toFixed(2)} ms`);
  return out;
}

const input = skip ? checkPlanInput(changed, undefined, undefined) : time('checkPlanInput (check 11,000 destinations)', () => checkPlanInput(changed, undefined, undefined));
time('tableFromNative (the floor: objects of the table)', () => tableFromNative(native));
time('liveTable (records, destinations decoded lazily)', () => liveTable(native));
const plan = time('liveTable + buildPlan (diff, order)', () => buildPlan(input, liveTable(native), true));
if (plan && plan.operations.length !== 110) throw new Error(`planned ${plan.operations.length} operations, expected 110`);
time('all of it: check + liveTable + plan', () => buildPlan(checkPlanInput(changed, undefined, undefined), liveTable(native), true));
time('read-back diff (the whole table after, drift)', () => {
  const drift = orderOperations(diffTables(input.desired, liveTable(after), input.scope, input.removal));
  if (drift.length !== 0) throw new Error('drift on the host');
});
const stored = time('plan(): non-deferred plan, as JSON', () => JSON.stringify(buildPlan(input, liveTable(native))));
const made = buildPlan(input, liveTable(native), true);
time('apply(plan) made here: checkPlan + listings compared', () => {
  const { plan: given, input: back } = checkPlan(made);
  if (!currentListing(given, liveTable(native), back.desired, back.scope)) throw new Error('stale on the host');
});
time('apply(plan) of JSON: checkPlan + fingerprint', () => {
  const { plan: given, input: back } = checkPlan(JSON.parse(stored));
  if (fingerprintOwned(liveTable(native), back.desired, back.scope) !== given.fingerprint) throw new Error('stale on the host');
});

// apply() against a stand-in kernel holding `table` (IPv4 TCP services, as packTable): the
// listing and the read-back are answered from it, the batch changes it. The base table and
// the changed one are packed once (`native`, `after`), so the stand-in costs little beside apply.
function standIn(table) {
  const state = table.map((service) => ({ ...service, destinations: service.destinations.map((d) => ({ ...d })) }));
  let changes = 0;
  const packed = () => (changes === 0 ? native : changes === 110 ? after : packTable(state));
  const byKey = (words, at) => state.find((s) => ipv4(s.address) === words[at + o.svcAddress] && s.port === words[at + o.svcPort]);
  const o = requestOffsets();
  const find = (key) => state.find((s) => s.address === key.address && s.port === key.port);
  const handle = {
    listTable: async () => packed(),
    queryMany: async (records) => {
      const parts = [];
      const counts = [];
      for (let at = 0; at < records.length; at += o.words) {
        if (records[at + o.command] === 8) {
          const service = byKey(records, at);
          const destinations = service ? service.destinations : [];
          parts.push(packTable([{ ...service, destinations }]).destinations);
          counts.push(destinations.length);
        } else {
          const all = packed();
          counts.push(state.length);
          parts.push(null, all.services);
        }
      }
      const dst = parts.filter((p) => p !== parts.at(-1) && p);
      const destinations = new Uint32Array(dst.reduce((n, p) => n + p.length, 0));
      let n = 0;
      for (const p of dst) { destinations.set(p, n); n += p.length; }
      return { services: parts.at(-1), destinations, strings: ['wlc'], counts: Uint32Array.from(counts) };
    },
  };
  const ops = [];
  const batch = {
    addService: (s) => ops.push(() => state.push({ ...s, destinations: [] })),
    editService: () => {},
    deleteService: (s) => ops.push(() => state.splice(state.indexOf(find(s)), 1)),
    addDestination: (s, d) => ops.push(() => find(s).destinations.push({ ...d })),
    editDestination: (s, d) => ops.push(() => Object.assign(find(s).destinations.find((x) => x.address === d.address), d)),
    deleteDestination: (s, d) => ops.push(() => { const list = find(s).destinations; list.splice(list.findIndex((x) => x.address === d.address), 1); }),
    commit: async () => ops.splice(0).map((op) => (op(), changes++, { ok: true })),
  };
  return { enqueue: (operation, work) => work(handle), batch: () => batch, listDestinations: () => { throw new Error('not in the stand-in'); } };
}
const applied = ONLY === 'planApply' ? undefined : await (async () => {
  const t = [];
  let result;
  for (let i = 0; i < REPS; i++) {
    const ipvs = standIn(base);
    const s = performance.now();
    result = await applyTable(ipvs, changed, undefined);
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  console.log(`${'apply(desired), stand-in kernel'.padEnd(48)} median ${t[t.length >> 1].toFixed(2)} ms, best ${t[0].toFixed(2)} ms`);
  return result;
})();
if (applied && (!applied.ok || applied.plan.operations.length !== 110)) {
  throw new Error(`apply on the stand-in: ok ${applied.ok}, ${applied.plan.operations.length} operations, drift ${JSON.stringify(applied.drift.slice(0, 3))}`);
}
if (ONLY !== 'apply') {
  const t = [];
  for (let i = 0; i < REPS; i++) {
    const ipvs = standIn(base);
    const s = performance.now();
    const plan = await planTable(ipvs, changed, undefined);
    const result = await applyTable(ipvs, plan, undefined);
    t.push(performance.now() - s);
    if (!result.ok || result.plan.operations.length !== 110) throw new Error('plan then apply on the stand-in');
  }
  t.sort((a, b) => a - b);
  console.log(`${'plan() then apply(plan), stand-in kernel'.padEnd(48)} median ${t[t.length >> 1].toFixed(2)} ms, best ${t[0].toFixed(2)} ms`);
}
