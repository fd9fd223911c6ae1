// The native probe transport (native/probe_transport.h): plain tcp and http checks hand their
// connect / send / read to one thread of the addon with its own epoll, which enforces each
// probe's timeout itself. Probes asked for in one turn of the event loop (the scheduler starts
// the checks of a 10 ms slot together) go down in one native call, and the probes that finish
// in one wake-up of that thread come back in one callback. What a reply means stays with the
// check types (tcp.ts, http.ts).
//
// One transport serves the process while anything holds it (acquireProbeTransport: a running
// director does); without one, or when the addon cannot be loaded, checks use Node's sockets.
import { getSystemErrorName } from 'node:util';

import { nativeAddon } from '../../native';
import { decodeCompletions, encodeProbes, type ProbeCompletion, type ProbeSpec } from './probe-codec';
import type { CheckOutcome } from './types';

/** @internal The addon's class. */
export interface NativeProbeTransport {
  /** Queues the probes; completions already waiting reach onCompletions before it returns. */
  submit(batch: Uint8Array): void;
  close(): void;
  /** Sockets the thread opens at once (the rest wait); 0 once closed. */
  readonly maxInFlight: number;
}
/** @internal Tuning for the tests; the defaults are the ones of production. */
export interface ProbeTransportOptions {
  /** How long completions may wait for the next submit before the thread wakes the event loop for them. */
  deliveryDelayMs?: number;
  /** The socket cap (default: three quarters of RLIMIT_NOFILE, keeping at least 128 or half of it for the rest). */
  maxInFlight?: number;
}
/** @internal */
export type NativeProbeTransportClass = new (
  onCompletions: (records: Buffer, replies: Buffer) => void, options?: ProbeTransportOptions,
) => NativeProbeTransport;

/**
 * How long finished probes may wait to be handed over with the next submit (the scheduler
 * submits every 10 ms slot while checks run) before the probe thread wakes the event loop for
 * them: at a few checks per slot this saves most wake-ups, each one dear in a VM. A result
 * reaches the health state at most this much later; its latency is measured on the thread.
 */
const DELIVERY_DELAY_MS = 20;

/** A probe packed once (its id left 0), to be submitted every interval. */
export type PreparedProbe = Buffer & { readonly preparedProbe: true };

/**
 * Packs one probe for `ProbeTransport.probe`.
 * @throws {RangeError} for a probe outside the native limits (see encodeProbes).
 */
export function prepareProbe(spec: Omit<ProbeSpec, 'id'>): PreparedProbe {
  return encodeProbes([{ ...spec, id: 0 }]) as PreparedProbe;
}

/** A check as a probe (packed once per check and target), and how a completion judges it. */
export interface NativeProbe {
  prepared: PreparedProbe;
  /** A new outcome object each call (runCheck adds the latency to it). */
  judge(completion: ProbeCompletion): CheckOutcome;
}

interface Waiter {
  resolve(completion: ProbeCompletion): void;
  reject(error: Error): void;
}

/**
 * @internal One native probe thread: `probe()` queues a prepared probe, every probe asked for
 * in one turn of the event loop is submitted in one native call, and completions resolve their
 * promises. A probe's failure is its completion (errno, timeout), never a rejection; probes
 * reject only when the transport is closed under them ('the probe transport is closed').
 * @throws {Error} from the constructor when the thread cannot be started (the errno of
 *   epoll_create1 or eventfd: EMFILE, ENOMEM).
 */
export class ProbeTransport {
  readonly #native: NativeProbeTransport;
  readonly #waiters: Map<number, Waiter>;
  #queued: PreparedProbe[] = [];
  #queuedIds: number[] = [];
  #queuedBytes = 0;
  #flushing: ReturnType<typeof setImmediate> | undefined;
  #nextId = 1;
  #closed = false;

