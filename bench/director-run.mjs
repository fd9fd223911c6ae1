// The director side of bench/director.bench.mjs, run inside the director's namespace:
// `node director-run.mjs CONFIG.json WARMUP_S WINDOW_S`. Starts a Director on the configuration,
// lets it warm up, then measures two windows of WINDOW_S each, printing `{"window":N}` as each
// starts and, at the end, one JSON line:
//  1. without any instrument of its own: checks done, CPU used (user + system, ms; the probe
//     thread's share apart), wake-ups of the main and probe threads, check lateness;
//  2. with monitorEventLoopDelay (its timer every LOOP_RESOLUTION_MS, default 5) on: the
//     event-loop delay percentiles, check lateness, and the same CPU figures again (`monitored`),
//     which show what the monitor's own timer costs.
// The monitor wakes the event loop every period whatever the director does, so CPU per check
// is taken from the first window; the loop delay can only be taken with it.
// In both windows, checks that started more than LATE_MS after they were due are set against
// what the loop did at the time (table reads and syncs of the director's handle, GC pauses).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

const { Director } = await import(process.env.DIRECTOR_DIST);
const [configFile, warmupText, windowText] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configFile, 'utf8'));

// DIRECTOR_SIMULATED_TABLE=1: an in-memory table instead of the kernel's (host runs).
const ipvs = process.env.DIRECTOR_SIMULATED_TABLE === '1'
  ? (await import('./director-simulated.mjs')).simulatedIpvs(path.dirname(path.dirname(process.env.DIRECTOR_DIST))) : undefined;
