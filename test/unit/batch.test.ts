// Batch on the host: queue-time validation (the same checks as the Ipvs methods, thrown
// synchronously, nothing queued), the records handed to the addon, and how the addon's answer
// becomes one result per operation. The addon is replaced by a recorder.
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { INVALID_INPUTS, describeInput, namesField } from '../invalid-inputs';

interface BatchCall {
  records: Uint32Array;
  strings: string[];
  tuning: unknown;
}
const batchCalls: BatchCall[] = [];
let answer: (count: number) => unknown = (count) => ({
  errors: new Int32Array(count), unknown: new Uint8Array(count), messages: {}, sendCalls: 1, overruns: 0,
});

// The real addon's record layout (it loads on the host; only the socket is missing here).
vi.mock('../../lib/native', async (importActual) => {
  const actual = await importActual<typeof import('../../lib/native')>();
  const { recordLayout } = actual.nativeAddon();
  return {
    ...actual,
    nativeAddon: () => ({
      recordLayout,
      IpvsHandle: {
        open: async () => ({
          execute: async () => [],
          executeBatch: async (records: Uint32Array, strings: string[], tuning: unknown) => {
            batchCalls.push({ records: records.slice(), strings: [...strings], tuning });
            return answer(records.length / recordLayout.request.words);
          },
          close: () => {},
        }),
      },
    }),
  };
});

const { Ipvs, IpvsError } = await import('../../lib/index');
const { Batch, BatchUnknownError, batchStats, tuneBatch } = await import('../../lib/batch');
const { recordLayout } = await import('../../lib/records');

// Word offsets in a request record, from the addon's own layout export.
const L = recordLayout();
const R = L.request.words;
const SVC = (field: keyof typeof L.service.at): number => L.request.service + L.service.at[field];
const DST = (field: keyof typeof L.destination.at): number => L.request.destination + L.destination.at[field];
const SVC_PRESENT = L.request.service;
const DST_PRESENT = L.request.destination;
/** The 4 bytes at word `w` of `records`. */
const bytesAt = (records: Uint32Array, w: number): number[] => [...new Uint8Array(records.buffer, records.byteOffset + w * 4, 4)];

const BATCH_METHODS = new Set(['addService', 'editService', 'deleteService', 'addDestination', 'editDestination', 'deleteDestination']);
const S = { protocol: 'tcp', address: '10.0.0.1', port: 80 } as const;

let ipvs: Awaited<ReturnType<typeof Ipvs.open>>;
beforeAll(async () => {
  ipvs = await Ipvs.open();
});
beforeEach(() => {
  batchCalls.length = 0;
  answer = (count) => ({ errors: new Int32Array(count), unknown: new Uint8Array(count), messages: {}, sendCalls: 1, overruns: 0 });
});

describe('queue-time validation', () => {
  const rows = INVALID_INPUTS.map((input, i) => [describeInput(input, i), input] as const)
    .filter(([, input]) => BATCH_METHODS.has(input.method));

  it('covers every batch operation', () => {
    expect(new Set(rows.map(([, input]) => input.method))).toEqual(BATCH_METHODS);
    expect(rows.length).toBeGreaterThanOrEqual(50);
  });

  it.each(rows)('%s throws synchronously and queues nothing', (_title, input) => {
    const batch = ipvs.batch();
    batch.addService(S);
    let error: unknown;
    try {
      const result = (batch as unknown as Record<string, (...a: unknown[]) => unknown>)[input.method]!.apply(batch, input.args);
      expect.fail(`expected a throw, got ${String(result)}`);
    } catch (e) {
      error = e;
    }
    expect((error as Error).constructor).toBe(input.error);
    const message = (error as Error).message;
    expect(namesField(message, input.field), `"${message}" should start with ${input.field}`).toBe(true);
    expect(batch.size).toBe(1);
  });

  it('is the same check as the single call: both reject the same bad destination alike', async () => {
    const bad = { address: '10.0.1.1', weight: -1 };
    const single = await ipvs.addDestination(S, bad).then(() => undefined, (e: unknown) => e as Error);
    let queued: Error | undefined;
    try {
      ipvs.batch().addDestination(S, bad);
    } catch (e) {
      queued = e as Error;
    }
    expect(queued?.constructor).toBe(single?.constructor);
    expect(queued?.message).toBe(single?.message);
  });
});

