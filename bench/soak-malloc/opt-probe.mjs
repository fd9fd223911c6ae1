// Diagnostic (not part of the suite): the full soak with a line "@@POINT" at every measuring
// point, to cut the output of V8's tracing by phase:
//   /work/wt/vmbench scripts/vm/run.sh --kernel 6.17 -- sh -c \
//     'node --trace-opt --trace-deopt bench/soak-malloc/opt-probe.mjs > .cache/opt.out 2>&1'
import { createRequire } from 'node:module';
import path from 'node:path';
import { projectRoot, requireTestVm, run } from '../lib.mjs';
import { FULL, soak } from '../soak-run.mjs';
requireTestVm('opt-probe.mjs');
const require = createRequire(import.meta.url);
// IPVS_SOAK_DIST: another build of lib/ beside dist/ (e.g. an older one, for an A/B in one boot).
const dist = path.join(projectRoot, process.env.IPVS_SOAK_DIST ?? 'dist');
const { Ipvs, countConnections } = require(path.join(dist, 'index.js'));
const { faultStats } = require(path.join(dist, 'internal', 'faults.js'));
const api = { Ipvs, countConnections, recordPoolBytes: () => faultStats().recordPoolBytes };
const name = `soako-${process.pid}`;
run('ip', ['netns', 'add', name]);
run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
try {
  const r = await soak(api, `/run/netns/${name}`, FULL, { parts: 4, perPhase: true, observe: () => { console.log('@@POINT'); return {}; } });
  console.log(`@@RESULT RSS ${r.rssMiB.join(' -> ')} (+${r.rssGrowthTotalMiB}) retained ${r.retainedMiB.join(' -> ')} (+${r.retainedGrowthTotalMiB}) arenas ${r.mallocArenaResidentMiB.join(' -> ')}`);
  for (const p of r.phaseGrowthMiB) {
    console.log(`@@PHASE ${p.part + 1} ${p.phase} retained ${p.retainedMiB} arenaRSS ${p.arenaResidentMiB} RSS ${p.rssMiB} heapUsed ${p.heapUsedMiB} code ${p.codeSpaceMiB} pool ${p.recordPoolKiB}`);
  }
} finally {
  run('ip', ['netns', 'delete', name]);
}
