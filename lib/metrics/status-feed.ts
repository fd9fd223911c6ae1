// Feeds the page: status snapshots on demand and, while anyone listens, every interval and
// soon after each director event; events as they happen.
import type { DirectorEvent } from '../director';
import { followDirector, type DirectorSource } from './director-source';
import { EventLog, tableChanges } from './event-log';
import { servicesInSlices, type IpvsSampler } from './sampler';
import { buildStatus, type StatusEvent, type StatusService, type StatusSnapshot } from './status';

export type FeedMessage = { type: 'status'; snapshot: StatusSnapshot } | { type: 'event'; event: StatusEvent };

/** A source of snapshots and of a live stream of them (the HTTP server serves any). */
export interface StatusFeed {
  current(): Promise<StatusSnapshot>;
  /** Returns the unsubscribe function. */
  subscribe(listener: (message: FeedMessage) => void): () => void;
}

export interface LiveStatusFeedOptions {
  /** Refresh period while someone listens, ms. Default 2000 (the kernel's rate estimator ticks every 2 s). */
  intervalMs?: number;
  director?: DirectorSource;
}

/** How soon after a director event the page gets a fresh snapshot, ms. */
const EVENT_REFRESH_DELAY_MS = 100;

export class LiveStatusFeed implements StatusFeed {
  readonly #sampler: IpvsSampler;
  readonly #director: DirectorSource | undefined;
  readonly #intervalMs: number;
  readonly #log = new EventLog();
  readonly #listeners = new Set<(message: FeedMessage) => void>();
  readonly #unfollow: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #previous: StatusService[] | undefined;
  #closed = false;

  constructor(sampler: IpvsSampler, options: LiveStatusFeedOptions = {}) {
    const interval = options.intervalMs ?? 2000;
    if (!Number.isInteger(interval) || interval < 100 || interval > 3_600_000) {
      throw new RangeError(`intervalMs must be an integer from 100 to 3600000, got ${String(interval)}`);
    }
    this.#sampler = sampler;
    this.#director = options.director;
    this.#intervalMs = interval;
    if (this.#director) this.#unfollow = followDirector(this.#director, (event) => this.#onDirectorEvent(event));
  }

  async current(): Promise<StatusSnapshot> {
    const sample = await this.#sampler.sample();
    // The director's state as of the reading, not as of the end of the slices below, during
    // which it may have moved on (a server just marked up whose weight the reading predates).
    const director = this.#director?.status();
    await servicesInSlices(sample);  // so that buildStatus finds them built
    const snapshot = buildStatus(sample, this.#sampler.ipvs.netns, director, []);
    if (!this.#director && !sample.error) {
      if (this.#previous) for (const event of tableChanges(this.#previous, snapshot.services, sample.at)) this.#publish(event);
      this.#previous = snapshot.services;
    }
    snapshot.events = this.#log.recent();
    return snapshot;
  }

  subscribe(listener: (message: FeedMessage) => void): () => void {
    this.#listeners.add(listener);
    if (this.#listeners.size === 1) this.#schedule(0);
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#cancel();
    };
  }

  /** Stops the refreshes and stops following the director. */
  close(): void {
    this.#closed = true;
    this.#cancel();
    this.#unfollow?.();
    this.#listeners.clear();
  }

  #onDirectorEvent(event: DirectorEvent): void {
    if (event.type === 'check') return;  // every check would drown the list; the last one is in the status
    const entry: StatusEvent = { time: event.time, type: event.type };
    if ('service' in event && event.service !== undefined) entry.service = event.service;
    if ('destination' in event && event.destination !== undefined) entry.destination = event.destination;
    const message = describeEvent(event);
    if (message) entry.message = message;
    this.#publish(entry);
    if (this.#listeners.size > 0) this.#schedule(EVENT_REFRESH_DELAY_MS);
  }

  #publish(event: StatusEvent): void {
    this.#log.push(event);
    for (const listener of this.#listeners) listener({ type: 'event', event });
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    this.#cancel();
    this.#timer = setTimeout(() => void this.#refresh(), delayMs);
    this.#timer.unref();
  }

  #cancel(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #refresh(): Promise<void> {
    this.#timer = undefined;
    try {
      const snapshot = await this.current();
      for (const listener of this.#listeners) listener({ type: 'status', snapshot });
    } catch (error) {
      // A director whose status() throws must not end the page's updates.
      this.#publish({ time: Date.now(), type: 'error', message: errorText(error) ?? 'status failed' });
    }
    if (this.#listeners.size > 0 && !this.#timer) this.#schedule(this.#intervalMs);
  }
}

/** The event's details in a few words (its untrusted parts, e.g. a check's message, stay text). */
export function describeEvent(event: DirectorEvent): string {
  switch (event.type) {
    case 'up': return `was ${event.from}`;
    case 'down': return event.reason;
    case 'weight': return `weight ${event.from} → ${event.to} (${event.reason})${event.present ? '' : ', removed'}`;
    case 'drain-start': return `${event.reason}, deadline ${new Date(event.deadline).toISOString()}`;
    case 'drained': return `${event.reason}, ${event.connections} connections left`;
    case 'quorum-lost':
    case 'quorum-gained': return `live weight ${event.liveWeight}, quorum ${event.quorum} ± ${event.hysteresis}`;
    case 'sorry-on':
    case 'sorry-off': return event.servers.join(', ');
    case 'drift-repaired': return `${event.op}: ${event.reason}`;
    case 'applied': return `${event.operations.length} operations${event.failed ? `, ${event.failed} failed` : ''}`;
    case 'error': return `${event.operation}: ${errorText(event.error) ?? ''}${event.retryIn !== undefined ? ` (retry in ${event.retryIn} ms)` : ''}`;
    default: return '';
  }
}

function errorText(error: unknown): string | undefined {
  if (error === undefined) return undefined;
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