describe('a check that throws half-way', () => {
  it('leaves nothing in the record slot that the next operation takes', async () => {
    const batch = ipvs.batch();
    // The key (address, port, family) is written before the weight is found out of range.
    expect(() => batch.addDestination(S, { address: '10.0.1.1', port: 8080, weight: -1 })).toThrow(RangeError);
    batch.deleteService(S);
    batch.addDestination(S, { address: '10.0.1.2' });
    await batch.commit();
    const { records } = batchCalls[0]!;
    expect(records.length).toBe(2 * R);
    expect(records[DST_PRESENT]).toBe(0);
    expect(records[DST('port')]).toBe(0);
    expect(bytesAt(records, DST('address'))).toEqual([0, 0, 0, 0]);
    expect([records[R + DST('port')], records[R + DST('weight')]]).toEqual([80, 1]);
    expect(bytesAt(records, R + DST('address'))).toEqual([10, 0, 1, 2]);
  });
});

describe('service key reuse', () => {
  it('re-checks a service object that changed between calls', async () => {
    const service: Record<string, unknown> = { protocol: 'tcp', address: '10.0.0.1', port: 80 };
    const batch = ipvs.batch();
    batch.addDestination(service as never, { address: '10.0.1.1' });
    service.port = 81;
    batch.addDestination(service as never, { address: '10.0.1.1' });
    service.address = 'not-an-address';
    expect(() => batch.addDestination(service as never, { address: '10.0.1.1' })).toThrow(RangeError);
    service.address = '10.0.0.2';
    service.extra = 1; // ignored by the key check, but a change all the same
    batch.deleteDestination(service as never, { address: '10.0.1.1' });
    expect(batch.size).toBe(3);
    await batch.commit();
    const { records } = batchCalls[0]!;
    expect([records[SVC('port')], records[R + SVC('port')], records[2 * R + SVC('port')]]).toEqual([80, 81, 81]);
    expect(bytesAt(records, 2 * R + SVC('address'))).toEqual([10, 0, 0, 2]);
  });
});

