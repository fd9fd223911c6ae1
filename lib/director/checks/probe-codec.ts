// The probe transport's wire format (native/probe_codec.h has the same layout): a batch of
// probes packed for one native call, and the completions the probe thread sends back. All
// integers little-endian. Encoder and decoder come in pairs; the native side decodes what
// encodeProbes writes and encodes what decodeCompletions reads.
import { decodeAddress, parseAddress } from '../../address';
import { nativeAddon } from '../../native';

/** Bytes of a probe's header (the fields this file writes); its payload follows. */
export const PROBE_HEADER_BYTES = 52;
/** Bytes of one completion record (the fields this file reads). */
export const COMPLETION_BYTES = 24;

/** @internal The record sizes and the limits the native decoder enforces (a batch breaking one is refused whole). */
export interface ProbeLayout {
  probeHeaderBytes: number;
  completionBytes: number;
  maxTimeoutMs: number;
  maxReply: number;
  maxPayload: number;
}

let layout: ProbeLayout | undefined;

/**
 * @internal The limits as the addon exports them when it loads (native/probe_codec.h writes
 * them), checked against the record sizes this codec writes.
 * @throws {Error} when the addon cannot be loaded, or is a build of another layout.
 */
export function probeLayout(): ProbeLayout {
  if (layout) return layout;
  const exported = nativeAddon().probeLayout as Partial<ProbeLayout> | undefined;
  if (exported?.probeHeaderBytes !== PROBE_HEADER_BYTES || exported.completionBytes !== COMPLETION_BYTES ||
      ![exported.maxTimeoutMs, exported.maxReply, exported.maxPayload].every((n) => Number.isInteger(n) && n! > 0)) {
    throw new Error('ipvs-netlink: the native addon\'s probe layout is not this version\'s; rebuild it (npm rebuild ipvs-netlink)');
  }
  layout = exported as ProbeLayout;
  return layout;
}

const FLAG_BIND = 1;
const FLAG_FIRST_LINE = 2;

/** One probe: connect, send `payload` if any, read the reply until EOF, `maxReply` or (firstLine) the first CRLF. */
export interface ProbeSpec {
  id: number;
  /** IPv4 or IPv6 text. */
  address: string;
  port: number;
  /** Source address to bind, of the same family. */
  bindAddress?: string;
  /** Bytes sent once connected; absent or empty: connect only. */
  payload?: Uint8Array;
  timeoutMs: number;
  /** Reply bytes kept; the socket is closed when they are reached. */
  maxReply: number;
  /** The reply is complete at its first CRLF. */
  firstLine?: boolean;
}

/**
 * `notStarted`: the probe waited for one of the transport's socket slots (it caps sockets
 * below the descriptor limit) for its whole timeout and never ran.
 */
export type ProbeOutcome = 'ok' | 'error' | 'timeout' | 'notStarted';
export type ProbePhase = 'connect' | 'send' | 'receive';
export const OUTCOMES: readonly ProbeOutcome[] = ['ok', 'error', 'timeout', 'notStarted'];
export const PHASES: readonly ProbePhase[] = ['connect', 'send', 'receive'];

/** What happened to one probe. */
export interface ProbeCompletion {
  id: number;
  outcome: ProbeOutcome;
  /** Where it ended: an error's or timeout's phase; 'receive' once a reply was read. */
  phase: ProbePhase;
  /** errno of an 'error' outcome, else 0. */
  errno: number;
  /** Milliseconds from the socket's creation (for notStarted: submission) to the outcome, measured on the probe thread. */
  latencyMs: number;
  /** The reply read (a view into the batch's shared buffer). */
  reply: Buffer;
  /** Reading stopped at maxReply (more may have followed). */
  limited: boolean;
  /** Reading stopped at the first CRLF. */
  firstLine: boolean;
}

/**
 * Packs probes for one `submit`.
 * @throws {RangeError} when a probe is out of the native limits or an address is not IPv4/IPv6
 *   of one family (callers choose the Node path for those first).
 */
