// The record comparison the plan uses before decoding anything: equal exactly when the decoded
// destinations are equal as sets (by key) with equal settings, in whatever order each side lists them.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { checkDesiredState } from '../../../lib/reconcile/desired';
import {
  destinationRecordsOf, sameDestinationRecords, sameServiceRecord, serviceAt, type DestinationRecords,
} from '../../../lib/reconcile/records';
import { checkScope } from '../../../lib/reconcile/scope';
import { layoutOf } from '../../../lib/table-view';
import type { DestinationSpec } from '../../../lib/types';

const SEED = 20261130;

function recordsOf(destinations: DestinationSpec[], address = '10.0.0.1'): DestinationRecords {
  const [service] = checkDesiredState([{ protocol: 'tcp', address, port: 80, destinations }], checkScope('all')).services;
  return destinationRecordsOf(service!)!;
}

const destinationArb: fc.Arbitrary<DestinationSpec> = fc.record({
  address: fc.constantFrom('10.1.0.1', '10.1.0.2', '10.1.0.3', '2001:db8::1', '2001:db8::2', '::10.1.0.1'),
  port: fc.constantFrom(80, 81),
  forward: fc.constantFrom('masq', 'route', 'tunnel'),
  weight: fc.integer({ min: 0, max: 3 }),
}).map((d) => (d.address.includes(':') ? { ...d, forward: 'tunnel' as const } : d));
const listArb = fc.uniqueArray(destinationArb, { maxLength: 8, selector: (d) => `${d.address}|${d.port}` });

describe('sameDestinationRecords', () => {
  it('is true for the same destinations in any order, false after any change of key or setting', () => {
    fc.assert(fc.property(listArb, fc.nat(), fc.nat(), (list, seed, which) => {
      const shuffled = [...list].sort((a, b) => ((a.weight! * 31 + a.port! + seed) % 7) - ((b.weight! * 31 + b.port! + seed) % 7));
      expect(sameDestinationRecords(recordsOf(list), recordsOf(shuffled))).toBe(true);
      expect(sameDestinationRecords(recordsOf(list), recordsOf([...list].reverse()))).toBe(true);
      if (list.length === 0) return;
      const i = which % list.length;
      const changed = list.map((d, j) => (j === i ? { ...d, weight: d.weight! + 1 } : d));
      expect(sameDestinationRecords(recordsOf(list), recordsOf(changed))).toBe(false);
      expect(sameDestinationRecords(recordsOf(list), recordsOf(list.filter((_, j) => j !== i)))).toBe(false);
      const moved = list.map((d, j) => (j === i ? { ...d, port: 9 } : d));
      expect(sameDestinationRecords(recordsOf(list), recordsOf(moved))).toBe(false);
    }), { seed: SEED, numRuns: 300 });
  });

  it('tells an IPv4 address from the IPv6 address with the same first word', () => {
    const v4 = recordsOf([{ address: '1.2.3.4', port: 80, forward: 'tunnel' }]);
    const v6 = recordsOf([{ address: '102:304::', port: 80, forward: 'tunnel' }]);
    expect(sameDestinationRecords(v4, v6)).toBe(false);
    expect(sameDestinationRecords(v4, recordsOf([{ address: '1.2.3.4', port: 80, forward: 'tunnel' }]))).toBe(true);
  });
});

describe('sameServiceRecord', () => {
  const L = layoutOf();
  const settingWords = [L.svc.af, L.svc.protocol, L.svc.address, L.svc.address + 3, L.svc.port, L.svc.fwmark, L.svc.flags, L.svc.timeout, L.svc.netmask];
  // A service record as the addon packs one; `names` are the reply's strings, `scheduler` and `pe` indexes into them.
  function record(fields: { words: number[]; scheduler: number; pe?: number }): Uint32Array {
    const w = new Uint32Array(L.svcWords);
    const has = L.svcHas;
    w[0] = has.af | has.protocol | has.address | has.port | has.scheduler | has.flags | has.timeout | has.netmask | has.stats |
      (fields.pe === undefined ? 0 : has.peName);
    settingWords.forEach((at, i) => { w[at] = fields.words[i]!; });
    w[L.svc.scheduler] = fields.scheduler;
    if (fields.pe !== undefined) w[L.svc.peName] = fields.pe;
    return w;
  }
  const fieldsArb = fc.record({
    words: fc.tuple(fc.constant(2), fc.constantFrom(6, 17), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 65535 }), fc.constant(0),
      fc.constantFrom(0, 1, 2, 3, 8), fc.nat(1000), fc.constantFrom(0xffffffff, 0xffffff00)),
    scheduler: fc.constantFrom(0, 1),
    pe: fc.option(fc.constant(2), { nil: undefined }),
  });

  it('is true exactly for records that decode to the same service, whatever the strings are numbered', () => {
    fc.assert(fc.property(fieldsArb, fieldsArb, fc.nat(), (a, b, which) => {
      const names = ['wlc', 'rr', 'sip'];
      const renumbered = ['sip', 'wlc', 'rr'];  // the same names at other indexes
      const x = record(a);
      const y = record({ ...a, scheduler: (a.scheduler + 1) % 3, pe: a.pe === undefined ? undefined : 0 });
      y[L.svc.destinationCount] = 7;  // counts and counters are not settings
      y[L.svc.stats] = 123;
      expect(sameServiceRecord(x, 0, names, y, 0, renumbered)).toBe(true);
      expect(serviceAt(y, 0, renumbered)).toEqual(serviceAt(x, 0, names));

      const changed = record(a);
      const word = settingWords[which % settingWords.length]!;
      changed[word] = changed[word]! ^ 1;
      expect(sameServiceRecord(x, 0, names, changed, 0, names)).toBe(false);
      expect(sameServiceRecord(x, 0, names, record({ ...a, scheduler: 1 - a.scheduler }), 0, names)).toBe(false);

      const z = record(b);
      if (sameServiceRecord(x, 0, names, z, 0, names)) expect(serviceAt(z, 0, names)).toEqual(serviceAt(x, 0, names));
    }), { seed: SEED, numRuns: 300 });
  });
});
