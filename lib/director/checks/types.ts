// What every check type implements: one attempt against one target, bounded by an AbortSignal
// (the scheduler aborts it at the check's timeout). A failing server is data, never a throw.
import type { ServiceKey } from '../../types';

/** Where a check goes, and what it is for (exec checks see it in their environment). */
export interface CheckTarget {
  /** The address and port to check (the check's own, else the destination's). */
  address: string;
  port: number;
  /** The source address to bind, if any. */
  bindAddress?: string;
  service: ServiceKey;
  destination: { address: string; port: number };
}

/** One attempt's outcome. `weight` is set by an exec check with dynamicWeight (exit code − 2). */
export interface CheckOutcome {
  ok: boolean;
  /** Why it passed or failed, for people: 'HTTP 503', 'connect ECONNREFUSED', 'timed out after 2000 ms'. */
  message: string;
  weight?: number;
  /**
   * Set when the attempt could not be made for a reason of this host (no descriptor, no
   * buffer memory, no socket slot free): it says nothing about the server, and the health
   * state does not count it. The value is the reason ('EMFILE').
   */
  notRun?: string;
}

/** errno codes of a failure that is this host's, not the server's: out of descriptors or memory. */
const LOCAL_ERRNO = /\b(EMFILE|ENFILE|ENOBUFS|ENOMEM)$/;

/** The local errno code ending a failure message ('connect EMFILE'), if it ends with one. */
export function localFailure(message: string): string | undefined {
  return LOCAL_ERRNO.exec(message)?.[1];
}

/** Runs one attempt; resolves (never rejects) with the outcome, and stops work when `signal` aborts. */
export type CheckRunner<Spec> = (spec: Spec, target: CheckTarget, signal: AbortSignal) => Promise<CheckOutcome>;

/** A failure message from an error: its code when it has one ('ECONNREFUSED'), else its message. */
export function describeFailure(prefix: string, error: unknown): string {
  const e = error as { code?: string; message?: string };
  return `${prefix} ${e?.code ?? e?.message ?? String(error)}`;
}
