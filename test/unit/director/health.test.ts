// The health state machine and the check schedule, driven by fake timers and scripted results.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import type { CheckResult, CheckTarget } from '../../../lib/director/checks/index';
import { checkCheckSpec, type ResolvedCheck } from '../../../lib/director/config';
import { CheckHealth, DestinationHealth } from '../../../lib/director/health';
import { CheckSchedule, slotWidth, type OnResult } from '../../../lib/director/scheduler';

const pass: CheckResult = { ok: true, message: 'ok', latency: 1 };
const fail: CheckResult = { ok: false, message: 'refused', latency: 1 };
const target: CheckTarget = {
  address: '127.0.0.1', port: 80, service: { protocol: 'tcp', address: '10.0.0.1', port: 80 }, destination: { address: '127.0.0.1', port: 80 },
};

describe('CheckHealth', () => {
  it('goes down after exactly `fall` consecutive failures and back up after `rise` successes', () => {
    const h = new CheckHealth(3, 2, 'up');
    expect(h.record(fail, 0)).toBe(false);
    expect(h.state).toBe('up');
    expect(h.record(fail, 1)).toBe(true);
    expect(h.state).toBe('down');
    expect(h.record(pass, 2)).toBe(false);
    expect(h.record(pass, 3)).toBe(false);
    expect(h.state).toBe('down');
    expect(h.record(pass, 4)).toBe(true);
    expect(h.state).toBe('up');
  });

  it('does not count an attempt that was not run (a local failure such as EMFILE) either way', () => {
    const notRun: CheckResult = { ok: false, message: 'not run: EMFILE', notRun: 'EMFILE', latency: 0 };
    const h = new CheckHealth(2, 2, 'up');
    expect(h.record(fail, 0)).toBe(false);
    for (let i = 1; i < 10; i++) expect(h.record(notRun, i)).toBe(false);
    expect(h).toMatchObject({ state: 'up', failures: 1, successes: 0 });
    expect(h.last).toMatchObject({ notRun: 'EMFILE', at: 9 });
    expect(h.record(fail, 10)).toBe(true);
    expect(h.state).toBe('down');
    expect(h.record(pass, 11)).toBe(false);
    expect(h.record(notRun, 12)).toBe(false);
    expect(h.record(pass, 13)).toBe(true);
    expect(h.state).toBe('up');
    const pending = new CheckHealth(1, 1, 'pending');
    expect(pending.record(notRun, 0)).toBe(false);
    expect(pending.state).toBe('pending');
  });

  it('resets the failure count on a success, so alternating results never change the state', () => {
    const up = new CheckHealth(2, 2, 'up');
    const down = new CheckHealth(2, 2, 'down');
    for (let i = 0; i < 20; i++) {
      const result = i % 2 === 0 ? fail : pass;
      expect(up.record(result, i)).toBe(false);
      expect(down.record(i % 2 === 0 ? pass : fail, i)).toBe(false);
    }
    expect(up.state).toBe('up');
    expect(down.state).toBe('down');
  });

  it('lets the first result decide for a pending check', () => {
    const a = new CheckHealth(5, 5, 'pending');
    a.record(pass, 0);
    expect(a.state).toBe('up');
    const b = new CheckHealth(5, 5, 'pending');
    b.record(fail, 0);
    expect(b.state).toBe('down');
    expect(b.last).toMatchObject({ ok: false, message: 'refused', at: 0 });
  });
});

describe('DestinationHealth', () => {
  it('is up only when every check is up, pending while any is unchecked', () => {
    const h = new DestinationHealth([{ rise: 1, fall: 1 }, { rise: 1, fall: 1 }], 'pending');
    expect(h.state).toBe('pending');
    expect(h.record(0, pass, 0)).toEqual({ before: 'pending', after: 'pending' });
    expect(h.record(1, pass, 0)).toEqual({ before: 'pending', after: 'up' });
    expect(h.record(1, fail, 1)).toEqual({ before: 'up', after: 'down' });
    expect(h.record(0, pass, 2)).toEqual({ before: 'down', after: 'down' });
    expect(h.record(1, pass, 2)).toEqual({ before: 'down', after: 'up' });
  });

  it('takes the dynamic weight of a passing exec result and drops it on a plain pass', () => {
    const h = new DestinationHealth([{ rise: 1, fall: 1 }], 'up');
    h.record(0, { ...pass, weight: 7 }, 0);
    expect(h.dynamicWeight).toBe(7);
    h.record(0, pass, 1);
    expect(h.dynamicWeight).toBeUndefined();
  });
});

interface ScheduledResult {
  index: number;
  result: CheckResult;
  lateness: number;
  at: number;
}
const collect = (results: ScheduledResult[]): OnResult => (index, result, lateness, at) => {
  results.push({ index, result, lateness, at });
};

