// The diff and its ordering, against a model of the kernel table: random starting tables,
// random desired states, every scope and removal policy.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { fingerprintOwned } from '../../../lib/reconcile/fingerprint';
import { PlanBuilder, buildPlan, checkPlan, checkPlanInput, type PlanInput } from '../../../lib/reconcile/plan';
import { checkDesiredState } from '../../../lib/reconcile/desired';
import { diffTables, type Matches } from '../../../lib/reconcile/diff';
import { orderOperations } from '../../../lib/reconcile/order';
import {
  LiveListing, destinationRecordsOf, liveTable, recordsOfLive, withDestinationRecords,
} from '../../../lib/reconcile/records';
import { checkScope } from '../../../lib/reconcile/scope';
import { currentListing } from '../../../lib/reconcile/stale';
import {
  destinationKeyText, destinationSpecOf, serviceKeyText, serviceSpecOf, type TableService,
} from '../../../lib/reconcile/settings';
import type { PlanOperation, ReconcileScope, RemovalPolicy } from '../../../lib/reconcile/types';
import type { NativeTable } from '../../../lib/native';
import { checkServiceKey, serviceFromWire } from '../../../lib/service';
import { layoutOf } from '../../../lib/table-view';
import { packTable } from '../packed-table';
import {
  desiredStateArb, destinationSettingsText, modelWith, serviceKeyOfItem, serviceSettingsText, type DesiredItem,
} from './model';

const SEED = 20261129;
const scopeArb: fc.Arbitrary<ReconcileScope> = fc.constantFrom<ReconcileScope>(
  'listed', 'all', { addresses: ['10.0.0.0/24'] }, { fwmarks: [1] }, { protocols: ['tcp', 'sctp'] }, { ports: [[400, 500]] },
  { addresses: ['2001:db8::/64'], fwmarks: [[1, 2]] },
);

/** Drops the desired services a filter scope does not own (a plan refuses them). */
function fitScope(items: DesiredItem[], scope: ReconcileScope): DesiredItem[] {
  if (scope === 'listed' || scope === 'all') return items;
  const checked = checkPlanInput([], scope, undefined).scope;
  return items.filter((item) => {
    const service = serviceFromWire(checkServiceKey(item).wire);
    return checked.owns(service, serviceKeyText(service), new Set());
  });
}

const opKey = (op: PlanOperation): string => serviceKeyText(serviceFromWire(checkServiceKey(op.service).wire));
const isServiceOp = (op: PlanOperation): boolean => op.op === 'addService' || op.op === 'editService' || op.op === 'deleteService';
const isRemoval = (op: PlanOperation): boolean =>
  op.op === 'deleteDestination' || (op.op === 'editDestination' && op.reason.startsWith('not in the desired state'));

const caseArb = fc.record({
  start: desiredStateArb,
  desired: desiredStateArb,
  scope: scopeArb,
  removal: fc.constantFrom<RemovalPolicy>('delete', 'quiesce'),
});

function settle(start: DesiredItem[], desired: DesiredItem[], scope: ReconcileScope, removal: RemovalPolicy) {
  const input: PlanInput = checkPlanInput(fitScope(desired, scope), scope, removal);
  const model = modelWith(start);
  const before = model.table();
  const plan = buildPlan(input, before);
  return { input, model, before, plan };
}

