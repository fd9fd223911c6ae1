// none: no check. 'up' always passes, 'down' always fails (ldirectord's checktype on / off).
import type { NoneCheck } from '../config';
import type { CheckRunner } from './types';

export const runNoneCheck: CheckRunner<NoneCheck> = (spec) =>
  Promise.resolve(spec.result === 'down' ? { ok: false, message: 'forced down' } : { ok: true, message: 'no check' });
