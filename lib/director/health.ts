// The health state machine, without timers: each check of a destination counts consecutive
// successes and failures against its rise and fall; a destination is up only when every check
// is up.
import type { CheckResult } from './checks/index';

/**
 * - `up`: passing; `fall` failures in a row take it down.
 * - `down`: failing; `rise` successes in a row bring it up.
 * - `pending`: not checked yet (a destination that was not serving when the director started
 *   or that was just added); its first result decides, up or down.
 */
export type HealthState = 'up' | 'down' | 'pending';

/** One check's state. */
export class CheckHealth {
  state: HealthState;
  /** Consecutive successes (reset by a failure). */
  successes = 0;
  /** Consecutive failures (reset by a success). */
  failures = 0;
  /** The last attempt (one object, updated in place by every attempt). */
  last: (CheckResult & { at: number }) | undefined;
  /** The weight an exec check with dynamicWeight last set (exit code − 2); undefined after exit 0. */
  weight: number | undefined;

  constructor(readonly rise: number, readonly fall: number, initial: HealthState) {
    this.state = initial;
  }

  /** Records an attempt; returns true when the state changed. An attempt not run (`notRun`) counts for nothing. */
  record(result: CheckResult, at: number): boolean {
    const last = this.last;
    if (last === undefined) {
      this.last = { ok: result.ok, message: result.message, latency: result.latency, at, weight: result.weight, notRun: result.notRun };
    } else {
      last.ok = result.ok;
      last.message = result.message;
      last.latency = result.latency;
      last.at = at;
      last.weight = result.weight;
      last.notRun = result.notRun;
    }
    if (result.notRun !== undefined) return false;
    const before = this.state;
    if (result.ok) {
      this.weight = result.weight;
      this.successes++;
      this.failures = 0;
      if (this.state === 'pending' || (this.state === 'down' && this.successes >= this.rise)) this.state = 'up';
    } else {
      this.failures++;
      this.successes = 0;
      if (this.state === 'pending' || (this.state === 'up' && this.failures >= this.fall)) this.state = 'down';
    }
    return this.state !== before;
  }
}

/** A destination's checks together. */
export class DestinationHealth {
  readonly checks: CheckHealth[];
  constructor(checks: ReadonlyArray<{ rise: number; fall: number }>, initial: HealthState) {
    this.checks = checks.map((c) => new CheckHealth(c.rise, c.fall, initial));
  }

  /** The weight set by an exec check with dynamicWeight (exit code − 2), if one did. */
  get dynamicWeight(): number | undefined {
    for (const check of this.checks) if (check.weight !== undefined) return check.weight;
    return undefined;
  }

  /** down if any check is down, else pending if any is pending, else up. */
  get state(): HealthState {
    let pending = false;
    for (const check of this.checks) {
      if (check.state === 'down') return 'down';
      if (check.state === 'pending') pending = true;
    }
    return pending ? 'pending' : 'up';
  }

  /** Records one check's attempt; returns the destination's state before and after. */
  record(index: number, result: CheckResult, at: number): { before: HealthState; after: HealthState } {
    const before = this.state;
    this.checks[index]!.record(result, at);
    return { before, after: this.state };
  }
}
