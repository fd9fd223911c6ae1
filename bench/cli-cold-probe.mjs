// Where a short `ipvs-netlink ipvsadm -Ln` spends its time before and around the real work, in
// the VM (a probe, not a benchmark). Installs the package on the VM's tmpfs as cli.bench.mjs
// does, restores 1,000 x 10, then times in fresh processes, interleaved: ipvsadm -Ln, node -e 0,
// loading the addon, the addon's listing alone (listTableIn, as the bin's head start), our command through dist/cli/main.js (the modules one by one), through the
// package's bin (the bundle and its code cache), through the bin without the code cache, through
// main.js under each V8 flag set in IPVS_PROBE_FLAGS (`;`-separated), and, when
// IPVS_PROBE_BASELINE names a dist/ directory built from another commit, through its main.js.
// Then `restore FILE` (bin, main.js, the baseline) against ipvsadm -R.
// IPVS_PROBE_PROFILE=DIR writes a --cpu-prof of our command there; IPVS_PROBE_STRACE=1 prints
// an `strace -f -r` timeline of our command and of ipvsadm's.
//
//   /work/wt/vmbench scripts/vm/run.sh --kernel 6.17 --memory 2048 -- node bench/cli-cold-probe.mjs
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { inNetns, installPackage, median, ms, requireTestVm, restoreRules, run } from './lib.mjs';

requireTestVm('cli-cold-probe.mjs');

const rounds = Number(process.env.IPVS_BENCH_ROUNDS ?? 5);
const profileDir = process.env.IPVS_PROBE_PROFILE;
const flagSets = (process.env.IPVS_PROBE_FLAGS ?? '').split(';').map((s) => s.trim()).filter(Boolean);
const suffix = randomBytes(3).toString('hex');
const table = `clcp-${suffix}`;
const installed = `/tmp/ipvs-netlink-${suffix}`;
const rulesFile = `/tmp/clcp-rules-${suffix}.txt`;
const baselineDist = process.env.IPVS_PROBE_BASELINE;
const baseline = `${installed}-baseline`;
const noCache = `${installed}-nocache`;
const out = `/tmp/clcp-out-${suffix}`;

function timed(script) {
  const clock = inNetns(table, 'bash', ['-c', `s=$EPOCHREALTIME; ${script} > ${out}; e=$EPOCHREALTIME; echo "$s $e"`]);
  const [start, end] = clock.trim().split(/\s+/).map(Number);
  return { time: (end - start) * 1000, output: readFileSync(out, 'utf8') };
}

