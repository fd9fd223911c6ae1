// The check types by name, and one timed attempt of any of them.
import { performance } from 'node:perf_hooks';

import type { CheckSpec, CheckType, ResolvedCheck } from '../config';
import { runDnsCheck } from './dns';
import { runExecCheck } from './exec';
import { plainHttpProbe, runHttpCheck } from './http';
import { runNoneCheck } from './none';
import { activeProbeTransport, type CompletionView, type NativeProbe, type ProbeTransport } from './probe-transport';
import { runTcpCheck, tcpProbe } from './tcp';
import { errnoCode } from './probe-transport';
import { localFailure, type CheckOutcome, type CheckRunner, type CheckTarget } from './types';
import { runUdpCheck } from './udp';

export type { CheckOutcome, CheckTarget } from './types';

const RUNNERS: { [T in CheckType]: CheckRunner<Extract<CheckSpec, { type: T }>> } = {
  tcp: runTcpCheck,
  http: runHttpCheck,
  https: runHttpCheck,
  udp: runUdpCheck,
  dns: runDnsCheck,
  exec: runExecCheck,
  none: runNoneCheck,
};

/** The outcome of one attempt with how long it took. */
export interface CheckResult extends CheckOutcome {
  /** Milliseconds from start to outcome. */
  latency: number;
}

/** The abort reason of every check (a shared one: `abort()` without one builds a DOMException). */
const TIMED_OUT = Object.freeze(new Error('check timed out'));
const STOPPED = Object.freeze(new Error('check stopped'));

/**
 * One attempt of `check` against `target`, aborted after `check.timeout` seconds (or when
 * `stop` aborts). Never rejects: an exception inside a check is a failed attempt.
 *
 * Plain tcp and http checks go to the native probe transport while one is held (a running
 * director holds it): its thread makes the connection and enforces the timeout, so neither
 * depends on this event loop's timeliness; `stop` does not cut such a probe short (it ends at
 * its timeout at the latest).
 *
 * An attempt that fails for a reason of this host (EMFILE, ENFILE, ENOBUFS, ENOMEM; for a
 * probe, no socket slot free within its timeout) has `notRun` set: it is no evidence about
 * the server, and the health state ignores it.
 *
 * The timeout aborts after the event loop's next poll for I/O, not in the timer callback:
 * when the loop itself ran late (a busy or starved process), a reply that already arrived is
 * read first, so the verdict is about the server, not about our own lateness.
 */
export function runCheck(check: ResolvedCheck, target: CheckTarget, stop?: AbortSignal): Promise<CheckResult> {
  const native = nativeCheck(check, target);
  if (!native) return runNodeCheck(check, target, stop);
  return new Promise((resolve) => {
    const started = performance.now();
    native.transport.start(native.probe.prepared, {
      probeDone: (completion) => resolve(probeResult(native.probe, completion)),
      probeFailed: (error) => resolve(probeFailure(error, started)),
    });
  });
}

/**
 * The check as a probe of the held native transport, when there is one and the check's type,
 * target and limits allow it (else it runs on Node's sockets: runCheck).
 */
export function nativeCheck(check: ResolvedCheck, target: CheckTarget): { transport: ProbeTransport; probe: NativeProbe } | undefined {
  const transport = activeProbeTransport();
  if (!transport) return undefined;
  const probe = nativeProbe(check, target);
  return probe ? { transport, probe } : undefined;
}

/**
 * A native probe's result: the check's verdict, or notRun when the probe failed for this host's
 * reasons. Never throws: an exception while judging is a failed attempt, as on Node's sockets.
 */
export function probeResult(probe: NativeProbe, completion: CompletionView): CheckResult {
  const outcome = completion.outcome;
  if (outcome === 'notStarted') return notRunResult('no socket slot free within the timeout', completion.latencyMs);
  if (outcome === 'error' && completion.phase === 'connect') {
    const local = localFailure(errnoCode(completion.errno));
    if (local) return notRunResult(local, completion.latencyMs);
  }
  try {
    return probe.judge(completion);
  } catch (error) {
    return { ok: false, message: `check error: ${(error as Error)?.message ?? String(error)}`, latency: completion.latencyMs };
  }
}

function notRunResult(notRun: string, latency: number): CheckResult {
  return { ok: false, message: `not run: ${notRun}`, notRun, latency };
}

/** The result of a probe the transport dropped (it closed under it). */
export function probeFailure(error: unknown, started: number): CheckResult {
  return { ok: false, message: `check error: ${(error as Error)?.message ?? String(error)}`, latency: performance.now() - started };
}

/** The check as a probe of the native transport, when its type, target and limits allow one. */
export function nativeProbe(check: ResolvedCheck, target: CheckTarget): NativeProbe | undefined {
  try {
    if (check.type === 'tcp') return tcpProbe(check, target);
    if (check.type === 'http') return plainHttpProbe(check, target);
  } catch {
    // Outside the transport's limits (a timeout over a day): Node's sockets take it.
  }
  return undefined;
}

/** One attempt in this process's event loop (every type; tcp and http when no transport is held). */
async function runNodeCheck(check: ResolvedCheck, target: CheckTarget, stop?: AbortSignal): Promise<CheckResult> {
  const started = performance.now();
  const controller = new AbortController();
  const timer = setTimeout(() => setImmediate(() => controller.abort(TIMED_OUT)), check.timeout * 1000);
  const onStop = (): void => controller.abort(STOPPED);
  stop?.addEventListener('abort', onStop, { once: true });
  try {
    const runner = RUNNERS[check.type] as CheckRunner<CheckSpec>;
    const outcome = await runner(check, target, controller.signal);
    const latency = performance.now() - started;
    if (controller.signal.aborted && outcome.ok) {
      return { ok: false, message: `timed out after ${Math.round(check.timeout * 1000)} ms`, latency };
    }
    const notRun = outcome.ok ? undefined : localFailure(outcome.message);
    return notRun ? { ...outcome, notRun, latency } : { ...outcome, latency };
  } catch (error) {
    const message = `check error: ${(error as Error)?.message ?? String(error)}`;
    const notRun = localFailure(String((error as NodeJS.ErrnoException)?.code ?? ''));
    return { ok: false, message, ...(notRun ? { notRun } : {}), latency: performance.now() - started };
  } finally {
    clearTimeout(timer);
    stop?.removeEventListener('abort', onStop);
  }
}
