// Host microbenchmark of apply(desired)'s JavaScript (no kernel): the reconcile benchmark's
// 1,000 x 10 workload, the live table synthesised as the packed records listTable() resolves.
// Wall times on a shared host are noisy; for comparisons, count instructions (valgrind
// --tool=callgrind) of a run with more reps against one with fewer.
//   node bench/reconcile.host.mjs [--size 1000x10] [--reps 30]
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import { option } from './lib.mjs';

const require = createRequire(import.meta.url);
const { recordLayout } = require('../dist/records.js');
const { tableFromNative } = require('../dist/table.js');
const { checkPlanInput, buildPlan } = require('../dist/reconcile/plan.js');
const { liveTable } = require('../dist/reconcile/records.js');

const [SERVICES, DESTINATIONS] = option('size', '1000x10').split('x').map(Number);
const REPS = Number(option('reps', '30'));
const serviceOf = (s) => ({ protocol: 'tcp', address: `10.${(s >> 16) & 255}.${(s >> 8) & 255}.${s & 255}`, port: 80, scheduler: 'wlc' });
const destinationOf = (s, d, weight) => ({ address: `172.16.${(s >> 8) & 255}.${d + 1}`, port: 80, forward: 'route', weight });
const base = [];
for (let s = 0; s < SERVICES; s++) {
  const destinations = [];
  for (let d = 0; d < DESTINATIONS; d++) destinations.push(destinationOf(s, d, 1 + (d % 5)));
  base.push({ ...serviceOf(s), destinations });
}
const changed = base.map((service) => ({ ...service, destinations: service.destinations.map((d) => ({ ...d })) }));
const EDITS = Math.round(SERVICES * DESTINATIONS / 100);
for (let i = 0; i < EDITS; i++) changed[Math.floor((i * SERVICES) / EDITS)].destinations[i % DESTINATIONS].weight += 10;
for (let s = 0; s < 5; s++) changed[s].destinations.push(destinationOf(s, DESTINATIONS, 1));
for (let s = 5; s < 10; s++) changed[s].destinations.pop();

// The base table as packed reply records (destinations listed newest first, as the kernel does).
const L = recordLayout();
const svcWords = new Uint32Array(SERVICES * L.service.words);
const dstWords = new Uint32Array(SERVICES * DESTINATIONS * L.destination.words);
const ipv4 = (text) => { const p = text.split('.').map(Number); return (p[0] | (p[1] << 8) | (p[2] << 16) | (p[3] << 24)) >>> 0; };
let next = 0;
base.forEach((service, s) => {
  const b = s * L.service.words, at = L.service.at, bit = L.service.bit;
  svcWords[b] = bit.af | bit.protocol | bit.address | bit.port | bit.scheduler | bit.flags | bit.timeout | bit.netmask | bit.destinationCount | bit.stats;
  svcWords[b + at.af] = 2; svcWords[b + at.protocol] = 6; svcWords[b + at.address] = ipv4(service.address); svcWords[b + at.port] = 80;
  svcWords[b + at.scheduler] = 0; svcWords[b + at.flags] = 2; svcWords[b + at.netmask] = 0xffffffff; svcWords[b + at.destinationCount] = DESTINATIONS;
  for (let d = DESTINATIONS - 1; d >= 0; d--, next++) {
    const dest = service.destinations[d];
    const o = next * L.destination.words, da = L.destination.at, db = L.destination.bit;
    dstWords[o] = db.address | db.port | db.forward | db.weight | db.upperThreshold | db.lowerThreshold | db.af | db.tunnelType | db.tunnelPort | db.tunnelFlags
      | db.activeConnections | db.inactiveConnections | db.persistentConnections | db.stats;
    dstWords[o + da.address] = ipv4(dest.address); dstWords[o + da.port] = 80; dstWords[o + da.forward] = 3; dstWords[o + da.weight] = dest.weight; dstWords[o + da.af] = 2;
  }
});
const native = { services: svcWords, destinations: dstWords, strings: ['wlc'] };

function time(label, fn) {
  const t = [];
  let out;
  for (let i = 0; i < REPS; i++) { const s = performance.now(); out = fn(); t.push(performance.now() - s); }
  t.sort((a, b) => a - b);
  console.log(`${label.padEnd(48)} median ${t[t.length >> 1].toFixed(2)} ms, best ${t[0].toFixed(2)} ms`);
  return out;
}

const input = time('checkPlanInput (check 11,000 destinations)', () => checkPlanInput(changed, undefined, undefined));
time('tableFromNative (the floor: objects of the table)', () => tableFromNative(native));
time('liveTable (records, destinations decoded lazily)', () => liveTable(native));
const plan = time('liveTable + buildPlan (diff, order)', () => buildPlan(input, liveTable(native), true));
if (plan.operations.length !== 110) throw new Error(`planned ${plan.operations.length} operations, expected 110`);
time('all of it: check + liveTable + plan', () => buildPlan(checkPlanInput(changed, undefined, undefined), liveTable(native), true));
