// Director benchmark, run inside the test VM: 2,000 destinations (10 NAT services × 200 real
// servers) checked over HTTP every second against real HTTP servers in their own namespace
// (200 addresses × 10 ports, answered by two server processes). Measures, over a window after
// a warm-up: the director's event-loop delay p99, its check lateness p99 and its CPU per 1,000
// checks; then the real keepalived (Debian package, checker process only) doing the same
// HTTP_GET checks on the same 2,000 servers in the same run, its CPU per 1,000 checks read from
// /proc/PID/stat. The servers count the requests they answered: that is the check count.
// Prints a table and writes bench/results/director-<kernel>.json.
//
//   node bench/director.bench.mjs [--window 20] [--warmup 6] [--rounds 1] [--per-service 200]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { option, printTable, projectRoot, ratio, requireTestVm, writeResult } from './lib.mjs';

requireTestVm('director.bench.mjs');
const WINDOW_S = Number(option('window', '20'));
const WARMUP_S = Number(option('warmup', '6'));
const ROUNDS = Number(option('rounds', '1'));
const SERVICES = 10;
const PER_SERVICE = Number(option('per-service', '200'));
const PORTS = Array.from({ length: SERVICES }, (_, i) => 8001 + i);
const VIP = '10.9.0.1';
const serverAddress = (n) => `10.3.${n >> 8}.${(n & 255) + 1}`;
const sh = (command, args, input) => execFileSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 28, ...(input ? { input } : {}) });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const CLK_TCK = Number(sh('getconf', ['CLK_TCK']).trim());
const tmp = mkdtempSync(path.join(os.tmpdir(), 'director-bench-'));
const lb = `bench-dir-${process.pid}`;
const rs = `bench-rs-${process.pid}`;
const children = [];

