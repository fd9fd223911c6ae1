// Where listTable's time goes, inside the test VM: the addon's job (dumps, decoding, packing)
// and the JS that builds the objects from the packed records, timed apart, cold (the first
// call in a fresh node process) and warm, next to bench/floor/dump_floor (the same dumps,
// nothing decoded). Not part of `npm run bench`: a tool for finding the time. With --trace,
// also the system calls of each side (strace -c -f) and a perf profile (cpu-clock, kernel and
// user) of --reps warm listings beside one of as many dump_floor runs, summarised per binary
// and per symbol into .cache/list-probe/.
//
//   scripts/vm/run.sh --kernel 6.17 -- node bench/list-probe.mjs [--size 1000x10] [--reps 5] [--trace]
//     [--transport ROUNDS [--variants floor,mmsg,socket,decode,decode-reuse,decode-thread,decode-busy]]
//     [--modes parts,whole [--warm-rounds 4] [--cold N]]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

import { median } from './lib.mjs';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '..', 'dist');
const option = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};

// perf's control fifo (--perf-control FILE): the profile covers only the timed listings.
const perfControl = (command) => {
  const file = option('perf-control');
  if (file) fs.writeFileSync(file, `${command}\n`);
};

/** ipvs.listTable() as users call it (the table in parts, objects built between them), timed whole. */
async function measureListTable(netns, reps) {
  const { Ipvs } = require(path.join(dist, 'index.js'));
  const ipvs = await Ipvs.open({ netns });
  const runs = [];
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    const table = await ipvs.listTable();
    runs.push({ total: performance.now() - start, services: table.length });
  }
  await ipvs.close();
  return runs;
}

async function measure(netns, reps, warmUp = 0) {
  const { nativeAddon } = require(path.join(dist, 'native.js'));
  const { tableFromNative } = require(path.join(dist, 'table.js'));
  const handle = await nativeAddon().IpvsHandle.open(netns);
  const runs = [];
  for (let i = 0; i < reps; i++) {
    if (i === warmUp) perfControl('enable');
    const faults = process.resourceUsage().minorPageFault;
    const start = performance.now();
    const packed = await handle.listTable();
    const dumped = performance.now();
    const table = tableFromNative(packed);
    const end = performance.now();
    runs.push({ native: dumped - start, objects: end - dumped, total: end - start, services: table.length,
      faults: process.resourceUsage().minorPageFault - faults });
  }
  perfControl('disable');
  handle.close();
  return runs;
}

// The listing two ways: 'parts' (ipvs.listTable(): a part's objects built while the pool thread
// dumps the next part) and 'whole' (the dumps in one piece while the JS thread waits idle, then
// every object), the records released after, as listTable() does.
async function openModes(netns) {
  const { Ipvs } = require(path.join(dist, 'index.js'));
  const { nativeAddon } = require(path.join(dist, 'native.js'));
  const { appendTableFromNative } = require(path.join(dist, 'table.js'));
  const ipvs = await Ipvs.open({ netns });
  const handle = await nativeAddon().IpvsHandle.open(netns);
  const { releaseRecords } = nativeAddon();
  const run = {
    parts: () => ipvs.listTable(),
    whole: async () => {
      const last = await handle.listTable();
      const services = [];
      appendTableFromNative(services, last);
      releaseRecords(last.services, last.destinations);
      return services;
    },
  };
  return { run, close: async () => { await ipvs.close(); handle.close(); } };
}

async function timeMode(run, mode) {
  const faults = process.resourceUsage().minorPageFault;
  const cpu = process.cpuUsage();
  const start = performance.now();
  const table = await run[mode]();
  const total = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { total, cpu: (used.user + used.system) / 1000, services: table.length, faults: process.resourceUsage().minorPageFault - faults };
}

if (process.argv.includes('--child-mode')) {
  const { run, close } = await openModes(option('netns'));
  const runs = [];
  for (let i = 0; i < Number(option('reps', '1')); i++) runs.push(await timeMode(run, option('child-mode')));
  await close();
  console.log(JSON.stringify(runs));
  process.exit(0);
}

