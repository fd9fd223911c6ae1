// Diagnostic (not part of the suite): the soak with a point after every phase, and glibc's view
// of the heap at each (in use vs. free, per arena) through a small helper addon given in
// SOAK_MALLINFO; at the end, malloc_trim(0), to see how much of the growth was free memory.
//   gcc -shared -fPIC -O2 -I/usr/include/node -o .cache/mallinfo.node bench/soak-malloc/mallinfo.c
//   /work/wt/vmbench scripts/vm/run.sh --kernel 6.17 -- sh -c \
//     'SOAK_MALLINFO=$PWD/.cache/mallinfo.node SOAK_LABEL=x node bench/soak-malloc/probe.mjs'
// With LD_PRELOAD=$PWD/.cache/malloc-sites.so MALLOC_SITES_OUT=file (malloc-sites.c), it also
// writes which code allocated on threads other than the main one, from the baseline to the end.
// SOAK_SIZES (JSON) sets the counts; IPVS_NETLINK_PREBUILD=dir loads another build of the addon
// (dir/build/Release), e.g. to compare with an older commit in the same VM session.
import { createRequire } from 'node:module';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { projectRoot, run } from '../lib.mjs';
import { mallocArenaList, soak } from '../soak-run.mjs';
const require = createRequire(import.meta.url);
const api = require(path.join(projectRoot, 'dist', 'index.js'));
const mallinfo = process.env.SOAK_MALLINFO ? require(process.env.SOAK_MALLINFO) : undefined;
const sizes = JSON.parse(process.env.SOAK_SIZES ?? '{"operations":25000,"cycles":10000,"reads":500}');
const M = (b) => (b / 2 ** 20).toFixed(2);
let observed = 0;
function observe() {
  if (!mallinfo) return {};
  // With malloc-sites.so preloaded, count the allocations from the baseline on.
  if (observed++ === 0) mallinfo.sitesReset();
  const i = mallinfo.info();
  const heaps = [...i.xml.matchAll(/<heap nr="(\d+)">[\s\S]*?<system type="current" size="(\d+)"\/>/g)].map((m) => Number(m[2]));
  return { inUse: i.uordblks, free: i.fordblks, mmapped: i.hblkhd, arenaCount: heaps.length, arenaSizes: heaps, resident: mallocArenaList() };
}
const name = `soakp-${process.pid}`;
run('ip', ['netns', 'add', name]);
run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
try {
  const r = await soak(api, `/run/netns/${name}`, sizes, { parts: 4, perPhase: true, observe });
  console.log(`== ${process.env.SOAK_LABEL}: retained ${r.retainedMiB.join(' -> ')} (+${r.retainedGrowthTotalMiB}); threads ${r.threads.join(' ')}; fds ${r.fdsBefore}->${r.fdsAfter}; seconds ${JSON.stringify(r.seconds)}`);
  for (const o of r.observations) {
    console.log(`   ${String(o.part + 1).padStart(2)} ${o.phase.padEnd(9)} retained ${M(o.retained)}  malloc in use ${M(o.inUse)} free ${M(o.free)} mmapped ${M(o.mmapped)}  arenas ${o.arenaCount}: ${(o.arenaSizes ?? []).map((s) => (s / 1024).toFixed(0)).join(' ')} KiB`);
    if (o.resident) console.log(`      resident: ${o.resident.map((a) => `${a.start}=${(a.rss / 1024).toFixed(0)}`).join(' ')} KiB`);
  }
  if (mallinfo) {
    const anon = () => Number(/^RssAnon:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
    const before = anon();
    mallinfo.trim();
    console.log(`   malloc_trim(0): RssAnon ${before.toFixed(2)} -> ${anon().toFixed(2)} MiB`);
  }
} finally {
  run('ip', ['netns', 'delete', name]);
}
