// Property: from any starting table ipvsadm makes, apply() reaches the desired state, and a
// second plan of the same state is empty. The oracle is ipvsadm: the expected table (desired
// services, plus the starting services the scope does not own, plus under 'quiesce' the removed
// destinations at weight 0) is restored with `ipvsadm -R` into a reference namespace, and both
// namespaces must dump identically (`ipvsadm -S -n`, and `ipvsadm -L -n --thresholds` for what
// -S leaves out).
//
// Each ipvsadm run costs a fork and exec, slow under emulation, so each run of the property is
// a round of CASES independent cases in one namespace, each in its own slot of addresses and
// fwmarks (see tables.ts), with its scope confined to its slot ('all' becomes the slot's whole
// key space), followed by one case with the literal scope 'all' over the whole namespace.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Ipvs, type DesiredService, type ReconcileScope, type RemovalPolicy } from '../../../lib/index';
import { checkScope } from '../../../lib/reconcile/scope';
import { checkServiceKey, serviceFromWire } from '../../../lib/service';
import { createNetns, type TestNetns } from '../helpers';
import { NetnsShell, hereDoc } from './shell';
import { destinationKeyOf, inSlot, ipvsadmRules, keyOf, scopeArb, scopeInSlot, tableArb } from './tables';

const SEED = 0x1e05;
const ROUNDS = 10;
const CASES = 20;  // per round, plus the one with scope 'all': 210 cases in all

/** Replaces the table with `rules` (ipvsadm -R takes -C as its first line). */
async function restore(shell: NetnsShell, rules: string): Promise<void> {
  await shell.run(hereDoc('ipvsadm -R', `-C\n${rules}`));
}

/** The table as ipvsadm shows it: -S -n and -L -n --thresholds, sorted lines. */
async function dump(shell: NetnsShell): Promise<{ save: string[]; thresholds: string[] }> {
  const text = await shell.run('ipvsadm -S -n && echo --- && ipvsadm -L -n --thresholds');
  const [save = '', list = ''] = text.split('---\n');
  const lines = (part: string): string[] => part.split('\n').map((l) => l.trimEnd()).filter(Boolean).sort();
  return { save: lines(save), thresholds: lines(list) };
}

function fitScope(services: DesiredService[], scope: ReconcileScope): DesiredService[] {
  if (typeof scope === 'string') return services;
  const checked = checkScope(scope);
  return services.filter((s) => checked.owns(serviceFromWire(checkServiceKey(s).wire), keyOf(s), new Set()));
}

/** What the services of `start` and `desired` should become. */
function expectedTable(start: DesiredService[], desired: DesiredService[], scope: ReconcileScope, removal: RemovalPolicy): DesiredService[] {
  const checked = checkScope(scope);
  const desiredByKey = new Map(desired.map((d) => [keyOf(d), { ...d, destinations: [...d.destinations] }]));
  const expected = [...desiredByKey.values()];
  for (const service of start) {
    const key = keyOf(service);
    const wanted = desiredByKey.get(key);
    if (wanted) {
      if (removal === 'quiesce') {
        const keep = new Set(wanted.destinations.map((d) => destinationKeyOf(wanted, d)));
        for (const d of service.destinations) if (!keep.has(destinationKeyOf(service, d))) wanted.destinations.push({ ...d, weight: 0 });
      }
      continue;
    }
    if (!checked.owns(serviceFromWire(checkServiceKey(service).wire), key, new Set(desiredByKey.keys()))) expected.push(service);
  }
  return expected;
}

const caseArb = fc.record({
  start: tableArb,
  wanted: tableArb,
  scope: scopeArb,
  removal: fc.constantFrom<RemovalPolicy>('delete', 'delete', 'quiesce'),
  verify: fc.constantFrom<'changed' | 'full'>('changed', 'full'),
});
type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

describe('apply from random ipvsadm tables to random desired states', () => {
  let ns: TestNetns;
  let reference: TestNetns;
  let shell: NetnsShell;
  let referenceShell: NetnsShell;
  let ipvs: Ipvs;
  beforeAll(async () => {
    ns = createNetns('rc-prop');
    reference = createNetns('rc-ref');
    shell = new NetnsShell(ns);
    referenceShell = new NetnsShell(reference);
    ipvs = await Ipvs.open({ netns: ns.path });
  });
  afterAll(async () => {
    await ipvs?.close();
    shell?.close();
    referenceShell?.close();
    ns?.remove();
    reference?.remove();
  });

  /** Applies one case; checks its results and that a second plan is empty. Returns the operation count. */
  async function applyCase(desired: DesiredService[], c: Case, scope: ReconcileScope): Promise<number> {
    const result = await ipvs.apply(desired, { scope, removal: c.removal, verify: c.verify });
    const failed = result.results.filter((r) => !r.ok).map((r) => `${r.operation.op}: ${r.ok ? '' : r.error.message}`);
    expect(failed).toEqual([]);
    expect(result.drift).toEqual([]);
    expect(result.ok).toBe(true);
    expect((await ipvs.plan(desired, { scope, removal: c.removal })).operations).toEqual([]);
    return result.results.length;
  }

  it(`matches ipvsadm's view of the desired state and re-plans empty (${ROUNDS} rounds of ${CASES + 1} cases, seed ${SEED})`, async () => {
    let operations = 0;
    let cases = 0;
    await fc.assert(fc.asyncProperty(fc.array(caseArb, { minLength: CASES, maxLength: CASES }), caseArb, async (round, last) => {
      // The round's cases in their slots; the last one in slot CASES.
      const slotted = [...round, last].map((c, slot) => {
        const scope = scopeInSlot(c.scope, slot);
        return { c, scope, start: inSlot(c.start, slot), desired: fitScope(inSlot(c.wanted, slot), scope) };
      });
      await restore(shell, slotted.map((s) => ipvsadmRules(s.start)).join(''));
      for (const s of slotted.slice(0, CASES)) operations += await applyCase(s.desired, s.c, s.scope);
      const expected = slotted.slice(0, CASES).flatMap((s) => expectedTable(s.start, s.desired, s.scope, s.c.removal));
      const lastSlot = slotted[CASES]!;
      expected.push(...lastSlot.start);  // untouched so far
      await restore(referenceShell, ipvsadmRules(expected));
      expect(await dump(shell)).toEqual(await dump(referenceShell));

      // The last case owns the whole namespace: everything else goes.
      operations += await applyCase(lastSlot.desired, lastSlot.c, 'all');
      const all = expectedTable(lastSlot.start, lastSlot.desired, 'all', lastSlot.c.removal);
      await restore(referenceShell, ipvsadmRules(all));
      expect(await dump(shell)).toEqual(await dump(referenceShell));
      cases += CASES + 1;
    }), { seed: SEED, numRuns: ROUNDS });
    expect(cases).toBe(ROUNDS * (CASES + 1));
    // The cases did real work (a generator producing only empty plans would prove nothing).
    expect(operations).toBeGreaterThan(cases * 3);
  }, 600_000);
});