describe('plan against a model of the kernel', () => {
  it('applies cleanly, reaches the desired state, and a second plan is empty', () => {
    fc.assert(fc.property(caseArb, ({ start, desired, scope, removal }) => {
      const { input, model, before, plan } = settle(start, desired, scope, removal);
      for (const op of plan.operations) expect(model.apply(op), JSON.stringify(op)).toBe('ok');
      const after = model.table();
      expect(buildPlan(input, after).operations).toEqual([]);

      const byKey = new Map(after.map((s) => [serviceKeyText(s), s]));
      // Every desired service is there with exactly its settings and destinations (plus, under
      // quiesce, the undesired ones at weight 0).
      input.desired.services.forEach((want, i) => {
        const have = byKey.get(input.desired.keys[i]!)!;
        expect(serviceSettingsText(have)).toBe(serviceSettingsText(want));
        const wantLines = want.destinations.map(destinationSettingsText);
        const haveLines = have.destinations.map(destinationSettingsText);
        expect(haveLines.filter((l) => wantLines.includes(l)).sort()).toEqual([...wantLines].sort());
        const wantKeys = new Set(want.destinations.map(destinationKeyText));
        const extra = have.destinations.filter((d) => !wantKeys.has(destinationKeyText(d)));
        if (removal === 'delete') expect(extra).toEqual([]);
        else for (const d of extra) expect(d.weight).toBe(0);
      });
      // Services the scope does not own are exactly as they were; owned undesired ones are gone.
      for (const service of before) {
        const key = serviceKeyText(service);
        if (input.desired.positions.has(key)) continue;
        if (input.scope.owns(service, key, input.desired.positions)) expect(byKey.has(key)).toBe(false);
        else expect(tableText(byKey.get(key)!)).toBe(tableText(service));
      }
    }), { seed: SEED, numRuns: 400 });
  }, 60_000);

  it('orders: service before its destinations, additions before edits before removals, deletions last', () => {
    fc.assert(fc.property(caseArb, ({ start, desired, scope, removal }) => {
      const { model, plan } = settle(start, desired, scope, removal);
      const ops = plan.operations;
      const firstDeletion = ops.findIndex((op) => op.op === 'deleteService');
      if (firstDeletion >= 0) expect(ops.slice(firstDeletion).every((op) => op.op === 'deleteService')).toBe(true);
      // Each service's operations are contiguous, its own first, then adds, edits, removals.
      const seen = new Set<string>();
      let current: string | undefined;
      let phase = 0;
      for (const op of ops) {
        const key = opKey(op);
        if (key !== current) {
          expect(seen.has(key), `operations of ${key} are split`).toBe(false);
          seen.add(key);
          current = key;
          phase = 0;
        }
        const rank = isServiceOp(op) ? 0 : op.op === 'addDestination' ? 1 : isRemoval(op) ? 3 : 2;
        expect(rank, `${op.op} of ${key} out of order`).toBeGreaterThanOrEqual(phase);
        if (isServiceOp(op)) expect(phase, `${op.op} of ${key} after its destinations`).toBe(0);
        phase = Math.max(phase, rank === 0 ? 1 : rank);
      }
      // A service that has destinations before and after never has none in between.
      const counts = (): Map<string, number> => new Map(model.table().map((s) => [serviceKeyText(s), s.destinations.length]));
      const initial = counts();
      const wanted = new Map(plan.desired.map((d) => [serviceKeyOfItem(d as DesiredItem), d.destinations.length]));
      for (const op of ops) {
        model.apply(op);
        for (const [key, count] of counts()) {
          if ((initial.get(key) ?? 0) > 0 && (wanted.get(key) ?? 0) > 0) expect(count, `${key} emptied mid-apply`).toBeGreaterThan(0);
        }
      }
    }), { seed: SEED + 1, numRuns: 300 });
  }, 60_000);

  it('is minimal: each key at most once, edits only where fields differ, never delete and re-add', () => {
    fc.assert(fc.property(caseArb, ({ start, desired, scope, removal }) => {
      const { input, before, plan } = settle(start, desired, scope, removal);
      const live = new Map(before.map((s) => [serviceKeyText(s), s]));
      const touched = new Set<string>();
      for (const op of plan.operations) {
        const key = opKey(op);
        const service = live.get(key);
        if (isServiceOp(op)) {
          expect(touched.has(`S ${key}`)).toBe(false);
          touched.add(`S ${key}`);
        }
        if (op.op === 'addService') expect(service).toBeUndefined();
        if (op.op === 'editService' || op.op === 'deleteService') expect(service).toBeDefined();
        if (op.op === 'editService') {
          expect(op.changes.length).toBeGreaterThan(0);
          for (const change of op.changes) {
            expect(change.before).not.toEqual(change.after);
            if (change.field !== 'schedulerFlags') expect(change.before).toEqual((service as unknown as Record<string, unknown>)[change.field] ?? null);
          }
        }
        if (op.op === 'deleteService') expect(input.desired.positions.has(key)).toBe(false);
        if ('destination' in op) {
          const dkey = destinationKeyText(op.destination as { address: string; port: number });
          expect(touched.has(`D ${key} ${dkey}`), `${dkey} of ${key} twice`).toBe(false);
          touched.add(`D ${key} ${dkey}`);
          const existing = service?.destinations.find((d) => destinationKeyText(d) === dkey);
          if (op.op === 'addDestination') expect(existing).toBeUndefined();
          else expect(existing).toBeDefined();
          if (op.op === 'editDestination') {
            expect(op.changes.length).toBeGreaterThan(0);
            for (const change of op.changes) expect(change.before).not.toEqual(change.after);
          }
        }
      }
      // Nothing outside the scope is touched.
      for (const key of touched) {
        const serviceKey = key.startsWith('S ') ? key.slice(2) : key.slice(2, key.lastIndexOf(' '));
        const service = live.get(serviceKey);
        if (service) expect(input.desired.positions.has(serviceKey) || input.scope.owns(service, serviceKey, input.desired.positions)).toBe(true);
      }
    }), { seed: SEED + 2, numRuns: 300 });
  }, 60_000);

  it('is plain JSON that apply accepts back unchanged', () => {
    fc.assert(fc.property(caseArb, ({ start, desired, scope, removal }) => {
      const { plan } = settle(start, desired, scope, removal);
      const copy = JSON.parse(JSON.stringify(plan));
      expect(copy).toEqual(plan);
      const checked = checkPlan(copy);
      expect(checked.plan).toEqual(plan);
      // The normalised desired state plans the same from the same table.
      expect(buildPlan(checked.input, modelWith(start).table())).toEqual(plan);
    }), { seed: SEED + 3, numRuns: 200 });
  }, 60_000);

  it("deferred (apply's own plan) reads, prints and checks exactly as the eager plan", () => {
    fc.assert(fc.property(caseArb, ({ start, desired, scope, removal }) => {
      const input = checkPlanInput(fitScope(desired, scope), scope, removal);
      const live = modelWith(start).table();
      const eager = buildPlan(input, live);
      const deferred = buildPlan(input, live, true);
      expect(Object.keys(deferred)).toEqual(Object.keys(eager));
      expect(JSON.stringify(deferred)).toBe(JSON.stringify(eager));
      expect(deferred.fingerprint).toBe(eager.fingerprint);
      expect(deferred.desired).toEqual(eager.desired);
      expect(deferred.desired).toBe(deferred.desired);  // computed once, then plain data
      expect(Object.getOwnPropertyDescriptor(deferred, 'desired')).toHaveProperty('value');
      expect(checkPlan(deferred).plan).toEqual(eager);
      const written = buildPlan(input, live, true);
      written.fingerprint = 'v1:0:00';
      expect(Object.keys(written)).toEqual(Object.keys(eager));
      expect(written.fingerprint).toBe('v1:0:00');
    }), { seed: SEED + 4, numRuns: 100 });
  }, 60_000);

  it('compares and fingerprints destination records exactly as the decoded objects', () => {
    fc.assert(fc.property(caseArb, ({ start, desired, scope, removal }) => {
      const { input, before, plan } = settle(start, desired, scope, removal);
      // The same live table, each service's destinations as records (packed as a request
      // would carry them, which is the reply's destination layout), decoded only on demand.
      const asRecords = before.map(({ destinations, ...settings }) => {
        const [packed] = checkDesiredState([{ ...serviceSpecOf(settings), destinations: destinations.map(destinationSpecOf) }],
          checkScope('all')).services;
        const records = destinationRecordsOf(packed!);
        expect(records).toBeDefined();
        return withDestinationRecords(settings, records!);
      });
      const fromRecords = buildPlan(input, asRecords, true);
      expect(fromRecords.operations).toEqual(plan.operations);
      // Where every destination matched, none was decoded.
      const touched = new Set(plan.operations.map(opKey));
      for (const service of asRecords) {
        if (!touched.has(serviceKeyText(service))) expect(Object.keys(service)).not.toContain('destinations');
      }
      expect(fromRecords.fingerprint).toBe(plan.fingerprint);
    }), { seed: SEED, numRuns: 150 });
  });
});

