// Diagnostic for the connection reader at one table size (not part of `npm run bench`): fills a
// backup sync daemon's table, then, rounds interleaved, times `cat` of the table, a plain read
// loop in node (the read floor inside a running process), countConnections, an idle process's
// event-loop delay (the guest's own), and the object iterator with what its long event-loop turns are made of (garbage-collection pauses inside
// them, from perf_hooks 'gc' entries).
//
//   scripts/vm/run.sh --kernel 6.17 --conn-tab-bits 20 --memory 4096 -- node bench/conn-loop-probe.mjs [SIZE] [ROUNDS]
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';

import { fillSyncBackup, inNetns, median, projectRoot, requireTestVm, run, startSyncBackup } from './lib.mjs';

requireTestVm('conn-loop-probe.mjs');
const size = Number(process.argv[2] ?? 1_000_000);
const rounds = Number(process.argv[3] ?? 3);
const suffix = randomBytes(3).toString('hex');
const backup = `bk-${suffix}`;
const sender = `snd-${suffix}`;

function shell(script) {
  const out = inNetns(backup, 'bash', ['-c', `s=$EPOCHREALTIME; ${script}; e=$EPOCHREALTIME; echo "$s $e"`]);
  const [s, e] = out.trim().split('\n').at(-1).split(/\s+/).map(Number);
  return (e - s) * 1000;
}

// A variant's NODE_ARGS (space-free, '+' between them) go to node itself, e.g. --single-threaded-gc.
function nodeProbe(mode, env = {}) {
  const nodeArgs = env.NODE_ARGS ? env.NODE_ARGS.split('+') : [];
  const out = execFileSync('ip', ['netns', 'exec', backup, 'node', ...nodeArgs, path.join(projectRoot, 'bench', 'conn-loop-child.mjs'), mode],
    { encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, ...env } });
  return JSON.parse(out.trim().split('\n').at(-1));
}

run('ip', ['netns', 'add', backup]);
run('ip', ['netns', 'add', sender]);
try {
  startSyncBackup(backup, sender, suffix);
  const { connections, seconds } = await fillSyncBackup(backup, sender, size, { clients: 20_000 });
  console.log(`filled ${connections} in ${seconds.toFixed(0)} s`);
  // A saved copy on the guest's tmpfs: counting it is the parsing alone.
  const copy = `/dev/shm/ip_vs_conn-${suffix}`;
  inNetns(backup, 'bash', ['-c', `cat /proc/net/ip_vs_conn > ${copy}`]);
  // Extra probes, IPVS_PROBE_VARIANTS='objects 1000=IPVS_PROBE_BATCH:1000;count old=IPVS_PROBE_DIST:/x,...':
  // a name (a count probe if it starts with "count") and the child's environment.
  const variants = (process.env.IPVS_PROBE_VARIANTS ?? '').split(';').filter(Boolean).map((variant) => {
    const [name, pairs = ''] = variant.split('=');
    return [name, Object.fromEntries(pairs.split(',').filter(Boolean).map((pair) => pair.split(':')))];
  });
  const samples = { cat: [], 'cat start': [], 'node read loop': [], count: [], 'count saved copy': [], objects: [] };
  for (const [name] of variants) samples[name] = [];
  for (let round = 0; round < rounds; round++) {
    samples.cat.push(shell('cat /proc/net/ip_vs_conn > /dev/null'));
    samples['cat start'].push(shell('cat /dev/null > /dev/null'));
    samples['node read loop'].push(nodeProbe('read').ms);
    const count = nodeProbe('count');
    samples.count.push(count.ms);
    samples['count saved copy'].push(nodeProbe('count', { IPVS_PROBE_PATH: copy }).ms);
    // The same sampler in a process doing nothing: the floor this guest sets at this moment.
    const idle = nodeProbe('idle');
    console.log(`  idle: ${JSON.stringify(idle)}`);
    const objects = nodeProbe('objects');
    samples.objects.push(objects.ms);
    console.log(`  count: ${JSON.stringify(count)}`);
    console.log(`  objects: ${JSON.stringify(objects)}`);
    for (const [name, env] of variants) {
      const result = nodeProbe(name.startsWith('count') ? 'count' : 'objects', env);
      samples[name].push(result.ms);
      console.log(`  ${name}: ${JSON.stringify(result)}`);
    }
    console.log(`round ${round + 1}: ${Object.entries(samples).map(([k, v]) => `${k} ${v.at(-1).toFixed(0)}`).join(', ')}`);
  }
  rmSync(copy, { force: true });
  const floor = median(samples.cat) - median(samples['cat start']);
  for (const [k, v] of Object.entries(samples)) {
    console.log(`${k}: median ${median(v).toFixed(0)} ms (${v.map((x) => x.toFixed(0)).join(' / ')}), x floor ${(median(v) / floor).toFixed(3)}`);
  }
} finally {
  try { inNetns(backup, 'ipvsadm', ['--stop-daemon', 'backup']); } catch {}
  for (const n of [backup, sender]) try { run('ip', ['netns', 'delete', n]); } catch {}
}
