// The ipvs-netlink command against ipvsadm (issue 12), run inside the VM by scripts/bench.sh.
// Process start is included on both sides: each command runs in a fresh process inside the
// namespace, timed by bash's clock around it.
//
// The package is first installed on the VM's own disk (a tmpfs), as it would be on a real
// machine: the project directory reaches the VM over 9p without caching, where every stat()
// and read() of a module costs milliseconds, while ipvsadm comes from the cached host root.
// `node -e 0` is timed beside them: the floor of any node command.
//
//   1,000 services x 10 real servers: `ipvs-netlink ipvsadm -Ln` vs `ipvsadm -Ln`,
//     `ipvs-netlink restore FILE` vs `ipvsadm -R < FILE` (into a new namespace each time);
//   100k connections (filled through a backup sync daemon): `ipvs-netlink conns --by client
//     --state ESTABLISHED --min 101` vs `ipvsadm -lnc | awk`, and `ipvs-netlink ipvsadm -Lnc`
//     vs `ipvsadm -Lnc`.
//
// Environment: IPVS_BENCH_ROUNDS (3), IPVS_BENCH_CLI_CONNS (100000), IPVS_BENCH_CLI_ONLY (a
// comma-separated subset of restore, floor, list, conns, lnc: the comparisons to run; all by default).
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import {
  fillSyncBackup, inNetns, installPackage, median, ms, printTable, projectRoot, ratio, requireTestVm, restoreRules, run, startSyncBackup,
  tearDown, writeResult,
} from './lib.mjs';

requireTestVm('cli.bench.mjs');

const kernel = process.env.IPVS_VM_KERNEL ?? 'unknown';
const rounds = Number(process.env.IPVS_BENCH_ROUNDS ?? 3);
const connections = Number(process.env.IPVS_BENCH_CLI_CONNS ?? 100000);
const suffix = randomBytes(3).toString('hex');
const table = `clit-${suffix}`;
const backup = `clib-${suffix}`;
const sender = `clis-${suffix}`;
const installed = `/tmp/ipvs-netlink-${suffix}`;
// The package's bin, as `npx ipvs-netlink` or a global install runs it.
const bin = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')).bin['ipvs-netlink'];
const cli = `node ${path.join(installed, bin)}`;
const rulesFile = `/tmp/cli-rules-${suffix}.txt`;
const restoreNamespaces = [];
const only = (process.env.IPVS_BENCH_CLI_ONLY ?? 'restore,floor,list,conns,lnc').split(',');
const runs = (part) => only.includes(part);

/** Times `script` inside the namespace with bash's clock; returns ms and what it printed. */
function timed(netns, script) {
  const out = `/tmp/cli-out-${suffix}`;
  const clock = inNetns(netns, 'bash', ['-c', `s=$EPOCHREALTIME; ${script} > ${out}; e=$EPOCHREALTIME; echo "$s $e"`]);
  const [start, end] = clock.trim().split(/\s+/).map(Number);
  const output = readFileSync(out, 'utf8');
  rmSync(out, { force: true });
  return { time: (end - start) * 1000, output };
}

/** Runs each method `rounds` times, interleaved, rotating the order every round. */
function compare(title, methods, before = () => {}) {
  const samples = Object.fromEntries(Object.keys(methods).map((m) => [m, []]));
  const outputs = {};
  const names = Object.keys(methods);
  for (let round = 0; round < rounds; round++) {
    for (const name of names.map((_, i) => names[(i + round) % names.length])) {
      before(name);
      const { time, output } = methods[name]();
      samples[name].push(time);
      outputs[name] = output;
      console.log(`  ${title}, round ${round + 1}, ${name}: ${ms(time)} ms`);
    }
  }
  return { samples, outputs, medians: Object.fromEntries(names.map((n) => [n, median(samples[n])])) };
}

const results = {};
const rows = [];
function report(name, ours, reference, measured, agree) {
  const speedup = measured.medians[reference] / measured.medians[ours];
  rows.push([name, ms(measured.medians[reference]), ms(measured.medians[ours]), ratio(speedup), agree ? 'yes' : 'NO']);
  results[name] = { reference, ours, medianMs: measured.medians, samplesMs: measured.samples, speedup, outputsAgree: agree };
}

