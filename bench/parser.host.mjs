// Host-only parser throughput (no kernel): a synthetic 1M-line table in the page cache, read
// with `path`. Prints MB/s for each reader next to `cat` of the same file.
//
// Environment: IPVS_BENCH_PARSER_LINES (1000000), IPVS_BENCH_REPS (5).
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { median, ms, printTable, projectRoot, writeResult } from './lib.mjs';

const require = createRequire(import.meta.url);
const { countConnections, readConnectionTable, streamConnections } = require(path.join(projectRoot, 'dist', 'connections.js'));

const lines = Number(process.env.IPVS_BENCH_PARSER_LINES ?? 1_000_000);
const reps = Number(process.env.IPVS_BENCH_REPS ?? 5);

const hex = (value, width) => value.toString(16).toUpperCase().padStart(width, '0');
// Lines as the kernel prints them: 90% IPv4, 10% IPv6, a few states, skewed clients.
function synthesize() {
  const parts = ['Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n'];
  const states = ['ESTABLISHED', 'ESTABLISHED', 'ESTABLISHED', 'TIME_WAIT', 'FIN_WAIT', 'SYN_RECV'];
  let x = 12345;
  const random = () => ((x = (x * 1103515245 + 12345) >>> 0) / 4294967296);
  for (let i = 0; i < lines; i++) {
    const u = random();
    const client = Math.floor(20000 * u * u);
    const state = states[i % states.length].padEnd(11);
    const expires = String(Math.floor(random() * 900)).padStart(7);
    if (i % 10 === 9) {
      const v6 = (n) => `2001:0db8:0000:0000:0000:0000:${hex(n >> 16, 4).toLowerCase()}:${hex(n & 0xffff, 4).toLowerCase()}`;
      parts.push(`TCP ${v6(client)} ${hex(1024 + (i % 60000), 4)} ${v6(1)} 01BB ${v6(0x20000 + (i % 8))} 01BB ${state} ${expires}\n`);
    } else {
      parts.push(`TCP ${hex(0x0a800000 + client, 8)} ${hex(1024 + (i % 60000), 4)} 0A010001 0050 ${hex(0x0a020001 + (i % 8), 8)} 1F90 ${state} ${expires}\n`);
    }
  }
  return parts.join('');
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'ipvs-parser-bench-'));
const file = path.join(dir, 'ip_vs_conn');
try {
  writeFileSync(file, synthesize());
  const bytes = statSync(file).size;
  const measure = async (fn) => {
    await fn(); // warm the page cache and the code
    const times = [];
    for (let i = 0; i < reps; i++) {
      const started = performance.now();
      await fn();
      times.push(performance.now() - started);
    }
    return median(times);
  };
  const catSample = () => {
    const out = execFileSync('bash', ['-c', `s=$EPOCHREALTIME; cat '${file}' > /dev/null; e=$EPOCHREALTIME; echo "$s $e"`], {
      encoding: 'utf8',
    });
    const [s, e] = out.trim().split(' ').map(Number);
    return (e - s) * 1000;
  };
  catSample();
  const catMs = median(Array.from({ length: reps }, catSample));
  const results = {
    cat: catMs,
    'countConnections (client, ESTABLISHED)': await measure(() =>
      countConnections({ path: file, by: 'client', state: 'ESTABLISHED', minCount: 101 })),
    'countConnections (state)': await measure(() => countConnections({ path: file, by: 'state' })),
    connectionTable: await measure(() => readConnectionTable({ path: file })),
    'connections() objects': await measure(async () => {
      let n = 0;
      for await (const batch of streamConnections({ path: file })) n += batch.length;
      if (n !== lines) throw new Error(`read ${n} of ${lines}`);
    }),
  };
  const mb = bytes / 1e6;
  printTable(
    `Parser throughput on the host: ${lines.toLocaleString('en-US')} lines, ${mb.toFixed(1)} MB, median of ${reps}`,
    ['reader', 'median ms', 'MB/s', 'lines/s (M)'],
    Object.entries(results).map(([name, t]) => [name, ms(t), (mb / (t / 1000)).toFixed(0), (lines / (t / 1000) / 1e6).toFixed(1)]),
  );
  writeResult('parser-host', {
    benchmark: 'parser',
    lines,
    bytes,
    reps,
    results: Object.fromEntries(Object.entries(results).map(([k, t]) => [k, { medianMs: t, mbPerSecond: mb / (t / 1000) }])),
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
