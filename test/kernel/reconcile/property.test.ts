// Property: from any starting table ipvsadm makes, apply() reaches the desired state. The oracle
// is ipvsadm: the expected table (desired services, plus the starting services the scope does
// not own, plus under 'quiesce' the removed destinations at weight 0) is restored with
// `ipvsadm -R` into a reference namespace, and both namespaces must dump identically
// (`ipvsadm -S -n`, and `ipvsadm -L -n --thresholds` for what -S leaves out). A second plan of
// the same desired state must be empty.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Ipvs, type DesiredService, type ReconcileScope, type RemovalPolicy } from '../../../lib/index';
import { checkScope } from '../../../lib/reconcile/scope';
import { checkServiceKey, serviceFromWire } from '../../../lib/service';
import { createNetns, type TestNetns } from '../helpers';
import { NetnsShell, hereDoc } from './shell';
import { destinationKeyOf, ipvsadmRules, keyOf, scopeArb, tableArb } from './tables';

const SEED = 0x1e05;
const RUNS = 20;

/** Replaces the table with `rules` (ipvsadm -R takes -C as its first line). */
async function restore(shell: NetnsShell, rules: string): Promise<void> {
  await shell.run(hereDoc('ipvsadm -R', `-C\n${rules}`));
}

/** The table as ipvsadm shows it: [-S -n, -L -n --thresholds], each sorted. */
async function dump(shell: NetnsShell): Promise<[string[], string[]]> {
  const text = await shell.run('ipvsadm -S -n && echo --- && ipvsadm -L -n --thresholds');
  const [save = '', list = ''] = text.split('---\n');
  const lines = (part: string): string[] => part.split('\n').map((l) => l.trimEnd()).filter(Boolean).sort();
  return [lines(save), lines(list)];
}

function fitScope(services: DesiredService[], scope: ReconcileScope): DesiredService[] {
  if (typeof scope === 'string') return services;
  const checked = checkScope(scope);
  return services.filter((s) => checked.owns(serviceFromWire(checkServiceKey(s).wire), keyOf(s), new Set()));
}

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

  it(`matches ipvsadm's view of the desired state and re-plans empty (${RUNS} cases, seed ${SEED})`, async () => {
    let operations = 0;
    await fc.assert(fc.asyncProperty(
      tableArb, tableArb, scopeArb, fc.constantFrom<RemovalPolicy>('delete', 'delete', 'quiesce'),
      async (start, wanted, scope, removal) => {
        const desired = fitScope(wanted, scope);
        await restore(shell, ipvsadmRules(start));
        const result = await ipvs.apply(desired, { scope, removal, verify: 'full' });
        operations += result.results.length;
        const failed = result.results.filter((r) => !r.ok).map((r) => `${r.operation.op}: ${r.ok ? '' : r.error.message}`);
        expect(failed).toEqual([]);
        expect(result.drift).toEqual([]);
        expect(result.ok).toBe(true);
        await restore(referenceShell, ipvsadmRules(expectedTable(start, desired, scope, removal)));
        expect(await dump(shell)).toEqual(await dump(referenceShell));
        expect((await ipvs.plan(desired, { scope, removal })).operations).toEqual([]);
      },
    ), { seed: SEED, numRuns: RUNS });
    // The cases did real work (a generator producing only empty plans would prove nothing).
    expect(operations).toBeGreaterThan(RUNS * 3);
  }, 300_000);
});