function startProcess(args, env = {}) {
  const child = spawn(args[0], args.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.stderr.on('data', (chunk) => { output += chunk; });
  children.push(child);
  return { child, output: () => output };
}

async function until(what, probe, timeoutMs = 600_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** CPU ticks (user + system) of the processes whose command is `name`, by pid. */
function ticksOf(name) {
  let total = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (comm !== name) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += Number(fields[11]) + Number(fields[12]);  // utime, stime (fields 14 and 15)
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

try {
  // Topology: the director's namespace and the real servers' namespace, joined by a veth pair.
  sh('ip', ['netns', 'add', lb]);
  sh('ip', ['netns', 'add', rs]);
  sh('ip', ['-n', lb, '-batch', '-'], [
    'link set lo up', `link add d0 type veth peer name r0 netns ${rs}`, 'addr add 10.3.255.254/16 dev d0', 'link set d0 up',
    `addr add ${VIP}/32 dev lo`,
  ].join('\n'));
  const addresses = Array.from({ length: PER_SERVICE }, (_, n) => serverAddress(n));
  sh('ip', ['-n', rs, '-batch', '-'], [
    'link set lo up', 'link set r0 up', ...addresses.map((a) => `addr add ${a}/16 dev r0`), 'route add default via 10.3.255.254',
  ].join('\n'));
  sh('ip', ['netns', 'exec', lb, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);

  // Two server processes, five ports each (every address of the namespace answers on them).
  const servers = [PORTS.slice(0, 5), PORTS.slice(5)].map((ports) =>
    startProcess(['ip', 'netns', 'exec', rs, process.execPath, path.join(projectRoot, 'bench', 'director-server.mjs'), ...ports.map(String)]));
  await until('the servers', () => servers.every((s) => s.output().includes('listening')));
  const answered = () => servers.reduce((sum, s) => sum + Number(/count (\d+)\s*$/.exec(s.output())?.[1] ?? 0), 0);

  const services = PORTS.map((port) => ({
    protocol: 'tcp', address: VIP, port, scheduler: 'rr',
    checks: [{ type: 'http', path: '/health', interval: 1, timeout: 0.9, rise: 1, fall: 1 }],
    destinations: addresses.map((address) => ({ address, port, forward: 'masq', weight: 1 })),
  }));
  const configFile = path.join(tmp, 'director.json');
  writeFileSync(configFile, JSON.stringify({ resyncInterval: 10, services }));
  const keepalivedConf = path.join(tmp, 'keepalived.conf');
  writeFileSync(keepalivedConf, PORTS.map((port) => [
    `virtual_server ${VIP} ${port} {`, '  delay_loop 1', '  lb_algo rr', '  lb_kind NAT', '  protocol TCP',
    ...addresses.map((address) => `  real_server ${address} ${port} {\n    weight 1\n    HTTP_GET {\n      url {\n        path /health\n        status_code 200\n      }\n      connect_timeout 1\n      retry 1\n    }\n  }`),
    '}',
  ].join('\n')).join('\n'));

  const rounds = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Ours: the default (bare-socket HTTP/1.0), then through node:http's request().
    const runOurs = async (client) => {
      const before = answered();
      const ours = startProcess(['ip', 'netns', 'exec', lb, process.execPath, path.join(projectRoot, 'bench', 'director-run.mjs'), configFile, String(WARMUP_S), String(WINDOW_S)],
        { DIRECTOR_DIST: path.join(projectRoot, 'dist', 'director', 'index.js'), DIRECTOR_HTTP_CLIENT: client });
      const report = await until('the director report', () => ours.output().split('\n').map((l) => (l.startsWith('{"startMs"') ? JSON.parse(l) : undefined)).find(Boolean),
        (WARMUP_S + WINDOW_S + 600) * 1000);
      await new Promise((resolve) => (ours.child.exitCode === null ? ours.child.once('exit', resolve) : resolve()));
      if (report.failed > 0 || report.down > 0) console.log(`note (${client}): ${report.failed} failed checks, ${report.down} destinations not up (${JSON.stringify(report.failures)}); errors: ${report.errors.join('; ')}`);
      return { ...report, client, cpuPer1000: (report.cpuMs / report.checks) * 1000, serverCountWholeRun: answered() - before };
    };
    const report = await runOurs('socket');
    const viaRequest = await runOurs('request');

    // keepalived, checker only (-C), in the foreground (-n), on the same servers.
    sh('ip', ['netns', 'exec', lb, 'ipvsadm', '-C']);
    const pids = path.join(tmp, `keepalived-${round}`);
    const keepalived = startProcess(['ip', 'netns', 'exec', lb, 'keepalived', '-n', '-l', '-C', '-f', keepalivedConf,
      '-p', `${pids}.pid`, '-c', `${pids}.checkers.pid`, '-r', `${pids}.vrrp.pid`, '--no-syslog']);
    await until('keepalived to set up the table', () => {
      const text = sh('ip', ['netns', 'exec', lb, 'ipvsadm', '-Ln']);
      return (text.match(/->\s+10\.3\./g) ?? []).length === SERVICES * PER_SERVICE;
    }, 600_000);
    await sleep(WARMUP_S * 1000);
    const k0 = ticksOf('keepalived');
    const c0 = answered();
    const t0 = performance.now();
    await sleep(WINDOW_S * 1000);
    const k1 = ticksOf('keepalived');
    const c1 = answered();
    const kSeconds = (performance.now() - t0) / 1000;
    keepalived.child.kill('SIGTERM');
    await until('keepalived to exit', () => keepalived.child.exitCode !== null || keepalived.child.signalCode !== null, 30_000);
    sh('ip', ['netns', 'exec', lb, 'ipvsadm', '-C']);
    const keepalivedCpuMs = ((k1 - k0) / CLK_TCK) * 1000;
    const keepalivedChecks = c1 - c0;
    rounds.push({
      ours: report, oursViaRequest: viaRequest,
      keepalived: { seconds: kSeconds, checks: keepalivedChecks, cpuMs: keepalivedCpuMs, cpuPer1000: (keepalivedCpuMs / keepalivedChecks) * 1000 },
    });
  }

  const f = (v, digits = 1) => (v === undefined ? '' : v.toFixed(digits));
  printTable(`Director, ${SERVICES * PER_SERVICE} HTTP checks every second (window ${WINDOW_S} s after ${WARMUP_S} s warm-up)`,
    ['round', 'client', 'checks/s', 'loop p99 ms', 'late p99 ms', 'late max ms', 'CPU ms/1k', 'keepalived checks/s', 'keepalived CPU ms/1k', 'ours/keepalived'],
    rounds.flatMap((r, i) => [r.ours, r.oursViaRequest].map((o) => [
      i + 1, o.client, f(o.checks / o.seconds, 0), f(o.loopDelayMs.p99), f(o.latenessMs.p99), f(o.latenessMs.max),
      f(o.cpuPer1000), f(r.keepalived.checks / r.keepalived.seconds, 0), f(r.keepalived.cpuPer1000), ratio(o.cpuPer1000 / r.keepalived.cpuPer1000),
    ])));
  writeResult(`director-${os.release().startsWith('6.1.') ? '6.1' : os.release().split('.').slice(0, 2).join('.')}`, {
    destinations: SERVICES * PER_SERVICE, intervalS: 1, windowS: WINDOW_S, warmupS: WARMUP_S, hostLoad: process.env.IPVS_HOST_LOAD, rounds,
  });
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  try { sh('ip', ['netns', 'del', lb]); } catch { /* gone */ }
  try { sh('ip', ['netns', 'del', rs]); } catch { /* gone */ }
  rmSync(tmp, { recursive: true, force: true });
}
