// The service listing written from packed records prints exactly what the object-based
// formatter printed from tableFromNative()'s objects, for any packed table and every listing
// format (the differential against the real ipvsadm is test/kernel/cli-ipvsadm.test.ts).
import { createRequire } from 'node:module';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { Namer } from '../../../lib/cli/ipvsadm/format';
import { Fmt } from '../../../lib/cli/ipvsadm/options';
import { PartwiseListing, formatOneService, formatTable } from '../../../lib/cli/ipvsadm/service-listing';
import type { NativeTable } from '../../../lib/native';
import { tableFromNative } from '../../../lib/table';
import { TableView, u64Text, writeU64 } from '../../../lib/table-view';
import { recordLayout } from '../../../lib/records';
import { nativeTableArbitrary } from '../packed-table';
import { referenceFormatOneService, referenceFormatTable } from './reference-listing';

const INFO = { version: '1.2.1', connectionTableSize: 4096 };
const LAYOUTS = [0, Fmt.RULE, Fmt.STATS, Fmt.RATE, Fmt.THRESHOLDS, Fmt.PERSISTENTCONN, Fmt.TUN_INFO];
const MODIFIERS = [0, Fmt.EXACT, Fmt.NOSORT, Fmt.EXACT | Fmt.NOSORT];

describe('the service listing from packed records', () => {
  it('prints what the object formatter printed, for every format, numeric and with names', () => {
    fc.assert(fc.property(nativeTableArbitrary(), fc.boolean(), (table, numeric) => {
      const objects = tableFromNative(table);
      const view = new TableView(table);
      for (const layout of LAYOUTS) {
        for (const modifier of MODIFIERS) {
          const format = layout | modifier | (numeric ? Fmt.NUMERIC : 0);
          const expected = referenceFormatTable(objects, format, new Namer(numeric), INFO);
          expect(formatTable(view, format, new Namer(numeric), INFO).toString()).toBe(expected);
        }
      }
    }), { numRuns: 300 });
  }, 60_000);

  it('prints one service as list_service did', () => {
    fc.assert(fc.property(nativeTableArbitrary(1), (table) => {
      const objects = tableFromNative(table);
      if (objects.length === 0) return;
      const view = new TableView(table);
      for (const layout of LAYOUTS) {
        const format = layout | Fmt.NUMERIC;
        expect(formatOneService(view, format, new Namer(true)).toString()).toBe(referenceFormatOneService(objects[0]!, format, new Namer(true)));
      }
    }), { numRuns: 100 });
  });
});

/** `table` cut into parts of whole services before each index in `cuts`, as the addon hands a listing over. */
function inParts(table: NativeTable, cuts: number[]): NativeTable[] {
  const view = new TableView(table);
  const bounds = [...new Set([0, ...cuts.map((c) => c % (view.serviceCount + 1)), view.serviceCount])].sort((a, b) => a - b);
  const parts: NativeTable[] = [];
  for (let i = 0; i + 1 < bounds.length || parts.length === 0; i++) {
    const from = bounds[i] ?? 0;
    const to = bounds[i + 1] ?? view.serviceCount;
    parts.push({
      services: table.services.slice(from * view.L.svcWords, to * view.L.svcWords),
      destinations: table.destinations.slice(view.firstDestination[from]! * view.L.dstWords, view.firstDestination[to]! * view.L.dstWords),
      strings: table.strings,
    });
  }
  return parts;
}

describe('the service listing from a table in parts', () => {
  it('prints what formatTable prints for the whole table, for every numeric format and any cut', () => {
    fc.assert(fc.property(nativeTableArbitrary(), fc.array(fc.nat(), { maxLength: 4 }), (table, cuts) => {
      const parts = inParts(table, cuts);
      for (const layout of LAYOUTS) {
        for (const modifier of MODIFIERS) {
          const format = layout | modifier | Fmt.NUMERIC;
          const listing = new PartwiseListing(format, new Namer(true));
          for (const part of parts) listing.add(part);
          expect(listing.finish(INFO).toString()).toBe(formatTable(new TableView(table), format, new Namer(true), INFO).toString());
        }
      }
    }), { numRuns: 200 });
  }, 60_000);

  it('orders a table of IPv4 services from the keys made as its parts arrive, as formatTable does', () => {
    const { syntheticTable } = createRequire(__filename)('../../../scripts/synthetic-table.cjs') as {
      syntheticTable: (layout: unknown, services: number, perService: number) => NativeTable;
    };
    const sorted = syntheticTable(recordLayout(), 300, 3);
    const view = new TableView(sorted);
    const { svcWords, dstWords } = view.L;
    // In a hash-like order, as the kernel dumps: services 0, 7, 14, ... (mod 300).
    const table: NativeTable = { services: new Uint32Array(sorted.services.length), destinations: new Uint32Array(sorted.destinations.length), strings: sorted.strings };
    for (let i = 0; i < 300; i++) {
      const s = (i * 7) % 300;
      table.services.set(sorted.services.subarray(s * svcWords, (s + 1) * svcWords), i * svcWords);
      table.destinations.set(sorted.destinations.subarray(s * 3 * dstWords, (s + 1) * 3 * dstWords), i * 3 * dstWords);
    }
    for (const format of [Fmt.NUMERIC, Fmt.NUMERIC | Fmt.RULE, Fmt.NUMERIC | Fmt.STATS]) {
      const listing = new PartwiseListing(format, new Namer(true));
      for (const part of inParts(table, [64, 128, 192, 256])) listing.add(part);
      const text = listing.finish(INFO).toString();
      expect(text).toBe(formatTable(new TableView(table), format, new Namer(true), INFO).toString());
      expect(text).toBe(formatTable(view, format, new Namer(true), INFO).toString());
    }
  });

  it('takes numeric listings only (names are resolved for the whole table)', () => {
    expect(() => new PartwiseListing(0, new Namer(false))).toThrow(/numeric/);
  });
});

describe('u64 counters from two words', () => {
  it('are exact in decimal across the whole range, without BigInt', () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (value) => {
      const low = Number(value & 0xffffffffn);
      const high = Number(value >> 32n);
      expect(u64Text(low, high)).toBe(value.toString());
      const out = new Uint8Array(24);
      const end = writeU64(out, 2, low, high);
      expect(Buffer.from(out.subarray(2, end)).toString('latin1')).toBe(value.toString());
    }), { numRuns: 2000 });
    for (const value of [0n, 2n ** 53n - 1n, 2n ** 53n, 10n ** 19n, 2n ** 64n - 1n]) {
      expect(u64Text(Number(value & 0xffffffffn), Number(value >> 32n))).toBe(value.toString());
    }
  });
});
