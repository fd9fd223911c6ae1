// apply() against the kernel: ownership by scope, stale plans, failures in the middle of an
// apply, quiesce. Starting tables are made with ipvsadm, outcomes read with ipvsadm.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { Ipvs, PlanStaleError, type DesiredService, type Plan, type PlanOperation } from '../../../lib/index';
import { serviceKeyText } from '../../../lib/reconcile/settings';
import { createNetns, ipvsadmSave, type TestNetns } from '../helpers';

let ns: TestNetns;
let ipvs: Ipvs;
beforeAll(async () => {
  ns = createNetns('rc-apply');
  ipvs = await Ipvs.open({ netns: ns.path });
});
afterEach(() => { ns.run('ipvsadm', ['-C']); });
afterAll(async () => {
  await ipvs?.close();
  ns?.remove();
});

function restore(rules: string[]): void {
  ns.run('ipvsadm', ['-R'], { input: `${rules.join('\n')}\n` });
}

/** The ipvsadm -S lines of one service (its -A line and its -a lines). */
function linesOf(save: string[], serviceArgs: string): string[] {
  return save.filter((line) => line.startsWith(`-A ${serviceArgs} `) || line.startsWith(`-a ${serviceArgs} `));
}

const touchedKeys = (operations: PlanOperation[]): string[] => [...new Set(operations.map((op) => serviceKeyText(op.service)))].sort();

const START = [
  '-A -t 10.0.0.1:80 -s wlc',
  '-a -t 10.0.0.1:80 -r 10.1.0.1:80 -g -w 1',
  '-a -t 10.0.0.1:80 -r 10.1.0.2:80 -g -w 1',
  '-A -t 10.0.0.2:443 -s rr',
  '-a -t 10.0.0.2:443 -r 10.1.0.3:443 -m -w 2',
  '-A -u 10.0.1.1:53 -s sh',
  '-a -u 10.0.1.1:53 -r 10.1.0.4:53 -g -w 1',
  '-A -f 5 -s wrr',
  '-a -f 5 -r 10.1.0.5:0 -g -w 1',
  '-A -f 150 -s wrr',
  '-a -f 150 -r 10.1.0.6:0 -g -w 1',
];
const web: DesiredService = {
  protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'wrr',
  destinations: [{ address: '10.1.0.1', weight: 3 }, { address: '10.1.0.7', forward: 'masq', port: 8080 }],
};
const WEB_AFTER = [
  '-A -t 10.0.0.1:80 -s wrr',
  '-a -t 10.0.0.1:80 -r 10.1.0.1:80 -g -w 3',
  '-a -t 10.0.0.1:80 -r 10.1.0.7:8080 -m -w 1',
];

describe('scope', () => {
  it("'listed' changes only the listed services and never touches the others", async () => {
    restore(START);
    const before = ipvsadmSave(ns);
    const dns: DesiredService = { protocol: 'udp', address: '10.0.2.1', port: 53, destinations: [{ address: '10.1.0.8' }] };
    const result = await ipvs.apply([web, dns]);
    expect(result.ok).toBe(true);
    expect(touchedKeys(result.plan.operations)).toEqual(['tcp 10.0.0.1:80', 'udp 10.0.2.1:53']);
    const after = ipvsadmSave(ns);
    expect(linesOf(after, '-t 10.0.0.1:80').sort()).toEqual(WEB_AFTER);
    expect(linesOf(after, '-u 10.0.2.1:53').sort()).toEqual(['-A -u 10.0.2.1:53 -s wlc', '-a -u 10.0.2.1:53 -r 10.1.0.8:53 -g -w 1']);
    for (const other of ['-t 10.0.0.2:443', '-u 10.0.1.1:53', '-f 5', '-f 150']) {
      expect(linesOf(after, other), other).toEqual(linesOf(before, other));
      expect(linesOf(after, other).length).toBeGreaterThan(0);
    }
  });

  it('a filter owns exactly the services it matches: unlisted matches are deleted, the rest left alone', async () => {
    restore(START);
    const before = ipvsadmSave(ns);
    const result = await ipvs.apply([web], { scope: { addresses: ['10.0.0.0/24'], fwmarks: [[100, 199]] } });
    expect(result.ok).toBe(true);
    const deleted = result.plan.operations.filter((op) => op.op === 'deleteService').map((op) => serviceKeyText(op.service));
    expect(deleted).toEqual(['fwmark 150', 'tcp 10.0.0.2:443']);
    expect(touchedKeys(result.plan.operations)).toEqual(['fwmark 150', 'tcp 10.0.0.1:80', 'tcp 10.0.0.2:443']);
    const after = ipvsadmSave(ns);
    expect(linesOf(after, '-t 10.0.0.1:80').sort()).toEqual(WEB_AFTER);
    expect(linesOf(after, '-t 10.0.0.2:443')).toEqual([]);
    expect(linesOf(after, '-f 150')).toEqual([]);
    for (const other of ['-u 10.0.1.1:53', '-f 5']) expect(linesOf(after, other)).toEqual(linesOf(before, other));
  });

  it("'all' makes the namespace exactly the desired state; deletions come last", async () => {
    restore(START);
    const result = await ipvs.apply([web], { scope: 'all' });
    expect(result.ok).toBe(true);
    expect(ipvsadmSave(ns)).toEqual(WEB_AFTER);
    const ops = result.plan.operations.map((op) => op.op);
    expect(ops.slice(-4)).toEqual(['deleteService', 'deleteService', 'deleteService', 'deleteService']);
    expect(ops.indexOf('deleteService')).toBe(ops.length - 4);
    expect((await ipvs.plan([web], { scope: 'all' })).operations).toEqual([]);
  });
});

