// Metrics benchmark, run inside the test VM: a scrape of a 1,000 x 10 table (GET /metrics
// over HTTP on loopback, the whole response read) against `ipvsadm -Ln --stats --exact` of
// the same table in the same run; then the event-loop delay while scraping every second.
// Medians over --reps runs. Prints a table and writes bench/results/metrics-<kernel>.json.
//
//   node bench/metrics.bench.mjs [--size 1000x10] [--reps 5] [--seconds 20]
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

import { Ipvs } from '../dist/index.js';
import { serveMetrics } from '../dist/metrics/index.js';
import { ms, option, printTable, ratio, requireTestVm, writeResult } from './lib.mjs';

requireTestVm('metrics.bench.mjs');
const size = option('size', (process.env.IPVS_BENCH_SIZES ?? '1000x10').split(/[ ,]/)[0]);
const [SERVICES, DESTINATIONS] = size.split('x').map(Number);
const REPS = Number(option('reps', '5'));
const SECONDS = Number(option('seconds', '20'));
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const sh = (command, args) => execFileSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 30 });

const netns = `bench-met-${process.pid}`;
sh('ip', ['netns', 'add', netns]);
sh('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
// The real servers' network, so that the kernel sees their addresses as unicast.
sh('ip', ['-n', netns, 'link', 'add', 'rs0', 'type', 'dummy']);
sh('ip', ['-n', netns, 'addr', 'add', '172.16.255.254/12', 'dev', 'rs0']);
sh('ip', ['-n', netns, 'link', 'set', 'rs0', 'up']);
const ipvs = await Ipvs.open({ netns: `/run/netns/${netns}` });
let endpoint;
try {
  const batch = ipvs.batch();
  for (let s = 0; s < SERVICES; s++) {
    const service = { protocol: 'tcp', address: `10.${(s >> 16) & 255}.${(s >> 8) & 255}.${s & 255}`, port: 80, scheduler: 'wlc' };
    batch.addService(service);
    for (let d = 0; d < DESTINATIONS; d++) batch.addDestination(service, { address: `172.16.${(s >> 8) & 255}.${d + 1}`, port: 80, forward: 'route', weight: 1 + (d % 5) });
  }
  const failures = (await batch.commit()).filter((r) => !r.ok);
  if (failures.length) throw new Error(`${failures.length} operations failed while building the table, the first: ${failures[0].error?.code} ${failures[0].error?.message}`);

  endpoint = await serveMetrics({ ipvs, listen: '127.0.0.1:0' });
  const scrape = () => new Promise((resolve, reject) => {
    const started = performance.now();
    // A connection per scrape, as Prometheus' scrapes of one target usually are not pipelined,
    // and so that no pooled connection meets the server's keep-alive timeout.
    http.get(`${endpoint.url}metrics`, { agent: false }, (response) => {
      let bytes = 0;
      response.on('error', reject);
      response.on('data', (chunk) => { bytes += chunk.length; });
      response.on('end', () => resolve({ ms: performance.now() - started, bytes }));
    }).on('error', reject);
  });
  const ipvsadm = () => {
    const started = performance.now();
    const out = sh('ip', ['netns', 'exec', netns, 'ipvsadm', '-Ln', '--stats', '--exact']);
    return { ms: performance.now() - started, bytes: out.length };
  };

  // What every scrape starts with: the table read through netlink and decoded into objects.
  const listTable = async () => {
    const started = performance.now();
    await ipvs.listTable();
    return performance.now() - started;
  };

  await scrape();  // warm-up
  ipvsadm();
  const scrapes = [];
  const oracle = [];
  const listings = [];
  for (let i = 0; i < REPS; i++) {
    scrapes.push(await scrape());
    oracle.push(ipvsadm());
    listings.push(await listTable());
  }
  const scrapeMs = median(scrapes.map((s) => s.ms));
  const ipvsadmMs = median(oracle.map((s) => s.ms));
  const listTableMs = median(listings);

  // Scraping every second for SECONDS s, with the event-loop delay histogram running.
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const loopScrapes = [];
  const until = performance.now() + SECONDS * 1000;
  while (performance.now() < until) {
    const started = performance.now();
    loopScrapes.push(await scrape());
    const wait = 1000 - (performance.now() - started);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  histogram.disable();
  const p99 = histogram.percentile(99) / 1e6;
  const max = histogram.max / 1e6;

  printTable(`Metrics scrape, ${SERVICES} x ${DESTINATIONS} (median of ${REPS}; kernel ${sh('uname', ['-r']).trim()})`,
    ['', 'ms', 'bytes', 'lines'], [
      ['GET /metrics', ms(scrapeMs), scrapes[0].bytes, ''],
      ['ipvsadm -Ln --stats --exact', ms(ipvsadmMs), oracle[0].bytes, ''],
      ['scrape / ipvsadm', ratio(scrapeMs / ipvsadmMs), '', ''],
      ['ipvs.listTable() alone (part of every scrape)', ms(listTableMs), '', ''],
      [`event-loop p99 / max, scraping every 1 s for ${SECONDS} s (${loopScrapes.length} scrapes)`, `${ms(p99)} / ${ms(max)}`, '', ''],
    ]);
  writeResult(`metrics-${process.env.IPVS_VM_KERNEL ?? 'host'}`, {
    size, reps: REPS, scrapeMs, listTableMs, scrapeBytes: scrapes[0].bytes, ipvsadmMs, ipvsadmBytes: oracle[0].bytes, ratio: scrapeMs / ipvsadmMs,
    eventLoopP99Ms: p99, eventLoopMaxMs: max, loopScrapes: loopScrapes.length, loopScrapeMedianMs: median(loopScrapes.map((s) => s.ms)),
  });
} finally {
  await endpoint?.close();
  await ipvs.close();
  sh('ip', ['netns', 'delete', netns]);
}
