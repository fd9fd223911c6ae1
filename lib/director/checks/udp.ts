// udp: sends one datagram and waits for a reply; passes when a reply arrives (and matches the
// `expect` regex, read as latin1, when one is given). An ICMP port unreachable fails at once.
import dgram from 'node:dgram';
import { isIP } from 'node:net';

import type { UdpCheck } from '../config';
import { describeFailure, type CheckRunner, type CheckTarget } from './types';

/** Decodes a payload with \xNN, \n, \r, \t, \0 and \\ escapes into bytes. */
export function decodePayload(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length) {
      const next = text[i + 1]!;
      if (next === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 2, i + 4))) {
        bytes.push(parseInt(text.slice(i + 2, i + 4), 16));
        i += 3;
        continue;
      }
      const simple: Record<string, number> = { n: 10, r: 13, t: 9, '0': 0, '\\': 92 };
      if (simple[next] !== undefined) {
        bytes.push(simple[next]);
        i += 1;
        continue;
      }
    }
    bytes.push(...Buffer.from(c, 'utf8'));
  }
  return Buffer.from(bytes);
}

/**
 * Sends `payload` from a socket connected to the target and resolves with the first reply for
 * which `accept` returns an outcome, or a failure on error, ICMP unreachable or abort.
 * @internal Shared with the dns check.
 */
export function exchangeDatagram(
  target: CheckTarget, payload: Buffer, signal: AbortSignal,
  accept: (reply: Buffer) => { ok: boolean; message: string } | undefined,
): Promise<{ ok: boolean; message: string }> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(isIP(target.address) === 6 ? 'udp6' : 'udp4');
    let settled = false;
    const finish = (ok: boolean, message: string): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.close();
      resolve({ ok, message });
    };
    const onAbort = (): void => finish(false, 'no reply before the timeout');
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', (error) => finish(false, describeFailure('udp', error)));
    socket.on('message', (reply) => {
      const outcome = accept(reply);
      if (outcome) finish(outcome.ok, outcome.message);
    });
    const send = (): void => {
      // The timeout may have closed the socket before bind or connect completed.
      if (settled) return;
      // connect() reports a failure (ENETUNREACH, …) through this callback, not 'error'.
      socket.connect(target.port, target.address, (error?: Error) => {
        if (settled) return;
        if (error) return finish(false, describeFailure('udp', error));
        socket.send(payload, (error) => { if (error) finish(false, describeFailure('send', error)); });
      });
    };
    if (target.bindAddress) socket.bind({ address: target.bindAddress, port: 0 }, send);
    else send();
  });
}

export const runUdpCheck: CheckRunner<UdpCheck> = (spec, target, signal) => {
  const expect = spec.expect === undefined ? undefined : new RegExp(spec.expect);
  return exchangeDatagram(target, decodePayload(spec.payload ?? ''), signal, (reply) => {
    if (!expect) return { ok: true, message: `reply of ${reply.length} bytes` };
    return expect.test(reply.toString('latin1'))
      ? { ok: true, message: `reply matches /${spec.expect}/` }
      : { ok: false, message: `reply does not match /${spec.expect}/` };
  });
};