describe('stale plans', () => {
  it('refuses a plan when an owned setting changed since planning, and sends nothing', async () => {
    restore(START);
    const plan = await ipvs.plan([web]);
    expect(plan.operations.length).toBeGreaterThan(0);
    ns.run('ipvsadm', ['-e', '-t', '10.0.0.1:80', '-r', '10.1.0.2:80', '-g', '-w', '9']);
    const edited = ipvsadmSave(ns);
    const error = await ipvs.apply(plan).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(PlanStaleError);
    const stale = error as PlanStaleError;
    expect(stale.code).toBe('ESTALE');
    expect(stale.message).toMatch(/^apply: the plan is stale: the owned part of the table changed since it was planned/);
    expect(stale.plannedFingerprint).toBe(plan.fingerprint);
    expect(stale.currentFingerprint).not.toBe(plan.fingerprint);
    expect(stale.currentPlan.operations).toContainEqual(expect.objectContaining({ op: 'deleteDestination', destination: { address: '10.1.0.2', port: 80 } }));
    expect(ipvsadmSave(ns)).toEqual(edited);
  });

  it('refuses a plan when an owned service appeared or vanished', async () => {
    restore(START);
    const dns: DesiredService = { protocol: 'udp', address: '10.0.2.1', port: 53, destinations: [] };
    const plan = await ipvs.plan([web, dns]);
    ns.run('ipvsadm', ['-A', '-u', '10.0.2.1:53']);
    await expect(ipvs.apply(plan)).rejects.toBeInstanceOf(PlanStaleError);
    const again = await ipvs.plan([web, dns]);
    ns.run('ipvsadm', ['-D', '-t', '10.0.0.1:80']);
    await expect(ipvs.apply(again)).rejects.toMatchObject({ code: 'ESTALE' });
  });

  it('applies a plan whose owned part is unchanged, even after a JSON round trip and changes elsewhere', async () => {
    restore(START);
    const plan = JSON.parse(JSON.stringify(await ipvs.plan([web]))) as Plan;
    ns.run('ipvsadm', ['-e', '-t', '10.0.0.2:443', '-r', '10.1.0.3:443', '-m', '-w', '7']);
    ns.run('ipvsadm', ['-A', '-t', '10.0.0.9:80']);
    const result = await ipvs.apply(plan);
    expect(result).toMatchObject({ ok: true, replanned: false, drift: [] });
    expect(result.plan).toEqual(plan);
    expect(linesOf(ipvsadmSave(ns), '-t 10.0.0.1:80').sort()).toEqual(WEB_AFTER);
  });

  it("re-plans a stale plan with ifStale: 'replan'", async () => {
    restore(START);
    const plan = await ipvs.plan([web]);
    ns.run('ipvsadm', ['-a', '-t', '10.0.0.1:80', '-r', '10.1.0.9:80', '-g']);
    const result = await ipvs.apply(plan, { ifStale: 'replan' });
    expect(result.replanned).toBe(true);
    expect(result.ok).toBe(true);
    expect(result.plan.fingerprint).not.toBe(plan.fingerprint);
    expect(linesOf(ipvsadmSave(ns), '-t 10.0.0.1:80').sort()).toEqual(WEB_AFTER);
    expect((await ipvs.plan([web])).operations).toEqual([]);
  });
});

