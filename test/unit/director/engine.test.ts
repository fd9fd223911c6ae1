// The engine's decisions, on a simulated table (a unit test of our code, not evidence about
// IPVS: the kernel suite in test/kernel/director/ is that): reconcile's real plan is computed
// against an in-memory table, checks are scripted, and time is fake.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { Ipvs } from '../../../lib/ipvs';
import { IpvsError } from '../../../lib/errors';
import { buildPlan, checkPlanInput } from '../../../lib/reconcile/plan';
import { serviceKeyText, type TableService } from '../../../lib/reconcile/settings';
import type { PlanOperation } from '../../../lib/reconcile/types';
import { Director, replaceCheckRunner } from '../../../lib/director/director';
import type { DirectorEvent } from '../../../lib/director/events';

/** An in-memory table behind the Ipvs methods the director uses. */
class SimulatedKernel {
  table: TableService[] = [];
  /** Open connections per destination id, for drains. */
  connections = new Map<string, number>();
  /** Operations that the "kernel" refuses with this code while set. */
  refuse: { op: PlanOperation['op']; code: string } | undefined;

  handle(): Ipvs {
    const ipvs = Object.create(Ipvs.prototype) as Ipvs;
    Object.assign(ipvs, {
      netns: undefined,
      listTable: async () => structuredClone(this.table),
      apply: async (desired: unknown, options: { scope?: unknown }) => {
        const input = checkPlanInput(desired, options.scope, 'delete');
        const plan = buildPlan(input, this.table);
        const results = plan.operations.map((operation) => {
          if (this.refuse?.op === operation.op) {
            return { ok: false, unknown: false, error: new IpvsError({ errno: 22, operation: operation.op }), operation };
          }
          return { ok: true, operation };
        });
        if (!results.some((r) => !r.ok)) {
          const owned = new Set(input.desired.keys);
          this.table = [...this.table.filter((s) => !owned.has(serviceKeyText(s))), ...structuredClone(input.desired.services)];
        }
        return { plan, replanned: false, results, drift: [], ok: results.every((r) => r.ok) };
      },
      connectionTable: async () => {
        const entries = [...this.connections].flatMap(([id, n]) => Array.from({ length: n }, () => id));
        const addresses = [...new Set(entries.map((id) => id.split(':')[0]!))];
        return {
          length: entries.length,
          columns: {
            destinationAddress: Uint32Array.from(entries, (id) => addresses.indexOf(id.split(':')[0]!)),
            destinationPort: Uint16Array.from(entries, (id) => Number(id.split(':')[1])),
            state: new Uint16Array(entries.length),
            addresses,
            states: ['ESTABLISHED'],
          },
        };
      },
      close: async () => {},
    });
    return ipvs;
  }

  weights(service = 'tcp 10.0.0.1:80'): Record<string, number> {
    const svc = this.table.find((s) => serviceKeyText(s) === service);
    return Object.fromEntries((svc?.destinations ?? []).map((d) => [d.address, d.weight]));
  }
}

const up = new Map<string, boolean | 'EMFILE'>();
const config = (extra: Record<string, unknown> = {}) => ({
  resyncInterval: 5,
  services: [{
    protocol: 'tcp', address: '10.0.0.1', port: 80,
    checks: [{ type: 'tcp', interval: 1, timeout: 0.5, rise: 2, fall: 2 }],
    sorryServers: [{ address: '10.0.9.9' }],
    destinations: [{ address: '10.0.1.1', weight: 2 }, { address: '10.0.1.2', weight: 2 }],
    ...extra,
  }],
});

async function startDirector(kernel: SimulatedKernel, cfg = config()): Promise<{ director: Director; events: DirectorEvent[] }> {
  const director = new Director(cfg as never, { ipvs: kernel.handle() });
  replaceCheckRunner(director, async (_check, target) => {
    const scripted = up.get(target.address) ?? true;
    if (scripted === 'EMFILE') return { ok: false, message: 'not run: EMFILE', notRun: 'EMFILE', latency: 0 };
    return { ok: scripted, message: 'scripted', latency: 1 };
  });
  const events: DirectorEvent[] = [];
  for (const type of ['up', 'down', 'weight', 'drain-start', 'drained', 'quorum-lost', 'quorum-gained', 'sorry-on', 'sorry-off', 'drift-repaired', 'applied', 'error'] as const) {
    director.on(type, (e) => events.push(e));
  }
  await director.start();
  return { director, events };
}

