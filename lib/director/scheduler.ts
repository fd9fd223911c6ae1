// Check timing: each check of each destination runs every `interval` seconds, the first at a
// random offset within the interval so that checks spread out. Starts are planned on a fixed
// grid (start + n × interval), so a slow event loop shows up as lateness rather than drift.
// Checks start at the end of the SLOT_MS slot their start falls in, all those of a slot from
// one timer: thousands of checks a second cost a hundred timers and wake-ups, not thousands,
// and the native probe transport gets each slot's probes in one call (lateness, which counts
// from the planned start, includes the wait for the slot's end).
import type { ResolvedCheck } from './config';
import type { CheckResult, CheckTarget } from './checks/index';

/** Timer granularity (ms): a check starts at most this much after it is due on an idle loop. */
export const SLOT_MS = 10;

const slotEnd = (due: number): number => Math.ceil(due / SLOT_MS) * SLOT_MS;

/** The starts waiting for each slot's end (Date.now() milliseconds), with that slot's timer. */
const slots = new Map<number, { timer: ReturnType<typeof setTimeout>; starts: Set<() => void> }>();

function startAtSlotEnd(end: number, start: () => void): void {
  let slot = slots.get(end);
  if (!slot) {
    const starts = new Set<() => void>();
    slot = { starts, timer: setTimeout(() => {
      slots.delete(end);
      for (const fire of starts) fire();
    }, Math.max(0, end - Date.now())) };
    slots.set(end, slot);
  }
  slot.starts.add(start);
}

function cancelAtSlotEnd(end: number, start: () => void): void {
  const slot = slots.get(end);
  if (!slot?.starts.delete(start) || slot.starts.size > 0) return;
  clearTimeout(slot.timer);
  slots.delete(end);
}

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
  /** Each check's next start: its slot's end and the start function waiting there. */
  readonly #next: Array<{ end: number; start: () => void }> = [];
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
        next.end = slotEnd(due);
        startAtSlotEnd(next.end, fire);
        void run(check, targets[index]!, this.#stop.signal).then((result) => {
          if (!this.#stop.signal.aborted) onResult({ index, result, lateness, at: Date.now() });
        });
      };
      const next = { end: slotEnd(due), start: fire };
      this.#next[index] = next;
      startAtSlotEnd(next.end, fire);
    });
  }

  /** Stops the timers and aborts attempts in flight (their outcomes are dropped). */
  stop(): void {
    this.#stop.abort();
    for (const { end, start } of this.#next) cancelAtSlotEnd(end, start);
  }
}