describe('commit', () => {
  it('sends one packed record per operation, in order, with deduplicated strings', async () => {
    const batch = ipvs.batch()
      .addService({ ...S, scheduler: 'rr' })
      .addDestination(S, { address: '10.0.1.1', port: 8080, forward: 'masq', weight: 7 })
      .editService({ ...S, scheduler: 'rr', persistent: 300 })
      .editDestination(S, { address: '10.0.1.1', port: 8080, weight: 0 })
      .deleteDestination(S, { address: '10.0.1.1', port: 8080 })
      .deleteService(S)
      .addService({ fwmark: 9, family: 'inet6', scheduler: 'wlc' });
    expect(batch.size).toBe(7);
    await batch.commit();
    expect(batchCalls).toHaveLength(1);
    const { records, strings } = batchCalls[0]!;
    expect(records.length).toBe(7 * R);
    const word = (i: number, w: number): number => records[i * R + w]!;
    expect([0, 1, 2, 3, 4, 5, 6].map((i) => word(i, L.request.command))).toEqual([1, 5, 2, 6, 7, 3, 1]);
    expect(strings).toEqual(['rr', 'wlc']);
    // addService: af 2, protocol 6, port 80, scheduler 'rr', address bytes 10.0.0.1
    expect([word(0, SVC('af')), word(0, SVC('protocol')), word(0, SVC('port')), strings[word(0, SVC('scheduler'))]]).toEqual([2, 6, 80, 'rr']);
    const b = L.service.bit;
    expect(word(0, SVC_PRESENT)).toBe(b.af | b.protocol | b.address | b.port | b.scheduler | b.flags | b.flagsMask | b.timeout | b.netmask);
    expect(bytesAt(records, SVC('address'))).toEqual([10, 0, 0, 1]);
    // addDestination: port 8080, forward masq (0), weight 7, address 10.0.1.1
    expect([word(1, DST('port')), word(1, DST('forward')), word(1, DST('weight'))]).toEqual([8080, 0, 7]);
    expect(bytesAt(records, R + DST('address'))).toEqual([10, 0, 1, 1]);
    // editService carries persistence: flags bit 0 and timeout 300
    expect([word(2, SVC('flags')) & 1, word(2, SVC('timeout'))]).toEqual([1, 300]);
    // deleteService has a service key and no destination; the fwmark service has no address
    expect(word(5, DST_PRESENT)).toBe(0);
    expect(word(5, SVC_PRESENT)).not.toBe(0);
    expect([word(6, SVC('af')), word(6, SVC('fwmark')), word(6, SVC_PRESENT) & b.address]).toEqual([10, 9, 0]);
  });

  it('maps the answer to one result per operation, by index, with the operation name', async () => {
    answer = (count) => {
      const errors = new Int32Array(count);
      const unknown = new Uint8Array(count);
      errors[1] = 17; // EEXIST
      errors[2] = 3; // ESRCH
      errors[3] = 105; // ENOBUFS, answer lost
      unknown[3] = 1;
      return { errors, unknown, messages: { 2: 'no service here' }, sendCalls: 2, overruns: 1 };
    };
    const batch = ipvs.batch()
      .addService(S)
      .addService(S)
      .addDestination({ ...S, port: 81 }, { address: '10.0.1.1' })
      .deleteDestination(S, { address: '10.0.1.2' });
    const results = await batch.commit();
    expect(results).toHaveLength(4);
    expect(results[0]).toEqual({ ok: true });
    const r1 = results[1]!;
    expect(r1.ok).toBe(false);
    if (r1.ok) return;
    expect(r1.unknown).toBe(false);
    expect(r1.error).toBeInstanceOf(IpvsError);
    expect([r1.error.code, r1.error.operation, r1.error.message]).toEqual(['EEXIST', 'addService', 'addService: Service already exists (EEXIST)']);
    const r2 = results[2]!;
    if (r2.ok) throw new Error('expected a failure');
    expect([r2.error.code, r2.error.operation, r2.error.kernelMessage]).toEqual(['ESRCH', 'addDestination', 'no service here']);
    const r3 = results[3]!;
    if (r3.ok) throw new Error('expected a failure');
    expect(r3.unknown).toBe(true);
    expect(r3.error).toBeInstanceOf(BatchUnknownError);
    expect(r3.error).toBeInstanceOf(IpvsError);
    expect([r3.error.code, r3.error.operation, (r3.error as InstanceType<typeof BatchUnknownError>).unknown]).toEqual(['ENOBUFS', 'deleteDestination', true]);
    expect(batchStats(batch)).toEqual({ sendCalls: 2, overruns: 1 });
  });

  it('resolves [] for an empty batch without calling the addon', async () => {
    expect(await ipvs.batch().commit()).toEqual([]);
    expect(batchCalls).toHaveLength(0);
  });

  it('is used once: queueing or committing again throws', async () => {
    const batch = ipvs.batch().addService(S);
    await batch.commit();
    expect(() => batch.addService(S)).toThrow(/already committed/);
    await expect(batch.commit()).rejects.toThrow(/already committed/);
    expect(batchCalls).toHaveLength(1);
  });

  it('passes test tuning through and grows past its initial record buffer', async () => {
    const batch = ipvs.batch();
    for (let i = 0; i < 1000; i++) batch.addDestination(S, { address: `10.1.${i >> 8}.${i & 255}` });
    tuneBatch(batch, { acksPerChunk: 3, receiveBuffer: 4096 });
    const results = await batch.commit();
    expect(results).toHaveLength(1000);
    const { records, tuning } = batchCalls[0]!;
    expect(tuning).toEqual({ acksPerChunk: 3, receiveBuffer: 4096 });
    expect(records.length).toBe(1000 * R);
    expect(bytesAt(records, 999 * R + DST('address'))).toEqual([10, 1, 3, 231]);
  });

  it('rejects with EBADF on a closed handle', async () => {
    const other = await Ipvs.open();
    const batch = other.batch().addService(S);
    await other.close();
    await expect(batch.commit()).rejects.toMatchObject({ code: 'EBADF', operation: 'batch' });
    expect(batch).toBeInstanceOf(Batch);
  });
});
