// Where a fresh `ipvs-netlink` process spends its time in the VM (not a benchmark: a probe).
// Installs the package on the VM's tmpfs as cli.bench.mjs does, then times, in fresh processes:
// node -e 0, loading the addon, loading it and opening a handle, restore --dry-run, restore,
// ipvsadm -R; conns and -Lnc on IPVS_PROBE_CONNS connections (0 skips them). With
// IPVS_PROBE_PROFILE=DIR it writes a --cpu-prof of each of our commands there.
//
//   /work/wt/vmbench scripts/vm/run.sh --kernel 6.17 --conn-tab-bits 20 --memory 4096 -- node bench/cli-probe.mjs
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { fillSyncBackup, inNetns, installPackage, median, ms, projectRoot, requireTestVm, restoreRules, run, startSyncBackup,
  tearDown } from './lib.mjs';

requireTestVm('cli-probe.mjs');

const rounds = Number(process.env.IPVS_BENCH_ROUNDS ?? 3);
const connections = Number(process.env.IPVS_PROBE_CONNS ?? 100000);
const profileDir = process.env.IPVS_PROBE_PROFILE;
const suffix = randomBytes(3).toString('hex');
const table = `clpt-${suffix}`;
const backup = `clpb-${suffix}`;
const sender = `clps-${suffix}`;
const installed = `/tmp/ipvs-netlink-${suffix}`;
const main = path.join(installed, JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')).bin['ipvs-netlink']);
const addon = path.join(installed, 'build', 'Release', 'ipvs_netlink.node');
const rulesFile = `/tmp/clp-rules-${suffix}.txt`;

function timed(netns, script) {
  const out = `/tmp/clp-out-${suffix}`;
  const clock = inNetns(netns, 'bash', ['-c', `s=$EPOCHREALTIME; ${script} > ${out}; e=$EPOCHREALTIME; echo "$s $e"`]);
  const [start, end] = clock.trim().split(/\s+/).map(Number);
  rmSync(out, { force: true });
  return (end - start) * 1000;
}

function measure(name, netns, script, before = () => {}) {
  const samples = [];
  for (let i = 0; i < rounds; i++) {
    before();
    samples.push(timed(netns, script));
  }
  console.log(`${name.padEnd(48)} median ${ms(median(samples)).padStart(6)} ms   (${samples.map(ms).join(', ')})`);
}

function profile(name, netns, script, before = () => {}) {
  if (!profileDir) return;
  mkdirSync(profileDir, { recursive: true });
  before();
  inNetns(netns, 'bash', ['-c', `node --cpu-prof --cpu-prof-dir=${profileDir} --cpu-prof-name=${name}.cpuprofile ${script} > /dev/null`]);
  console.log(`profile written: ${path.join(profileDir, `${name}.cpuprofile`)}`);
}

installPackage(installed);
writeFileSync(rulesFile, restoreRules());
for (const netns of [table, backup, sender]) run('ip', ['netns', 'add', netns]);
try {
  run('ip', ['-n', table, 'link', 'set', 'lo', 'up']);
  const clear = () => inNetns(table, 'ipvsadm', ['-C']);
  measure('node -e 0', table, 'node -e 0');
  measure('node: load the addon', table, `node -e 'require("${addon}")'`);
  measure('node: load the addon, open a handle', table,
    `node -e 'require("${addon}").IpvsHandle.open("").then((h) => h.close())'`);
  measure('ipvs-netlink --help', table, `node ${main} --help`);
  measure('ipvs-netlink restore --dry-run', table, `node ${main} restore --dry-run ${rulesFile}`);
  measure('ipvsadm -R', table, `ipvsadm -R < ${rulesFile}`, clear);
  measure('ipvs-netlink restore', table, `node ${main} restore ${rulesFile}`, clear);
  measure('ipvs-netlink ipvsadm -R', table, `node ${main} ipvsadm -R < ${rulesFile}`, clear);
  const saved = inNetns(table, 'ipvsadm', ['-Sn']).split('\n').filter(Boolean).length;
  console.log(`after the last restore: ${saved} of 11000 rules`);
  profile('restore-dry-run', table, `${main} restore --dry-run ${rulesFile}`);
  profile('restore', table, `${main} restore ${rulesFile}`, clear);

  if (connections > 0) {
    startSyncBackup(backup, sender, suffix);
    await fillSyncBackup(backup, sender, connections);
    const AWK = '$3 == "ESTABLISHED" { split($4, a, ":"); n[a[1]]++ } END { for (k in n) if (n[k] > 100) print n[k], k }';
    measure('cat /proc/net/ip_vs_conn', backup, 'cat /proc/net/ip_vs_conn');
    measure('ipvsadm -lnc | awk', backup, `ipvsadm -lnc | awk '${AWK}'`);
    measure('ipvs-netlink conns --by client …', backup, `node ${main} conns --by client --state ESTABLISHED --min 101`);
    measure('ipvsadm -Lnc', backup, 'ipvsadm -Lnc');
    measure('ipvs-netlink ipvsadm -Lnc', backup, `node ${main} ipvsadm -Lnc`);
    measure('ipvs-netlink conns', backup, `node ${main} conns`);
    profile('conns-by-client', backup, `${main} conns --by client --state ESTABLISHED --min 101`);
    profile('ipvsadm-Lnc', backup, `${main} ipvsadm -Lnc`);
  }
} finally {
  tearDown({ backup, namespaces: [table, backup, sender], paths: [rulesFile, installed] });
}
