// A scraper in its own process, as a Prometheus server is: GET URL with a new connection
// each time, the whole body read and, when gzipped, decompressed (what Prometheus does with
// it before parsing). Prints one JSON line per scrape: { ms, cpuMs, wireBytes, bytes, coding }, ms from
// the request to the last decoded byte, cpuMs the scraper's own CPU time in it.
//
//   node bench/scrape-client.mjs URL [--gzip] [--count N] [--seconds S] [--interval MS]
//
// --gzip sends Prometheus' request headers (its `Accept`, and `Accept-Encoding: gzip`); without
// it the request asks for no coding.
// --interval: scrapes start this far apart (start to start, as Prometheus schedules them),
// back to back when one takes longer.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import zlib from 'node:zlib';

const args = process.argv.slice(2);
const url = args[0];
const flag = (name) => args.includes(`--${name}`);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const gzip = flag('gzip');
const count = option('count', Infinity);
const seconds = option('seconds', Infinity);
const interval = option('interval', 0);
if (!url || (count === Infinity && seconds === Infinity)) {
  console.error('usage: scrape-client.mjs URL [--gzip] (--count N | --seconds S) [--interval MS]');
  process.exit(2);
}

/** What Prometheus 2 sends by default (its scrape_protocols): OpenMetrics first, then the text format. */
const PROMETHEUS_ACCEPT = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,' +
  'text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

const cpuMs = ({ user, system }) => (user + system) / 1000;

function scrape() {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const cpu = process.cpuUsage();
    const headers = gzip ? { Accept: PROMETHEUS_ACCEPT, 'Accept-Encoding': 'gzip' } : { 'Accept-Encoding': 'identity' };
    http.get(url, { agent: false, headers }, (response) => {
      if (response.statusCode !== 200) reject(new Error(`HTTP ${response.statusCode}`));
      let wireBytes = 0;
      let bytes = 0;
      response.on('data', (chunk) => { wireBytes += chunk.length; });
      let body = response;
      if (response.headers['content-encoding'] === 'gzip') body = response.pipe(zlib.createGunzip());
      body.on('data', (chunk) => { bytes += chunk.length; });
      body.on('error', reject);
      body.on('end', () => resolve({ ms: performance.now() - started, cpuMs: cpuMs(process.cpuUsage(cpu)), wireBytes, bytes,
        coding: response.headers['content-encoding'] ?? 'identity' }));
    }).on('error', reject);
  });
}

const until = performance.now() + seconds * 1000;
for (let i = 0; i < count && performance.now() < until; i++) {
  const started = performance.now();
  console.log(JSON.stringify(await scrape()));
  const wait = interval - (performance.now() - started);
  if (wait > 0 && performance.now() + wait < until) await new Promise((resolve) => setTimeout(resolve, wait));
}
