// Where the batch commit, listTable and apply spend time beyond bench/floor/, inside the test
// VM: system calls of each side (strace -c); the listing's raw dump datagrams, recorded for
// bench/floor/codec_cost.cc on the host (and that program timed in the guest); listTable's
// native job and objects apart, cold and warm; apply(desired)'s check, listing and plan apart;
// and the warm commit timed with and without an event-loop delay sampler running. Not part of
// `npm run bench`: a tool for finding the time. Writes .cache/floor-probe/.
//
//   scripts/vm/run.sh --kernel 6.17 --memory 4096 -- node bench/floor-probe.mjs [--out DIR] [--reps 3]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { createRequire } from 'node:module';

import { Ipvs } from '../dist/index.js';
import { median, option, requireTestVm } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const self = fileURLToPath(import.meta.url);
const [S, D] = option('size', '1000x10').split('x').map(Number);

function rules() {
  const out = [];
  for (let s = 0; s < S; s++) {
    const service = { protocol: 'tcp', address: `10.${(s >> 16) & 255}.${(s >> 8) & 255}.${s & 255}`, port: 80, scheduler: 'wlc' };
    const destinations = [];
    for (let d = 0; d < D; d++) destinations.push({ address: `172.16.${(s >> 8) & 255}.${d + 1}`, port: 80, forward: 'route', weight: 1 + (d % 5) });
    out.push({ service, destinations });
  }
  return out;
}

async function commitOnce(ipvs, monitor) {
  const batch = ipvs.batch();
  for (const { service, destinations } of rules()) {
    batch.addService(service);
    for (const d of destinations) batch.addDestination(service, d);
  }
  const histogram = monitor ? monitorEventLoopDelay({ resolution: 1 }) : undefined;
  histogram?.enable();
  const start = performance.now();
  const results = await batch.commit();
  const ms = performance.now() - start;
  histogram?.disable();
  if (results.some((r) => !r.ok)) throw new Error('commit failed');
  return ms;
}

const require = createRequire(import.meta.url);
const { tableFromNative } = require('../dist/table.js');
const { checkPlanInput, buildPlan } = require('../dist/reconcile/plan.js');
const { liveTable } = require('../dist/reconcile/records.js');

/** listTable's parts in this process: the single-job native listing, objects from it, and the whole call. */
async function listParts(ipvs) {
  const t0 = performance.now();
  const packed = await ipvs.enqueue('probe', (handle) => handle.listTable());
  const t1 = performance.now();
  tableFromNative(packed);
  const t2 = performance.now();
  await ipvs.listTable();
  const t3 = performance.now();
  return { nativeJob: t1 - t0, objects: t2 - t1, listTable: t3 - t2 };
}

/** apply(desired)'s parts on the table of `rules()`: a change of 1% of the weights, new in each `round`. */
async function applyParts(ipvs, round) {
  const changed = rules().map(({ service, destinations }, s) => ({
    ...service, destinations: destinations.map((d, i) => (i === 0 && s % 10 === 0 ? { ...d, weight: d.weight + 10 + round } : d)),
  }));
  const t0 = performance.now();
  const input = checkPlanInput(changed, undefined, undefined);
  const t1 = performance.now();
  const live = liveTable(await ipvs.enqueue('probe', (handle) => handle.listTable()));
  const t2 = performance.now();
  const plan = buildPlan(input, live, true);
  const t3 = performance.now();
  const result = await ipvs.apply(changed);
  const t4 = performance.now();
  if (!result.ok || plan.operations.length !== result.plan.operations.length) throw new Error('apply probe: unexpected plan');
  return { check: t1 - t0, listLive: t2 - t1, plan: t3 - t2, apply: t4 - t3, operations: plan.operations.length };
}

// Children: `--child list|commit|parts <netns>`.
const childAt = process.argv.indexOf('--child');
if (childAt > 0) {
  const [mode, netns] = process.argv.slice(childAt + 1);
  const ipvs = await Ipvs.open({ netns });
  const start = performance.now();
  if (mode === 'parts') {
    console.log(JSON.stringify(await listParts(ipvs)));
    await ipvs.close();
    process.exit(0);
  }
  if (mode === 'list') await ipvs.listTable();
  else await commitOnce(ipvs, false);
  console.log(JSON.stringify({ ms: performance.now() - start }));
  await ipvs.close();
  process.exit(0);
}

requireTestVm('floor-probe.mjs');
const out = option('out', path.join(here, '..', '.cache', 'floor-probe'));
const reps = Number(option('reps', '3'));
fs.mkdirSync(out, { recursive: true });
const sh = (cmd, args, input) => execFileSync(cmd, args, { input, encoding: 'utf8', maxBuffer: 256 << 20 });
const floorDir = path.join(here, '..', '.cache', 'floor');
fs.mkdirSync(floorDir, { recursive: true });
for (const program of ['batch_floor', 'dump_floor']) sh('cc', ['-O2', '-Wall', '-pthread', '-o', path.join(floorDir, program), path.join(here, 'floor', `${program}.c`)]);
const restoreText = rules().map(({ service, destinations }) => {
  const svc = `-t ${service.address}:${service.port}`;
  return [`-A ${svc} -s ${service.scheduler}`, ...destinations.map((d) => `-a ${svc} -r ${d.address}:${d.port} -g -w ${d.weight}`)].join('\n');
}).join('\n') + '\n';

