// Where `ipvs-netlink ipvsadm -Ln`, `restore` and `conns --by client` spend their wall time in
// the VM, phase by phase (a probe, not a benchmark). Installs the package on the VM's tmpfs as
// cli.bench.mjs does, plus one copy per variant directory under IPVS_PROBE_VARIANTS (each holds
// a dist/cli/bin.js and dist/cli/bundle.cache that replace the installed ones), then times in
// fresh processes, interleaved, with bash's clock; and, once per command, an strace limited by
// seccomp to a few calls (execve, openat, socket, write, exit_group), so that the traced process
// runs at nearly full speed, which dates: user code start (bin.js opened), bundle loaded, the
// kernel read started, output written, exit.
//
//   /work/wt/vmbench scripts/vm/run.sh --kernel 6.17 --conn-tab-bits 20 --memory 4096 -- node bench/cli-phase-probe.mjs
// Environment: IPVS_BENCH_ROUNDS (5), IPVS_PROBE_CONNS (100000; 0 skips conns), IPVS_PROBE_RESTORE (1),
// IPVS_PROBE_DIST (a dist/ to run instead of the project's).
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { fillSyncBackup, inNetns, installPackage, median, ms, projectRoot, requireTestVm, restoreRules, run, startSyncBackup,
  tearDown } from './lib.mjs';

requireTestVm('cli-phase-probe.mjs');

const rounds = Number(process.env.IPVS_BENCH_ROUNDS ?? 5);
const connections = Number(process.env.IPVS_PROBE_CONNS ?? 100000);
const suffix = randomBytes(3).toString('hex');
const table = `clph-${suffix}`;
const backup = `clpb-${suffix}`;
const sender = `clps-${suffix}`;
const installed = `/tmp/ipvs-netlink-${suffix}`;
const rulesFile = `/tmp/clph-rules-${suffix}.txt`;
const out = `/tmp/clph-out-${suffix}`;
const variantsDir = process.env.IPVS_PROBE_VARIANTS;

function timed(netns, script) {
  const clock = inNetns(netns, 'bash', ['-c', `s=$EPOCHREALTIME; ${script} > ${out}; e=$EPOCHREALTIME; echo "$s $e"`]);
  const [start, end] = clock.trim().split(/\s+/).map(Number);
  return { time: (end - start) * 1000, output: readFileSync(out, 'utf8') };
}

function phases(netns, name, script) {
  if (!existsSync('/usr/bin/strace')) return;
  const trace = `/tmp/clph-strace-${suffix}`;
  inNetns(netns, 'bash', ['-c', `strace -f --seccomp-bpf -ttt -e trace=execve,openat,socket,write,exit_group -o ${trace} ${script} > /dev/null`]);
  const lines = readFileSync(trace, 'utf8').split('\n').filter(Boolean);
  rmSync(trace, { force: true });
  const t0 = Number(lines[0].split(/\s+/)[1]);
  const marks = [];
  for (const line of lines) {
    const call = line.split(/\s+/).slice(2).join(' ');
    if (/bin\.js"|bundle\.(js|cache)"|\.node"|ip_vs_conn|rules|socket\(AF_NETLINK|write\(1,|exit_group|\+\+\+ exited/.test(call) && !/ENOENT/.test(call)) {
      marks.push(`${((Number(line.split(/\s+/)[1]) - t0) * 1000).toFixed(0).padStart(5)} ${call.slice(0, 90)}`);
    }
  }
  console.log(`--- phases of ${name}:\n${marks.join('\n')}`);
}

function compare(title, netns, methods, before = () => {}) {
  const names = Object.keys(methods);
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  const outputs = {};
  for (let round = 0; round < rounds; round++) {
    for (const name of names.map((_, i) => names[(i + round) % names.length])) {
      const where = before(name) ?? netns;
      const { time, output } = timed(where, methods[name]);
      samples[name].push(time);
      outputs[name] = output;
    }
  }
  console.log(`== ${title}`);
  for (const name of names) console.log(`${name.padEnd(52)} median ${ms(median(samples[name])).padStart(6)} ms   (${samples[name].map(ms).join(', ')})`);
  return outputs;
}