installPackage(installed);
const pkg = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8'));
const bin = path.join(installed, pkg.bin['ipvs-netlink']);
const mainJs = path.join(installed, 'dist', 'cli', 'main.js');
const addon = path.join(installed, 'build', 'Release', 'ipvs_netlink.node');
cpSync(installed, noCache, { recursive: true });
rmSync(path.join(noCache, 'dist', 'cli', 'bundle.cache'), { force: true });
if (baselineDist) {
  cpSync(installed, baseline, { recursive: true });
  rmSync(path.join(baseline, 'dist'), { recursive: true });
  cpSync(baselineDist, path.join(baseline, 'dist'), { recursive: true });
}
writeFileSync(rulesFile, restoreRules());
run('ip', ['netns', 'add', table]);
try {
  run('ip', ['-n', table, 'link', 'set', 'lo', 'up']);
  inNetns(table, 'bash', ['-c', `ipvsadm -R < ${rulesFile}`]);
  const methods = {
    'ipvsadm -Ln': 'ipvsadm -Ln',
    'node -e 0': 'node -e 0',
    'node: require the addon': `node -e 'require("${addon}")'`,
    'node: the addon lists the table (listTableIn)': `node -e 'require("${addon}").listTableIn("")'`,
    'ours: node dist/cli/main.js': `node ${mainJs} ipvsadm -Ln`,
  };
  if (bin !== mainJs) {
    methods[`ours: node ${pkg.bin['ipvs-netlink']}`] = `node ${bin} ipvsadm -Ln`;
    methods['ours: the bin without bundle.cache'] = `node ${bin.replace(installed, noCache)} ipvsadm -Ln`;
  }
  if (baselineDist) methods['ours: baseline main.js'] = `node ${baseline}/dist/cli/main.js ipvsadm -Ln`;
  for (const flags of flagSets) methods[`ours (main.js) ${flags}`] = `node ${flags} ${mainJs} ipvsadm -Ln`;
  const samples = Object.fromEntries(Object.keys(methods).map((m) => [m, []]));
  const names = Object.keys(methods);
  const reference = timed('ipvsadm -Ln').output;
  for (let round = 0; round < rounds; round++) {
    for (const name of names.map((_, i) => names[(i + round) % names.length])) {
      const { time, output } = timed(methods[name]);
      if (name.startsWith('ours') && output !== reference) console.log(`  ${name}: OUTPUT DIFFERS from ipvsadm -Ln`);
      samples[name].push(time);
    }
  }
  const print = (name, values) => console.log(`${name.padEnd(60)} median ${ms(median(values)).padStart(6)} ms   (${values.map(ms).join(', ')})`);
  for (const name of names) print(name, samples[name]);
  const restores = { 'ipvsadm -R': `ipvsadm -R < ${rulesFile}`, 'ours: bin restore': `node ${bin} restore ${rulesFile}`,
    'ours: main.js restore': `node ${mainJs} restore ${rulesFile}` };
  if (baselineDist) restores['ours: baseline main.js restore'] = `node ${baseline}/dist/cli/main.js restore ${rulesFile}`;
  const restoreNames = Object.keys(restores);
  const restoreSamples = Object.fromEntries(restoreNames.map((m) => [m, []]));
  for (let round = 0; round < rounds; round++) {
    for (const name of restoreNames.map((_, i) => restoreNames[(i + round) % restoreNames.length])) {
      inNetns(table, 'ipvsadm', ['-C']);
      restoreSamples[name].push(timed(restores[name]).time);
      const saved = inNetns(table, 'ipvsadm', ['-Sn']).split('\n').filter(Boolean).length;
      if (saved !== 11000) console.log(`  ${name}: ${saved} of 11000 rules after it`);
    }
  }
  for (const name of restoreNames) print(name, restoreSamples[name]);
  if (profileDir) {
    mkdirSync(profileDir, { recursive: true });
    inNetns(table, 'bash', ['-c', `node --cpu-prof --cpu-prof-interval 200 --cpu-prof-dir=${profileDir} --cpu-prof-name=ln.cpuprofile ${bin} ipvsadm -Ln > /dev/null`]);
    console.log(`profile written: ${path.join(profileDir, 'ln.cpuprofile')}`);
  }
  if (process.env.IPVS_PROBE_STRACE && existsSync('/usr/bin/strace')) {
    for (const [name, script] of [['ours', `node ${bin} ipvsadm -Ln`], ['ipvsadm', 'ipvsadm -Ln']]) {
      const trace = `/tmp/clcp-strace-${suffix}`;
      inNetns(table, 'bash', ['-c', `strace -f -ttt -o ${trace} ${script} > /dev/null`]);
      const lines = readFileSync(trace, 'utf8').split('\n').filter(Boolean);
      const t0 = Number(lines[0].split(/\s+/)[1]);
      const at = (line) => `${((Number(line.split(/\s+/)[1]) - t0) * 1000).toFixed(0).padStart(5)} ms  ${line.split(/\s+/).slice(2).join(' ').slice(0, 110)}`;
      console.log(`--- strace ${name}: ${lines.length} lines; the milestones:`);
      for (const line of lines) {
        if (/socket\(AF_NETLINK|openat\(.*\.node"|execve|sendmsg|exit_group|clone3?\(|write\(1,/.test(line)) console.log(at(line));
      }
      console.log(at(lines.at(-1)));
      const counts = {};
      for (const line of lines) {
        const call = /^\d+\s+[\d.]+\s+(?:<\.\.\. )?(\w+)/.exec(line)?.[1];
        if (call) counts[call] = (counts[call] ?? 0) + 1;
      }
      console.log(`    calls: ${Object.entries(counts).sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]) => `${k} ${v}`).join(', ')}`);
      rmSync(trace, { force: true });
    }
  }
} finally {
  try { run('ip', ['netns', 'delete', table]); } catch { /* gone */ }
  rmSync(rulesFile, { force: true });
  rmSync(out, { force: true });
  for (const dir of [installed, noCache, baseline]) rmSync(dir, { recursive: true, force: true });
}