const types = (events: DirectorEvent[]) => events.map((e) => `${e.type}${'destination' in e && e.destination ? ` ${e.destination}` : ''}`);

describe('Director engine (simulated table, fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'Date', 'performance'] });
    up.clear();
  });
  afterEach(() => vi.useRealTimers());

  it('adds new destinations quiesced, then at their weight after the first passing check', async () => {
    const kernel = new SimulatedKernel();
    const { director, events } = await startDirector(kernel);
    expect(kernel.weights()).toEqual({ '10.0.1.1': 0, '10.0.1.2': 0 });
    await vi.advanceTimersByTimeAsync(1100);
    expect(kernel.weights()).toEqual({ '10.0.1.1': 2, '10.0.1.2': 2 });
    expect(types(events).filter((t) => t.startsWith('up')).sort()).toEqual(['up 10.0.1.1:80', 'up 10.0.1.2:80']);
    await director.stop();
  });

  it('quiesces after fall failures, restores after rise passes, and runs sorry servers below quorum', async () => {
    const kernel = new SimulatedKernel();
    const { director, events } = await startDirector(kernel);
    await vi.advanceTimersByTimeAsync(1100);
    up.set('10.0.1.1', false);
    await vi.advanceTimersByTimeAsync(1000);
    expect(kernel.weights()['10.0.1.1']).toBe(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(kernel.weights()['10.0.1.1']).toBe(0);
    expect(events.filter((e) => e.type === 'weight').at(-1)).toMatchObject({ destination: '10.0.1.1:80', from: 2, to: 0, reason: 'health' });
    up.set('10.0.1.2', false);
    await vi.advanceTimersByTimeAsync(2000);
    expect(kernel.weights()).toEqual({ '10.0.1.1': 0, '10.0.1.2': 0, '10.0.9.9': 1 });
    expect(types(events)).toEqual(expect.arrayContaining(['quorum-lost', 'sorry-on']));
    up.set('10.0.1.2', true);
    await vi.advanceTimersByTimeAsync(2000);
    expect(kernel.weights()).toEqual({ '10.0.1.1': 0, '10.0.1.2': 2 });
    expect(types(events)).toEqual(expect.arrayContaining(['quorum-gained', 'sorry-off']));
    await director.stop();
  });

  it('reports checks not run for a local reason (EMFILE) as errors and never takes a server down for them', async () => {
    const kernel = new SimulatedKernel();
    const { director, events } = await startDirector(kernel);
    await vi.advanceTimersByTimeAsync(1100);
    up.set('10.0.1.1', 'EMFILE');
    await vi.advanceTimersByTimeAsync(5000);
    expect(kernel.weights()['10.0.1.1']).toBe(2);
    expect(director.status().services[0]!.destinations.find((d) => d.address === '10.0.1.1')!.health).toBe('up');
    // One 'error' event a second at most, each counting the attempts it stands for.
    const errors = events.filter((e) => e.type === 'error');
    expect(errors.length).toBeGreaterThanOrEqual(4);
    expect(errors.length).toBeLessThanOrEqual(6);
    expect(errors[0]).toMatchObject({ operation: 'check', service: 'tcp 10.0.0.1:80', destination: '10.0.1.1:80', error: { code: 'EMFILE' } });
    expect(errors.reduce((n, e) => n + ((e as { count?: number }).count ?? 1), 0)).toBeGreaterThanOrEqual(4);
    expect(types(events).filter((t) => t.startsWith('down'))).toEqual([]);
    // Many at once (both destinations, many times within one second) make one event.
    const before = events.filter((e) => e.type === 'error').length;
    up.set('10.0.1.2', 'EMFILE');
    await vi.advanceTimersByTimeAsync(4000);
    const burst = events.filter((e) => e.type === 'error').slice(before);
    // 8 attempts not run (2 destinations, 4 s): 4 or 5 events, that count them all but the last second's.
    expect(burst.length).toBeLessThanOrEqual(5);
    expect(burst.reduce((n, e) => n + ((e as { count?: number }).count ?? 1), 0)).toBeGreaterThanOrEqual(6);
    expect(burst.some((e) => ((e as { count?: number }).count ?? 1) >= 2)).toBe(true);
    up.set('10.0.1.2', true);
    // A real failure after them still needs `fall` (2) of its own.
    up.set('10.0.1.1', false);
    await vi.advanceTimersByTimeAsync(1000);
    expect(kernel.weights()['10.0.1.1']).toBe(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(kernel.weights()['10.0.1.1']).toBe(0);
    await director.stop();
  });

  it('takes over a live table without a change, and reports and repairs drift', async () => {
    const kernel = new SimulatedKernel();
    const first = await startDirector(kernel);
    await vi.advanceTimersByTimeAsync(1100);
    await first.director.stop();
    const before = structuredClone(kernel.table);
    const { director, events } = await startDirector(kernel);
    expect(kernel.table).toEqual(before);
    expect(events).toEqual([]);
    kernel.table[0]!.destinations[1]!.weight = 9;
    await vi.advanceTimersByTimeAsync(5100);
    expect(kernel.weights()['10.0.1.2']).toBe(2);
    expect(events.map((e) => e.type)).toEqual(['drift-repaired']);
    expect(events[0]).toMatchObject({ op: 'editDestination', destination: '10.0.1.2:80', changes: [{ field: 'weight', before: 9, after: 2 }] });
    await director.stop();
  });

  it('drains a destination removed from the configuration until its connections end, and update() keeps health', async () => {
    const kernel = new SimulatedKernel();
    const { director, events } = await startDirector(kernel);
    await vi.advanceTimersByTimeAsync(1100);
    kernel.connections.set('10.0.1.2:80', 1);
    const mark = events.length;
    await director.update(config({ destinations: [{ address: '10.0.1.1', weight: 3 }] }) as never);
    expect(kernel.weights()).toEqual({ '10.0.1.1': 3, '10.0.1.2': 0 });
    expect(types(events.slice(mark))).toEqual(['drain-start 10.0.1.2:80', 'weight 10.0.1.1:80', 'weight 10.0.1.2:80', 'applied']);
    await vi.advanceTimersByTimeAsync(3000);
    expect(kernel.weights()['10.0.1.2']).toBe(0);
    kernel.connections.clear();
    await vi.advanceTimersByTimeAsync(1100);
    expect(kernel.weights()).toEqual({ '10.0.1.1': 3 });
    expect(events.find((e) => e.type === 'drained')).toMatchObject({ reason: 'connections', connections: 0 });
    expect(types(events).filter((t) => t.startsWith('up') || t.startsWith('down')).sort()).toEqual(['up 10.0.1.1:80', 'up 10.0.1.2:80']);
    await director.stop();
  });

  it('reports a refused operation as an error event and retries with backoff until it goes through', async () => {
    const kernel = new SimulatedKernel();
    kernel.refuse = { op: 'addDestination', code: 'EINVAL' };
    const { director, events } = await startDirector(kernel);
    const errors = () => events.filter((e) => e.type === 'error');
    expect(errors().map((e) => (e as { operation: string }).operation)).toEqual(['addDestination', 'addDestination', 'retry']);
    await vi.advanceTimersByTimeAsync(3000);
    const retries = errors().filter((e) => (e as { operation: string }).operation === 'retry').map((e) => (e as { retryIn: number }).retryIn);
    expect(retries.slice(0, 3)).toEqual([500, 1000, 2000]);
    kernel.refuse = undefined;
    await vi.advanceTimersByTimeAsync(5000);
    expect(kernel.weights()).toEqual({ '10.0.1.1': 2, '10.0.1.2': 2 });
    expect(director.status().inSync).toBe(true);
    await director.stop();
  });
});
