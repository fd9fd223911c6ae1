// Check timing: each check of each destination runs every `interval` seconds, the first at a
// random offset within the interval so that checks spread out. Starts are planned on a fixed
// grid (start + n × interval), so a slow event loop shows up as lateness rather than drift.
import type { ResolvedCheck } from './config';
import type { CheckResult, CheckTarget } from './checks/index';

export type RunCheck = (check: ResolvedCheck, target: CheckTarget, stop: AbortSignal) => Promise<CheckResult>;

export interface ScheduledResult {
  index: number;
  result: CheckResult;
  /** Milliseconds the attempt started after it was due. */
  lateness: number;
  /** Date.now() when the outcome was known. */
  at: number;
}

/** The repeating checks of one destination. */
export class CheckSchedule {
  readonly #timers: Array<ReturnType<typeof setTimeout> | undefined> = [];
  readonly #stop = new AbortController();

  /**
   * Starts every check. `onResult` gets each outcome; `random` returns [0, 1) (injectable for
   * tests); `firstDelay` overrides the first check's offset (milliseconds).
   */
  constructor(
    checks: readonly ResolvedCheck[], targets: readonly CheckTarget[], run: RunCheck,
    onResult: (outcome: ScheduledResult) => void,
    options: { random?: () => number; firstDelay?: number } = {},
  ) {
    const random = options.random ?? Math.random;
    checks.forEach((check, index) => {
      const intervalMs = check.interval * 1000;
      let due = Date.now() + (options.firstDelay ?? random() * intervalMs);
      const fire = (): void => {
        if (this.#stop.signal.aborted) return;
        const started = Date.now();
        const lateness = Math.max(0, started - due);
        // The next start stays on the grid; an attempt always ends (timeout < interval) before it.
        do due += intervalMs; while (due <= started);
        this.#timers[index] = setTimeout(fire, due - Date.now());
        void run(check, targets[index]!, this.#stop.signal).then((result) => {
          if (!this.#stop.signal.aborted) onResult({ index, result, lateness, at: Date.now() });
        });
      };
      this.#timers[index] = setTimeout(fire, Math.max(0, due - Date.now()));
    });
  }

  /** Stops the timers and aborts attempts in flight (their outcomes are dropped). */
  stop(): void {
    this.#stop.abort();
    for (const timer of this.#timers) if (timer !== undefined) clearTimeout(timer);
  }
}
