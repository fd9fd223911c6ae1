// tcp: the check passes when a TCP connection to the target is established.
import net from 'node:net';

import type { TcpCheck } from '../config';
import { describeFailure, type CheckRunner } from './types';

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