if (process.argv.includes('--child-parts')) {
  console.log(JSON.stringify(await measureListTable(option('child-parts'), Number(option('reps', '1')))));
  process.exit(0);
}
if (process.argv.includes('--child')) {
  const warmUp = process.argv.includes('--warm-up');
  const runs = await measure(option('child'), Number(option('reps', '1')) + (warmUp ? 1 : 0), warmUp ? 1 : 0);
  console.log(JSON.stringify(warmUp ? runs.slice(1) : runs));
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
  sh('cc', ['-O2', '-Wall', '-pthread', '-o', path.join(floorDir, 'dump_floor'), path.join(here, 'floor', 'dump_floor.c')]);
  const netns = `/run/netns/${name}`;
  const cold = [];
  const floor = [];
  const baseReps = option('modes') ? 1 : reps;
  for (let i = 0; i < baseReps; i++) {
    cold.push(JSON.parse(sh(process.execPath, [fileURLToPath(import.meta.url), '--child', netns, '--reps', '1']))[0]);
    floor.push(JSON.parse(sh('ip', ['netns', 'exec', name, path.join(floorDir, 'dump_floor')])).ms);
  }
  const warm = (await measure(netns, baseReps + 1)).slice(1);
  if (option('transport')) {
    // bench/floor/dump_probe (built on the host, see its header): the floor's loop, the addon's
    // receive pattern and its transport with and without decoding, in one plain process,
    // alternated; printed beside the job's own times below.
    const probe = path.join(floorDir, 'dump_probe');
    const variants = option('variants', 'floor,mmsg,socket,decode,decode-reuse,decode-thread,decode-busy').split(',');
    console.log(`dump_probe, median of ${option('transport')}: ${sh('ip', ['netns', 'exec', name, probe, option('transport'), ...variants]).trim()}`);
    // The same with the record vectors' pages fresh on every listing (as in the addon's job).
    const fresh = execFileSync('ip', ['netns', 'exec', name, probe, option('transport'), 'decode', 'decode-thread', 'socket'],
      { encoding: 'utf8', env: { ...process.env, DUMP_PROBE_FRESH: '1' } });
    console.log(`dump_probe, fresh record pages, median of ${option('transport')}: ${fresh.trim()}`);
  }
  if (option('against')) {
    // This tree's ipvs.listTable() against another build's (a directory with bench/, dist/ and
    // build/), alternated in one boot on one table: each child process lists 4 times, the first
    // cold and the other three warm, and dump_floor runs between the pairs.
    const other = path.resolve(option('against'), 'bench', 'list-probe.mjs');
    const child = (script) => JSON.parse(sh(process.execPath, [script, '--child-parts', netns, '--reps', '4'])).map((r) => r.total);
    const runs = { ours: { cold: [], warm: [] }, other: { cold: [], warm: [] }, floor: [] };
    for (let i = 0; i < reps; i++) {
      for (const [label, script] of i % 2 ? [['other', other], ['ours', fileURLToPath(import.meta.url)]] : [['ours', fileURLToPath(import.meta.url)], ['other', other]]) {
        const [first, ...rest] = child(script);
        runs[label].cold.push(first);
        runs[label].warm.push(...rest);
      }
      runs.floor.push(JSON.parse(sh('ip', ['netns', 'exec', name, path.join(floorDir, 'dump_floor')])).ms);
    }
    const m = (xs) => median(xs).toFixed(1);
    console.log(`A/B against ${option('against')}, ${reps} processes each: cold ours ${m(runs.ours.cold)} ms, other ${m(runs.other.cold)} ms; ` +
      `warm (3 per process) ours ${m(runs.ours.warm)} ms, other ${m(runs.other.warm)} ms; dump_floor ${m(runs.floor)} ms`);
    console.log(JSON.stringify(runs));
  }
  if (option('modes')) {
    // --modes parts,whole: processes of each mode alternated in rotating order, dump_floor
    // after each; --cold N adds N rounds of processes that list once.
    const modes = option('modes').split(',');
    const self = fileURLToPath(import.meta.url);
    const cold = Object.fromEntries(modes.map((m) => [m, []]));
    const warm = Object.fromEntries(modes.map((m) => [m, []]));
    const warmFaults = Object.fromEntries(modes.map((m) => [m, []]));
    const floorRuns = [];
    const rotate = (i) => modes.map((_, k) => modes[(i + k) % modes.length]);
    const coldReps = Number(option('cold', '0'));
    for (let i = 0; i < coldReps; i++) {
      for (const m of rotate(i)) cold[m].push(JSON.parse(sh(process.execPath, [self, '--child-mode', m, '--netns', netns, '--reps', '1']))[0].total);
      floorRuns.push(JSON.parse(sh('ip', ['netns', 'exec', name, path.join(floorDir, 'dump_floor')])).ms);
    }
    // A process per mode and round (no record memory shared between modes): its first listing
    // is a cold one, the second untimed, the next five warm.
    const warmCpu = Object.fromEntries(modes.map((m) => [m, []]));
    for (let i = 0; i < Number(option('warm-rounds', '4')); i++) {
      for (const m of rotate(i)) {
        const runs = JSON.parse(sh(process.execPath, [self, '--child-mode', m, '--netns', netns, '--reps', '7']));
        cold[m].push(runs[0].total);
        for (const r of runs.slice(2)) { warm[m].push(r.total); warmFaults[m].push(r.faults); warmCpu[m].push(r.cpu); }
        floorRuns.push(JSON.parse(sh('ip', ['netns', 'exec', name, path.join(floorDir, 'dump_floor')])).ms);
      }
    }
    const m = (xs) => median(xs).toFixed(1);
    const fl = median(floorRuns);
    console.log(`modes, dump_floor median ${fl.toFixed(1)} ms (min ${Math.min(...floorRuns).toFixed(1)}) of ${floorRuns.length}`);
    for (const k of modes) {
      console.log(`  ${k}: warm ${m(warm[k])} ms (${(median(warm[k]) / fl).toFixed(2)}x, min ${Math.min(...warm[k]).toFixed(1)}, faults ${median(warmFaults[k])}, cpu ${m(warmCpu[k])} ms), ` +
        `cold ${m(cold[k])} ms (${(median(cold[k]) / fl).toFixed(2)}x)`);
    }
    console.log(JSON.stringify({ cold, warm, warmFaults, warmCpu, floor: floorRuns }));
  }
  if (option('floor-threads')) {
    // Whether the kernel serialises IPVS dumps: the destination dumps shared among N threads,
    // each on its own socket, alternated with the one-socket floor.
    const counts = option('floor-threads').split(',').map(Number);
    const byThreads = Object.fromEntries(counts.map((n) => [n, []]));
    for (let i = 0; i < reps; i++) {
      for (const n of counts) byThreads[n].push(JSON.parse(sh('ip', ['netns', 'exec', name, path.join(floorDir, 'dump_floor'), String(n)])).ms);
    }
    console.log(`dump_floor by threads, median of ${reps}: ${counts.map((n) => `${n}: ${median(byThreads[n]).toFixed(1)} ms`).join(', ')}`);
    console.log(JSON.stringify({ byThreads }));
  }
  if (process.argv.includes('--ab')) {
    // The same listing in parts (ipvs.listTable) and in one piece (the job, then the objects),
    // alternated, cold (a fresh process each) and warm (one process, after a warm-up of each).
    const self = fileURLToPath(import.meta.url);
    const coldParts = [];
    const coldWhole = [];
    for (let i = 0; i < reps; i++) {
      coldParts.push(JSON.parse(sh(process.execPath, [self, '--child-parts', netns, '--reps', '1']))[0].total);
      coldWhole.push(JSON.parse(sh(process.execPath, [self, '--child', netns, '--reps', '1']))[0].total);
    }
    await measureListTable(netns, 1);
    const warmParts = [];
    const warmWhole = [];
    for (let i = 0; i < reps; i++) {
      warmParts.push((await measureListTable(netns, 1))[0].total);
      warmWhole.push((await measure(netns, 1))[0].total);
    }
    const m = (xs) => median(xs).toFixed(1);
    console.log(`A/B, median of ${reps}: cold parts ${m(coldParts)} ms, one piece ${m(coldWhole)} ms; warm parts ${m(warmParts)} ms, one piece ${m(warmWhole)} ms`);
    console.log(JSON.stringify({ coldParts, coldWhole, warmParts, warmWhole }));
  }
  if (process.argv.includes('--trace')) {
    const out = path.join(here, '..', '.cache', 'list-probe');
    fs.mkdirSync(out, { recursive: true });
    const inNs = (args) => ['netns', 'exec', name, ...args];
    const floorBin = path.join(floorDir, 'dump_floor');
    const child = [process.execPath, fileURLToPath(import.meta.url), '--child', netns, '--reps', '1'];
    const NET = 'trace=sendto,recvfrom,sendmsg,recvmsg,recvmmsg,poll,ppoll';
    sh('ip', inNs(['strace', '-f', '-c', '-e', NET, '-o', path.join(out, 'floor.strace'), floorBin]));
    sh('strace', ['-f', '-c', '-e', NET, '-o', path.join(out, 'list.strace'), ...child]);
    // The listing's datagrams, for bench/floor/codec_cost.cc on the host.
    sh('ip', inNs(['strace', '-xx', '-s', '70000', '-e', 'trace=recvfrom,sendto', '-o', path.join(out, 'dump.trace'), floorBin]));
    const perfOf = (label, args, controlled = false) => {
      const data = path.join('/tmp', `${label}.perf`);
      const fifo = path.join('/tmp', `${label}.ctl`);
      if (controlled) sh('mkfifo', [fifo]);
      const control = controlled ? ['-D', '-1', '--control', `fifo:${fifo}`] : [];
      sh('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '4000', '-g', ...control, '-o', data, '--', ...args, ...(controlled ? ['--perf-control', fifo] : [])]);
      const report = (sort) => sh('perf', ['report', '-i', data, '--stdio', '--no-children', '-g', 'none', '--sort', sort, '--percent-limit', '0.4']);
      fs.writeFileSync(path.join(out, `${label}.dso.txt`), report('dso'));
      fs.writeFileSync(path.join(out, `${label}.sym.txt`), report('dso,sym'));
    };
    perfOf('floor', ['ip', 'netns', 'exec', name, 'sh', '-c', `for i in $(seq ${reps}); do ${floorBin} >/dev/null; done`]);
    perfOf('list', [process.execPath, '--perf-basic-prof', fileURLToPath(import.meta.url), '--child', netns, '--reps', String(reps), '--warm-up'], true);
    for (const f of ['floor.strace', 'list.strace', 'floor.dso.txt', 'list.dso.txt']) console.log(`--- ${f}\n${fs.readFileSync(path.join(out, f), 'utf8')}`);
    for (const f of ['floor.sym.txt', 'list.sym.txt']) console.log(`--- ${f}\n${fs.readFileSync(path.join(out, f), 'utf8').split('\n').slice(0, 70).join('\n')}`);
  }
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const row = (label, runs) => `${label}: native ${med(runs.map((r) => r.native)).toFixed(1)} ms + objects ${med(runs.map((r) => r.objects)).toFixed(1)} ms = ${med(runs.map((r) => r.total)).toFixed(1)} ms (${med(runs.map((r) => r.faults))} page faults)`;
  console.log(`listTable ${S}x${D}, median of ${reps}`);
  console.log(row('cold', cold));
  console.log(row('warm', warm));
  console.log(`floor (dump_floor): ${med(floor).toFixed(1)} ms`);
  console.log(JSON.stringify({ cold, warm, floor }));
} finally {
  sh('ip', ['netns', 'delete', name]);
}