installPackage(installed);
run('ip', ['netns', 'add', table]);
run('ip', ['netns', 'add', backup]);
run('ip', ['netns', 'add', sender]);
try {
  // NAT real servers need a namespace whose loopback is up (else the kernel refuses them, EINVAL).
  run('ip', ['-n', table, 'link', 'set', 'lo', 'up']);
  // ---- 1,000 x 10 ----
  writeFileSync(rulesFile, restoreRules());
  // Each restore goes into a namespace of its own, new and empty. Not into a table emptied with
  // -C: the kernel keeps deleted real servers in a per-namespace trash for a minute or two, and
  // every real server added meanwhile walks that list (ip_vs_trash_get_dest), which adds the
  // same seconds to both commands whenever the previous round's -C is recent. Each namespace is
  // emptied (-C returns when done) and deleted right after its round: a full table left behind
  // keeps the kernel's rate estimators busy with its 11,000 counters during later rounds, and a
  // namespace deleted full frees its table in the background.
  let fresh = 0;
  const savedLines = [];
  const restoreIn = (script) => {
    const netns = `${table}-r${fresh++}`;
    restoreNamespaces.push(netns);
    run('ip', ['netns', 'add', netns]);
    run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    const result = timed(netns, script);
    savedLines.push(inNetns(netns, 'ipvsadm', ['-Sn']).split('\n').filter(Boolean).length);
    inNetns(netns, 'ipvsadm', ['-C']);
    run('ip', ['netns', 'delete', netns]);
    restoreNamespaces.pop();
    return result;
  };
  if (runs('restore')) {
    const restore = compare('restore 1000x10', {
      'ipvsadm -R': () => restoreIn(`ipvsadm -R < ${rulesFile}`),
      'ipvs-netlink restore': () => restoreIn(`${cli} restore ${rulesFile}`),
    });
    console.log(`  rules in the table after each restore (of 11000): ${savedLines.join(', ')}`);
    report('restore, 1,000 x 10', 'ipvs-netlink restore', 'ipvsadm -R', restore, savedLines.every((n) => n === 11000));
  }
  inNetns(table, 'bash', ['-c', `ipvsadm -R < ${rulesFile}`]);

  if (runs('floor')) {
    const floor = compare('node -e 0', {
      'ipvsadm -Ln': () => timed(table, 'ipvsadm -Ln'),
      'node -e 0': () => timed(table, 'node -e 0'),
    });
    report('floor: `node -e 0` vs ipvsadm -Ln, 1,000 x 10', 'node -e 0', 'ipvsadm -Ln', floor, true);
  }

  if (runs('list')) {
    const list = compare('list 1000x10', {
      'ipvsadm -Ln': () => timed(table, 'ipvsadm -Ln'),
      'ipvs-netlink ipvsadm -Ln': () => timed(table, `${cli} ipvsadm -Ln`),
    });
    report('-Ln, 1,000 x 10', 'ipvs-netlink ipvsadm -Ln', 'ipvsadm -Ln', list,
      list.outputs['ipvsadm -Ln'] === list.outputs['ipvs-netlink ipvsadm -Ln']);
  }

  // ---- 100k connections ----
  if (runs('conns') || runs('lnc')) {
    startSyncBackup(backup, sender, suffix);
    const { connections: have } = await fillSyncBackup(backup, sender, connections);
    if (runs('conns')) {
      const AWK = '$3 == "ESTABLISHED" { split($4, a, ":"); n[a[1]]++ } END { for (k in n) if (n[k] > 100) print n[k], k }';
      const query = compare('autoban query 100k', {
        'ipvsadm -lnc | awk': () => timed(backup, `ipvsadm -lnc | awk '${AWK}'`),
        'ipvs-netlink conns': () => timed(backup, `${cli} conns --by client --state ESTABLISHED --min 101`),
      });
      const normalize = (text) => text.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' ')).sort().join('\n');
      const agree = normalize(query.outputs['ipvsadm -lnc | awk']) === normalize(query.outputs['ipvs-netlink conns']);
      report(`conns query, ${have.toLocaleString('en-US')} connections`, 'ipvs-netlink conns', 'ipvsadm -lnc | awk', query, agree);
    }

    if (runs('lnc')) {
      const listing = compare('-Lnc 100k', {
        'ipvsadm -Lnc': () => timed(backup, 'ipvsadm -Lnc'),
        'ipvs-netlink ipvsadm -Lnc': () => timed(backup, `${cli} ipvsadm -Lnc`),
      });
      // Expiry times tick between the two reads: compare everything but the expire column.
      const shape = (text) => text.split('\n').map((l) => l.replace(/^(\S+\s+)\S+/, '$1')).join('\n');
      report(`-Lnc, ${have.toLocaleString('en-US')} connections`, 'ipvs-netlink ipvsadm -Lnc', 'ipvsadm -Lnc', listing,
        shape(listing.outputs['ipvsadm -Lnc']) === shape(listing.outputs['ipvs-netlink ipvsadm -Lnc']));
    }
  }
} finally {
  tearDown({ backup, namespaces: [table, backup, sender, ...restoreNamespaces], paths: [rulesFile, installed] });
}

printTable(`Linux ${kernel}: the ipvs-netlink command vs ipvsadm, process start included (median of ${rounds})`,
  ['what', 'ipvsadm ms', 'ours ms', 'ours faster by', 'same answer'], rows);
writeResult(`cli-${kernel}`, { benchmark: 'cli', kernel, rounds, results });
