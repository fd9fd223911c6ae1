// Run by soak.test.ts in a fresh process (argv[2]: a namespace path): handles opened and closed
// and connection tables read on every thread-pool thread at once, each of which starts a short
// thread to enter the namespace (and one to read ahead), then prints glibc's malloc arenas and
// the live threads. glibc makes a new arena only when every existing one is bound to a live
// thread, so while no thread that allocated has ended, the arenas other than the main one are
// at most the live threads other than the main one; a short thread that allocates leaves its
// arena behind and breaks that.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

import { mallocArenas } from '../../bench/soak-run.mjs';

const require = createRequire(import.meta.url);
const { Ipvs, countConnections, readConnectionTable } = require('../../dist/index.js');
const netns = process.argv[2];
const lanes = 2 * (Number(process.env.UV_THREADPOOL_SIZE) || 4);
await Promise.all(
  Array.from({ length: lanes }, async () => {
    for (let i = 0; i < 10; i++) {
      const handle = await Ipvs.open({ netns });
      await handle.listServices();
      await handle.close();
      await countConnections({ netns, by: 'client' });
      await readConnectionTable({ netns });
    }
  }),
);
const threads = Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
console.log(JSON.stringify({ arenas: mallocArenas().arenas, threads }));
