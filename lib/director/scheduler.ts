// Check timing: each check of each destination runs every `interval` seconds, the first at a
// random offset within the interval so that checks spread out. Starts are planned on a fixed
// grid (start + n × interval), so a slow event loop shows up as lateness rather than drift.
// Checks start at the end of the slot their start falls in, all those of a slot from one
// timer: thousands of checks a second cost a hundred timers and wake-ups, not thousands, and
// the native probe transport gets each slot's probes in one call (lateness, which counts from
// the planned start, includes the wait for the slot's end). A slot is a 250th of the check's
// interval, rounded down to 10 ms, from 10 to 40 ms: every 1 s a check waits up to 10 ms for
// its slot, every 10 s up to 40 ms (0.4 % of the interval either way), and slow checks of
// many destinations wake the process a quarter as often. Slot ends are multiples of their
// width, so checks of different intervals that end together share one timer.
//
// A check of a destination is one ScheduledCheck for as long as it is scheduled: it goes from
// slot to slot, and it is itself the client of its native probes, so an attempt that passes
// allocates nothing here (no closure, promise or record per attempt).
import type { ResolvedCheck } from './config';
import { nativeProbe, probeFailure, probeResult, runCheck, type CheckResult, type CheckTarget } from './checks/index';
import { activeProbeTransport, type CompletionView, type NativeProbe, type ProbeClient } from './checks/probe-transport';

/** The narrowest and widest slots (ms): a check starts at most its slot's width after it is due on an idle loop. */
export const MIN_SLOT_MS = 10;
export const MAX_SLOT_MS = 40;

/** The slot width (ms) of a check repeated every `intervalMs`. */
export function slotWidth(intervalMs: number): number {
  return Math.min(MAX_SLOT_MS, Math.max(MIN_SLOT_MS, Math.floor(intervalMs / 250 / MIN_SLOT_MS) * MIN_SLOT_MS));
}

const slotEnd = (due: number, width: number): number => Math.ceil(due / width) * width;

interface Slot {
  timer: ReturnType<typeof setTimeout>;
  checks: ScheduledCheck[];
}

/** The checks waiting for each slot's end (Date.now() milliseconds), with that slot's timer. */
const slots = new Map<number, Slot>();

function startAtSlotEnd(end: number, check: ScheduledCheck): void {
  let slot = slots.get(end);
  if (!slot) {
    const checks: ScheduledCheck[] = [];
    slot = { checks, timer: setTimeout(fireSlot, Math.max(0, end - Date.now()), end, checks) };
    slots.set(end, slot);
  }
  slot.checks.push(check);
}

function fireSlot(end: number, checks: ScheduledCheck[]): void {
  slots.delete(end);
  const now = Date.now();
  const fireAll = (): void => {
    for (let i = 0; i < checks.length; i++) checks[i]!.fire(now);
  };
  const transport = activeProbeTransport();
  if (transport) transport.batch(fireAll);
  else fireAll();
}

function cancelAtSlotEnd(end: number, check: ScheduledCheck): void {
  const slot = slots.get(end);
  const at = slot ? slot.checks.indexOf(check) : -1;
  if (at < 0) return;
  slot!.checks.splice(at, 1);
  if (slot!.checks.length > 0) return;
  clearTimeout(slot!.timer);
  slots.delete(end);
}

export type RunCheck = (check: ResolvedCheck, target: CheckTarget, stop: AbortSignal) => Promise<CheckResult>;

/**
 * Each outcome of a schedule: the check's index, the attempt's result, how many milliseconds
 * the attempt started after it was due, and Date.now() when the outcome was known.
 */
export type OnResult = (index: number, result: CheckResult, lateness: number, at: number) => void;

/** One check of one destination, for as long as its schedule runs. */
class ScheduledCheck implements ProbeClient {
  /** When the next attempt is due (Date.now() ms), and the end of the slot it waits in. */
  due: number;
  end: number;
  /** The check as a native probe; null until first looked up. */
  #probe: NativeProbe | undefined | null = null;
  readonly #slotMs: number;

  constructor(
    readonly schedule: CheckSchedule, readonly index: number, readonly check: ResolvedCheck, readonly target: CheckTarget,
    readonly intervalMs: number, firstDue: number,
  ) {
    this.#slotMs = slotWidth(intervalMs);
    this.due = firstDue;
    this.end = slotEnd(firstDue, this.#slotMs);
    startAtSlotEnd(this.end, this);
  }

  fire(now: number): void {
    const schedule = this.schedule;
    if (schedule.stopped) return;
    const lateness = now > this.due ? now - this.due : 0;
    // The next start stays on the grid; an attempt always ends (timeout < interval) before it.
    do this.due += this.intervalMs; while (this.due <= now);
    this.end = slotEnd(this.due, this.#slotMs);
    startAtSlotEnd(this.end, this);
    if (schedule.run) {
      void schedule.run(this.check, this.target, schedule.signal).then((result) => this.#deliver(result, lateness, Date.now()));
      return;
    }
    const transport = activeProbeTransport();
    if (transport) {
      if (this.#probe === null) this.#probe = nativeProbe(this.check, this.target);
      if (this.#probe) {
        // The tag brings this attempt's lateness back with its completion (attempts of one check can overlap on a late loop).
        transport.start(this.#probe.prepared, this, lateness);
        return;
      }
    }
    void runCheck(this.check, this.target, schedule.signal).then((result) => this.#deliver(result, lateness, Date.now()));
  }

  probeDone(completion: CompletionView): void {
    if (this.schedule.stopped) return;
    this.#deliver(probeResult(this.#probe!, completion), completion.tag, completion.receivedAt);
  }

  probeFailed(error: Error, lateness: number): void {
    if (this.schedule.stopped) return;
    this.#deliver(probeFailure(error, performance.now()), lateness, Date.now());
  }

  #deliver(result: CheckResult, lateness: number, at: number): void {
    if (!this.schedule.stopped) this.schedule.onResult(this.index, result, lateness, at);
  }

  cancel(): void {
    cancelAtSlotEnd(this.end, this);
  }
}

/** The repeating checks of one destination. */
export class CheckSchedule {
  readonly #checks: ScheduledCheck[];
  readonly #stop = new AbortController();
  stopped = false;

  /**
   * Starts every check. `onResult` gets each outcome; `run` replaces how an attempt is made
   * (tests; by default a native probe where one can be made, else runCheck); `random` returns
   * [0, 1) (injectable for tests); `firstDelay` overrides the first check's offset (milliseconds).
   */
  constructor(
    checks: readonly ResolvedCheck[], targets: readonly CheckTarget[], readonly run: RunCheck | undefined,
    readonly onResult: OnResult,
    options: { random?: () => number; firstDelay?: number } = {},
  ) {
    const random = options.random ?? Math.random;
    this.#checks = checks.map((check, index) => {
      const intervalMs = check.interval * 1000;
      const firstDue = Date.now() + (options.firstDelay ?? random() * intervalMs);
      return new ScheduledCheck(this, index, check, targets[index]!, intervalMs, firstDue);
    });
  }

  /** Aborts attempts in flight on Node's sockets (native probes end at their timeout). */
  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  /** Stops the timers and aborts attempts in flight (their outcomes are dropped). */
  stop(): void {
    this.stopped = true;
    this.#stop.abort();
    for (const check of this.#checks) check.cancel();
  }
}
