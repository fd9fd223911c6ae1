// Director benchmark, run inside the test VM: 2,000 destinations (10 NAT services × 200 real
// servers) checked over HTTP, against real servers in their own namespace (200 addresses × 10
// ports, answered by bench/director/http_server.c, a C epoll server built here with the system
// cc). First the servers' capacity alone (bench/director/http_load.c keeping requests in flight
// for a few seconds), so the servers are shown not to be the limit. Then, for each check
// interval asked (--intervals, default 1, 5 and 10 s): our director, over two windows in one run
// (bench/director-run.mjs): the first without any instrument in the process (CPU per 1,000
// checks, wake-ups, check lateness), the second with the event-loop delay monitor on
// (event-loop delay p99, check lateness, and CPU again: what the monitor's timer costs), then
// the real keepalived (Debian package, checker
// process only, HTTP_GET with the same delay_loop, timeout and destinations) in the same boot,
// its CPU per 1,000 checks read from /proc/PID/stat. The servers count the requests they
// answered: that is the check count of both programs. The VM's own busy share (/proc/stat) is
// printed beside: at 100 % the interval asks more than the two emulated CPUs have.
// Prints tables and writes bench/results/director-<kernel>.json.
//
//   node bench/director.bench.mjs [--intervals 1,5,10] [--window 20] [--warmup S] [--per-service 200]
//                                 [--clients socket[,request]] [--load-seconds 5]
//                                 [--compare LABEL=path/to/dist/director/index.js,…] [--cpu-prof DIR]
//                                 [--loop-resolution 5]
// --compare also runs our director from other builds in the same boot (before/after a
// change); --cpu-prof writes a V8 CPU profile of each of our runs to DIR. Wake-ups are
// voluntary context switches (/proc/PID/task/TID/status).
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { option, printTable, projectRoot, ratio, requireTestVm, writeResult } from './lib.mjs';

requireTestVm('director.bench.mjs');
const INTERVALS = option('intervals', '1,5,10').split(',').map(Number);
const WINDOW_S = Number(option('window', '20'));
const WARMUP_OPTION = option('warmup', '');
const CLIENTS = option('clients', 'socket').split(',');
// The event-loop delay monitor's period (ms) in our second window.
const LOOP_RESOLUTION = option('loop-resolution', '5');
const LOAD_S = Number(option('load-seconds', '5'));
const COMPARE = option('compare', '');
const PROFILE_DIR = option('cpu-prof', '');
// --node-flags "…": V8/Node flags for our director's process (e.g. --trace-opt --trace-deopt);
// --log-dir DIR: its whole output goes to DIR/ours-<build>-<interval>s.log (only its JSON lines are kept here).
const NODE_FLAGS = option('node-flags', '').split(' ').filter(Boolean);
const LOG_DIR = option('log-dir', '');
const DIST = path.join(projectRoot, 'dist', 'director', 'index.js');
const builds = [['', DIST], ...(COMPARE ? COMPARE.split(',').map((entry) => [entry.split('=')[0], path.resolve(entry.split('=').slice(1).join('='))]) : [])];
const SERVICES = 10;
const PER_SERVICE = Number(option('per-service', '200'));
const DESTINATIONS = SERVICES * PER_SERVICE;
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

// The C programs, built for this machine (the VM runs the host's root, so the host's cc).
const buildDir = path.join(projectRoot, '.cache', 'director-bench');
mkdirSync(buildDir, { recursive: true });
const program = (name) => {
  const out = path.join(buildDir, name);
  sh('cc', ['-O2', '-Wall', '-pthread', '-o', out, path.join(projectRoot, 'bench', 'director', `${name}.c`)]);
  return out;
};
const httpServer = program('http_server');
const httpLoad = program('http_load');

