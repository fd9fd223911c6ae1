// tcp: the check passes when a TCP connection to the target is established.
import net from 'node:net';

import type { TcpCheck } from '../config';
import { probeAddresses } from './http';
import { errnoCode, prepareProbe, type NativeProbe } from './probe-transport';
import { describeFailure, type CheckRunner, type CheckTarget } from './types';

/** The check as a probe of the native transport: connect, nothing sent; undefined when it cannot be one. */
export function tcpProbe(spec: TcpCheck & { timeout: number }, target: CheckTarget): NativeProbe | undefined {
  const cached = probes.get(target);
  if (cached?.spec === spec) return cached.probe;
  if (!probeAddresses(target)) return undefined;
  const probe: NativeProbe = {
    prepared: prepareProbe({
      address: target.address, port: target.port, ...(target.bindAddress ? { bindAddress: target.bindAddress } : {}),
      timeoutMs: Math.max(1, Math.round(spec.timeout * 1000)), maxReply: 0,
    }),
    judge: (c) => {
      const outcome = c.outcome;
      if (outcome === 'ok') return { ok: true, message: 'connected', latency: c.latencyMs };
      if (outcome === 'timeout') return { ok: false, message: 'connect timed out', latency: c.latencyMs };
      return { ok: false, message: `connect ${errnoCode(c.errno)}`, latency: c.latencyMs };
    },
  };
  probes.set(target, { spec, probe });
  return probe;
}

/** Probes by target: a check and its target repeat every interval. */
const probes = new WeakMap<CheckTarget, { spec: TcpCheck; probe: NativeProbe }>();

export const runTcpCheck: CheckRunner<TcpCheck> = (_spec, target, signal) => new Promise((resolve) => {
  const socket = net.connect({
    host: target.address, port: target.port, ...(target.bindAddress ? { localAddress: target.bindAddress } : {}),
  });
  const finish = (ok: boolean, message: string): void => {
    signal.removeEventListener('abort', onAbort);
    socket.destroy();
    resolve({ ok, message });
  };
  const onAbort = (): void => finish(false, 'connect timed out');
  signal.addEventListener('abort', onAbort, { once: true });
  socket.once('connect', () => finish(true, 'connected'));
  socket.once('error', (error) => finish(false, describeFailure('connect', error)));
});
