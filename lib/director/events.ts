// The director's typed events: one listener registry (never throws at the emitter, unlike
// EventEmitter's 'error') and async iteration with a bounded queue per iterator.
import type { FieldChange, PlanOperation } from '../reconcile/types';
import type { DaemonState } from '../types';
import type { HealthState } from './health';
import type { VrrpState } from './vrrp';

interface EventBase {
  /** Date.now() when it happened. */
  time: number;
}

interface DestinationEventBase extends EventBase {
  /** The service id: 'tcp 10.0.0.1:80', 'fwmark 7'. */
  service: string;
  /** The destination id: '10.0.1.1:80', '[2001:db8::1]:80'. */
  destination: string;
}

/** One check attempt (only with the `checkEvents` option; an attempt not run is an `error` event instead). */
export interface CheckEvent extends DestinationEventBase {
  type: 'check';
  /** Index of the check in the destination's checks. */
  check: number;
  checkType: string;
  ok: boolean;
  message: string;
  /** Milliseconds the attempt took. */
  latency: number;
  /** Milliseconds it started after it was due. */
  lateness: number;
  /** The check's state after this attempt. */
  state: HealthState;
}

/** A destination's checks all pass again (or it passed its first round). */
export interface UpEvent extends DestinationEventBase {
  type: 'up';
  /** 'down' or 'pending' (first round of checks). */
  from: HealthState;
}

/** A check of the destination reached its fall count (or failed its first attempt). */
export interface DownEvent extends DestinationEventBase {
  type: 'down';
  from: HealthState;
  /** The failing check's type and message, e.g. 'http: HTTP 503'. */
  reason: string;
}

/** The destination's weight in the kernel changed (0 when quiesced or absent). */
export interface WeightEvent extends DestinationEventBase {
  type: 'weight';
  from: number;
  to: number;
  /** Whether the destination is in the kernel table after the change. */
  present: boolean;
  /** 'health', 'slow-start', 'dynamic' (exec check), 'config', 'quorum' or 'drain'. */
  reason: 'health' | 'slow-start' | 'dynamic' | 'config' | 'quorum' | 'drain';
}

export interface DrainStartEvent extends DestinationEventBase {
  type: 'drain-start';
  /** 'removed' from the configuration, or 'requested' by director.drain(). */
  reason: 'removed' | 'requested';
  /** Date.now() at which it is deleted even with connections left. */
  deadline: number;
}

export interface DrainedEvent extends DestinationEventBase {
  type: 'drained';
  /** 'connections' (none left) or 'timeout' (deleted at the deadline with `connections` left). */
  reason: 'connections' | 'timeout';
  /** Active + inactive connections and persistence templates left at deletion. */
  connections: number;
}

interface QuorumEventBase extends EventBase {
  service: string;
  /** Sum of the weights of the live destinations. */
  liveWeight: number;
  quorum: number;
  hysteresis: number;
}
export interface QuorumLostEvent extends QuorumEventBase { type: 'quorum-lost' }
export interface QuorumGainedEvent extends QuorumEventBase { type: 'quorum-gained' }

export interface SorryEvent extends EventBase {
  type: 'sorry-on' | 'sorry-off';
  service: string;
  /** The sorry servers' ids. */
  servers: string[];
}

/** A change made by someone else inside the director's scope was undone. */
export interface DriftRepairedEvent extends EventBase {
  type: 'drift-repaired';
  service: string;
  destination?: string;
  /** The operation that repaired it ('addDestination', 'editDestination', …). */
  op: PlanOperation['op'];
  /** Why, as reconcile words it ('not in the table', 'settings differ', …). */
  reason: string;
  changes: FieldChange[];
}

/** The director changed the table. */
export interface AppliedEvent extends EventBase {
  type: 'applied';
  operations: PlanOperation[];
  /** How many of them the kernel refused (each also reported as an 'error'). */
  failed: number;
}

/** Something went wrong; the director carries on (kernel work is retried with backoff). */
export interface ErrorEvent extends EventBase {
  type: 'error';
  error: Error;
  /**
   * What was being done: 'apply', 'read-table', 'connections', 'quorum-command', 'sync-daemon',
   * 'vrrp-fifo', 'check' (an attempt this host could not make, EMFILE…: not counted, no `check` event), …
   */
  operation: string;
  service?: string;
  destination?: string;
  /** Milliseconds until the retry, when there is one. */
  retryIn?: number;
  /** How many occurrences the event stands for, when it summarizes several (checks not run: at most one event a second). */
  count?: number;
}