describe('long destination lists', () => {
  // Past 32 destinations a service's records are matched through an index, not by position.
  it('plan records exactly as the decoded objects, in any order, IPv4 and IPv6', () => {
    const v4 = (i: number) => `10.1.${i >> 8}.${i & 255}`;
    const v6 = (i: number) => `2001:db8::${(i + 1).toString(16)}`;
    fc.assert(fc.property(
      fc.integer({ min: 33, max: 60 }), fc.boolean(), fc.array(fc.nat(), { minLength: 1, maxLength: 70 }),
      fc.constantFrom<RemovalPolicy>('delete', 'quiesce'),
      (count, inet6, picks, removal) => {
        const address = inet6 ? v6 : v4;
        const service = inet6 ? { protocol: 'tcp', address: '2001:db8:1::1', port: 80 } : { protocol: 'tcp', address: '10.0.0.1', port: 80 };
        const start: DesiredItem[] = [{ ...service, destinations: Array.from({ length: count }, (_, i) => ({ address: address(i), weight: 1 + (i % 3) })) } as DesiredItem];
        // Each pick edits, drops or adds one destination, then the list is rotated.
        const wanted = start[0]!.destinations.map((d) => ({ ...d }));
        for (const pick of picks) {
          const i = pick % (wanted.length + 1);
          if (pick % 3 === 0) wanted.push({ address: address(count + (pick % 50)), weight: 2 });
          else if (pick % 3 === 1 && i < wanted.length) wanted.splice(i, 1);
          else if (i < wanted.length) wanted[i] = { ...wanted[i]!, weight: (wanted[i]!.weight ?? 1) + 1 };
        }
        const unique = [...new Map(wanted.map((d) => [d.address, d])).values()];
        const rotated = [...unique.slice(picks.length % Math.max(unique.length, 1)), ...unique.slice(0, picks.length % Math.max(unique.length, 1))];
        const input = checkPlanInput([{ ...service, destinations: rotated }], undefined, removal);
        const before = modelWith(start).table();
        const reversed = before.map((s) => ({ ...s, destinations: [...s.destinations].reverse() }));
        for (const live of [before, reversed]) {
          expect(buildPlan(input, asRecords(live), true).operations).toEqual(buildPlan(input, live).operations);
        }
      },
    ), { seed: SEED + 7, numRuns: 60 });
  });
});

