// Diagnostic for the /metrics scrape, run inside the test VM (not part of `npm run bench`):
// where a scrape of a 1,000 x 10 table spends its time. ipvsadm; reading the table alone;
// reading and rendering into a sink that recycles the chunks; scrapes by
// bench/scrape-client.mjs (its own times, as the benchmark) of the real endpoint and of the same
// text served from memory (the transfer alone, after a listing, pre-gzipped); curl of both;
// with --zlib, zlib's levels and strategies on the text (size, compression and decompression
// time). This process's user and system CPU beside each. Medians of --reps.
//
//   node bench/metrics-phase-probe.mjs [--reps 5] [--size 1000x10] [--zlib]
import { execFile, execFileSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import zlib from 'node:zlib';

import { Ipvs } from '../dist/index.js';
import { createMetricsRegistry, serveMetrics } from '../dist/metrics/index.js';
import { writeExposition } from '../dist/metrics/exposition.js';
import { recycleChunk } from '../dist/metrics/exposition-writer.js';
import { addRealServerNetns, fillRealServerTable, median, option, requireTestVm } from './lib.mjs';

requireTestVm('metrics-phase-probe.mjs');
const [SERVICES, DESTINATIONS] = option('size', '1000x10').split('x').map(Number);
const REPS = Number(option('reps', '5'));
const CLIENT = path.join(import.meta.dirname, 'scrape-client.mjs');
const sh = (command, args) => execFileSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 30 });
const run = (command, args) => new Promise((resolve, reject) => {
  execFile(command, args, { maxBuffer: 1 << 26 }, (error, stdout, stderr) => (error ? reject(new Error(`${command}: ${error.message} ${stderr}`)) : resolve(stdout)));
});

/** Wall and this process's user/system CPU of `work`, median of REPS. */
async function measure(work) {
  const walls = [], users = [], systems = [];
  await work();
  for (let i = 0; i < REPS; i++) {
    const cpu = process.cpuUsage();
    const started = performance.now();
    await work();
    walls.push(performance.now() - started);
    const used = process.cpuUsage(cpu);
    users.push(used.user / 1000);
    systems.push(used.system / 1000);
  }
  return `${median(walls).toFixed(0)} ms (server user ${median(users).toFixed(0)} + sys ${median(systems).toFixed(0)})`;
}

