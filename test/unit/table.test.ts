// listTableObjects: the listing made of one GET_SERVICE dump and GET_DEST dumps a part at a
// time, against a fake handle that answers from a packed table as the addon would. It must
// build exactly what tableFromNative builds from the single-job listing of the same table.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { Command } from '../../lib/constants';
import type { NativeHandle, NativeTable } from '../../lib/native';
import { recordLayout, requestOffsets } from '../../lib/records';
import { listTableObjects, tableFromNative, type ServiceWithDestinations } from '../../lib/table';
import { nativeTableArbitrary, packTable } from './packed-table';

/** A handle whose queryMany answers from `table`; GET_DEST requests must name the services in order, by their kernel key. */
function fakeHandle(table: NativeTable, failAtCall = -1) {
  const { service: S, destination: D } = recordLayout();
  const o = requestOffsets();
  const count = table.services.length / S.words;
  const firsts: number[] = [];
  for (let s = 0, next = 0; s < count; s++) {
    firsts.push(next);
    next += table.services[s * S.words + S.at.destinationCount]!;
  }
  let nextService = 0;
  const calls: number[] = [];
  let running = 0;
  let overlapped = false;
  const queryMany = async (records: Uint32Array, strings: string[]) => {
    const call = calls.length;
    calls.push(records.length / o.words);
    if (running > 0) overlapped = true;
    running++;
    await new Promise((resolve) => setImmediate(resolve));
    running--;
    if (call === failAtCall) throw Object.assign(new Error('injected'), { code: 'EBADMSG' });
    expect(strings).toEqual([]);
    if (records[o.command] === Command.GET_SERVICE) {
      expect(records.length).toBe(o.words);
      return { services: table.services.slice(), destinations: new Uint32Array(0), strings: [...table.strings], counts: Uint32Array.of(count) };
    }
    const counts: number[] = [];
    const parts: Uint32Array[] = [];
    for (let r = 0; r < records.length; r += o.words) {
      expect(records[r + o.command]).toBe(Command.GET_DEST);
      const s = nextService++;
      const from = s * S.words;
      const present = table.services[from]!;
      const key = records.subarray(r + o.svc, r + o.svc + S.words);
      const marked = (present & S.bit.fwmark) !== 0 && table.services[from + S.at.fwmark] !== 0;
      const kept = present & (marked ? S.bit.af | S.bit.fwmark : S.bit.af | S.bit.protocol | S.bit.address | S.bit.port);
      expect(key[0]).toBe(kept);
      const same = (at: number, words = 1) =>
        expect([...key.subarray(at, at + words)]).toEqual([...table.services.subarray(from + at, from + at + words)]);
      if (kept & S.bit.af) same(S.at.af);
      if (marked) same(S.at.fwmark);
      else {
        if (kept & S.bit.protocol) same(S.at.protocol);
        if (kept & S.bit.address) same(S.at.address, 4);
        if (kept & S.bit.port) same(S.at.port);
      }
      const n = table.services[from + S.at.destinationCount]!;
      counts.push(n);
      parts.push(table.destinations.subarray(firsts[s]! * D.words, (firsts[s]! + n) * D.words));
    }
    const destinations = new Uint32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { destinations.set(p, at); at += p.length; }
    return { services: new Uint32Array(0), destinations, strings: [], counts: Uint32Array.from(counts) };
  };
  return { handle: { queryMany } as unknown as NativeHandle, calls, overlapped: () => overlapped, listed: () => nextService };
}

describe('listTableObjects', () => {
  it('builds what tableFromNative builds from the same records', async () => {
    await fc.assert(fc.asyncProperty(nativeTableArbitrary(8), async (table) => {
      const fake = fakeHandle(table);
      expect(await listTableObjects(fake.handle)).toEqual(tableFromNative(table));
      expect(fake.listed()).toBe(table.services.length / recordLayout().service.words);
    }), { numRuns: 200 });
  });

  it('dumps a large table a part at a time, one native call at a time', async () => {
    const [sample] = fc.sample(nativeTableArbitrary(1).filter((t) => t.services.length > 0), { numRuns: 1, seed: 7 });
    // 250 copies of one arbitrary service (with its destinations): three parts of at most 100.
    const { service: S, destination: D } = recordLayout();
    const one = tableFromNative(sample!).slice(0, 1);
    const table = packTable(Array.from({ length: 250 }, () => one[0]!));
    expect(table.services.length).toBe(250 * S.words);
    expect(table.destinations.length).toBe(250 * one[0]!.destinations.length * D.words);
    const fake = fakeHandle(table);
    expect(await listTableObjects(fake.handle)).toEqual(tableFromNative(table));
    expect(fake.calls).toEqual([1, 100, 100, 50]);
    expect(fake.overlapped()).toBe(false);  // the handle's socket runs one dump at a time
  });

  it('rejects with the failing dump and leaves no call running', async () => {
    const [sample] = fc.sample(nativeTableArbitrary(1).filter((t) => t.services.length > 0), { numRuns: 1, seed: 3 });
    const table = packTable(Array.from({ length: 250 }, () => tableFromNative(sample!)[0]!));
    const fake = fakeHandle(table, 2);
    await expect(listTableObjects(fake.handle)).rejects.toMatchObject({ code: 'EBADMSG' });
    expect(fake.calls).toEqual([1, 100, 100]);
  });

  it('lists an empty table with one call', async () => {
    const fake = fakeHandle(packTable([]));
    expect(await listTableObjects(fake.handle)).toEqual([]);
    expect(fake.calls).toEqual([1]);
  });
});