/** The same table with each service's destinations as records (packed as a request would carry them: the reply's layout). */
function asRecords(table: TableService[]): TableService[] {
  return table.map(({ destinations, ...settings }) => {
    const [packed] = checkDesiredState([{ ...serviceSpecOf(settings), destinations: destinations.map(destinationSpecOf) }],
      checkScope('all')).services;
    return withDestinationRecords(settings, destinationRecordsOf(packed!)!);
  });
}

describe('staleness and a second comparison, without digests', () => {
  it("a plan made here is stale exactly when its fingerprint says so, and is checked back as it was made", () => {
    fc.assert(fc.property(caseArb, desiredStateArb, fc.boolean(), ({ start, desired, scope, removal }, other, same) => {
      const input = checkPlanInput(fitScope(desired, scope), scope, removal);
      const planned = asRecords(modelWith(start).table());
      const now = asRecords(modelWith(same ? start : other).table());
      const plan = buildPlan(input, planned, true);
      const fresh = fingerprintOwned(now, input.desired, input.scope) === fingerprintOwned(planned, input.desired, input.scope);
      const listing = currentListing(plan, now, input.desired, input.scope);
      expect(listing !== undefined).toBe(fresh);
      if (same) {
        expect(listing).toBe(planned);  // compared as listings: the fingerprint is still unread
        expect(Object.getOwnPropertyDescriptor(plan, 'fingerprint')).toHaveProperty('get');
      }
      // Its desired state, never read, is the one checked when planning; read, it is checked again.
      const back = checkPlan(plan);
      expect(back.input.desired).toBe(input.desired);
      expect(checkPlan(JSON.parse(JSON.stringify(plan))).input.desired.keys).toEqual(input.desired.keys);
      // A fingerprint read (or replaced) decides by itself.
      plan.fingerprint = 'v1:0:00';
      expect(currentListing(plan, now, input.desired, input.scope)).toBe(
        fingerprintOwned(now, input.desired, input.scope) === 'v1:0:00' ? now : undefined);
    }), { seed: SEED + 5, numRuns: 150 });
  });

  it('a scope replaced in a plan made here has the desired state checked again under it', () => {
    const input = checkPlanInput([{ protocol: 'tcp', address: '10.0.0.1', port: 80, destinations: [] }], 'listed', undefined);
    const plan = buildPlan(input, [], true);
    plan.scope = { addresses: ['10.9.0.0/16'] };
    expect(() => checkPlan(plan)).toThrow(/^plan\.desired\[0\] \(tcp 10\.0\.0\.1:80\) is outside the scope filter/);
  });

  it("a service equal under 'quiesce' (an extra destination at weight 0) is compared again under 'delete'", () => {
    const live = asRecords(modelWith([{ protocol: 'tcp', address: '10.0.0.1', port: 80, destinations: [{ address: '10.1.0.1' }, { address: '10.1.0.2', weight: 0 }] }]).table());
    const desired = [{ protocol: 'tcp' as const, address: '10.0.0.1', port: 80, destinations: [{ address: '10.1.0.1' }] }];
    const quiesce = checkPlanInput(desired, 'listed', 'quiesce');
    const matches: Matches = { desired: quiesce.desired, removal: 'quiesce', have: [] };
    expect(diffTables(quiesce.desired, live, quiesce.scope, 'quiesce', matches).services[0]).toMatchObject({ edits: [], removals: [] });
    expect(matches.have[0]).toBe(live[0]);
    expect(diffTables(quiesce.desired, live, quiesce.scope, 'quiesce', matches).services[0]).toMatchObject({ edits: [], removals: [] });
    expect(diffTables(quiesce.desired, live, quiesce.scope, 'delete', matches).services[0]!.removals).toEqual([
      expect.objectContaining({ op: 'deleteDestination', destination: { address: '10.1.0.2', port: 80 } }),
    ]);
  });

  it('comparing a listing a second time (the read-back) plans as the first time, under either removal', () => {
    fc.assert(fc.property(caseArb, fc.boolean(), ({ start, desired, scope, removal }, sameDesired) => {
      const input = checkPlanInput(fitScope(desired, scope), scope, removal);
      const live = asRecords(modelWith(start).table());
      const matches: Matches = { desired: input.desired, removal, have: [] };
      const first = orderOperations(diffTables(input.desired, live, input.scope, removal, matches));
      expect(orderOperations(diffTables(input.desired, live, input.scope, removal, matches))).toEqual(first);
      const other: RemovalPolicy = removal === 'delete' ? 'quiesce' : 'delete';
      const otherDesired = sameDesired ? input.desired : checkPlanInput(fitScope(desired, scope), scope, removal).desired;
      expect(orderOperations(diffTables(otherDesired, live, input.scope, other, matches)))
        .toEqual(orderOperations(diffTables(otherDesired, asRecords(modelWith(start).table()), input.scope, other)));
    }), { seed: SEED + 6, numRuns: 150 });
  });
});

