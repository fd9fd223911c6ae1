// Metrics benchmark, run inside the test VM: a scrape of a 1,000 x 10 table (GET /metrics
// over HTTP on loopback, by a scraper in its own process as Prometheus is, the whole body read
// and decoded; bench/scrape-client.mjs), with Prometheus' `Accept` and `Accept-Encoding: gzip` (which the
// default compression, `remote`, answers with the plain text on loopback), with gzip forced
// (`compression: 'always'`, what a scraper across a network gets) and without asking, against
// `ipvsadm -Ln --stats --exact` of the same table in the same run; then the event-loop delay of
// the serving process while it is scraped every second. Medians over --reps runs. Prints a table and writes bench/results/metrics-<kernel>.json.
//
//   node bench/metrics.bench.mjs [--size 1000x10] [--reps 8] [--seconds 20] [--tasks]
//
// --tasks: also lists the longest callbacks of the serving process while scraped (async_hooks,
// which slows it down: a diagnosis, not a figure to quote) and its garbage-collector pauses.
import { execFile, execFileSync } from 'node:child_process';
import { createHook } from 'node:async_hooks';
import path from 'node:path';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';

import { Ipvs } from '../dist/index.js';
import { serveMetrics } from '../dist/metrics/index.js';
import { addRealServerNetns, fillRealServerTable, median, ms, option, printTable, ratio, requireTestVm, writeResult } from './lib.mjs';

requireTestVm('metrics.bench.mjs');
const size = option('size', (process.env.IPVS_BENCH_SIZES ?? '1000x10').split(/[ ,]/)[0]);
const [SERVICES, DESTINATIONS] = size.split('x').map(Number);
const REPS = Number(option('reps', '8'));
const SECONDS = Number(option('seconds', '20'));
const TASKS = process.argv.includes('--tasks');
const CLIENT = path.join(import.meta.dirname, 'scrape-client.mjs');
const sh = (command, args) => execFileSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 30 });

/** Runs the scraper process; resolves with its scrapes. It never runs synchronously: our event loop stays free. */
function scraper(url, args) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLIENT, url, ...args], { maxBuffer: 1 << 24 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`scrape-client ${args.join(' ')}: ${error.message} ${stderr}`));
      else resolve(stdout.trim().split('\n').map((line) => JSON.parse(line)));
    });
  });
}

/** The longest top-level callbacks (by resource type) and GC pauses while `work` runs. */
async function longestTasks(work) {
  const types = new Map();
  const tasks = [];
  let depth = 0;
  let started = 0;
  const hook = createHook({
    init: (id, type) => { types.set(id, type); },
    before: (id) => { if (depth++ === 0) { started = performance.now(); tasks.current = types.get(id); } },
    // A hook enabled inside a callback sees its end without its start: skip that one.
    after: () => { if (depth > 0 && --depth === 0) tasks.push([performance.now() - started, tasks.current]); },
    destroy: (id) => { types.delete(id); },
  });
  const pauses = [];
  const observer = new PerformanceObserver((list) => { for (const entry of list.getEntries()) pauses.push(entry.duration); });
  observer.observe({ entryTypes: ['gc'] });
  hook.enable();
  try {
    await work();
  } finally {
    hook.disable();
    observer.disconnect();
  }
  tasks.sort((a, b) => b[0] - a[0]);
  pauses.sort((a, b) => b - a);
  return { tasks: tasks.slice(0, 15).map(([duration, type]) => `${type} ${duration.toFixed(1)}`), over10: tasks.filter(([d]) => d > 10).length,
    count: tasks.length, gcPauses: pauses.length, gcLongest: pauses.slice(0, 8).map((d) => d.toFixed(1)) };
}

