// The full soak (issue 9), run inside the VM by scripts/bench.sh: 100,000 operations, 10,000
// handle open/close cycles and 1,000 connection-table reads in one process, in two halves.
// Passes when the RSS growth that continues (the second half's, over the whole run) is under
// 5 MiB and the open descriptors are back to the baseline. The bounded
// version runs in `npm test` (test/kernel/soak.test.ts).
import { createRequire } from 'node:module';
import path from 'node:path';

import { printTable, projectRoot, requireTestVm, run, writeResult } from './lib.mjs';
import { FULL, soak } from './soak-run.mjs';

// IPVS_SOAK_SCALE (default 1) scales every count, for a quicker look.
const scale = Number(process.env.IPVS_SOAK_SCALE ?? 1);
const sizes = Object.fromEntries(Object.entries(FULL).map(([k, v]) => [k, Math.max(1, Math.round(v * scale))]));

requireTestVm('soak.bench.mjs');

const require = createRequire(import.meta.url);
const api = require(path.join(projectRoot, 'dist', 'index.js'));
const name = `soak-${process.pid}`;
run('ip', ['netns', 'add', name]);
run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
let result;
try {
  result = await soak(api, `/run/netns/${name}`, sizes);
} finally {
  run('ip', ['netns', 'delete', name]);
}
const ok = result.rssGrowthMiB < 5 && result.fdsAfter === result.fdsBefore;
printTable(
  `Soak on Linux ${process.env.IPVS_VM_KERNEL ?? 'unknown'}`,
  ['phase', 'count', 'seconds'],
  Object.keys(result.done).map((phase) => [phase, String(result.done[phase]), result.seconds[phase].toFixed(1)]),
);
const mib = (bytes) => (bytes / 2 ** 20).toFixed(1);
console.log(
  `RSS ${mib(result.rssBefore)} -> ${mib(result.rssMiddle)} -> ${mib(result.rssAfter)} MiB ` +
    `(halves +${result.firstHalfGrowthMiB.toFixed(2)}, +${result.secondHalfGrowthMiB.toFixed(2)} MiB; ` +
    `continuing growth ${result.rssGrowthMiB.toFixed(2)} MiB, limit 5); ` +
    `V8 heap used ${result.heapUsedMiB.join(' -> ')} MiB, total ${result.heapTotalMiB.join(' -> ')} MiB; ` +
    `fds ${result.fdsBefore} -> ${result.fdsAfter}: ${ok ? 'PASS' : 'FAIL'}`,
);
writeResult('soak', { kernel: process.env.IPVS_VM_KERNEL, ...result, ok });
if (!ok) process.exit(1);
