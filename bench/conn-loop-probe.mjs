// Diagnostic for the connection reader at one table size (not part of `npm run bench`): fills a
// backup sync daemon's table, then, rounds interleaved, times `cat` of the table, a plain read
// loop in node (the read floor inside a running process), countConnections, and the object
// iterator with what its long event-loop turns are made of (garbage-collection pauses inside
// them, from perf_hooks 'gc' entries).
//
//   scripts/vm/run.sh --kernel 6.17 --conn-tab-bits 20 --memory 4096 -- node bench/conn-loop-probe.mjs [SIZE] [ROUNDS]
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
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

function nodeProbe(mode, flags = []) {
  const out = execFileSync('ip', ['netns', 'exec', backup, 'node', ...flags, path.join(projectRoot, 'bench', 'conn-loop-child.mjs'), mode],
    { encoding: 'utf8', maxBuffer: 1 << 28 });
  return JSON.parse(out.trim().split('\n').at(-1));
}

run('ip', ['netns', 'add', backup]);
run('ip', ['netns', 'add', sender]);
try {
  startSyncBackup(backup, sender, suffix);
  const { connections, seconds } = await fillSyncBackup(backup, sender, size, { clients: 20_000 });
  console.log(`filled ${connections} in ${seconds.toFixed(0)} s`);
  const samples = { cat: [], 'cat start': [], 'node read loop': [], count: [], objects: [] };
  const details = { count: [], objects: [] };
  for (let round = 0; round < rounds; round++) {
    samples.cat.push(shell('cat /proc/net/ip_vs_conn > /dev/null'));
    samples['cat start'].push(shell('cat /dev/null > /dev/null'));
    const read = nodeProbe('read');
    samples['node read loop'].push(read.ms);
    const count = nodeProbe('count');
    samples.count.push(count.ms);
    details.count.push(count);
    const objects = nodeProbe('objects', process.env.PROBE_NODE_FLAGS ? process.env.PROBE_NODE_FLAGS.split(' ') : []);
    samples.objects.push(objects.ms);
    details.objects.push(objects);
    console.log(`round ${round + 1}: ${Object.entries(samples).map(([k, v]) => `${k} ${v.at(-1).toFixed(0)}`).join(', ')}`);
    console.log(`  count: ${JSON.stringify(count)}`);
    console.log(`  objects: ${JSON.stringify(objects)}`);
  }
  const floor = median(samples.cat) - median(samples['cat start']);
  for (const [k, v] of Object.entries(samples)) {
    console.log(`${k}: median ${median(v).toFixed(0)} ms (${v.map((x) => x.toFixed(0)).join(' / ')}), x floor ${(median(v) / floor).toFixed(3)}`);
  }
} finally {
  try { inNetns(backup, 'ipvsadm', ['--stop-daemon', 'backup']); } catch {}
  for (const n of [backup, sender]) try { run('ip', ['netns', 'delete', n]); } catch {}
}
