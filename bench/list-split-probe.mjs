// listTable as one native job then the objects, against the listing split in parts whose
// objects are built while the next part is dumped (lib/table.ts listTableObjects), warm,
// interleaved, in the test VM. Not part of `npm run bench`: a tool for choosing the split.
//
//   scripts/vm/run.sh --kernel 6.17 -- node bench/list-split-probe.mjs [--reps 5] [--parts 100,250,500]
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

import { Ipvs } from '../dist/index.js';
import { median, option, requireTestVm } from './lib.mjs';

requireTestVm('list-split-probe.mjs');
const require = createRequire(import.meta.url);
const { tableFromNative, listTableObjects } = require('../dist/table.js');
const reps = Number(option('reps', '5'));
const splits = option('parts', '100,250,500').split(',').map(Number);
const sh = (cmd, args, input) => execFileSync(cmd, args, { input, encoding: 'utf8', maxBuffer: 256 << 20 });
const name = `splitprobe-${process.pid}`;
sh('ip', ['netns', 'add', name]);
try {
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  const lines = [];
  for (let s = 0; s < 1000; s++) {
    const svc = `-t 10.0.${(s >> 8) & 255}.${s & 255}:80`;
    lines.push(`-A ${svc} -s wlc`);
    for (let d = 0; d < 10; d++) lines.push(`-a ${svc} -r 172.16.${(s >> 8) & 255}.${d + 1}:80 -g -w ${1 + (d % 5)}`);
  }
  sh('ip', ['netns', 'exec', name, 'ipvsadm', '-R'], lines.join('\n') + '\n');
  const ipvs = await Ipvs.open({ netns: `/run/netns/${name}` });
  const methods = {
    oneJob: async () => tableFromNative(await ipvs.enqueue('probe', (handle) => handle.listTable())),
    ...Object.fromEntries(splits.map((n) => [`parts${n}`, () => ipvs.enqueue('probe', (handle) => listTableObjects(handle, n))])),
  };
  const runs = Object.fromEntries(Object.keys(methods).map((k) => [k, []]));
  for (let i = 0; i < reps + 1; i++) {
    for (const [k, fn] of Object.entries(methods)) {
      const start = performance.now();
      const table = await fn();
      if (table.length !== 1000) throw new Error(`${k}: ${table.length} services`);
      if (i > 0) runs[k].push(performance.now() - start);
    }
  }
  await ipvs.close();
  for (const [k, v] of Object.entries(runs)) console.log(`${k.padEnd(10)} median ${median(v).toFixed(1)} ms  runs ${v.map((x) => x.toFixed(0)).join(' ')}`);
} finally {
  sh('ip', ['netns', 'delete', name]);
}