function tableText(service: TableService): string {
  return [serviceSettingsText(service), ...service.destinations.map(destinationSettingsText).sort()].join('\n');
}

/** `table` cut into parts of `size` services, as listTable hands them over (strings numbered across the parts). */
function inParts(table: NativeTable, size: number): NativeTable[] {
  const L = layoutOf();
  const count = table.services.length / L.svcWords;
  const parts: NativeTable[] = [];
  let destination = 0;
  for (let first = 0; first < count || parts.length === 0; first += size) {
    const last = Math.min(count, first + size);
    let destinations = 0;
    for (let i = first; i < last; i++) destinations += table.services[i * L.svcWords + L.svc.destinationCount]!;
    parts.push({
      services: table.services.slice(first * L.svcWords, last * L.svcWords),
      destinations: table.destinations.slice(destination * L.dstWords, (destination + destinations) * L.dstWords),
      strings: table.strings,
    });
    destination += destinations;
  }
  return parts;
}

describe('a listing in parts', () => {
  it('compared part by part while it is listed, plans exactly as the whole listing compared at once', () => {
    fc.assert(fc.property(caseArb, fc.integer({ min: 1, max: 4 }), ({ start, desired, scope, removal }, size) => {
      const input = checkPlanInput(fitScope(desired, scope), scope, removal);
      const packed = packTable(modelWith(start).table());
      const listing = new LiveListing();
      const builder = new PlanBuilder(input);
      for (const part of inParts(packed, size)) {
        const first = listing.add(part);
        for (let i = first; i < listing.services.length; i++) builder.add(listing.services[i]!);
      }
      const live = listing.finish();
      const whole = liveTable(packed);
      expect(builder.finish(live).operations).toEqual(orderOperations(diffTables(input.desired, whole, input.scope, removal)));
      expect(live.map(tableText)).toEqual(whole.map(tableText));
      expect(recordsOfLive(live)).toEqual(recordsOfLive(whole));
    }), { seed: SEED + 7, numRuns: 200 });
  });
});