describe('CheckSchedule (fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const check = (fields: Record<string, unknown> = {}): ResolvedCheck => checkCheckSpec({ type: 'tcp', interval: 1, timeout: 0.5, ...fields }, 'check');

  it('runs the first check at a random offset within the interval, then every interval on a fixed grid', async () => {
    const starts: number[] = [];
    const results: ScheduledResult[] = [];
    const schedule = new CheckSchedule([check()], [target], async () => {
      starts.push(Date.now());
      return pass;
    }, collect(results), { random: () => 0.25 });
    await vi.advanceTimersByTimeAsync(249);
    expect(starts).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(starts).toEqual([1_000_250]);
    await vi.advanceTimersByTimeAsync(3000);
    expect(starts).toEqual([1_000_250, 1_001_250, 1_002_250, 1_003_250]);
    expect(results.map((r) => r.lateness)).toEqual([0, 0, 0, 0]);
    schedule.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(starts).toHaveLength(4);
  });

  it('starts the checks due within one timer slot together, at the end of the slot', async () => {
    const starts: number[] = [];
    const results: ScheduledResult[] = [];
    const schedules = [0.2501, 0.2549, 0.2599, 0.2601].map((offset) => new CheckSchedule([check()], [target], async () => {
      starts.push(Date.now());
      return pass;
    }, collect(results), { random: () => offset }));
    await vi.advanceTimersByTimeAsync(1000);
    for (const s of schedules) s.stop();
    // Due at 250.1, 254.9 and 259.9 ms: all at the end of the 250–260 slot; 260.1 in the next.
    expect(starts.map((t) => t - 1_000_000)).toEqual([260, 260, 260, 270]);
    expect(results.map((r) => Math.round(r.lateness * 10) / 10)).toEqual([9.9, 5.1, 0.1, 9.9]);
  });

  it('gives a check a slot of a 250th of its interval, 10 to 40 ms, and shares a timer with checks whose slots end together', async () => {
    expect([1, 2.5, 3, 5, 7.5, 10, 60].map((interval) => slotWidth(interval * 1000))).toEqual([10, 10, 10, 20, 30, 40, 40]);
    const starts: Array<[number, number]> = [];
    const results: ScheduledResult[] = [];
    // Every 10 s (40 ms slots): due at 2,481 and 2,519 ms, both start at 2,520, due at 2,521 at
    // 2,560; every 1 s (10 ms slots) due at 511, start at 520, so at 2,520 the 1 s check's slot
    // ends with the 10 s ones'.
    const schedules = [[10, 0.2481], [10, 0.2519], [10, 0.2521], [1, 0.511]].map(([interval, offset]) => new CheckSchedule(
      [check({ interval, timeout: 0.5 })], [target], async () => {
        starts.push([interval!, Date.now() - 1_000_000]);
        return pass;
      }, collect(results), { random: () => offset! }));
    await vi.advanceTimersByTimeAsync(1600);
    // Waiting now: the 2,520 slot (two 10 s checks and the 1 s one, one timer) and the 2,560 one.
    expect(vi.getTimerCount()).toBe(2);
    await vi.advanceTimersByTimeAsync(1000);
    for (const s of schedules) s.stop();
    expect(starts.filter(([interval]) => interval === 10).map(([, t]) => t)).toEqual([2520, 2520, 2560]);
    expect(starts.filter(([interval]) => interval === 1).map(([, t]) => t)).toEqual([520, 1520, 2520]);
    expect(Math.max(...results.map((r) => r.lateness))).toBeLessThan(40);
  });

  it('spreads the first checks of many destinations across the interval', async () => {
    const firsts: number[] = [];
    const schedules = Array.from({ length: 200 }, () => {
      let seen = false;
      return new CheckSchedule([check({ interval: 10, timeout: 1 })], [target], async () => {
        if (!seen) firsts.push(Date.now() - 1_000_000);
        seen = true;
        return pass;
      }, () => {});
    });
    await vi.advanceTimersByTimeAsync(10_000);
    for (const s of schedules) s.stop();
    expect(firsts).toHaveLength(200);
    // Every tenth of the interval gets some of them: the offset is spread, not fixed.
    // (A check due in the last timer slot starts at its end, exactly 10 s.)
    const buckets = new Set(firsts.map((t) => Math.min(9, Math.floor(t / 1000))));
    expect(buckets.size).toBe(10);
  });

  it('reports how late a check started when the event loop was blocked, and stays on the grid', async () => {
    const results: ScheduledResult[] = [];
    const starts: number[] = [];
    const schedule = new CheckSchedule([check()], [target], async () => {
      starts.push(Date.now());
      return pass;
    }, collect(results), { firstDelay: 0 });
    await vi.advanceTimersByTimeAsync(0);
    // The wall clock jumps 300 ms ahead of the timers: the next timer fires 300 ms late.
    vi.setSystemTime(Date.now() + 300);
    await vi.advanceTimersByTimeAsync(1000);
    await vi.advanceTimersByTimeAsync(700);
    schedule.stop();
    expect(results[1]!.lateness).toBe(300);
    // The next start after the late one is back on the grid (1_002_000), not 1_002_300.
    expect(starts).toEqual([1_000_000, 1_001_300, 1_002_000]);
  });

  it('drives a destination down after fall failures and up after rise successes, never on alternation', async () => {
    const script = [pass, fail, pass, fail, pass, fail, fail, fail, pass, pass, pass];
    let i = 0;
    const health = new DestinationHealth([{ rise: 3, fall: 2 }], 'up');
    const transitions: string[] = [];
    const schedule = new CheckSchedule([check({ rise: 3, fall: 2 })], [target], async () => script[i++] ?? pass, (index, result, _lateness, at) => {
      const { before, after } = health.record(index, result, at);
      if (before !== after) transitions.push(`${i}:${after}`);
    }, { firstDelay: 0 });
    await vi.advanceTimersByTimeAsync(script.length * 1000);
    schedule.stop();
    // Failures at attempts 6 and 7 take it down at 7; successes 9, 10, 11 bring it up at 11.
    expect(transitions).toEqual(['7:down', '11:up']);
  });

  it('aborts an attempt in flight on stop and drops its outcome', async () => {
    const results: ScheduledResult[] = [];
    let aborted = false;
    const schedule = new CheckSchedule([check()], [target], (_c, _t, signal) => new Promise((resolve) => {
      signal.addEventListener('abort', () => { aborted = true; resolve(fail); });
    }), collect(results), { firstDelay: 0 });
    await vi.advanceTimersByTimeAsync(10);
    schedule.stop();
    await vi.advanceTimersByTimeAsync(10);
    expect(aborted).toBe(true);
    expect(results).toEqual([]);
  });
});