installPackage(installed);
// IPVS_PROBE_DIST: a dist/ directory to run instead of the project's (a snapshot, so that the
// project can be rebuilt while the probe waits for its turn).
if (process.env.IPVS_PROBE_DIST) {
  rmSync(path.join(installed, 'dist'), { recursive: true });
  cpSync(process.env.IPVS_PROBE_DIST, path.join(installed, 'dist'), { recursive: true });
}
const binRel = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')).bin['ipvs-netlink'];
const variants = { base: installed };
if (variantsDir) {
  for (const name of readdirSync(variantsDir)) {
    const dir = `${installed}-${name}`;
    cpSync(installed, dir, { recursive: true });
    cpSync(path.join(variantsDir, name), path.join(dir, 'dist', 'cli'), { recursive: true });
    variants[name] = dir;
  }
}
const cli = (name) => `node ${path.join(variants[name], binRel)}`;
writeFileSync(rulesFile, restoreRules());
for (const netns of [table, backup, sender]) run('ip', ['netns', 'add', netns]);
const fresh = [];
try {
  run('ip', ['-n', table, 'link', 'set', 'lo', 'up']);
  inNetns(table, 'bash', ['-c', `ipvsadm -R < ${rulesFile}`]);
  const methods = { 'ipvsadm -Ln': 'ipvsadm -Ln', 'node -e 0': 'node -e 0' };
  for (const name of Object.keys(variants)) methods[`ours ${name}`] = `${cli(name)} ipvsadm -Ln`;
  const outputs = compare('-Ln, 1,000 x 10', table, methods);
  for (const name of Object.keys(variants)) {
    if (outputs[`ours ${name}`] !== outputs['ipvsadm -Ln']) console.log(`  ours ${name}: OUTPUT DIFFERS from ipvsadm -Ln`);
  }
  phases(table, 'node -e 0', 'node -e 0');
  for (const name of Object.keys(variants)) phases(table, `-Ln ${name}`, `${cli(name)} ipvsadm -Ln`);
  phases(table, 'ipvsadm -Ln', 'ipvsadm -Ln');

  if (process.env.IPVS_PROBE_RESTORE !== '0') {
    let n = 0;
    const newNetns = () => {
      const netns = `${table}-r${n++}`;
      fresh.push(netns);
      run('ip', ['netns', 'add', netns]);
      run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
      return netns;
    };
    const restores = { 'ipvsadm -R': `ipvsadm -R < ${rulesFile}` };
    for (const name of Object.keys(variants)) restores[`ours ${name} restore`] = `${cli(name)} restore ${rulesFile}`;
    restores['ours base restore --dry-run'] = `${cli('base')} restore --dry-run ${rulesFile}`;
    compare('restore 1,000 x 10, each into a new namespace', table, restores, newNetns);
    for (const name of Object.keys(variants)) phases(newNetns(), `restore ${name}`, `${cli(name)} restore ${rulesFile}`);
  }

  if (connections > 0) {
    startSyncBackup(backup, sender, suffix);
    await fillSyncBackup(backup, sender, connections);
    const AWK = '$3 == "ESTABLISHED" { split($4, a, ":"); n[a[1]]++ } END { for (k in n) if (n[k] > 100) print n[k], k }';
    const conns = { 'cat /proc/net/ip_vs_conn': 'cat /proc/net/ip_vs_conn', 'node -e 0': 'node -e 0', 'ipvsadm -lnc | awk': `ipvsadm -lnc | awk '${AWK}'` };
    for (const name of Object.keys(variants)) conns[`ours ${name} conns`] = `${cli(name)} conns --by client --state ESTABLISHED --min 101`;
    compare('conns query', backup, conns);
    for (const name of Object.keys(variants)) phases(backup, `conns ${name}`, `${cli(name)} conns --by client --state ESTABLISHED --min 101`);
    phases(backup, 'cat', 'cat /proc/net/ip_vs_conn');
  }
} finally {
  for (const netns of fresh) {
    try { inNetns(netns, 'ipvsadm', ['-C']); run('ip', ['netns', 'delete', netns]); } catch { /* gone */ }
  }
  tearDown({ backup, namespaces: [table, backup, sender], paths: [rulesFile, out, ...Object.values(variants)] });
}
