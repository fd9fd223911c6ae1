// Connection-table benchmark (issue 5), run inside the VM by scripts/bench.sh.
//
// Fills a backup sync daemon's table with N connections (scripts/sync-flood.mjs), then times,
// in the same boot: `cat` of the table (the floor), `ipvsadm -lnc`, the autoban pipeline
// (`ipvsadm -lnc | awk`: clients with more than 100 ESTABLISHED connections), and our
// countConnections (same question), connectionTable and the object iterator. The floor is
// `cat`'s time less that of a `cat` of an empty file: the reading without the process start. Methods are
// interleaved round by round; the table shows medians and ratios. All answers must agree.
//
// Environment: IPVS_BENCH_CONN_SIZES ("100000 1000000"), IPVS_BENCH_ROUNDS (3).
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

import {
  fillSyncBackup, inNetns, median, ms, printTable, projectRoot, ratio, requireTestVm, run, startSyncBackup, writeResult,
} from './lib.mjs';

requireTestVm('connections.bench.mjs');

const kernel = process.env.IPVS_VM_KERNEL ?? 'unknown';
const sizes = (process.env.IPVS_BENCH_CONN_SIZES ?? '100000').trim().split(/\s+/).map(Number).sort((a, b) => a - b);
const rounds = Number(process.env.IPVS_BENCH_ROUNDS ?? 3);
const THRESHOLD = 100;
// The same client count for every size makes each smaller table a prefix of the larger one,
// so growing the table adds exactly the missing entries.
const CLIENTS = 20_000;
// A reference command slower than this runs in the first round only.
const SLOW_MS = 60_000;

const suffix = randomBytes(3).toString('hex');
const backup = `bk-${suffix}`;
const sender = `snd-${suffix}`;
const netnsPath = `/run/netns/${backup}`;

function setUp() {
  run('ip', ['netns', 'add', backup]);
  run('ip', ['netns', 'add', sender]);
  startSyncBackup(backup, sender, suffix);
}

function tearDown() {
  try {
    inNetns(backup, 'ipvsadm', ['--stop-daemon', 'backup']);
  } catch {
    // already gone
  }
  for (const netns of [backup, sender]) {
    try {
      run('ip', ['netns', 'delete', netns]);
    } catch {
      // already gone
    }
  }
}

/** Runs the probe for one of our readers in a fresh process (its own peak RSS). */
function probe(method) {
  const output = run('node', [path.join(projectRoot, 'bench', 'conn-probe.mjs'), method, netnsPath, String(THRESHOLD), '1']);
  return JSON.parse(output.trim().split('\n').at(-1));
}

async function tableSize() {
  const { countConnections } = await import(path.join(projectRoot, 'dist', 'connections.js'));
  const counts = await countConnections({ netns: netnsPath, by: 'state' });
  return counts.scan.connections;
}

async function fill(size) {
  const { connections, seconds } = await fillSyncBackup(backup, sender, size, { clients: CLIENTS, sizeOf: tableSize });
  if (connections < size) throw new Error(`the backup daemon did not reach ${size} connections`);
  return seconds;
}

const AWK = `$3 == "ESTABLISHED" { split($4, a, ":"); n[a[1]]++ } END { for (k in n) if (n[k] > ${THRESHOLD}) print k, n[k] }`;
const references = {
  cat: 'cat /proc/net/ip_vs_conn > /dev/null',
  // cat's own start and exit, timed the same way, so the floor holds no process start (our
  // readers are timed inside a running process).
  'cat (start only)': 'cat /dev/null > /dev/null',
  'ipvsadm -lnc': 'ipvsadm -lnc > /dev/null',
  'ipvsadm -lnc | awk': `ipvsadm -lnc | awk '${AWK}' > /tmp/autoban-${suffix}.txt`,
};

/** Times a shell command inside the namespace with bash's clock (no process start in it). */
function reference(name) {
  const rssFile = `/tmp/rss-${suffix}`;
  const script = `s=$EPOCHREALTIME; ${references[name]}; e=$EPOCHREALTIME; echo "$s $e"`;
  const output = inNetns(backup, '/usr/bin/time', ['-f', '%M', '-o', rssFile, 'bash', '-c', script]);
  const [start, end] = output.trim().split(/\s+/).map(Number);
  const peakRssKiB = Number(readFileSync(rssFile, 'utf8').trim().split('\n').at(-1));
  rmSync(rssFile, { force: true });
  return { time: (end - start) * 1000, peakRssKiB };
}