const netns = `probe-met-${process.pid}`;
addRealServerNetns(netns);
const ipvs = await Ipvs.open({ netns: `/run/netns/${netns}` });
const endpoints = [];
const STOP = Symbol('done');
try {
  await fillRealServerTable(ipvs, SERVICES, DESTINATIONS);
  const rows = [];
  const show = (name, value) => { rows.push([name, value]); console.log(`${name}: ${value}`); };

  show('ipvsadm -Ln --stats --exact', await measure(() => run('ip', ['netns', 'exec', netns, 'ipvsadm', '-Ln', '--stats', '--exact'])));
  const { registry, sampler } = createMetricsRegistry({ ipvs });
  show('sampler.sample() (packed listing, daemons, proc stats)', await measure(() => sampler.sample()));
  show('listing only (ipvs.enqueue listTable)', await measure(() => ipvs.enqueue('listTable', (h) => h.listTable())));
  show('writeExposition into a sink that recycles the chunks (sample + render)', await measure(() => writeExposition(registry, (taken) => { for (const chunk of taken) recycleChunk(chunk); })));
  const chunks = [];
  await writeExposition(registry, (taken) => { for (const c of taken) chunks.push(Buffer.from(c)); });
  const text = Buffer.concat(chunks);
  show('exposition bytes', String(text.length));
  show('Buffer.from copy of the text (a memcpy)', await measure(() => Buffer.from(text)));

  const plain = await serveMetrics({ ipvs, listen: '127.0.0.1:0' });
  const gzipped = await serveMetrics({ ipvs, listen: '127.0.0.1:0', compression: 'always' });
  endpoints.push(plain, gzipped);
  // The same bytes served from memory, with nothing rendered: what the transfer alone costs
  // this scraper; then with a listing of the table first, as a scrape has.
  const packed = zlib.gzipSync(text, { level: 1 });
  const served = http.createServer(async (request, response) => {
    const url = new URL(request.url, 'http://x');
    if (url.searchParams.has('list')) await ipvs.enqueue('listTable', (h) => h.listTable());
    const gzip = url.searchParams.has('gzip');
    response.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4', ...(gzip ? { 'Content-Encoding': 'gzip' } : {}) });
    const body = gzip ? packed : text;
    const piece = Number(url.searchParams.get('chunk') ?? 128 * 1024);
    for (let at = 0; at < body.length; at += piece) {
      if (!response.write(body.subarray(at, at + piece))) await new Promise((resolve) => response.once('drain', resolve));
    }
    response.end();
  });
  await new Promise((resolve) => served.listen(0, '127.0.0.1', resolve));
  const memory = `http://127.0.0.1:${served.address().port}/metrics`;
  /** The scraper's own figures (ms from request to last decoded byte), REPS scrapes after one to warm up. */
  const scrapes = async (url, args) => {
    const cpu = process.cpuUsage();
    const lines = (await run(process.execPath, [CLIENT, url, ...args, '--count', String(REPS + 1)])).trim().split('\n').slice(1).map((l) => JSON.parse(l));
    const used = process.cpuUsage(cpu);
    return `${median(lines.map((l) => l.ms)).toFixed(0)} ms, scraper CPU ${median(lines.map((l) => l.cpuMs)).toFixed(0)}, server CPU per scrape ` +
      `${((used.user + used.system) / 1000 / (REPS + 1)).toFixed(0)} (${lines[0].coding}, ${lines[0].wireBytes} on the wire)`;
  };
  show('HTTP as Prometheus asks (scrape-client --gzip, default endpoint)', await scrapes(`${plain.url}metrics`, ['--gzip']));
  show('HTTP no Accept-Encoding', await scrapes(`${plain.url}metrics`, []));
  show('HTTP gzip forced', await scrapes(`${gzipped.url}metrics`, ['--gzip']));
  show('the same text from memory, plain (transfer alone)', await scrapes(memory, []));
  show('the same text from memory after a listing, plain', await scrapes(`${memory}?list`, []));
  for (const piece of [16384, 65536, 524288, 2097152]) {
    show(`the same text from memory, plain, in writes of ${piece / 1024} KiB`, await scrapes(`${memory}?chunk=${piece}`, []));
  }
  show('the same text pre-gzipped (L1) from memory (transfer + scraper gunzip)', await scrapes(`${memory}?gzip`, ['--gzip']));
  show('HTTP plain, curl -o /dev/null', await measure(() => run('curl', ['-sS', '-o', '/dev/null', `${plain.url}metrics`])));
  show('the same text from memory, curl -o /dev/null', await measure(() => run('curl', ['-sS', '-o', '/dev/null', memory])));
  served.close();
  if (!process.argv.includes('--zlib')) throw STOP;

  const variants = [
    ['level 1', { level: 1 }],
    ['level 2', { level: 2 }],
    ['level 4', { level: 4 }],
    ['level 6', { level: 6 }],
    ['level 1 memLevel 9', { level: 1, memLevel: 9 }],
    ['Z_RLE', { level: 1, strategy: zlib.constants.Z_RLE }],
    ['Z_HUFFMAN_ONLY', { level: 1, strategy: zlib.constants.Z_HUFFMAN_ONLY }],
  ];
  for (const [name, options] of variants) {
    let packed;
    const compress = await measure(() => { packed = zlib.gzipSync(text, options); });
    const inflate = await measure(() => zlib.gunzipSync(packed));
    show(`gzip ${name}: ${packed.length} bytes`, `compress ${compress}; gunzip ${inflate}`);
  }
  const inflateChunks = await measure(async () => {
    const gunzip = zlib.createGunzip();
    const done = new Promise((resolve) => gunzip.on('end', resolve));
    gunzip.resume();
    const packed = zlib.gzipSync(text, { level: 1 });
    for (let at = 0; at < packed.length; at += 65536) gunzip.write(packed.subarray(at, at + 65536));
    gunzip.end();
    await done;
  });
  show('gzipSync L1 + streamed gunzip in 64 KiB pieces', inflateChunks);
  console.log(JSON.stringify(rows));
} catch (error) {
  if (error !== STOP) throw error;
} finally {
  for (const endpoint of endpoints) await endpoint.close();
  await ipvs.close();
  sh('ip', ['netns', 'delete', netns]);
}
