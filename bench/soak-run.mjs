// The soak: many operations, handle open/close cycles and connection-table reads on one
// process, then how much its RSS grew and whether its open descriptors are back to where they
// started. Used bounded by test/kernel/soak.test.ts and in full by bench/soak.bench.mjs.
//
// After a warm-up, the run is made in equal parts, each of every phase, with a measuring point
// after a full GC before the first and after each. What is bounded is the growth of what the
// process retains: live JavaScript objects (V8's heap in use) plus anonymous memory outside
// V8's heap (malloc, thread stacks, external buffers). A leak grows it in every part. RSS, the
// issue's own measure, is reported whole and by kind: it also holds the node binary's code
// pages, read in as code runs for the first time (the optimizing compiler, late in a fast
// run), and V8's spare heap capacity, which follows the allocation rate; neither is memory the
// library keeps, and both depend on the host's speed, so the tests bound the retained memory.
import { readdirSync, readFileSync } from 'node:fs';
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');

export const FULL = { operations: 100_000, cycles: 10_000, reads: 1_000 };
/** The bound on memory's growth over a soak (issue 9: RSS; the tests also bound retained memory by it). */
export const SOAK_LIMIT_MIB = 5;

function openDescriptors() {
  return readdirSync('/proc/self/fd').length;
}

// RSS in its kinds (/proc/self/status): anonymous memory (malloc, V8's heap, thread stacks),
// and file pages (the node binary's and libraries' code as it is first run).
function residentKinds() {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kib = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rssAnon: kib('RssAnon'), rssFile: kib('RssFile'), threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? NaN) };
}

// glibc's malloc arenas other than the main one. Each is a reservation of HEAP_MAX_SIZE (64 MiB
// on 64-bit), aligned to it, whose used part is mapped read-write and the rest PROT_NONE: that
// shape, not the alignment alone, tells one from other mappings. Every thread that allocates
// is bound to one, and an arena keeps freed memory for reuse, so their number and resident size
// tell allocator growth from memory the library holds.
const ARENA_BYTES = 64n * 1024n * 1024n;
export function mallocArenas() {
  const list = mallocArenaList();
  return { arenas: list.length, arenaResident: list.reduce((sum, arena) => sum + arena.rss, 0) };
}

/** Each arena (other than the main one): where it starts (hex) and its resident bytes. */
export function mallocArenaList() {
  const mappings = [];
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const mapping = /^([0-9a-f]+)-([0-9a-f]+) (\S+)/.exec(line);
    if (mapping) mappings.push({ start: BigInt(`0x${mapping[1]}`), end: BigInt(`0x${mapping[2]}`), perms: mapping[3], rss: 0 });
    else if (line.startsWith('Rss:') && mappings.length > 0) mappings.at(-1).rss = Number(/(\d+)/.exec(line)[1]) * 1024;
  }
  const arenas = [];
  mappings.forEach((m, i) => {
    if (m.start % ARENA_BYTES !== 0n || !m.perms.startsWith('rw')) return;
    const rest = mappings[i + 1];
    const whole = m.end - m.start === ARENA_BYTES ||
      (rest !== undefined && rest.start === m.end && rest.perms.startsWith('---') && rest.end === m.start + ARENA_BYTES);
    if (!whole) return;
    arenas.push({ start: m.start.toString(16), rss: m.rss });
  });
  return arenas;
}

// V8's code space: the optimized code of the batch path lives there, and is compiled again
// whenever V8 throws it away.
function codeSpaceResident() {
  return getHeapSpaceStatistics().find((space) => space.space_name === 'code_space')?.physical_space_size ?? NaN;
}

async function settle(recordPoolBytes) {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
  const heapResident = getHeapStatistics().total_physical_size;
  return {
    rss, heapUsed, heapTotal, heapResident, external, arrayBuffers, codeSpace: codeSpaceResident(),
    recordPool: recordPoolBytes ? recordPoolBytes() : NaN, ...residentKinds(), ...mallocArenas(), fds: openDescriptors(),
  };
}

