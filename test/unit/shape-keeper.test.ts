// The batch path's optimized code survives idle full GCs (lib/batch.ts, keepShapes): V8 frees the
// hidden class of a kind of object that has no live object at a full GC and throws away the
// optimized functions that relied on it ("weak objects"), so without a kept object every burst
// of batches after an idle GC would compile the path again. Run in a child process on the built
// package (dist/), with V8's deoptimization trace, bursts of batches with a GC between them.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

import { expect, it } from 'vitest';

const root = path.join(__dirname, '..', '..');

// Prints how many optimized functions V8 threw away for dead objects after each idle GC.
const script = `
  const { Batch, keepShapes } = require('./dist/batch.js');
  if (process.argv[1] === 'keep') keepShapes();
  const run = (operation, work) => work({ executeBatch: async () => ({
    errors: new Int32Array(1000), unknown: new Uint8Array(1000), messages: {}, sendCalls: 1, overruns: 0 }) });
  async function round(r) {
    const batch = new Batch(run);
    const key = (i) => ({ protocol: 'tcp', address: '10.' + (r & 255) + '.0.' + (i % 250), port: 1000 + Math.floor(i / 250) });
    for (let i = 0; i < 250; i++) {
      batch.addService({ ...key(i), scheduler: 'wrr' });
      batch.addDestination(key(i), { address: '192.0.2.1', forward: 'masq', weight: 1 });
      batch.editDestination(key(i), { address: '192.0.2.1', forward: 'masq', weight: 2 });
    }
    for (let i = 0; i < 250; i++) batch.deleteService(key(i));
    await batch.commit();
  }
  (async () => {
    for (let burst = 0; burst < 3; burst++) {
      for (let r = 0; r < 20; r++) await round(burst * 20 + r);
      for (let i = 0; i < 3; i++) { global.gc(); await new Promise((resolve) => setImmediate(resolve)); }
      console.log('@@IDLE');
    }
  })();`;

function deoptsPerIdleGc(mode: 'keep' | 'none'): number[] {
  // Optimizing on the main thread makes the counts independent of the host's load: with V8's
  // background compiler, a starved host could finish a burst before its code is optimized.
  const flags = ['--expose-gc', '--trace-deopt', '--no-concurrent-recompilation'];
  const out = execFileSync(process.execPath, [...flags, '-e', script, mode], {
    cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024,
  });
  const counts: number[] = [];
  let weak = 0;
  for (const line of out.split('\n')) {
    if (line.includes('reason: weak objects')) weak++;
    else if (line.startsWith('@@IDLE')) {
      counts.push(weak);
      weak = 0;
    }
  }
  return counts;
}

it('keeps the optimized batch path across idle full GCs', () => {
  // Without the kept batch, V8 does throw optimized code away at each idle GC (what the test can see).
  const without = deoptsPerIdleGc('none');
  expect(without).toHaveLength(3);
  expect(without.slice(1).every((count) => count > 0)).toBe(true);
  // With it, nothing after the first burst (the first GC may still drop the warm-up's own kinds).
  const kept = deoptsPerIdleGc('keep');
  expect(kept).toHaveLength(3);
  expect(kept.slice(1)).toEqual([0, 0]);
});
