// Where listTable's time goes, inside the test VM: the addon's job (dumps, decoding, packing)
// and the JS that builds the objects from the packed records, timed apart, cold (the first
// call in a fresh node process) and warm, next to bench/floor/dump_floor (the same dumps,
// nothing decoded). Not part of `npm run bench`: a tool for finding the time.
//
//   scripts/vm/run.sh --kernel 6.17 -- node bench/list-probe.mjs [--size 1000x10] [--reps 5]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '..', 'dist');
const option = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};

async function measure(netns, reps) {
  const { nativeAddon } = require(path.join(dist, 'native.js'));
  const { tableFromNative } = require(path.join(dist, 'table.js'));
  const handle = await nativeAddon().IpvsHandle.open(netns);
  const runs = [];
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    const packed = await handle.listTable();
    const dumped = performance.now();
    const table = tableFromNative(packed);
    const end = performance.now();
    runs.push({ native: dumped - start, objects: end - dumped, total: end - start, services: table.length });
  }
  handle.close();
  return runs;
}

if (process.argv.includes('--child')) {
  console.log(JSON.stringify(await measure(option('child'), Number(option('reps', '1')))));
  process.exit(0);
}

const sh = (cmd, args, input) => execFileSync(cmd, args, { input, encoding: 'utf8', maxBuffer: 256 << 20 });
const [S, D] = option('size', '1000x10').split('x').map(Number);
const reps = Number(option('reps', '5'));
const name = `listprobe-${process.pid}`;
sh('ip', ['netns', 'add', name]);
try {
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  const lines = [];
  for (let s = 0; s < S; s++) {
    const svc = `-t 10.${(s >> 16) & 255}.${(s >> 8) & 255}.${s & 255}:80`;
    lines.push(`-A ${svc} -s wlc`);
    for (let d = 0; d < D; d++) lines.push(`-a ${svc} -r 172.16.${(s >> 8) & 255}.${d + 1}:80 -g -w ${1 + (d % 5)}`);
  }
  sh('ip', ['netns', 'exec', name, 'ipvsadm', '-R'], lines.join('\n') + '\n');
  const floorDir = path.join(here, '..', '.cache', 'floor');
  fs.mkdirSync(floorDir, { recursive: true });
  sh('cc', ['-O2', '-Wall', '-o', path.join(floorDir, 'dump_floor'), path.join(here, 'floor', 'dump_floor.c')]);
  const netns = `/run/netns/${name}`;
  const cold = [];
  const floor = [];
  for (let i = 0; i < reps; i++) {
    cold.push(JSON.parse(sh(process.execPath, [fileURLToPath(import.meta.url), '--child', netns, '--reps', '1']))[0]);
    floor.push(JSON.parse(sh('ip', ['netns', 'exec', name, path.join(floorDir, 'dump_floor')])).ms);
  }
  const warm = (await measure(netns, reps + 1)).slice(1);
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const row = (label, runs) => `${label}: native ${med(runs.map((r) => r.native)).toFixed(1)} ms + objects ${med(runs.map((r) => r.objects)).toFixed(1)} ms = ${med(runs.map((r) => r.total)).toFixed(1)} ms`;
  console.log(`listTable ${S}x${D}, median of ${reps}`);
  console.log(row('cold', cold));
  console.log(row('warm', warm));
  console.log(`floor (dump_floor): ${med(floor).toFixed(1)} ms`);
  console.log(JSON.stringify({ cold, warm, floor }));
} finally {
  sh('ip', ['netns', 'delete', name]);
}
