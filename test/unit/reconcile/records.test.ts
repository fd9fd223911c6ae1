// The record comparison the plan uses before decoding anything: equal exactly when the decoded
// destinations are equal as sets (by key) with equal settings, in whatever order each side lists them.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { checkDesiredState } from '../../../lib/reconcile/desired';
import { destinationRecordsOf, sameDestinationRecords, type DestinationRecords } from '../../../lib/reconcile/records';
import { checkScope } from '../../../lib/reconcile/scope';
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