// The director's handle, opened here so that its table reads and syncs can be timed.
const { Ipvs } = await import(path.join(path.dirname(path.dirname(process.env.DIRECTOR_DIST)), 'ipvs.js'));
const handle = ipvs ? await ipvs : await Ipvs.open();
/** [kind, start (Date.now() ms), duration ms] of table reads, syncs and GC pauses over 5 ms. */
const marks = [];
for (const method of ['listTable', 'apply']) {
  const original = handle[method];
  handle[method] = async function timed(...args) {
    const start = Date.now();
    try {
      return await original.apply(this, args);
    } finally {
      marks.push([method, start, Date.now() - start]);
    }
  };
}
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) if (entry.duration > 5) marks.push(['gc', Math.round(performance.timeOrigin + entry.startTime), entry.duration]);
}).observe({ entryTypes: ['gc'] });
const director = new Director(config, { checkEvents: true, ipvs: handle });
// DIRECTOR_HTTP_CLIENT=request: http checks through node:http's request() instead of the bare
// socket, to measure what the bare socket saves.
if (process.env.DIRECTOR_HTTP_CLIENT === 'request') {
  const dist = path.dirname(process.env.DIRECTOR_DIST);
  const { replaceCheckRunner } = await import(path.join(dist, 'director.js'));
  const { runHttpRequestCheck } = await import(path.join(dist, 'checks', 'http.js'));
  replaceCheckRunner(director, async (check, target, stop) => {
    const started = performance.now();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), check.timeout * 1000);
    const onStop = () => controller.abort();
    stop.addEventListener('abort', onStop, { once: true });
    try {
      return { ...(await runHttpRequestCheck(check, target, controller.signal)), latency: performance.now() - started };
    } finally {
      clearTimeout(timer);
      stop.removeEventListener('abort', onStop);
    }
  });
}
// CPU ticks (user + system) of the addon's probe thread, when checks use it (cpuMs includes them).
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
function probeThreadTicks() {
  for (const task of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim() !== 'ipvs-probe') continue;
      const stat = readFileSync(`/proc/self/task/${task}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}
// Wake-ups (voluntary context switches) of the main thread and of the probe thread.
function wakeUps() {
  const out = { main: 0, probe: 0 };
  for (const task of readdirSync('/proc/self/task')) {
    try {
      const status = readFileSync(`/proc/self/task/${task}/status`, 'utf8');
      const switches = Number(/voluntary_ctxt_switches:\s*(\d+)/.exec(status)?.[1] ?? 0);
      if (task === String(process.pid)) out.main = switches;
      else if (/^Name:\s*ipvs-probe$/m.test(status)) out.probe = switches;
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
/** CPU ms (user + system) of each of the process's threads by name (V8's workers, libuv's pool, the probe thread…). */
function threadTicks() {
  const out = {};
  for (const task of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${task}/stat`, 'utf8');
      const name = task === String(process.pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[name] = (out[name] ?? 0) + Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
let measuring = false;
let checks = 0;
let failed = 0;
const failures = new Map();
let lateness = [];
/** [started (Date.now() ms), lateness ms] of the checks that started more than LATE_MS late. */
const LATE_MS = 50;
let late = [];
director.on('check', (event) => {
  if (!measuring) return;
  checks++;
  if (!event.ok) {
    failed++;
    failures.set(event.message, (failures.get(event.message) ?? 0) + 1);
  }
  lateness.push(event.lateness);
  if (event.lateness > LATE_MS) late.push([event.time - event.latency, event.lateness]);
});
const errors = [];
director.on('error', (event) => errors.push(`${event.operation}: ${event.error.message}`));
const startedAt = performance.now();
await director.start();
const startMs = performance.now() - startedAt;
console.log(JSON.stringify({ started: true, startMs }));

await new Promise((resolve) => setTimeout(resolve, Number(warmupText) * 1000));
const LOOP_RESOLUTION_MS = Number(process.env.LOOP_RESOLUTION_MS ?? 5);
const percentiles = (values) => {
  const sorted = values.sort((a, b) => a - b);
  const at = (p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : undefined);
  return { p50: at(50), p99: at(99), max: sorted[sorted.length - 1] };
};
/** Late checks by what overlapped the wait between due and start: a table read, a sync, a GC pause, or none of them. */
function lateCauses(from) {
  const causes = { count: late.length, listTable: 0, apply: 0, gc: 0, none: 0 };
  for (const [started, by] of late) {
    const overlapping = marks.filter(([, start, duration]) => start >= from - 1000 && start <= started && start + duration >= started - by);
    if (overlapping.length === 0) causes.none++;
    for (const kind of new Set(overlapping.map(([k]) => k))) causes[kind]++;
  }
  return causes;
}
/** The table reads, syncs and GC pauses (over 5 ms) that began since `from`: how many, their total and longest ms. */
function loopWork(from) {
  const out = {};
  for (const kind of ['listTable', 'apply', 'gc']) {
    const durations = marks.filter(([k, start]) => k === kind && start >= from).map(([, , duration]) => duration);
    out[kind] = { count: durations.length, totalMs: Math.round(durations.reduce((a, b) => a + b, 0)), maxMs: Math.round(Math.max(0, ...durations)) };
  }
  return out;
}
async function window(number, monitored) {
  const loop = monitored ? monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS }) : undefined;
  loop?.enable();
  checks = 0;
  failed = 0;
  lateness = [];
  late = [];
  measuring = true;
  console.log(JSON.stringify({ window: number }));
  const cpu0 = process.cpuUsage();
  const probe0 = probeThreadTicks();
  const wakes0 = wakeUps();
  const threads0 = threadTicks();
  const t0 = performance.now();
  const wall0 = Date.now();
  await new Promise((resolve) => setTimeout(resolve, Number(windowText) * 1000));
  const cpu = process.cpuUsage(cpu0);
  const wakes1 = wakeUps();
  const threads1 = threadTicks();
  const probeThreadMs = probe0 === undefined ? undefined : ((probeThreadTicks() - probe0) / CLK_TCK) * 1000;
  const seconds = (performance.now() - t0) / 1000;
  // The scheduler plans by Date.now(), the window is timed by performance.now(): if the two
  // clocks ran at different rates, checks/s would be off by as much.
  const wallSeconds = (Date.now() - wall0) / 1000;
  measuring = false;
  loop?.disable();
  return {
    seconds, wallSeconds, checks, failed,
    cpuMs: (cpu.user + cpu.system) / 1000,
    ...(probeThreadMs === undefined ? {} : { probeThreadMs }),
    wakeUps: { main: wakes1.main - wakes0.main, probe: wakes1.probe - wakes0.probe },
    threadsMs: Object.fromEntries(Object.entries(threads1).map(([name, ticks]) => [name, ((ticks - (threads0[name] ?? 0)) / CLK_TCK) * 1000])),
    ...(loop ? { loopDelayMs: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 }, loopResolutionMs: LOOP_RESOLUTION_MS } : {}),
    latenessMs: percentiles(lateness),
    late: lateCauses(wall0),
    loopWork: loopWork(wall0),
  };
}
const bare = await window(1, false);
const firstFailures = Object.fromEntries([...failures].slice(0, 5));
const monitored = await window(2, true);
const down = director.status().services.flatMap((s) => s.destinations).filter((d) => d.health !== 'up').length;
console.log(JSON.stringify({
  startMs, ...bare, failures: firstFailures, down, errors: errors.slice(0, 5), monitored,
}));
await director.stop({ leave: 'remove' });
process.exit(0);