const mib = (bytes) => bytes / 2 ** 20;

// One round: a batch that adds services and destinations and deletes the services again, then
// single calls of every kind. Returns the number of operations it made.
async function operationRound(ipvs, round, perBatch) {
  const services = Math.max(1, Math.floor(perBatch / 4));
  const key = (i) => ({ protocol: 'tcp', address: `10.${(round >> 8) & 255}.${round & 255}.${i % 250}`, port: 1000 + Math.floor(i / 250) });
  const batch = ipvs.batch();
  for (let i = 0; i < services; i++) {
    batch.addService({ ...key(i), scheduler: 'wrr' });
    batch.addDestination(key(i), { address: '192.0.2.1', forward: 'masq', weight: 1 });
    batch.editDestination(key(i), { address: '192.0.2.1', forward: 'masq', weight: 2 });
  }
  for (let i = 0; i < services; i++) batch.deleteService(key(i));
  const results = await batch.commit();
  const failed = results.findIndex((r) => !r.ok);
  if (failed >= 0) throw new Error(`soak: batch operation ${failed} failed in round ${round}: ${results[failed].error.message}`);
  const single = { fwmark: 1 + (round % 1000) };
  await ipvs.addService(single);
  await ipvs.addDestination(single, { address: '192.0.2.2', forward: 'route' });
  await ipvs.getService(single);
  await ipvs.listDestinations(single);
  await ipvs.listTable();
  await ipvs.deleteService(single);
  await ipvs.info().catch(() => undefined);
  return results.length + 7;
}

/**
 * Runs the soak in the namespace `netns` with the given API ({ Ipvs, countConnections }, and
 * optionally recordPoolBytes(): what the addon's pool of listing buffers holds) and
 * sizes, in two halves; returns what it measured. Each phase runs a little first, so that
 * allocator pools and caches exist before the baseline is taken. `rssGrowthMiB` is the second
 * half's RSS growth over the whole run (twice it): the growth that continues.
 */