  constructor(NativeClass: NativeProbeTransportClass, options: ProbeTransportOptions = {}) {
    // The callback reaches the waiters only, never this object: the native side holds the
    // callback for as long as the transport lives, so a transport nobody holds can be collected.
    const waiters = new Map<number, Waiter>();
    this.#waiters = waiters;
    this.#native = new NativeClass((records, replies) => {
      for (const completion of decodeCompletions(records, replies)) {
        const waiter = waiters.get(completion.id);
        if (!waiter) continue;
        waiters.delete(completion.id);
        waiter.resolve(completion);
      }
    }, { deliveryDelayMs: DELIVERY_DELAY_MS, ...options });
  }

  /** Sockets open at once at most; probes beyond wait (at most their timeout, else they end as notStarted). */
  get maxInFlight(): number {
    return this.#native.maxInFlight;
  }

  /** Probes in flight or queued. */
  get pending(): number {
    return this.#waiters.size;
  }

  /**
   * Runs one probe (from prepareProbe); resolves when it completes, its own timeout included.
   * Rejects when the transport is closed before the probe completes.
   */
  probe(prepared: PreparedProbe): Promise<ProbeCompletion> {
    if (this.#closed) return Promise.reject(new Error('the probe transport is closed'));
    let id = this.#nextId;
    while (this.#waiters.has(id)) id = (id + 1) >>> 0;
    this.#nextId = (id + 1) >>> 0;
    this.#queued.push(prepared);
    this.#queuedIds.push(id);
    this.#queuedBytes += prepared.length;
    this.#flushing ??= setImmediate(this.#flush);
    return new Promise((resolve, reject) => this.#waiters.set(id, { resolve, reject }));
  }

  /** Submits what was asked for since the last flush in one native call. */
  readonly #flush = (): void => {
    this.#flushing = undefined;
    const probes = this.#queued;
    const ids = this.#queuedIds;
    const batch = Buffer.allocUnsafe(this.#queuedBytes);
    this.#queued = [];
    this.#queuedIds = [];
    this.#queuedBytes = 0;
    if (this.#closed || probes.length === 0) return;
    let at = 0;
    for (let i = 0; i < probes.length; i++) {
      const probe = probes[i]!;
      batch.set(probe, at);
      batch.writeUInt32LE(ids[i]!, at);
      at += probe.length;
    }
    try {
      this.#native.submit(batch);
    } catch (error) {
      for (const id of ids) {
        const waiter = this.#waiters.get(id);
        this.#waiters.delete(id);
        waiter?.reject(error as Error);
      }
    }
  };

  /** Closes every socket and joins the thread; probes in flight reject. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#flushing) clearImmediate(this.#flushing);
    this.#queued = [];
    this.#native.close();
    const error = new Error('the probe transport is closed');
    for (const waiter of this.#waiters.values()) waiter.reject(error);
    this.#waiters.clear();
  }
}

/** A probe failure's errno as its code ('ECONNREFUSED'). */
export function errnoCode(errno: number): string {
  try {
    return getSystemErrorName(-Math.abs(errno));
  } catch {
    return `errno ${errno}`;
  }
}

let shared: ProbeTransport | undefined;
let holders = 0;
let loadError: Error | undefined;

/**
 * Holds the process's probe transport (opening it on first hold) until the returned release
 * is called; the last release closes it. When the addon cannot provide one, checks use Node's
 * sockets and `probeTransportError()` says why. `options` (tests only) tune a transport this
 * call opens.
 */
export function acquireProbeTransport(options?: ProbeTransportOptions): () => void {
  holders++;
  if (!shared && !loadError) {
    try {
      shared = new ProbeTransport(nativeAddon().ProbeTransport, options);
    } catch (error) {
      loadError = error instanceof Error ? error : new Error(String(error));
    }
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--holders === 0) {
      shared?.close();
      shared = undefined;
    }
  };
}

/** The transport checks use now, if one is held and open. */
export function activeProbeTransport(): ProbeTransport | undefined {
  return shared;
}

/** Why no native transport could be opened, if that happened. */
export function probeTransportError(): Error | undefined {
  return loadError;
}