describe('fingerprint', () => {
  const desired = checkPlanInput([{ protocol: 'tcp', address: '10.0.0.1', port: 80, destinations: [] }], 'listed', undefined);
  const table = (): TableService[] => modelWith([
    { protocol: 'tcp', address: '10.0.0.1', port: 80, destinations: [{ address: '10.1.0.1', weight: 2 }] },
    { protocol: 'tcp', address: '10.0.0.2', port: 80, destinations: [{ address: '10.1.0.1' }] },
  ]).table();
  const print = (live: TableService[]): string => fingerprintOwned(live, desired.desired, desired.scope);

  it('ignores counters, connection counts and listing order', () => {
    const live = table();
    const busy = table().reverse();
    for (const s of busy) {
      s.stats = { ...s.stats, connections: 99n, bytesIn: 1234n };
      for (const d of s.destinations) Object.assign(d, { activeConnections: 5, inactiveConnections: 7, stats: { ...d.stats, packetsIn: 3n } });
    }
    expect(print(busy)).toBe(print(live));
  });

  it('changes with any setting of an owned service or destination, and with owned services appearing', () => {
    const base = print(table());
    const weight = table();
    weight[0]!.destinations[0]!.weight = 3;
    expect(print(weight)).not.toBe(base);
    const scheduler = table();
    scheduler[0]!.scheduler = 'rr';
    expect(print(scheduler)).not.toBe(base);
    expect(print(table().slice(1))).not.toBe(base);
  });

  it('ignores services the scope does not own', () => {
    const other = table();
    other[1]!.destinations[0]!.weight = 9;
    other[1]!.scheduler = 'sh';
    expect(print(other)).toBe(print(table()));
  });
});