function pipelineAnswer() {
  const text = readFileSync(`/tmp/autoban-${suffix}.txt`, 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [key, count] = line.split(' ');
      return { key, count: Number(count) };
    })
    .sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : 1));
}

const OURS = { countConnections: 'count', connectionTable: 'table', 'connections() objects': 'objects' };

async function benchmark(size) {
  const fillSeconds = await fill(size);
  const samples = Object.fromEntries([...Object.keys(references), ...Object.keys(OURS)].map((m) => [m, []]));
  const extra = {};
  const answers = {};
  const methods = Object.keys(samples);
  for (let round = 0; round < rounds; round++) {
    // Rotate the order so drift in the guest does not favour one method.
    const order = methods.map((_, i) => methods[(i + round) % methods.length]);
    for (const method of order) {
      if (round > 0 && median(samples[method]) > SLOW_MS) continue;
      if (method in references) {
        const { time, peakRssKiB } = reference(method);
        samples[method].push(time);
        extra[method] = { peakRssKiB };
        if (method === 'ipvsadm -lnc | awk') answers[method] = pipelineAnswer();
      } else {
        const result = probe(OURS[method]);
        samples[method].push(...result.times);
        extra[method] = {
          peakRssKiB: result.peakRssKiB,
          baselineRssKiB: result.baselineRssKiB,
          eventLoopDelayP99Ms: Math.max(result.eventLoopDelayP99Ms, extra[method]?.eventLoopDelayP99Ms ?? 0),
          rows: result.rows,
        };
        answers[method] = result.answer;
      }
      console.log(`  round ${round + 1} ${method}: ${ms(samples[method].at(-1))} ms`);
    }
  }
  const pipelineText = JSON.stringify(answers['ipvsadm -lnc | awk']);
  const agree = Object.values(answers).every((answer) => JSON.stringify(answer) === pipelineText);
  const floor = median(samples.cat) - median(samples['cat (start only)']);
  const pipeline = median(samples['ipvsadm -lnc | awk']);
  const rows = methods.map((method) => [
    method,
    ms(median(samples[method])),
    ratio(median(samples[method]) / floor),
    ratio(median(samples[method]) / pipeline),
    samples[method].length,
    (extra[method].peakRssKiB / 1024).toFixed(0),
    extra[method].eventLoopDelayP99Ms === undefined ? '' : ms(extra[method].eventLoopDelayP99Ms),
  ]);
  printTable(
    `Linux ${kernel}, ${size.toLocaleString('en-US')} connections (table filled in ${fillSeconds.toFixed(0)} s); ` +
      `autoban answers agree: ${agree ? 'yes' : 'NO'} (${answers['ipvsadm -lnc | awk']?.length ?? 0} clients)`,
    ['method', 'median ms', 'x floor', 'x pipeline', 'runs', 'peak RSS MiB', 'loop delay p99 ms'],
    rows,
  );
  if (!agree) throw new Error(`the autoban answers differ: ${JSON.stringify(answers).slice(0, 2000)}`);
  return {
    size,
    fillSeconds,
    autobanClients: answers['ipvsadm -lnc | awk']?.length ?? 0,
    methods: Object.fromEntries(
      methods.map((m) => [m, { medianMs: median(samples[m]), samplesMs: samples[m], xCat: median(samples[m]) / floor,
        xPipeline: median(samples[m]) / pipeline, ...extra[m] }]),
    ),
  };
}

if (!existsSync(path.join(projectRoot, 'dist', 'connections.js'))) {
  console.error('dist/connections.js is missing: run `npm run build:ts` first');
  process.exit(1);
}
const results = [];
setUp();
try {
  for (const size of sizes) results.push(await benchmark(size));
} finally {
  tearDown();
}
writeResult(`connections-${kernel}`, { benchmark: 'connections', kernel, threshold: THRESHOLD, rounds, results });