export async function soak(api, netns, sizes, { parts = 2, perPhase = false, observe } = {}) {
  const { Ipvs, countConnections, recordPoolBytes } = api;
  const perBatch = 1000;
  const phases = {
    operations: async (ipvs, count, firstRound) => {
      let done = 0;
      for (let round = firstRound; done < count; round++) done += await operationRound(ipvs, round, Math.min(perBatch, count - done));
      return done;
    },
    cycles: async (_ipvs, count) => {
      for (let i = 0; i < count; i++) {
        const handle = await Ipvs.open({ netns });
        if (i % 100 === 0) await handle.listServices();
        await handle.close();
      }
      return count;
    },
    reads: async (ipvs, count) => {
      for (let i = 0; i < count; i++) {
        if (i % 3 === 0) await countConnections({ netns, by: 'client' });
        else if (i % 3 === 1) await ipvs.connectionTable();
        else for await (const batch of ipvs.connections({ batchSize: 100 })) void batch;
      }
      return count;
    },
  };
  // The warm-up runs on as many handles at once as the thread pool has threads, so that every
  // pool thread has its malloc arena and has kept what it keeps before the baseline: run one
  // at a time, the work lands on whichever thread is free, and an arena met for the first time
  // late in the run would look like growth. Every measurement is taken with no handle open.
  const poolThreads = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  // At least one full batch and one read of each kind per handle.
  const warmupLeast = { operations: perBatch, cycles: 1, reads: 3 };
  await Promise.all(
    Array.from({ length: poolThreads }, async (_, lane) => {
      const warmup = await Ipvs.open({ netns });
      for (const [name, phase] of Object.entries(phases)) {
        await phase(warmup, Math.max(warmupLeast[name], Math.floor(sizes[name] / 10 / poolThreads)), 2000 + lane * 100);
      }
      await warmup.close();
    }),
  );
  const done = { operations: 0, cycles: 0, reads: 0 };
  const seconds = { operations: 0, cycles: 0, reads: 0 };
  // `observe` (a diagnostic) is called at every measuring point; what it returns is kept.
  const observations = [];
  const point = async (part, phase) => {
    const measured = await settle(recordPoolBytes);
    if (observe) observations.push({ part, phase, retained: measured.heapUsed + Math.max(0, measured.rssAnon - measured.heapResident), ...observe() });
    return measured;
  };
  const points = [await point(-1, 'baseline')];
  const phasePoints = [];
  const started = Date.now();
  for (let part = 0; part < parts; part++) {
    const ipvs = await Ipvs.open({ netns });
    for (const [name, phase] of Object.entries(phases)) {
      const count = Math.floor((sizes[name] * (part + 1)) / parts) - Math.floor((sizes[name] * part) / parts);
      const t0 = Date.now();
      // Rounds of each part use other addresses than the others' and the warm-up's.
      done[name] += await phase(ipvs, count, 10_000 + part * 1000);
      seconds[name] += (Date.now() - t0) / 1000;
      if (perPhase) phasePoints.push({ part, phase: name, ...(await point(part, name)) });
    }
    await ipvs.close();
    points.push(await point(part, 'closed'));
  }
  // What the process holds on to: live JavaScript objects (the V8 heap in use after a full GC)
  // plus anonymous memory outside V8's heap (malloc, threads, external buffers).
  for (const p of [...points, ...phasePoints]) p.retained = p.heapUsed + Math.max(0, p.rssAnon - p.heapResident);
  const growth = (kind) => points.slice(1).map((p, i) => Number(mib(p[kind] - points[i][kind]).toFixed(2)));
  const series = (kind) => points.map((p) => Number(mib(p[kind]).toFixed(2)));
  return {
    done,
    seconds,
    totalSeconds: (Date.now() - started) / 1000,
    parts,
    rssMiB: series('rss'),
    rssAnonMiB: series('rssAnon'),
    rssFileMiB: series('rssFile'),
    heapUsedMiB: series('heapUsed'),
    heapTotalMiB: series('heapTotal'),
    heapResidentMiB: series('heapResident'),
    externalMiB: series('external'),
    rssGrowthMiB: growth('rss'),
    rssGrowthTotalMiB: Number(mib(points.at(-1).rss - points[0].rss).toFixed(2)),
    rssAnonGrowthMiB: growth('rssAnon'),
    retainedMiB: series('retained'),
    retainedGrowthMiB: growth('retained'),
    retainedGrowthTotalMiB: Number(mib(points.at(-1).retained - points[0].retained).toFixed(2)),
    threads: points.map((p) => p.threads),
    mallocArenas: points.map((p) => p.arenas),
    mallocArenaResidentMiB: series('arenaResident'),
    // With perPhase: what each phase of each part added to the retained memory.
    phaseGrowthMiB: phasePoints.map((p, i) => ({
      part: p.part,
      phase: p.phase,
      retainedMiB: Number(mib(p.retained - (i === 0 ? points[0] : phasePoints[i - 1]).retained).toFixed(2)),
      arenas: p.arenas,
      arenaResidentMiB: Number(mib(p.arenaResident).toFixed(2)),
      rssMiB: Number(mib(p.rss).toFixed(2)),
      heapUsedMiB: Number(mib(p.heapUsed).toFixed(2)),
      codeSpaceMiB: Number(mib(p.codeSpace).toFixed(2)),
      recordPoolKiB: Number((p.recordPool / 1024).toFixed(0)),
    })),
    codeSpaceMiB: series('codeSpace'),
    recordPoolKiB: points.map((p) => Number((p.recordPool / 1024).toFixed(0))),
    observations,
    fdsBefore: points[0].fds,
    fdsAfter: points.at(-1).fds,
  };
}