const netns = `bench-met-${process.pid}`;
addRealServerNetns(netns);
const ipvs = await Ipvs.open({ netns: `/run/netns/${netns}` });
let endpoint;
let gzipEndpoint;
try {
  await fillRealServerTable(ipvs, SERVICES, DESTINATIONS);

  endpoint = await serveMetrics({ ipvs, listen: '127.0.0.1:0' });
  gzipEndpoint = await serveMetrics({ ipvs, listen: '127.0.0.1:0', compression: 'always' });
  const url = `${endpoint.url}metrics`;
  const gzipUrl = `${gzipEndpoint.url}metrics`;
  const ipvsadm = () => {
    const started = performance.now();
    const out = sh('ip', ['netns', 'exec', netns, 'ipvsadm', '-Ln', '--stats', '--exact']);
    return { ms: performance.now() - started, bytes: out.length };
  };
  // What of ipvsadm's time is starting processes (ip netns exec, then ipvsadm), not its work.
  const processStart = () => {
    const started = performance.now();
    sh('ip', ['netns', 'exec', netns, 'true']);
    return performance.now() - started;
  };
  // What every scrape starts with: the table read through netlink and decoded into objects.
  const listTable = async () => {
    const started = performance.now();
    await ipvs.listTable();
    return performance.now() - started;
  };

  // The serving process's CPU time in each scrape, beside the scraper's: which of the two a
  // scrape's time waits for. (Guest CPU time: under TCG it includes time the host took the vCPU away.)
  const scrapeOnce = async (target, args) => {
    const cpu = process.cpuUsage();
    const [scrape] = await scraper(target, [...args, '--count', '1']);
    const { user, system } = process.cpuUsage(cpu);
    return { ...scrape, serverCpuMs: (user + system) / 1000 };
  };
  const kinds = {
    prometheus: () => scrapeOnce(url, ['--gzip']),
    plain: () => scrapeOnce(url, []),
    gzip: () => scrapeOnce(gzipUrl, ['--gzip']),
  };
  // Warm-up: the label rows are built once per endpoint and then reused.
  ipvsadm();
  for (const run of Object.values(kinds)) await run();
  const oracle = [];
  const starts = [];
  const listings = [];
  const runs = { prometheus: [], plain: [], gzip: [] };
  // Round by round in a balanced order (a Williams square): over every 4 rounds each method
  // comes first once and follows each other method once. A rotated order would put the same
  // scrape after ipvsadm's processes every round, and that place costs a scrape 50-100 ms.
  const methods = ['ipvsadm', ...Object.keys(kinds)];
  const orders = [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]];
  for (let i = 0; i < REPS; i++) {
    for (const method of orders[i % orders.length].map((k) => methods[k])) {
      if (method === 'ipvsadm') {
        oracle.push(ipvsadm());
        starts.push(processStart());
      } else {
        runs[method].push(await kinds[method]());
      }
    }
  }
  // Apart from the rounds: a listing builds 11,000 objects in this (the serving) process, and a
  // rotated order puts the same scrape after it every round, to pay for their collection.
  for (let i = 0; i < REPS; i++) listings.push(await listTable());
  const { prometheus, plain, gzip: gzipped } = runs;
  if (gzipped[0].coding !== 'gzip' || prometheus[0].coding !== 'identity') throw new Error('unexpected content codings');
  const ipvsadmMs = median(oracle.map((s) => s.ms));
  const prometheusMs = median(prometheus.map((s) => s.ms));
  const plainMs = median(plain.map((s) => s.ms));
  const gzipMs = median(gzipped.map((s) => s.ms));
  const cpuOf = (scrapes) => ({ serverCpuMs: median(scrapes.map((s) => s.serverCpuMs)), scrapes });
  const [prometheusRun, plainRun, gzipRun] = [cpuOf(prometheus), cpuOf(plain), cpuOf(gzipped)];
  const cpuRow = (name, run) => [`  CPU per scrape: server / scraper, ${name}`, `${ms(run.serverCpuMs)} / ${ms(median(run.scrapes.map((s) => s.cpuMs)))}`, '', ''];

  // Scraped every second for SECONDS s, with the event-loop delay histogram of this (the serving) process running.
  const underScrapes = async (args, target = url) => {
    const histogram = monitorEventLoopDelay({ resolution: 1 });
    histogram.enable();
    const scrapes = await scraper(target, [...args, '--seconds', String(SECONDS), '--interval', '1000']);
    histogram.disable();
    return { scrapes, p99: histogram.percentile(99) / 1e6, max: histogram.max / 1e6 };
  };
  // The same histogram with nothing to serve: the delay this guest adds on its own at this moment.
  const idle = monitorEventLoopDelay({ resolution: 1 });
  idle.enable();
  await new Promise((resolve) => setTimeout(resolve, 5000));
  idle.disable();
  const loopIdle = { p99: idle.percentile(99) / 1e6, max: idle.max / 1e6 };
  const loopPrometheus = await underScrapes(['--gzip']);
  const loopGzip = await underScrapes(['--gzip'], gzipUrl);
  const tasks = TASKS ? await longestTasks(() => scraper(gzipUrl, ['--gzip', '--count', '4', '--interval', '1000'])) : undefined;
  const tasksPlain = TASKS ? await longestTasks(() => scraper(url, ['--count', '4', '--interval', '1000'])) : undefined;

  const loopRow = (coding, run) => [`event-loop p99 / max, ${coding}, scraped every 1 s for ${SECONDS} s (${run.scrapes.length} scrapes)`,
    `${ms(run.p99)} / ${ms(run.max)}`, '', ''];
  printTable(`Metrics scrape, ${SERVICES} x ${DESTINATIONS} (median of ${REPS}, methods interleaved; kernel ${sh('uname', ['-r']).trim()})`,
    ['', 'ms', 'bytes on the wire', 'bytes'], [
      ['GET /metrics, Accept-Encoding: gzip (as Prometheus; plain on loopback)', ms(prometheusMs), prometheus[0].wireBytes, prometheus[0].bytes],
      ['GET /metrics, gzip forced (as across a network)', ms(gzipMs), gzipped[0].wireBytes, gzipped[0].bytes],
      ['GET /metrics, no Accept-Encoding', ms(plainMs), plain[0].wireBytes, plain[0].bytes],
      cpuRow('as Prometheus', prometheusRun),
      cpuRow('gzip forced', gzipRun),
      cpuRow('no Accept-Encoding', plainRun),
      ['ipvsadm -Ln --stats --exact', ms(ipvsadmMs), oracle[0].bytes, ''],
      ['  of which starting ip netns exec + a process', ms(median(starts)), '', ''],
      ['scrape (as Prometheus) / ipvsadm', ratio(prometheusMs / ipvsadmMs), '', ''],
      ['scrape (gzip forced) / ipvsadm', ratio(gzipMs / ipvsadmMs), '', ''],
      ['scrape (no Accept-Encoding) / ipvsadm', ratio(plainMs / ipvsadmMs), '', ''],
      ['ipvs.listTable() alone (what the scrape no longer builds)', ms(median(listings)), '', ''],
      ['event-loop p99 / max, not scraped, 5 s (the guest alone)', `${ms(loopIdle.p99)} / ${ms(loopIdle.max)}`, '', ''],
      loopRow('as Prometheus', loopPrometheus),
      loopRow('gzip forced', loopGzip),
    ]);
  if (tasks) {
    for (const [coding, found] of [['gzip forced', tasks], ['no coding', tasksPlain]]) {
      console.log(`longest callbacks while scraped (${coding}, 4 scrapes; async_hooks on): ${found.over10} of ${found.count} over 10 ms; ${found.tasks.join(', ')}`);
      console.log(`  GC pauses: ${found.gcPauses}, longest ${found.gcLongest.join(', ')} ms`);
    }
  }
  writeResult(`metrics-${process.env.IPVS_VM_KERNEL ?? 'host'}`, {
    serverCpuMs: { prometheus: prometheusRun.serverCpuMs, gzip: gzipRun.serverCpuMs, plain: plainRun.serverCpuMs },
    size, reps: REPS, prometheusMs, gzipMs, plainMs, ipvsadmMs, processStartMs: median(starts), listTableMs: median(listings),
    wireBytesGzip: gzipped[0].wireBytes, wireBytesPlain: plain[0].wireBytes, scrapeBytes: plain[0].bytes, ipvsadmBytes: oracle[0].bytes,
    ratioPrometheus: prometheusMs / ipvsadmMs, ratioGzip: gzipMs / ipvsadmMs, ratioPlain: plainMs / ipvsadmMs,
    eventLoopIdle: { p99Ms: loopIdle.p99, maxMs: loopIdle.max },
    eventLoopPrometheus: { p99Ms: loopPrometheus.p99, maxMs: loopPrometheus.max, scrapes: loopPrometheus.scrapes.length,
      medianMs: median(loopPrometheus.scrapes.map((s) => s.ms)) },
    eventLoopGzip: { p99Ms: loopGzip.p99, maxMs: loopGzip.max, scrapes: loopGzip.scrapes.length, medianMs: median(loopGzip.scrapes.map((s) => s.ms)) },
    ...(tasks ? { tasks, tasksPlain } : {}),
  });
} finally {
  await endpoint?.close();
  await gzipEndpoint?.close();
  await ipvs.close();
  sh('ip', ['netns', 'delete', netns]);
}