let count = 0;
async function inNamespace(fn) {
  const name = `fprobe-${process.pid}-${count++}`;
  sh('ip', ['netns', 'add', name]);
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  try {
    return await fn(name, `/run/netns/${name}`);
  } finally {
    sh('ip', ['netns', 'delete', name]);
  }
}
const NET = 'trace=sendto,recvfrom,sendmsg,recvmsg,recvmmsg,poll,ppoll';
const straceCount = (name, file, args, input) => {
  sh('ip', ['netns', 'exec', name, 'strace', '-f', '-c', '-e', NET, '-o', path.join(out, file), ...args], input);
  return fs.readFileSync(path.join(out, file), 'utf8');
};

// ---- syscalls: commit -------------------------------------------------------------------------
const report = {};
await inNamespace(async (name) => { report.batchFloorStrace = straceCount(name, 'batch_floor.strace', [path.join(floorDir, 'batch_floor')], restoreText); });
await inNamespace(async (name, netns) => { report.commitStrace = straceCount(name, 'commit.strace', [process.execPath, self, '--child', 'commit', netns]); });

// ---- syscalls and recorded datagrams: listing ----------------------------------------------------
await inNamespace(async (name, netns) => {
  sh('ip', ['netns', 'exec', name, 'ipvsadm', '-R'], restoreText);
  report.dumpFloorStrace = straceCount(name, 'dump_floor.strace', [path.join(floorDir, 'dump_floor')]);
  report.listStrace = straceCount(name, 'list.strace', [process.execPath, self, '--child', 'list', netns]);
  sh('ip', ['netns', 'exec', name, 'strace', '-xx', '-s', '70000', '-e', 'trace=recvfrom,sendto', '-o', path.join(out, 'dump.trace'), path.join(floorDir, 'dump_floor')]);
  const floor = [];
  const cold = [];
  for (let i = 0; i < reps; i++) {
    floor.push(JSON.parse(sh('ip', ['netns', 'exec', name, path.join(floorDir, 'dump_floor')])).ms);
    cold.push(JSON.parse(sh(process.execPath, [self, '--child', 'list', netns])).ms);
  }
  report.list = { floor, cold, floorMedian: median(floor), coldMedian: median(cold) };
  const coldParts = [];
  for (let i = 0; i < reps; i++) coldParts.push(JSON.parse(sh(process.execPath, [self, '--child', 'parts', netns])));
  const ipvs = await Ipvs.open({ netns });
  await listParts(ipvs);
  const warmParts = [];
  for (let i = 0; i < reps; i++) warmParts.push(await listParts(ipvs));
  const applies = [];
  for (let i = 0; i < reps + 1; i++) applies.push(await applyParts(ipvs, i));  // a new weight each round: 100 edits
  await ipvs.close();
  const med = (runs) => Object.fromEntries(Object.keys(runs[0]).map((k) => [k, Math.round(median(runs.map((r) => r[k])) * 10) / 10]));
  report.listParts = { cold: med(coldParts), warm: med(warmParts), floor: median(floor) };
  report.applyParts = med(applies.slice(1));
  // The codec on the recorded dump, in this guest: ms per pass.
  const codec = path.join(out, 'codec_cost');
  sh('g++', ['-std=c++17', '-O2', '-I/usr/include/libnl3', path.join(here, 'floor', 'codec_cost.cc'), path.join(here, '..', 'native', 'ipvs_codec.cc'),
    path.join(here, '..', 'native', 'records.cc'), '-lnl-3', '-lnl-genl-3', '-o', codec]);
  const timeCodec = (args) => { const s0 = performance.now(); sh(codec, args); return performance.now() - s0; };
  const trace = path.join(out, 'dump.trace');
  report.codec = {
    decodePassMs: (timeCodec(['decode', trace, '11']) - timeCodec(['decode', trace, '1'])) / 10,
    encodePassMs: (timeCodec(['encode', '11']) - timeCodec(['encode', '1'])) / 10,
  };
});

// ---- commit: warm with and without the delay monitor, cold, floor --------------------------------
const ipvsWarm = { monitored: [], plain: [], cold: [], floor: [] };
{
  await inNamespace(async (_name, netns) => {
    const ipvs = await Ipvs.open({ netns });
    await commitOnce(ipvs, false);  // warm-up
    await ipvs.close();
  });
  for (let i = 0; i < reps; i++) {
    for (const monitored of [false, true]) {
      const ms = await inNamespace(async (_name, netns) => {
        const ipvs = await Ipvs.open({ netns });
        try { return await commitOnce(ipvs, monitored); } finally { await ipvs.close(); }
      });
      ipvsWarm[monitored ? 'monitored' : 'plain'].push(ms);
    }
    ipvsWarm.cold.push(await inNamespace(async (_name, netns) => JSON.parse(sh(process.execPath, [self, '--child', 'commit', netns])).ms));
    ipvsWarm.floor.push(await inNamespace(async (name) => JSON.parse(sh('ip', ['netns', 'exec', name, path.join(floorDir, 'batch_floor')], restoreText)).ms));
  }
}
report.commit = Object.fromEntries(Object.entries(ipvsWarm).map(([k, v]) => [k, { runs: v.map((x) => Math.round(x)), median: Math.round(median(v)) }]));
fs.writeFileSync(path.join(out, 'report.json'), JSON.stringify(report, null, 2));
for (const key of ['batchFloorStrace', 'commitStrace', 'dumpFloorStrace', 'listStrace']) console.log(`--- ${key}\n${report[key]}`);
console.log(JSON.stringify({ list: report.list, listParts: report.listParts, applyParts: report.applyParts, codec: report.codec, commit: report.commit }, null, 1));