describe('failures in the middle of an apply', () => {
  it('a service deleted by hand between planning and sending fails its own operations only, and shows as drift', async () => {
    restore(START);
    const api: DesiredService = {
      protocol: 'tcp', address: '10.0.0.2', port: 443, scheduler: 'wrr',
      destinations: [{ address: '10.1.0.3', forward: 'masq', weight: 2 }, { address: '10.1.0.4', forward: 'masq' }],
    };
    // The deletion lands after apply() has read the table and before its batch goes out.
    const handle = ipvs as unknown as { batch: () => ReturnType<Ipvs['batch']> };
    const batch = handle.batch.bind(ipvs);
    handle.batch = () => {
      ns.run('ipvsadm', ['-D', '-t', '10.0.0.2:443']);
      return batch();
    };
    let result;
    try {
      result = await ipvs.apply([web, api]);
    } finally {
      delete (handle as { batch?: unknown }).batch;
    }
    const outcome = result.results.map((r) => [r.operation.op, serviceKeyText(r.operation.service), r.ok ? 'ok' : r.error.code]);
    expect(outcome).toEqual([
      ['editService', 'tcp 10.0.0.1:80', 'ok'],
      ['addDestination', 'tcp 10.0.0.1:80', 'ok'],
      ['editDestination', 'tcp 10.0.0.1:80', 'ok'],
      ['deleteDestination', 'tcp 10.0.0.1:80', 'ok'],
      ['editService', 'tcp 10.0.0.2:443', 'ESRCH'],
      ['addDestination', 'tcp 10.0.0.2:443', 'ESRCH'],
    ]);
    expect(result.results[4]).toMatchObject({ ok: false, unknown: false, error: { operation: 'editService', code: 'ESRCH' } });
    expect(result.ok).toBe(false);
    expect(result.drift.map((op) => [op.op, serviceKeyText(op.service)])).toEqual([
      ['addService', 'tcp 10.0.0.2:443'], ['addDestination', 'tcp 10.0.0.2:443'], ['addDestination', 'tcp 10.0.0.2:443'],
    ]);
    expect(linesOf(ipvsadmSave(ns), '-t 10.0.0.1:80').sort()).toEqual(WEB_AFTER);
  });

  it('the read-back reports what another process changed meanwhile: an owned service it added, a touched destination it edited', async () => {
    restore(START);
    // Lands after apply() has read the table and before its batch goes out: a new service in
    // the scope (not in the first listing: read on its own), and an edit of a destination of a
    // service the plan touches (read back with the batch's services).
    const handle = ipvs as unknown as { batch: () => ReturnType<Ipvs['batch']> };
    const batch = handle.batch.bind(ipvs);
    handle.batch = () => {
      ns.run('ipvsadm', ['-A', '-t', '10.0.0.5:80']);
      ns.run('ipvsadm', ['-a', '-t', '10.0.0.5:80', '-r', '10.1.0.9:80', '-g']);
      ns.run('ipvsadm', ['-e', '-t', '10.0.0.1:80', '-r', '10.1.0.1:80', '-g', '-w', '9']);
      return batch();
    };
    let result;
    try {
      result = await ipvs.apply([{ ...web, scheduler: 'wlc', destinations: [{ address: '10.1.0.1' }, { address: '10.1.0.2' }, { address: '10.1.0.8' }] }],
        { scope: { addresses: ['10.0.0.0/24'], protocols: ['tcp'] } });
    } finally {
      delete (handle as { batch?: unknown }).batch;
    }
    expect(result.plan.operations.map((op) => [op.op, serviceKeyText(op.service)])).toEqual([
      ['addDestination', 'tcp 10.0.0.1:80'], ['deleteService', 'tcp 10.0.0.2:443'],
    ]);
    expect(result.results.every((r) => r.ok)).toBe(true);
    expect(result.ok).toBe(false);
    expect(result.drift).toEqual([
      expect.objectContaining({ op: 'editDestination', changes: [{ field: 'weight', before: 9, after: 1 }] }),
      expect.objectContaining({ op: 'deleteService', service: { protocol: 'tcp', address: '10.0.0.5', port: 80 }, destinations: 1 }),
    ]);
  });

  it('a destination the kernel refuses (EINVAL) gets its own result; the rest is applied', async () => {
    restore(START);
    const desired: DesiredService = { ...web, destinations: [...web.destinations, { address: '224.0.0.5' }, { address: '10.1.0.8' }] };
    const result = await ipvs.apply([desired]);
    const bad = result.results.filter((r) => !r.ok);
    expect(bad).toHaveLength(1);
    expect(bad[0]).toMatchObject({ ok: false, unknown: false, operation: { op: 'addDestination', destination: { address: '224.0.0.5' } } });
    expect(bad[0]!.ok ? undefined : bad[0]!.error.code).toBe('EINVAL');
    expect(result.results.filter((r) => r.ok)).toHaveLength(result.results.length - 1);
    expect(result.drift).toEqual([expect.objectContaining({ op: 'addDestination', destination: expect.objectContaining({ address: '224.0.0.5' }) })]);
    expect(linesOf(ipvsadmSave(ns), '-t 10.0.0.1:80').sort()).toEqual([...WEB_AFTER, '-a -t 10.0.0.1:80 -r 10.1.0.8:80 -g -w 1'].sort());
  });
});

