// dns: one query over UDP, built and parsed here (RFC 1035 §4.1; AAAA RFC 3596). Passes when
// the reply's rcode is the expected one (default NOERROR) and, with expectAnswer, an answer
// record of the queried type carries that value.
import { randomInt } from 'node:crypto';

import { canonicalAddress } from '../../address';
import { DNS_RCODES, DNS_TYPES, type DnsCheck } from '../config';
import type { CheckRunner } from './types';
import { exchangeDatagram } from './udp';

const CLASS_IN = 1;
const FLAG_QR = 0x8000;
const FLAG_RD = 0x0100;
const FLAG_TC = 0x0200;
const RCODE_NAMES = Object.fromEntries(Object.entries(DNS_RCODES).map(([name, n]) => [n, name])) as Record<number, string>;

/** A query for `name` of `type` with id `id`, recursion desired. */
export function encodeQuery(id: number, name: string, type: number): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter((l) => l.length > 0);
  const question = Buffer.alloc(labels.reduce((n, l) => n + 1 + Buffer.byteLength(l), 0) + 1 + 4);
  let at = 0;
  for (const label of labels) {
    at = question.writeUInt8(Buffer.byteLength(label), at);
    at += question.write(label, at, 'ascii');
  }
  at = question.writeUInt8(0, at);
  at = question.writeUInt16BE(type, at);
  question.writeUInt16BE(CLASS_IN, at);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(FLAG_RD, 2);
  header.writeUInt16BE(1, 4);  // QDCOUNT
  return Buffer.concat([header, question]);
}

export interface DnsAnswer {
  type: number;
  /** Addresses for A/AAAA, names (without the final dot) for CNAME/NS/PTR/MX, text for TXT. */
  value: string;
}

export interface DnsReply {
  id: number;
  truncated: boolean;
  rcode: number;
  answers: DnsAnswer[];
}

/** Reads a possibly compressed name at `offset`; returns it and the offset after it in place. */
function readName(message: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let at = offset;
  let next = -1;
  for (let hops = 0; hops < 128; hops++) {
    const length = message.readUInt8(at);
    if (length === 0) {
      return { name: labels.join('.'), next: next === -1 ? at + 1 : next };
    }
    if ((length & 0xc0) === 0xc0) {
      if (next === -1) next = at + 2;
      at = message.readUInt16BE(at) & 0x3fff;
      continue;
    }
    if (length & 0xc0) throw new RangeError('unsupported label type');
    if (at + 1 + length > message.length) throw new RangeError('label past the end');
    labels.push(message.toString('ascii', at + 1, at + 1 + length));
    at += 1 + length;
  }
  throw new RangeError('compression loop');
}

/** Parses a reply. @throws {RangeError} when it is malformed (read past the end, a loop…). */
export function decodeReply(message: Buffer): DnsReply {
  if (message.length < 12) throw new RangeError('reply shorter than a header');
  const id = message.readUInt16BE(0);
  const flags = message.readUInt16BE(2);
  if (!(flags & FLAG_QR)) throw new RangeError('not a reply');
  const questions = message.readUInt16BE(4);
  const answerCount = message.readUInt16BE(6);
  let at = 12;
  for (let q = 0; q < questions; q++) at = readName(message, at).next + 4;
  const answers: DnsAnswer[] = [];
  for (let a = 0; a < answerCount; a++) {
    at = readName(message, at).next;
    const type = message.readUInt16BE(at);
    const length = message.readUInt16BE(at + 8);
    const data = at + 10;
    if (data + length > message.length) throw new RangeError('record past the end');
    let value: string;
    if (type === DNS_TYPES.A && length === 4) {
      value = Array.from(message.subarray(data, data + 4)).join('.');
    } else if (type === DNS_TYPES.AAAA && length === 16) {
      const groups: string[] = [];
      for (let g = 0; g < 8; g++) groups.push(message.readUInt16BE(data + g * 2).toString(16));
      value = canonicalAddress(groups.join(':'));
    } else if (type === DNS_TYPES.CNAME || type === DNS_TYPES.NS || type === DNS_TYPES.PTR) {
      value = readName(message, data).name;
    } else if (type === DNS_TYPES.MX) {
      value = readName(message, data + 2).name;
    } else if (type === DNS_TYPES.TXT) {
      const parts: string[] = [];
      for (let p = data; p < data + length;) {
        const n = message.readUInt8(p);
        parts.push(message.toString('utf8', p + 1, p + 1 + n));
        p += 1 + n;
      }
      value = parts.join('');
    } else {
      value = message.subarray(data, data + length).toString('hex');
    }
    answers.push({ type, value });
    at = data + length;
  }
  return { id, truncated: (flags & FLAG_TC) !== 0, rcode: flags & 0xf, answers };
}

function sameAnswer(type: number, got: string, want: string): boolean {
  if (type === DNS_TYPES.A || type === DNS_TYPES.AAAA) return canonicalAddress(got) === canonicalAddress(want);
  if (type === DNS_TYPES.TXT) return got === want;
  return got.toLowerCase() === want.replace(/\.$/, '').toLowerCase();
}

export const runDnsCheck: CheckRunner<DnsCheck> = (spec, target, signal) => {
  const type = DNS_TYPES[spec.queryType ?? 'A']!;
  const expectRcode = spec.expectRcode ?? 'NOERROR';
  const id = randomInt(0, 0x10000);
  return exchangeDatagram(target, encodeQuery(id, spec.name, type), signal, (message) => {
    let reply: DnsReply;
    try {
      reply = decodeReply(message);
    } catch (error) {
      return { ok: false, message: `malformed reply: ${(error as Error).message}` };
    }
    if (reply.id !== id) return undefined;  // not ours (a late reply to an earlier query)
    const rcode = RCODE_NAMES[reply.rcode] ?? `RCODE${reply.rcode}`;
    if (rcode !== expectRcode) return { ok: false, message: `rcode ${rcode}, expected ${expectRcode}` };
    if (spec.expectAnswer !== undefined) {
      const ofType = reply.answers.filter((a) => a.type === type);
      if (!ofType.some((a) => sameAnswer(type, a.value, spec.expectAnswer!))) {
        const got = ofType.map((a) => a.value).join(', ') || (reply.truncated ? 'none (truncated)' : 'none');
        return { ok: false, message: `${rcode}, no ${spec.queryType ?? 'A'} answer ${spec.expectAnswer} (got ${got})` };
      }
    }
    return { ok: true, message: `${rcode}, ${reply.answers.length} answer(s)` };
  });
};
