// The director's own cost per HTTP check, on the host: no IPVS here, so an in-memory table
// stands in for the kernel's (bench/director-simulated.mjs), and the real servers are the C
// server of the VM benchmark (bench/director/http_server.c) on loopback, one address of
// 127.0.0.0/8 per real server. Same checks as bench/director.bench.mjs (2,000 destinations,
// HTTP every --interval seconds); prints the director's CPU per 1,000 checks, its event-loop
// delay and check lateness, and the server's count, over the two windows of
// bench/director-run.mjs (without and with the event-loop delay monitor). `--cpu-prof DIR` profiles the director.
//
//   node bench/director.host.mjs [--interval 1] [--window 10] [--warmup 4] [--per-service 200] [--port 28001] [--cpu-prof DIR]
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { option, printTable, projectRoot } from './lib.mjs';

const INTERVAL_S = Number(option('interval', '1'));
const WINDOW_S = Number(option('window', '10'));
const WARMUP_S = Number(option('warmup', '4'));
const PER_SERVICE = Number(option('per-service', '200'));
const FIRST_PORT = Number(option('port', '28001'));
const PROFILE_DIR = option('cpu-prof', '');
const SERVICES = 10;
const PORTS = Array.from({ length: SERVICES }, (_, i) => FIRST_PORT + i);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'director-host-'));
const buildDir = path.join(projectRoot, '.cache', 'director-bench');
mkdirSync(buildDir, { recursive: true });
const server = path.join(buildDir, 'http_server');
execFileSync('cc', ['-O2', '-Wall', '-pthread', '-o', server, path.join(projectRoot, 'bench', 'director', 'http_server.c')]);

const children = [];
function start(args, env = {}) {
  const child = spawn(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.stderr.on('data', (chunk) => { output += chunk; });
  children.push(child);
  return { child, output: () => output };
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(what, probe, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

try {
  const servers = start([server, ...PORTS.map(String)]);
  await until('the server', () => servers.output().includes('listening'), 10_000);
  const answered = () => Number(/count (\d+)\s*$/.exec(servers.output())?.[1] ?? 0);
  const addresses = Array.from({ length: PER_SERVICE }, (_, n) => `127.1.${n >> 8}.${(n & 255) + 1}`);
  const timeout = Math.min(1, INTERVAL_S * 0.9);
  const services = PORTS.map((port) => ({
    protocol: 'tcp', address: '10.9.0.1', port, scheduler: 'rr',
    checks: [{ type: 'http', path: '/health', interval: INTERVAL_S, timeout, rise: 1, fall: 1 }],
    destinations: addresses.map((address) => ({ address, port, forward: 'masq', weight: 1 })),
  }));
  const configFile = path.join(tmp, 'director.json');
  writeFileSync(configFile, JSON.stringify({ resyncInterval: 10, services }));
  const profile = PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(PROFILE_DIR)] : [];
  const before = answered();
  const ours = start([process.execPath, ...profile, path.join(projectRoot, 'bench', 'director-run.mjs'), configFile, String(WARMUP_S), String(WINDOW_S)], {
    DIRECTOR_DIST: process.env.DIRECTOR_DIST ?? path.join(projectRoot, 'dist', 'director', 'index.js'), DIRECTOR_SIMULATED_TABLE: '1',
  });
  const report = await until('the director report', () => {
    const line = ours.output().split('\n').find((l) => l.startsWith('{"startMs"'));
    if (!line && ours.child.exitCode !== null) throw new Error(`the director exited with ${ours.child.exitCode}:\n${ours.output().slice(-3000)}`);
    return line && JSON.parse(line);
  }, (WARMUP_S + WINDOW_S + 60) * 1000);
  await new Promise((resolve) => (ours.child.exitCode === null ? ours.child.once('exit', resolve) : resolve()));
  await sleep(1100);
  if (report.failed > 0 || report.down > 0) console.log(`note: ${report.failed} failed checks, ${report.down} not up: ${JSON.stringify(report.failures)}`);
  const f = (v, digits = 1) => (v === undefined ? '' : v.toFixed(digits));
  printTable(`Director on the host (simulated table, loopback C server): ${SERVICES * PER_SERVICE} HTTP checks every ${INTERVAL_S} s, window ${WINDOW_S} s, load ${os.loadavg()[0].toFixed(1)}`,
    ['window', 'checks/s', 'failed', 'CPU ms/1k checks', 'probe thread ms/1k', 'wake-ups/check main', 'probe', 'loop p99 ms', 'late p99 ms', 'late max ms', 'late > 50 ms (table read, sync, GC, none)'],
    [['no monitor', report], [`monitor ${report.monitored.loopResolutionMs} ms`, report.monitored]].map(([name, w]) => [
      name, f(w.checks / w.seconds, 0), w.failed, f(w.cpuMs / w.checks * 1000),
      w.probeThreadMs === undefined ? '' : f(w.probeThreadMs / w.checks * 1000),
      f(w.wakeUps.main / w.checks, 2), f(w.wakeUps.probe / w.checks, 2), f(w.loopDelayMs?.p99), f(w.latenessMs.p99), f(w.latenessMs.max),
      `${w.late.count} (${w.late.listTable}, ${w.late.apply}, ${w.late.gc}, ${w.late.none})`]));
  console.log(`server answered ${answered() - before} over the whole run`);
  for (const [name, w] of [['no monitor', report], ['monitor', report.monitored]]) console.log(`${name}: table reads, syncs, GC pauses over 5 ms: ${JSON.stringify(w.loopWork)}`);
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
}