function startProcess(args, env = {}, logFile = '') {
  const child = spawn(args[0], args.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let output = '';
  if (logFile) {
    // A traced process writes megabytes: to the file, keeping only its JSON lines here.
    const log = createWriteStream(logFile);
    let partial = '';
    const take = (chunk) => {
      log.write(chunk);
      const lines = (partial + chunk).split('\n');
      partial = lines.pop();
      for (const line of lines) if (line.startsWith('{') || /Error/.test(line)) output += `${line}\n`;
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    children.push(child);
    return { child, output: () => output };
  }
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

/** CPU ticks (user + system) of the processes whose command is `name`. */
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

/** Voluntary context switches (sleeps that ended in a wake-up) of every thread of the processes named `name`. */
function wakeUpsOf(name) {
  let total = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== name) continue;
      for (const task of readdirSync(`/proc/${pid}/task`)) {
        total += Number(/voluntary_ctxt_switches:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8'))?.[1] ?? 0);
      }
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

/** The VM's CPU time so far, busy and total (ticks of all CPUs, from /proc/stat). */
function vmTicks() {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  const idle = fields[3] + fields[4];
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}
const busyShare = (a, b) => (b.busy - a.busy) / (b.total - a.total);
const ticksToMs = (ticks) => (ticks / CLK_TCK) * 1000;

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

  // One server process, two threads, on the ten ports of every address of its namespace.
  const server = startProcess(['ip', 'netns', 'exec', rs, httpServer, '-t', '2', ...PORTS.map(String)]);
  await until('the server', () => server.output().includes('listening'), 60_000);
  const answered = () => Number(/count (\d+)\s*$/.exec(server.output())?.[1] ?? 0);

  // The servers alone: as many requests as they answer with 64 in flight, over all 2,000 targets.
  const targets = PORTS.flatMap((port) => addresses.map((a) => `${a}:${port}`)).join('\n');
  const s0 = ticksOf('http_server');
  const v0 = vmTicks();
  const load = JSON.parse(sh('ip', ['netns', 'exec', lb, httpLoad, '64', String(LOAD_S)], targets));
  const capacity = {
    ...load, perSecond: load.ok / load.seconds, serverCpuMs: ticksToMs(ticksOf('http_server') - s0), vmBusy: busyShare(v0, vmTicks()),
  };
  capacity.serverCpuPer1000 = (capacity.serverCpuMs / load.ok) * 1000;
  capacity.loadCpuPer1000 = (load.cpuMs / load.ok) * 1000;
  console.log(`servers alone: ${capacity.perSecond.toFixed(0)} answered/s (${load.failed} failed), server CPU ${capacity.serverCpuPer1000.toFixed(0)} ms per 1,000, load client ${capacity.loadCpuPer1000.toFixed(0)} ms per 1,000, VM busy ${(capacity.vmBusy * 100).toFixed(0)} %`);

  const runs = [];
  // The director's table read and sync every RESYNC_S. The warm-up holds the first periodic one,
  // whose code V8 has not optimised yet (a one-off of a director's first seconds), so that the
  // windows measure the steady state, as keepalived's are.
  const RESYNC_S = 10;
  for (const interval of INTERVALS) {
    const warmup = WARMUP_OPTION ? Number(WARMUP_OPTION) : Math.max(RESYNC_S + 2, 2 * interval);
    const timeout = Math.min(1, Math.round(interval * 9) / 10);
    const services = PORTS.map((port) => ({
      protocol: 'tcp', address: VIP, port, scheduler: 'rr',
      checks: [{ type: 'http', path: '/health', interval, timeout, rise: 1, fall: 2 }],
      destinations: addresses.map((address) => ({ address, port, forward: 'masq', weight: 1 })),
    }));
    const configFile = path.join(tmp, `director-${interval}.json`);
    writeFileSync(configFile, JSON.stringify({ resyncInterval: RESYNC_S, services }));
    // The same checks for keepalived: HTTP_GET every delay_loop, the same timeout; retry 1 with
    // delay_before_retry = delay_loop is our fall 2 (a passing check never retries).
    const keepalivedConf = path.join(tmp, `keepalived-${interval}.conf`);
    writeFileSync(keepalivedConf, PORTS.map((port) => [
      `virtual_server ${VIP} ${port} {`, `  delay_loop ${interval}`, '  lb_algo rr', '  lb_kind NAT', '  protocol TCP',
      ...addresses.map((address) => `  real_server ${address} ${port} {\n    weight 1\n    HTTP_GET {\n      url {\n        path /health\n        status_code 200\n      }\n` +
        `      connect_timeout ${timeout}\n      retry 1\n      delay_before_retry ${interval}\n    }\n  }`),
      '}',
    ].join('\n')).join('\n'));

    // Ours: the default (bare-socket HTTP/1.0), optionally also through node:http's request().
    for (const [build, dist] of builds) for (const client of CLIENTS) {
      const before = answered();
      const name = [client === 'socket' ? '' : client, build].filter(Boolean).join(', ');
      const profile = PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(PROFILE_DIR), '--cpu-prof-name', `ours-${name || 'socket'}-${interval}s.cpuprofile`] : [];
      const ours = startProcess(['ip', 'netns', 'exec', lb, process.execPath, ...NODE_FLAGS, ...profile, path.join(projectRoot, 'bench', 'director-run.mjs'), configFile, String(warmup), String(WINDOW_S)],
        { DIRECTOR_DIST: dist, DIRECTOR_HTTP_CLIENT: client, LOOP_RESOLUTION_MS: LOOP_RESOLUTION },
        LOG_DIR ? path.join(path.resolve(LOG_DIR), `ours-${name || 'socket'}-${interval}s.log`.replace(/[^\w.,-]/g, '_')) : '');
      let s1; let v1; let a1; let s2; let v2; let a2;
      const report = await until('the director report', () => {
        const lines = ours.output().split('\n');
        // Each window starts when the director says so: sample the servers and the VM then.
        if (!s1 && lines.includes('{"window":1}')) { s1 = ticksOf('http_server'); v1 = vmTicks(); a1 = answered(); }
        if (!s2 && lines.includes('{"window":2}')) { s2 = ticksOf('http_server'); v2 = vmTicks(); a2 = answered(); }
        const line = lines.find((l) => l.startsWith('{"startMs"'));
        if (!line && ours.child.exitCode !== null) throw new Error(`the director exited with ${ours.child.exitCode}:\n${ours.output().slice(-3000)}`);
        return line && JSON.parse(line);
      }, (warmup + 2 * WINDOW_S + 600) * 1000);
      const serverCpuMs = ticksToMs(s2 - s1);
      const vmBusy = busyShare(v1, v2);
      const serverCount = a2 - a1;
      report.monitored.vmBusy = busyShare(v2, vmTicks());
      report.monitored.serverCount = answered() - a2;
      await new Promise((resolve) => (ours.child.exitCode === null ? ours.child.once('exit', resolve) : resolve()));
      console.log(`${name || 'ours'}, every ${interval} s: ${report.checks} check events and ${serverCount} requests answered in a window of ` +
        `${report.seconds.toFixed(3)} s by performance.now(), ${report.wallSeconds.toFixed(3)} s by Date.now()`);
      if (report.failed > 0 || report.down > 0) console.log(`note (${name || "ours"}, every ${interval} s): ${report.failed} failed checks, ${report.down} destinations not up (${JSON.stringify(report.failures)}); errors: ${report.errors.join('; ')}`);
      runs.push({
        program: name ? `ours (${name})` : 'ours', interval, timeout, warmup, ...report,
        perSecond: report.checks / report.seconds, cpuPer1000: (report.cpuMs / report.checks) * 1000,
        serverCountInWindow: serverCount, serverCpuMs, vmBusy, serverCountWholeRun: answered() - before,
      });
    }

    // keepalived, checker only (-C), in the foreground (-n), on the same servers.
    sh('ip', ['netns', 'exec', lb, 'ipvsadm', '-C']);
    const pids = path.join(tmp, `keepalived-${interval}`);
    const keepalived = startProcess(['ip', 'netns', 'exec', lb, 'keepalived', '-n', '-l', '-C', '-f', keepalivedConf,
      '-p', `${pids}.pid`, '-c', `${pids}.checkers.pid`, '-r', `${pids}.vrrp.pid`, '--no-syslog']);
    await until('keepalived to set up the table', () => {
      const text = sh('ip', ['netns', 'exec', lb, 'ipvsadm', '-Ln']);
      return (text.match(/->\s+10\.3\./g) ?? []).length === DESTINATIONS;
    }, 600_000);
    await sleep(warmup * 1000);
    const failureLines = () => keepalived.output().split('\n').filter((l) => /fail|timeout/i.test(l)).length;
    const failuresBefore = failureLines();
    const k0 = ticksOf('keepalived');
    const w0 = wakeUpsOf('keepalived');
    const s0 = ticksOf('http_server');
    const c0 = answered();
    const v0 = vmTicks();
    const t0 = performance.now();
    await sleep(WINDOW_S * 1000);
    const k1 = ticksOf('keepalived');
    const wakeUps = wakeUpsOf('keepalived') - w0;
    const s1 = ticksOf('http_server');
    const c1 = answered();
    const vmBusy = busyShare(v0, vmTicks());
    const seconds = (performance.now() - t0) / 1000;
    const failuresInWindow = failureLines() - failuresBefore;
    const down = (sh('ip', ['netns', 'exec', lb, 'ipvsadm', '-Ln']).match(/->\s+10\.3\.\S+\s+\S+\s+0\s/g) ?? []).length;
    keepalived.child.kill('SIGTERM');
    await until('keepalived to exit', () => keepalived.child.exitCode !== null || keepalived.child.signalCode !== null, 60_000);
    sh('ip', ['netns', 'exec', lb, 'ipvsadm', '-C']);
    const cpuMs = ticksToMs(k1 - k0);
    const checks = c1 - c0;
    if (failuresInWindow > 0 || down > 0) console.log(`note (keepalived, every ${interval} s): ${failuresInWindow} failure lines in its log, ${down} destinations at weight 0`);
    runs.push({
      program: 'keepalived', interval, timeout, warmup, seconds, checks, perSecond: checks / seconds, cpuMs, cpuPer1000: (cpuMs / checks) * 1000,
      failureLines: failuresInWindow, down, serverCpuMs: ticksToMs(s1 - s0), vmBusy, wakeUps: { all: wakeUps },
    });
  }

  const f = (v, digits = 1) => (v === undefined || !Number.isFinite(v) ? '' : v.toFixed(digits));
  printTable(`Servers alone (${LOAD_S} s, 64 requests in flight over ${DESTINATIONS} targets)`,
    ['answered/s', 'failed', 'server CPU ms/1k', 'VM busy %'],
    [[f(capacity.perSecond, 0), capacity.failed, f(capacity.serverCpuPer1000), f(capacity.vmBusy * 100, 0)]]);
  printTable(`Director vs keepalived, ${DESTINATIONS} HTTP checks (window ${WINDOW_S} s)`,
    ['every s', 'program', 'asked/s', 'checks/s', 'failed', 'down', 'CPU ms/1k', 'probe thread ms/1k', 'wake-ups/check (main+probe)', 'CPU % of 1 vCPU', 'late p99 ms', 'late max ms', 'VM busy %', 'vs keepalived'],
    runs.map((r) => {
      const reference = runs.find((k) => k.program === 'keepalived' && k.interval === r.interval);
      return [
        r.interval, r.program, f(DESTINATIONS / r.interval, 0), f(r.perSecond, 0), r.failed ?? r.failureLines, r.down, f(r.cpuPer1000),
        r.probeThreadMs === undefined ? '' : f((r.probeThreadMs / r.checks) * 1000),
        r.wakeUps === undefined ? '' : r.wakeUps.all !== undefined ? f(r.wakeUps.all / r.checks, 2)
          : `${f(r.wakeUps.main / r.checks, 2)}+${f(r.wakeUps.probe / r.checks, 2)}`,
        f((r.cpuMs / r.seconds) / 10, 0), f(r.latenessMs?.p99), f(r.latenessMs?.max), f(r.vmBusy * 100, 0),
        r.program === 'keepalived' ? '' : ratio(r.cpuPer1000 / reference?.cpuPer1000),
      ];
    }));
  const perCheck = (w, value) => f((value / w.checks) * 1000);
  const lateText = (w) => `${w.late.count} (${w.late.listTable}, ${w.late.apply}, ${w.late.gc}, ${w.late.none})`;
  printTable(`Ours with the event-loop delay monitor (${LOOP_RESOLUTION} ms timer; second window of ${WINDOW_S} s), beside the first window`,
    ['every s', 'program', 'loop p99 ms', 'loop max ms', 'late p99 ms', 'late max ms', 'CPU ms/1k', 'CPU ms/1k without', 'wake-ups/check (main+probe)', 'VM busy %', 'late > 50 ms (table read, sync, GC, none)', 'same without'],
    runs.filter((r) => r.monitored).map((r) => {
      const m = r.monitored;
      return [
        r.interval, r.program, f(m.loopDelayMs?.p99), f(m.loopDelayMs?.max), f(m.latenessMs?.p99), f(m.latenessMs?.max), perCheck(m, m.cpuMs), f(r.cpuPer1000),
        `${f(m.wakeUps.main / m.checks, 2)}+${f(m.wakeUps.probe / m.checks, 2)}`, f(m.vmBusy * 100, 0), lateText(m), lateText(r),
      ];
    }));
  const work = (w) => ['listTable', 'apply', 'gc'].map((k) => `${w.loopWork[k].count} / ${w.loopWork[k].totalMs} / ${w.loopWork[k].maxMs}`);
  printTable('Ours: table reads, syncs and GC pauses over 5 ms in each window (count / total ms / longest ms)',
    ['every s', 'program', 'window', 'table reads', 'syncs', 'GC pauses'],
    runs.filter((r) => r.monitored).flatMap((r) => [[r.interval, r.program, '1', ...work(r)], [r.interval, r.program, '2 (monitor)', ...work(r.monitored)]]));
  writeResult(`director-${os.release().startsWith('6.1.') ? '6.1' : os.release().split('.').slice(0, 2).join('.')}`, {
    destinations: DESTINATIONS, windowS: WINDOW_S, hostLoad: process.env.IPVS_HOST_LOAD, capacity, runs,
  });
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  try { sh('ip', ['netns', 'del', lb]); } catch { /* gone */ }
  try { sh('ip', ['netns', 'del', rs]); } catch { /* gone */ }
  rmSync(tmp, { recursive: true, force: true });
}