export function encodeProbes(probes: readonly ProbeSpec[]): Buffer {
  const { maxTimeoutMs, maxReply, maxPayload } = probeLayout();
  let size = 0;
  for (const p of probes) size += PROBE_HEADER_BYTES + (p.payload?.length ?? 0);
  const out = Buffer.alloc(size);
  let at = 0;
  for (const p of probes) {
    const payloadLength = p.payload?.length ?? 0;
    if (!Number.isInteger(p.id) || p.id < 0 || p.id > 0xffffffff) throw new RangeError(`probe id ${p.id} is not a u32`);
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) throw new RangeError(`probe port ${p.port} must be 1-65535`);
    if (!Number.isInteger(p.timeoutMs) || p.timeoutMs < 1 || p.timeoutMs > maxTimeoutMs) {
      throw new RangeError(`probe timeout ${p.timeoutMs} ms must be 1-${maxTimeoutMs}`);
    }
    if (!Number.isInteger(p.maxReply) || p.maxReply < 0 || p.maxReply > maxReply) {
      throw new RangeError(`probe reply limit ${p.maxReply} must be 0-${maxReply}`);
    }
    if (payloadLength > maxPayload) throw new RangeError(`probe payload of ${payloadLength} bytes is over ${maxPayload}`);
    const family = parseAddress(p.address, out, at + 20);
    if (!family) throw new RangeError(`probe address ${JSON.stringify(p.address)} is not IPv4 or IPv6`);
    let flags = p.firstLine ? FLAG_FIRST_LINE : 0;
    if (p.bindAddress !== undefined) {
      if (parseAddress(p.bindAddress, out, at + 36) !== family) {
        throw new RangeError(`probe source ${JSON.stringify(p.bindAddress)} is not an address of the destination's family`);
      }
      flags |= FLAG_BIND;
    }
    out.writeUInt32LE(p.id, at);
    out[at + 4] = family === 'inet' ? 4 : 6;
    out[at + 5] = flags;
    out.writeUInt16LE(p.port, at + 6);
    out.writeUInt32LE(p.timeoutMs, at + 8);
    out.writeUInt32LE(p.maxReply, at + 12);
    out.writeUInt32LE(payloadLength, at + 16);
    if (payloadLength > 0) out.set(p.payload!, at + PROBE_HEADER_BYTES);
    at += PROBE_HEADER_BYTES + payloadLength;
  }
  return out;
}

const EMPTY = Buffer.alloc(0);

/** The completions of one callback: records plus the replies buffer they point into. */
export function decodeCompletions(records: Buffer, replies: Buffer): ProbeCompletion[] {
  if (records.length % COMPLETION_BYTES !== 0) throw new RangeError(`completion records of ${records.length} bytes`);
  const out: ProbeCompletion[] = [];
  for (let at = 0; at < records.length; at += COMPLETION_BYTES) out.push(decodeCompletionAt(records, at, replies));
  return out;
}

/** The completion record at byte `at` of `records`. */
export function decodeCompletionAt(records: Buffer, at: number, replies: Buffer): ProbeCompletion {
  const offset = records.readUInt32LE(at + 16);
  const length = records.readUInt32LE(at + 20);
  if (offset + length > replies.length) throw new RangeError(`completion reply ${offset}+${length} outside ${replies.length} bytes`);
  const flags = records[at + 6]!;
  return {
    id: records.readUInt32LE(at),
    outcome: OUTCOMES[records[at + 4]!] ?? 'error',
    phase: PHASES[records[at + 5]!] ?? 'connect',
    errno: records.readInt32LE(at + 8),
    latencyMs: records.readUInt32LE(at + 12) / 1000,
    reply: length === 0 ? EMPTY : replies.subarray(offset, offset + length),
    limited: (flags & 1) !== 0,
    firstLine: (flags & 2) !== 0,
  };
}

/** The inverse of decodeCompletions (the native side writes these; the codec's tests use it). */
export function encodeCompletions(completions: readonly ProbeCompletion[]): { records: Buffer; replies: Buffer } {
  const records = Buffer.alloc(completions.length * COMPLETION_BYTES);
  const replies = Buffer.concat(completions.map((c) => c.reply));
  let offset = 0;
  completions.forEach((c, i) => {
    const at = i * COMPLETION_BYTES;
    records.writeUInt32LE(c.id, at);
    records[at + 4] = OUTCOMES.indexOf(c.outcome);
    records[at + 5] = PHASES.indexOf(c.phase);
    records[at + 6] = (c.limited ? 1 : 0) | (c.firstLine ? 2 : 0);
    records.writeInt32LE(c.errno, at + 8);
    records.writeUInt32LE(Math.round(c.latencyMs * 1000), at + 12);
    records.writeUInt32LE(offset, at + 16);
    records.writeUInt32LE(c.reply.length, at + 20);
    offset += c.reply.length;
  });
  return { records, replies };
}

/** The inverse of encodeProbes (the native side decodes batches; the codec's tests use it). */
export function decodeProbes(batch: Buffer): ProbeSpec[] {
  const out: ProbeSpec[] = [];
  let at = 0;
  while (at < batch.length) {
    if (batch.length - at < PROBE_HEADER_BYTES) throw new RangeError(`probe ${out.length}: truncated header`);
    const family = batch[at + 4] === 4 ? 'inet' : 'inet6';
    const flags = batch[at + 5]!;
    const payloadLength = batch.readUInt32LE(at + 16);
    if (batch.length - at - PROBE_HEADER_BYTES < payloadLength) throw new RangeError(`probe ${out.length}: truncated payload`);
    const probe: ProbeSpec = {
      id: batch.readUInt32LE(at),
      address: decodeAddress(batch, family, at + 20),
      port: batch.readUInt16LE(at + 6),
      timeoutMs: batch.readUInt32LE(at + 8),
      maxReply: batch.readUInt32LE(at + 12),
    };
    if (flags & FLAG_BIND) probe.bindAddress = decodeAddress(batch, family, at + 36);
    if (payloadLength > 0) probe.payload = Buffer.from(batch.subarray(at + PROBE_HEADER_BYTES, at + PROBE_HEADER_BYTES + payloadLength));
    if (flags & FLAG_FIRST_LINE) probe.firstLine = true;
    out.push(probe);
    at += PROBE_HEADER_BYTES + payloadLength;
  }
  return out;
}
