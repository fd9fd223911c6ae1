// exec: runs a command (argv, no shell) with the service and destination in its environment.
// Exit 0 passes and 1 fails; with dynamicWeight, exit 2–255 passes and sets the weight to
// code − 2 (keepalived's misc_dynamic); without it any other exit fails.
import { spawn } from 'node:child_process';

import type { ExecCheck } from '../config';
import { describeFailure, type CheckRunner, type CheckTarget } from './types';

/** The variables a command gets besides the director's own environment. */
export function checkEnvironment(target: CheckTarget): Record<string, string> {
  const env: Record<string, string> = {
    IPVS_DEST_ADDRESS: target.destination.address,
    IPVS_DEST_PORT: String(target.destination.port),
    IPVS_CHECK_ADDRESS: target.address,
    IPVS_CHECK_PORT: String(target.port),
  };
  const service = target.service as { fwmark?: number; family?: string; protocol?: string; address?: string; port?: number };
  if (service.fwmark !== undefined) {
    env.IPVS_SERVICE_FWMARK = String(service.fwmark);
    env.IPVS_SERVICE_FAMILY = service.family ?? 'inet';
  } else {
    env.IPVS_SERVICE_PROTOCOL = service.protocol ?? '';
    env.IPVS_SERVICE_ADDRESS = service.address ?? '';
    env.IPVS_SERVICE_PORT = String(service.port ?? '');
  }
  return env;
}

export const runExecCheck: CheckRunner<ExecCheck> = (spec, target, signal) => new Promise((resolve) => {
  const [file, ...args] = spec.command;
  let settled = false;
  const finish = (ok: boolean, message: string, weight?: number): void => {
    if (settled) return;
    settled = true;
    resolve(weight === undefined ? { ok, message } : { ok, message, weight });
  };
  const child = spawn(file!, args, {
    env: { ...process.env, ...checkEnvironment(target) },
    stdio: 'ignore',
    signal,
    killSignal: 'SIGKILL',
  });
  child.once('error', (error) => {
    finish(false, signal.aborted ? 'command timed out (killed)' : describeFailure('command failed:', error));
  });
  child.once('exit', (code, exitSignal) => {
    if (code === null) return finish(false, `command killed by ${exitSignal}`);
    if (code === 0) return finish(true, 'exit 0');
    if (code >= 2 && spec.dynamicWeight) return finish(true, `exit ${code}: weight ${code - 2}`, code - 2);
    return finish(false, `exit ${code}`);
  });
});
