// Check timing: each check of each destination runs every `interval` seconds, the first at a
// random offset within the interval so that checks spread out. Starts are planned on a fixed
// grid (start + n × interval), so a slow event loop shows up as lateness rather than drift.
// Timers fire at the end of the SLOT_MS slot their start falls in: checks due in the same slot
// start in one wake-up of the event loop, and their connections complete together, so
// thousands of checks a second cost a hundred timer wake-ups, not thousands (lateness, which
// counts from the planned start, includes the wait for the slot's end).
import type { ResolvedCheck } from './config';
import type { CheckResult, CheckTarget } from './checks/index';

/** Timer granularity (ms): a check starts at most this much after it is due on an idle loop. */
export const SLOT_MS = 10;

const slotEnd = (due: number): number => Math.ceil(due / SLOT_MS) * SLOT_MS;

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
        this.#timers[index] = setTimeout(fire, slotEnd(due) - Date.now());
        void run(check, targets[index]!, this.#stop.signal).then((result) => {
          if (!this.#stop.signal.aborted) onResult({ index, result, lateness, at: Date.now() });
        });
      };
      this.#timers[index] = setTimeout(fire, Math.max(0, slotEnd(due) - Date.now()));
    });
  }

  /** Stops the timers and aborts attempts in flight (their outcomes are dropped). */
  stop(): void {
    this.#stop.abort();
    for (const timer of this.#timers) if (timer !== undefined) clearTimeout(timer);
  }
}
