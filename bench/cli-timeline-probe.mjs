// Where `ipvs-netlink ipvsadm -Ln` and `restore` spend their time in the VM (a probe, not a
// benchmark): each runs in a fresh process, timed with bash's clock, once plain and once with
// bench/cli-timeline.cjs preloaded, which dates node's own start, the addon's dlopen, the
// kernel read or batch (called, settled), the bundle's compile and run, the first write and the
// exit (ms since the process's time origin; medians over the rounds). Beside them: ipvsadm,
// `node -e 0`, and the addon alone loading and listing (listTableIn). Then, on
// IPVS_PROBE_CONNS connections (filled through a backup sync daemon), `conns --by client --state
// ESTABLISHED --min 101` beside `ipvsadm -lnc | awk` and the addon alone counting.
//
//   /work/wt/vmbench scripts/vm/run.sh --kernel 6.17 --conn-tab-bits 20 --memory 4096 -- node bench/cli-timeline-probe.mjs
// Environment: IPVS_BENCH_ROUNDS (5), IPVS_PROBE_LIST (1), IPVS_PROBE_RESTORE (1),
// IPVS_PROBE_CONNS (100000; 0 skips), IPVS_PROBE_DISTS (`name=DIR,…`: each DIR a dist/ to run
// as a variant beside the project's).
import { randomBytes } from 'node:crypto';
import { cpSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

import {
  fillSyncBackup, inNetns, installPackage, median, ms, projectRoot, requireTestVm, restoreRules, run, startSyncBackup, tearDown,
} from './lib.mjs';
import { writeFileSync } from 'node:fs';

requireTestVm('cli-timeline-probe.mjs');

const rounds = Number(process.env.IPVS_BENCH_ROUNDS ?? 5);
const suffix = randomBytes(3).toString('hex');
const table = `cltl-${suffix}`;
const backup = `cltb-${suffix}`;
const sender = `clts-${suffix}`;
const connections = Number(process.env.IPVS_PROBE_CONNS ?? 100000);
const installed = `/tmp/ipvs-netlink-${suffix}`;
const rulesFile = `/tmp/cltl-rules-${suffix}.txt`;
const out = `/tmp/cltl-out-${suffix}`;
const err = `/tmp/cltl-err-${suffix}`;
const preload = path.join(projectRoot, 'bench', 'cli-timeline.cjs');

installPackage(installed);
const variants = { base: installed };
for (const spec of (process.env.IPVS_PROBE_DISTS ?? '').split(',').filter(Boolean)) {
  const [name, dir] = spec.split('=');
  const copy = `${installed}-${name}`;
  cpSync(installed, copy, { recursive: true });
  rmSync(path.join(copy, 'dist'), { recursive: true });
  cpSync(dir, path.join(copy, 'dist'), { recursive: true });
  variants[name] = copy;
}
const bin = (name) => path.join(variants[name], 'dist', 'cli', 'bin.js');
const addon = path.join(installed, 'build', 'Release', 'ipvs_netlink.node');

function timed(netns, script) {
  const clock = inNetns(netns, 'bash', ['-c', `s=$EPOCHREALTIME; ${script} > ${out} 2> ${err}; e=$EPOCHREALTIME; echo "$s $e"`]);
  const [start, end] = clock.trim().split(/\s+/).map(Number);
  const stderr = readFileSync(err, 'utf8');
  const line = stderr.split('\n').find((l) => l.startsWith('TIMELINE '));
  return { time: (end - start) * 1000, output: readFileSync(out, 'utf8'), marks: line ? JSON.parse(line.slice(9)) : undefined };
}

function compare(title, methods, where) {
  const names = Object.keys(methods);
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  const marks = Object.fromEntries(names.map((n) => [n, {}]));
  const outputs = {};
  for (let round = 0; round < rounds; round++) {
    for (const name of names.map((_, i) => names[(i + round) % names.length])) {
      const result = timed(where(name), methods[name]);
      samples[name].push(result.time);
      outputs[name] = result.output;
      for (const [mark, at] of Object.entries(result.marks ?? {})) {
        if (typeof at === 'number') (marks[name][mark] ??= []).push(at);
        else if (at) console.log(`  ${name}: ${mark} = ${at}`);
      }
    }
  }
  console.log(`== ${title} (median of ${rounds})`);
  for (const name of names) {
    console.log(`${name.padEnd(44)} ${ms(median(samples[name])).padStart(6)} ms   (${samples[name].map(ms).join(', ')})`);
    const line = Object.entries(marks[name]).sort((a, b) => median(a[1]) - median(b[1]))
      .map(([mark, values]) => `${mark} ${ms(median(values))}`).join(' | ');
    if (line) console.log(`    ${line}`);
  }
  return outputs;
}

writeFileSync(rulesFile, restoreRules());
run('ip', ['netns', 'add', table]);
const fresh = [];
try {
  run('ip', ['-n', table, 'link', 'set', 'lo', 'up']);
  inNetns(table, 'bash', ['-c', `ipvsadm -R < ${rulesFile}`]);
  const methods = {
    'ipvsadm -Ln': 'ipvsadm -Ln',
    'node -e 0': `node -r ${preload} -e 0`,
    'addon alone: listTableIn': `node -r ${preload} -e 'require("${addon}").listTableIn("")'`,
  };
  for (const name of Object.keys(variants)) {
    methods[`${name} -Ln`] = `node ${bin(name)} ipvsadm -Ln`;
    methods[`${name} -Ln, timeline`] = `node -r ${preload} ${bin(name)} ipvsadm -Ln`;
  }
  if (process.env.IPVS_PROBE_LIST !== '0') {
    const outputs = compare('-Ln, 1,000 x 10', methods, () => table);
    for (const name of Object.keys(methods)) {
      if (name.includes('-Ln') && name !== 'ipvsadm -Ln' && outputs[name] !== outputs['ipvsadm -Ln']) console.log(`  ${name}: OUTPUT DIFFERS`);
    }
  }
  if (process.env.IPVS_PROBE_RESTORE !== '0') {
    let n = 0;
    const restores = { 'ipvsadm -R': `ipvsadm -R < ${rulesFile}` };
    for (const name of Object.keys(variants)) {
      restores[`${name} restore`] = `node ${bin(name)} restore ${rulesFile}`;
      restores[`${name} restore, timeline`] = `node -r ${preload} ${bin(name)} restore ${rulesFile}`;
    }
    compare('restore 1,000 x 10, each into a new namespace', restores, () => {
      for (const old of fresh.splice(0)) {
        inNetns(old, 'ipvsadm', ['-C']);
        run('ip', ['netns', 'delete', old]);
      }
      const netns = `${table}-r${n++}`;
      fresh.push(netns);
      run('ip', ['netns', 'add', netns]);
      run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
      return netns;
    });
  }
  if (connections > 0) {
    run('ip', ['netns', 'add', backup]);
    run('ip', ['netns', 'add', sender]);
    startSyncBackup(backup, sender, suffix);
    await fillSyncBackup(backup, sender, connections);
    const AWK = '$3 == "ESTABLISHED" { split($4, a, ":"); n[a[1]]++ } END { for (k in n) if (n[k] > 100) print n[k], k }';
    const query = 'conns --by client --state ESTABLISHED --min 101';
    const request = JSON.stringify({ netns: '', path: '', sync: false, strict: false, states: ['ESTABLISHED'], by: 'client', minCount: 101, top: 0 });
    const queries = {
      'ipvsadm -lnc | awk': `ipvsadm -lnc | awk '${AWK}'`,
      'node -e 0': `node -r ${preload} -e 0`,
      'addon alone: countConnections': `node -r ${preload} -e 'require("${addon}").countConnections(${request})'`,
    };
    for (const name of Object.keys(variants)) {
      queries[`${name} conns`] = `node ${bin(name)} ${query}`;
      queries[`${name} conns, timeline`] = `node -r ${preload} ${bin(name)} ${query}`;
    }
    const normalize = (text) => text.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' ')).sort().join('\n');
    const outputs = compare(`${query}, ${connections} connections`, queries, () => backup);
    for (const name of Object.keys(queries)) {
      if (name.includes(' conns') && normalize(outputs[name]) !== normalize(outputs['ipvsadm -lnc | awk'])) console.log(`  ${name}: OUTPUT DIFFERS`);
    }
  }
} finally {
  for (const netns of fresh) {
    try { inNetns(netns, 'ipvsadm', ['-C']); run('ip', ['netns', 'delete', netns]); } catch { /* gone */ }
  }
  tearDown({ backup, namespaces: [table, backup, sender], paths: [rulesFile, out, err, ...Object.values(variants)] });
}