describe('removal', () => {
  it("'quiesce' sets removed destinations to weight 0 and leaves them; 'delete' removes them", async () => {
    restore(START);
    const one: DesiredService = { protocol: 'tcp', address: '10.0.0.1', port: 80, destinations: [{ address: '10.1.0.1' }] };
    const quiesced = await ipvs.apply([one], { removal: 'quiesce' });
    expect(quiesced.ok).toBe(true);
    expect(quiesced.plan.operations).toEqual([expect.objectContaining({
      op: 'editDestination', destination: expect.objectContaining({ address: '10.1.0.2', weight: 0 }),
      changes: [{ field: 'weight', before: 1, after: 0 }],
    })]);
    expect(linesOf(ipvsadmSave(ns), '-t 10.0.0.1:80').sort()).toEqual([
      '-A -t 10.0.0.1:80 -s wlc', '-a -t 10.0.0.1:80 -r 10.1.0.1:80 -g -w 1', '-a -t 10.0.0.1:80 -r 10.1.0.2:80 -g -w 0',
    ]);
    expect((await ipvs.plan([one], { removal: 'quiesce' })).operations).toEqual([]);
    const deleted = await ipvs.apply([one]);
    expect(deleted.plan.operations.map((op) => op.op)).toEqual(['deleteDestination']);
    expect(linesOf(ipvsadmSave(ns), '-t 10.0.0.1:80').sort()).toEqual(['-A -t 10.0.0.1:80 -s wlc', '-a -t 10.0.0.1:80 -r 10.1.0.1:80 -g -w 1']);
  });
});

describe('a large table', () => {
  // The addon hands a listing over in parts of at least 64 services, and apply compares each
  // part while the next is dumped: 150 services are listed in three parts.
  it('listed in parts, plans and applies exactly the changes in every part', async () => {
    const SERVICES = 150;
    const serviceOf = (s: number) => ({ protocol: 'tcp' as const, address: `10.2.${s >> 8}.${s & 255}`, port: 80 });
    const table = Array.from({ length: SERVICES }, (_, s): DesiredService => ({
      ...serviceOf(s), scheduler: 'wlc',
      destinations: [1, 2].map((d) => ({ address: `10.${2 + d}.${s >> 8}.${s & 255}`, port: 80, weight: d })),
    }));
    const rules = (state: DesiredService[]): string[] => state.flatMap((service) => {
      const s = service as DesiredService & { address: string; port: number };
      return [`-A -t ${s.address}:${s.port} -s ${s.scheduler}`,
        ...s.destinations.map((d) => `-a -t ${s.address}:${s.port} -r ${d.address}:${d.port} -g -w ${d.weight}`)];
    });
    restore(rules(table));
    // Changes all over the table (the kernel lists services in its hash order, so they fall in every part).
    const desired = table.map((service) => ({ ...service, destinations: service.destinations.map((d) => ({ ...d })) }));
    const expected: string[] = [];
    for (let s = 0; s < SERVICES; s++) {
      const key = `tcp 10.2.0.${s}:80`;
      if (s % 10 === 0) {
        desired[s]!.destinations[s % 2]!.weight = 7;
        expected.push(`editDestination ${key}`);
      }
      if (s === 71) {
        desired[s]!.destinations.pop();
        expected.push(`deleteDestination ${key}`);
      }
      if (s === 149) {
        desired[s]!.destinations.push({ address: '10.5.0.149', port: 80, weight: 1 });
        expected.push(`addDestination ${key}`);
      }
    }
    desired.splice(105, 1);
    expected.push('deleteService tcp 10.2.0.105:80');
    const result = await ipvs.apply(desired, { scope: 'all' });
    expect(result.ok).toBe(true);
    expect(result.plan.operations.map((op) => `${op.op} ${serviceKeyText(op.service)}`)).toEqual(expected);
    expect(ipvsadmSave(ns)).toEqual(rules(desired).sort());
    expect((await ipvs.plan(desired, { scope: 'all' })).operations).toEqual([]);
  });
});
