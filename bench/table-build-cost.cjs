// The cost of building listTable()'s objects from packed records, on the host, for instruction
// counts under callgrind (no kernel needed): a synthetic 1,000 x 10 table
// (scripts/synthetic-table.cjs) built CALLS times in one piece ('whole') or in eight parts of
// 125 services ('parts', as listTable() hands a 1,000-service table over). The difference of two
// runs' totals over the difference of their CALLS is the cost of a call: 1 against 0 for a
// process's first call, 40 against 20 for a warm one (V8's collections included).
//
//   npm run build:native && npm run build:ts
//   valgrind --tool=callgrind node --single-threaded bench/table-build-cost.cjs whole 20
'use strict';
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist');
const { nativeAddon } = require(path.join(dist, 'native.js'));
const { appendTableFromNative } = require(path.join(dist, 'table.js'));
const { syntheticTable } = require('../scripts/synthetic-table.cjs');

const [mode = 'whole', callsArg = '1'] = process.argv.slice(2);
if (mode !== 'whole' && mode !== 'parts') throw new Error(`mode must be whole or parts, not ${mode}`);
const calls = Number(callsArg);
const layout = nativeAddon().recordLayout;
const S = layout.service.words;
const D = layout.destination.words;
const whole = syntheticTable(layout, 1000, 10);
const parts = [];
for (let p = 0; p < 8; p++) {
  parts.push({ services: whole.services.subarray(p * 125 * S, (p + 1) * 125 * S),
    destinations: whole.destinations.subarray(p * 1250 * D, (p + 1) * 1250 * D), strings: whole.strings });
}
let last = [];
for (let c = 0; c < calls; c++) {
  const services = [];
  if (mode === 'whole') appendTableFromNative(services, whole);
  else for (const part of parts) appendTableFromNative(services, part);
  last = services;
}
if (calls > 0 && last.length !== 1000) throw new Error(`built ${last.length} services, not 1000`);
