// The director side of bench/director.bench.mjs, run inside the director's namespace:
// `node director-run.mjs CONFIG.json WARMUP_S WINDOW_S`. Starts a Director on the configuration,
// lets it warm up, prints `{"window":…}` as the window starts, then measures over the window
// and prints one JSON line: event-loop delay percentiles, check lateness percentiles, checks
// done, CPU used (user + system, ms).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const { Director } = await import(process.env.DIRECTOR_DIST);
const [configFile, warmupText, windowText] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configFile, 'utf8'));

// DIRECTOR_SIMULATED_TABLE=1: an in-memory table instead of the kernel's (host runs).
const ipvs = process.env.DIRECTOR_SIMULATED_TABLE === '1'
  ? (await import('./director-simulated.mjs')).simulatedIpvs(path.dirname(path.dirname(process.env.DIRECTOR_DIST))) : undefined;
const director = new Director(config, { checkEvents: true, ...(ipvs ? { ipvs: await ipvs } : {}) });
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
let measuring = false;
let checks = 0;
let failed = 0;
const failures = new Map();
const lateness = [];
director.on('check', (event) => {
  if (!measuring) return;
  checks++;
  if (!event.ok) {
    failed++;
    failures.set(event.message, (failures.get(event.message) ?? 0) + 1);
  }
  lateness.push(event.lateness);
});
const errors = [];
director.on('error', (event) => errors.push(`${event.operation}: ${event.error.message}`));
const startedAt = performance.now();
await director.start();
const startMs = performance.now() - startedAt;
console.log(JSON.stringify({ started: true, startMs }));

await new Promise((resolve) => setTimeout(resolve, Number(warmupText) * 1000));
// LOOP_RESOLUTION_MS: the delay monitor's timer period (default 5); 0 runs without it. Its
// timer wakes the event loop every period while the director idles, and that CPU counts here.
const LOOP_RESOLUTION_MS = Number(process.env.LOOP_RESOLUTION_MS ?? 5);
const loop = LOOP_RESOLUTION_MS > 0 ? monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS }) : undefined;
loop?.enable();
measuring = true;
console.log(JSON.stringify({ window: Number(windowText) }));
const cpu0 = process.cpuUsage();
const probe0 = probeThreadTicks();
const wakes0 = wakeUps();
const t0 = performance.now();
const wall0 = Date.now();
await new Promise((resolve) => setTimeout(resolve, Number(windowText) * 1000));
const cpu = process.cpuUsage(cpu0);
const wakes1 = wakeUps();
const probeThreadMs = probe0 === undefined ? undefined : ((probeThreadTicks() - probe0) / CLK_TCK) * 1000;
const seconds = (performance.now() - t0) / 1000;
// The scheduler plans by Date.now(), the window is timed by performance.now(): if the two
// clocks ran at different rates, checks/s would be off by as much.
const wallSeconds = (Date.now() - wall0) / 1000;
measuring = false;
loop?.disable();

const sorted = lateness.sort((a, b) => a - b);
const pct = (p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : undefined);
const down = director.status().services.flatMap((s) => s.destinations).filter((d) => d.health !== 'up').length;
console.log(JSON.stringify({
  startMs, seconds, wallSeconds, checks, failed, failures: Object.fromEntries([...failures].slice(0, 5)), down, errors: errors.slice(0, 5),
  cpuMs: (cpu.user + cpu.system) / 1000,
  ...(probeThreadMs === undefined ? {} : { probeThreadMs }),
  wakeUps: { main: wakes1.main - wakes0.main, probe: wakes1.probe - wakes0.probe },
  ...(loop ? { loopDelayMs: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 } } : {}),
  loopResolutionMs: LOOP_RESOLUTION_MS,
  latenessMs: { p50: pct(50), p99: pct(99), max: sorted[sorted.length - 1] },
}));
await director.stop({ leave: 'remove' });
process.exit(0);
