// lib/table.ts: a listing that arrives in parts (native listTable with onPart) builds the same
// services, in the same order, as the same records in one piece.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import type { NativeTable } from '../../lib/native';
import { appendTableFromNative, tableFromNative, type ServiceWithDestinations } from '../../lib/table';
import { layoutOf } from '../../lib/table-view';
import { nativeTableArbitrary } from './packed-table';

/** `table` cut before each service index in `cuts`, as the addon hands parts over. */
function split(table: NativeTable, cuts: number[]): NativeTable[] {
  const L = layoutOf();
  const count = table.services.length / L.svcWords;
  const bounds = [...new Set([0, ...cuts.filter((c) => c > 0 && c < count), count])].sort((a, b) => a - b);
  const parts: NativeTable[] = [];
  let destination = 0;
  for (let i = 0; i + 1 < bounds.length; i++) {
    const [from, to] = [bounds[i]!, bounds[i + 1]!];
    let destinations = 0;
    for (let s = from; s < to; s++) destinations += table.services[s * L.svcWords + L.svc.destinationCount]!;
    parts.push({
      services: table.services.slice(from * L.svcWords, to * L.svcWords),
      destinations: table.destinations.slice(destination * L.dstWords, (destination + destinations) * L.dstWords),
      strings: table.strings,
    });
    destination += destinations;
  }
  return parts;
}

describe('appendTableFromNative', () => {
  it('builds from parts exactly what tableFromNative builds from one piece', () => {
    fc.assert(fc.property(nativeTableArbitrary(12), fc.array(fc.nat(12), { maxLength: 4 }), (table, cuts) => {
      const whole = tableFromNative(table);
      const assembled: ServiceWithDestinations[] = [];
      for (const part of split(table, cuts)) appendTableFromNative(assembled, part);
      expect(assembled).toEqual(whole);
    }), { numRuns: 200 });
  });

  it('refuses a part that counts more destinations than it carries', () => {
    const L = layoutOf();
    const services = new Uint32Array(L.svcWords);
    services[L.svc.destinationCount] = 1;
    expect(() => appendTableFromNative([], { services, destinations: new Uint32Array(0), strings: [] }))
      .toThrow('the addon packed fewer destinations than it counted');
  });
});
