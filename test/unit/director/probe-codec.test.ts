// The probe transport's packed format (lib/director/checks/probe-codec.ts, native/probe_codec.h):
// round trips of both directions for any probe and completion, and the limits refused.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { decodeAddress } from '../../../lib/address';
import {
  COMPLETION_BYTES, decodeCompletions, decodeProbes, encodeCompletions, encodeProbes, PROBE_HEADER_BYTES, probeLayout,
  type ProbeCompletion, type ProbeSpec,
} from '../../../lib/director/checks/probe-codec';

// The limits come from the addon (native/probe_codec.h), read when it loads.
const { maxTimeoutMs: MAX_PROBE_TIMEOUT_MS, maxReply: MAX_PROBE_REPLY, maxPayload: MAX_PROBE_PAYLOAD } = probeLayout();

const ipv4 = fc.ipV4();
// Canonical text (what the decoder writes), so that a round trip compares strings.
const ipv6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((bytes) => decodeAddress(bytes, 'inet6'));

const probe: fc.Arbitrary<ProbeSpec> = fc.oneof(
  fc.record({ address: ipv4, bindAddress: fc.option(ipv4, { nil: undefined }) }),
  fc.record({ address: ipv6, bindAddress: fc.option(ipv6, { nil: undefined }) }),
).chain(({ address, bindAddress }) => fc.record({
  id: fc.integer({ min: 0, max: 0xffffffff }),
  port: fc.integer({ min: 1, max: 65535 }),
  timeoutMs: fc.integer({ min: 1, max: MAX_PROBE_TIMEOUT_MS }),
  maxReply: fc.integer({ min: 0, max: MAX_PROBE_REPLY }),
  payload: fc.option(fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => Buffer.from(b)), { nil: undefined }),
  firstLine: fc.option(fc.constant(true), { nil: undefined }),
}).map((p) => {
  const spec: ProbeSpec = { id: p.id, address, port: p.port, timeoutMs: p.timeoutMs, maxReply: p.maxReply };
  if (bindAddress !== undefined) spec.bindAddress = bindAddress;
  if (p.payload) spec.payload = p.payload;
  if (p.firstLine) spec.firstLine = true;
  return spec;
}));

const completion: fc.Arbitrary<ProbeCompletion> = fc.record({
  id: fc.integer({ min: 0, max: 0xffffffff }),
  outcome: fc.constantFrom('ok' as const, 'error' as const, 'timeout' as const, 'notStarted' as const),
  phase: fc.constantFrom('connect' as const, 'send' as const, 'receive' as const),
  errno: fc.integer({ min: 0, max: 4095 }),
  latencyMs: fc.integer({ min: 0, max: 0xffffffff }).map((us) => us / 1000),
  reply: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  limited: fc.boolean(),
  firstLine: fc.boolean(),
});

describe('probe batches', () => {
  it('decode to what was encoded, for any probes', () => {
    fc.assert(fc.property(fc.array(probe, { maxLength: 8 }), (probes) => {
      const batch = encodeProbes(probes);
      expect(batch.length).toBe(probes.reduce((n, p) => n + PROBE_HEADER_BYTES + (p.payload?.length ?? 0), 0));
      expect(decodeProbes(batch)).toEqual(probes);
    }));
  });

  it('lays out a probe as native/probe_codec.h says', () => {
    const batch = encodeProbes([{ id: 0x01020304, address: '10.1.2.3', port: 8080, bindAddress: '10.9.9.9', payload: Buffer.from('GET'), timeoutMs: 900, maxReply: 8193, firstLine: true }]);
    expect(batch.readUInt32LE(0)).toBe(0x01020304);
    expect([batch[4], batch[5], batch.readUInt16LE(6)]).toEqual([4, 3, 8080]);
    expect([batch.readUInt32LE(8), batch.readUInt32LE(12), batch.readUInt32LE(16)]).toEqual([900, 8193, 3]);
    expect([...batch.subarray(20, 24)]).toEqual([10, 1, 2, 3]);
    expect([...batch.subarray(36, 40)]).toEqual([10, 9, 9, 9]);
    expect(batch.subarray(52).toString()).toBe('GET');
  });

  it('takes its limits from the addon: timeout 1 ms to 24 h, reply 16 MiB, payload 1 MiB', () => {
    expect(probeLayout()).toEqual({
      probeHeaderBytes: PROBE_HEADER_BYTES, completionBytes: COMPLETION_BYTES,
      maxTimeoutMs: 24 * 3600 * 1000, maxReply: 16 * 1024 * 1024, maxPayload: 1024 * 1024,
    });
  });

  it('refuses what the native side would refuse, naming the field', () => {
    const base: ProbeSpec = { id: 1, address: '127.0.0.1', port: 80, timeoutMs: 1000, maxReply: 0 };
    expect(() => encodeProbes([{ ...base, port: 0 }])).toThrow(/port 0 must be 1-65535/);
    expect(() => encodeProbes([{ ...base, timeoutMs: 0 }])).toThrow(/timeout 0 ms/);
    expect(() => encodeProbes([{ ...base, timeoutMs: MAX_PROBE_TIMEOUT_MS + 1 }])).toThrow(RangeError);
    expect(() => encodeProbes([{ ...base, maxReply: MAX_PROBE_REPLY + 1 }])).toThrow(/reply limit/);
    expect(() => encodeProbes([{ ...base, payload: Buffer.alloc(MAX_PROBE_PAYLOAD + 1) }])).toThrow(/payload/);
    expect(() => encodeProbes([{ ...base, address: 'localhost' }])).toThrow(/not IPv4 or IPv6/);
    expect(() => encodeProbes([{ ...base, bindAddress: '::1' }])).toThrow(/family/);
    expect(() => encodeProbes([{ ...base, id: -1 }])).toThrow(/u32/);
  });
});

describe('completions', () => {
  it('decode to what was encoded, for any completions', () => {
    fc.assert(fc.property(fc.array(completion, { maxLength: 8 }), (completions) => {
      const { records, replies } = encodeCompletions(completions);
      expect(records.length).toBe(completions.length * COMPLETION_BYTES);
      expect(decodeCompletions(records, replies)).toEqual(completions);
    }));
  });

  it('refuses records that are cut or point outside the replies', () => {
    const { records, replies } = encodeCompletions([{ id: 1, outcome: 'ok', phase: 'receive', errno: 0, latencyMs: 1, reply: Buffer.from('abc'), limited: false, firstLine: false }]);
    expect(() => decodeCompletions(records.subarray(0, 20), replies)).toThrow(/20 bytes/);
    expect(() => decodeCompletions(records, replies.subarray(0, 2))).toThrow(/outside/);
  });
});