/** keepalived reported a new state for the followed VRRP instance (config `vrrp`). */
export interface VrrpEvent extends EventBase {
  type: 'vrrp';
  instance: string;
  /** 'unknown' for the first report after the director started. */
  from: VrrpState | 'unknown';
  to: VrrpState;
  /** The priority keepalived sent with the state, when it did. */
  priority?: number;
}

/** The connection-sync daemon was switched to follow the VRRP state (config `vrrp`). */
export interface SyncDaemonEvent extends EventBase {
  type: 'sync-daemon';
  /** 'none' when no daemon of the configured settings ran before. */
  from: DaemonState | 'none';
  to: DaemonState;
  interface: string;
  syncId: number;
  /** Milliseconds from the VRRP state line (or the start) to the daemon running. */
  latency: number;
}

export type DirectorEvent =
  | CheckEvent | UpEvent | DownEvent | WeightEvent | DrainStartEvent | DrainedEvent | QuorumLostEvent
  | QuorumGainedEvent | SorryEvent | DriftRepairedEvent | AppliedEvent | ErrorEvent | VrrpEvent | SyncDaemonEvent;
export type DirectorEventType = DirectorEvent['type'];
export type DirectorEventOf<T extends DirectorEventType> = Extract<DirectorEvent, { type: T }>;

/** Options of {@link EventHub.iterate}. */
export interface EventIteratorOptions {
  /** Only these types. Default all. */
  types?: DirectorEventType[];
  /** Events kept for a slow reader; older ones are dropped beyond it. Default 10,000. */
  bufferSize?: number;
  /** Ends the iteration. */
  signal?: AbortSignal;
}

/** @internal The registry behind Director.on/off/events. */
export class EventHub {
  readonly #listeners = new Map<DirectorEventType, Set<(event: DirectorEvent) => void>>();
  readonly #iterators = new Set<{ push(event: DirectorEvent): void; end(): void }>();
  #ended = false;
  /** Called when a listener throws: the director reports it as an 'error' event (once). */
  onListenerError: (error: unknown) => void = () => {};

  on(type: DirectorEventType, listener: (event: DirectorEvent) => void): void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener);
  }

  off(type: DirectorEventType, listener: (event: DirectorEvent) => void): void {
    this.#listeners.get(type)?.delete(listener);
  }

  /** Whether anyone would see an event of this type. */
  wants(type: DirectorEventType): boolean {
    return (this.#listeners.get(type)?.size ?? 0) > 0 || this.#iterators.size > 0;
  }

  emit(event: DirectorEvent): void {
    for (const listener of this.#listeners.get(event.type) ?? []) {
      try {
        listener(event);
      } catch (error) {
        if (event.type !== 'error') this.onListenerError(error);
      }
    }
    for (const iterator of this.#iterators) iterator.push(event);
  }

  /** Ends every iteration (the director stopped). */
  end(): void {
    this.#ended = true;
    for (const iterator of this.#iterators) iterator.end();
    this.#iterators.clear();
  }

  iterate(options: EventIteratorOptions = {}): AsyncIterableIterator<DirectorEvent> {
    const types = options.types ? new Set(options.types) : undefined;
    const bufferSize = options.bufferSize ?? 10_000;
    const queue: DirectorEvent[] = [];
    let waiting: ((result: IteratorResult<DirectorEvent>) => void) | undefined;
    let done = this.#ended;
    const hub = this;
    const entry = {
      push(event: DirectorEvent): void {
        if (types && !types.has(event.type)) return;
        if (waiting) {
          const resolve = waiting;
          waiting = undefined;
          resolve({ value: event, done: false });
          return;
        }
        queue.push(event);
        if (queue.length > bufferSize) queue.shift();
      },
      end(): void {
        done = true;
        if (waiting) {
          const resolve = waiting;
          waiting = undefined;
          resolve({ value: undefined, done: true });
        }
      },
    };
    const finish = (): IteratorResult<DirectorEvent> => {
      hub.#iterators.delete(entry);
      entry.end();
      return { value: undefined, done: true };
    };
    if (!done) this.#iterators.add(entry);
    options.signal?.addEventListener('abort', () => finish(), { once: true });
    return {
      next(): Promise<IteratorResult<DirectorEvent>> {
        const event = queue.shift();
        if (event) return Promise.resolve({ value: event, done: false });
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => { waiting = resolve; });
      },
      return(): Promise<IteratorResult<DirectorEvent>> {
        return Promise.resolve(finish());
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
}
