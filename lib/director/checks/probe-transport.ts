// The native probe transport (native/probe_transport.h): plain tcp and http checks hand their
// connect / send / read to one thread of the addon with its own epoll, which enforces each
// probe's timeout itself. Probes asked for in one turn of the event loop (the scheduler starts
// the checks of a slot together) go down in one native call, and the probes that finish
// in one wake-up of that thread come back in one callback. What a reply means stays with the
// check types (tcp.ts, http.ts).
//
// One transport serves the process while anything holds it (acquireProbeTransport: a running
// director does); without one, or when the addon cannot be loaded, checks use Node's sockets.
import { getSystemErrorName } from 'node:util';

import { nativeAddon } from '../../native';
import {
  COMPLETION_BYTES, decodeCompletionAt, encodeProbes, OUTCOMES, PHASES, type ProbeCompletion, type ProbeOutcome, type ProbePhase,
  type ProbeSpec,
} from './probe-codec';
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
 * submits at the end of every slot that holds checks, every 10 to 40 ms while checks run)
 * before the probe thread wakes the event loop for them: as long as the widest slot
 * (scheduler.ts MAX_SLOT_MS), so that at a few checks per slot results ride on the next
 * submit instead of a wake-up of their own, each one dear in a VM. A result reaches the health
 * state at most this much later; its latency is measured on the thread.
 */
const DELIVERY_DELAY_MS = 40;

const EMPTY_BUFFER = Buffer.alloc(0);

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
  /** A new result each call, its latency the probe's (measured on the probe thread). */
  judge(completion: CompletionView): CheckResultOf<CheckOutcome>;
}

/** A check outcome with its latency (checks/index.ts names it CheckResult). */
export type CheckResultOf<T> = T & { latency: number };

/**
 * One completion as a client sees it, read in place from the records the probe thread sent:
 * the transport fills one view per callback and reuses it for every record, so a client reads
 * what it needs before returning and keeps nothing of it.
 */
export class CompletionView {
  records: Buffer = EMPTY_BUFFER;
  replies: Buffer = EMPTY_BUFFER;
  /** Byte offset of the record in `records`. */
  at = 0;
  /** Date.now() when the callback began. */
  receivedAt = 0;
  /** The number the client gave with the probe (start's `tag`). */
  tag = 0;

  get outcome(): ProbeOutcome {
    return OUTCOMES[this.records[this.at + 4]!] ?? 'error';
  }
  get phase(): ProbePhase {
    return PHASES[this.records[this.at + 5]!] ?? 'connect';
  }
  get errno(): number {
    return this.records.readInt32LE(this.at + 8);
  }
  get latencyMs(): number {
    return this.records.readUInt32LE(this.at + 12) / 1000;
  }
  /** Where the reply is in `replies`. */
  get replyStart(): number {
    return this.records.readUInt32LE(this.at + 16);
  }
  get replyLength(): number {
    return this.records.readUInt32LE(this.at + 20);
  }
  /** The completion as an object of its own (a copy; the reply a view into the callback's buffer). */
  toCompletion(): ProbeCompletion {
    return decodeCompletionAt(this.records, this.at, this.replies);
  }
}

/** Who gets a probe's completion: one object may have several probes in flight. */
export interface ProbeClient {
  /** The probe completed (its failure is a completion too). Called from the transport's callback. */
  probeDone(completion: CompletionView): void;
  /** The transport closed (or refused the batch) before the probe completed. */
  probeFailed(error: Error, tag: number): void;
}

/** probe()'s clients: one per probe, resolving its promise. */
class PromiseClient implements ProbeClient {
  constructor(private readonly resolve: (c: ProbeCompletion) => void, private readonly reject: (e: Error) => void) {}
  probeDone(completion: CompletionView): void {
    this.resolve(completion.toCompletion());
  }
  probeFailed(error: Error): void {
    this.reject(error);
  }
}

/**
 * @internal One native probe thread. `start()` queues a prepared probe for a client; every
 * probe asked for in one turn of the event loop is submitted in one native call; the
 * completions of one wake-up of the thread come back in one callback, which calls each
 * client in turn with a view of its record (no object or promise per probe). `probe()` is the
 * same as a promise. A probe's failure is its completion (errno, timeout); a probe fails
 * (probeFailed, a rejection) only when the transport is closed under it ('the probe transport
 * is closed').
 * @throws {Error} from the constructor when the thread cannot be started (the errno of
 *   epoll_create1 or eventfd: EMFILE, ENOMEM).
 */
export class ProbeTransport {
  readonly #native: NativeProbeTransport;
  /** Clients by probe id (ids are indexes here, reused once free). */
  readonly #clients: Array<ProbeClient | undefined>;
  readonly #tags: number[];
  readonly #freeIds: number[] = [];
  #started = 0;
  #queued: PreparedProbe[] = [];
  #queuedIds: number[] = [];
  #queuedBytes = 0;
  #flushing: ReturnType<typeof setImmediate> | undefined;
  #closed = false;

  constructor(NativeClass: NativeProbeTransportClass, options: ProbeTransportOptions = {}) {
    // The callback reaches the client table only, never this object: the native side holds the
    // callback for as long as the transport lives, so a transport nobody holds can be collected.
    const clients: Array<ProbeClient | undefined> = [undefined];
    const tags: number[] = [0];
    const freeIds = this.#freeIds;
    const view = new CompletionView();
    const completed = { count: 0 };
    this.#clients = clients;
    this.#tags = tags;
    this.#native = new NativeClass((records, replies) => {
      if (records.length % COMPLETION_BYTES !== 0) throw new RangeError(`completion records of ${records.length} bytes`);
      view.records = records;
      view.replies = replies;
      view.receivedAt = Date.now();
      let failure: unknown;
      for (let at = 0; at < records.length; at += COMPLETION_BYTES) {
        const id = records.readUInt32LE(at);
        const client = clients[id];
        if (client === undefined) continue;
        clients[id] = undefined;
        freeIds.push(id);
        completed.count++;
        view.at = at;
        view.tag = tags[id]!;
        try {
          client.probeDone(view);
        } catch (error) {
          failure ??= error;
        }
      }
      view.records = EMPTY_BUFFER;
      view.replies = EMPTY_BUFFER;
      if (failure !== undefined) throw failure;
    }, { deliveryDelayMs: DELIVERY_DELAY_MS, ...options });
    this.#completed = completed;
  }

  /** Probes ended (the callback counts them here, as it cannot reach this object). */
  readonly #completed: { count: number };

  /** Sockets open at once at most; probes beyond wait (at most their timeout, else they end as notStarted). */
  get maxInFlight(): number {
    return this.#native.maxInFlight;
  }

  /** Probes in flight or queued. */
  get pending(): number {
    return this.#started - this.#completed.count;
  }

  /**
   * Queues one probe (from prepareProbe) for `client`, which gets its completion with `tag`
   * (any number the client wants back, e.g. when the attempt started). When the transport is
   * closed, client.probeFailed is called before this returns.
   */
  start(prepared: PreparedProbe, client: ProbeClient, tag = 0): void {
    if (this.#closed) {
      client.probeFailed(new Error('the probe transport is closed'), tag);
      return;
    }
    let id = this.#freeIds.pop();
    if (id === undefined) {
      id = this.#clients.length;
      this.#clients.push(undefined);
      this.#tags.push(0);
    }
    this.#clients[id] = client;
    this.#tags[id] = tag;
    this.#started++;
    this.#queued.push(prepared);
    this.#queuedIds.push(id);
    this.#queuedBytes += prepared.length;
    if (this.#batching === 0) this.#flushing ??= setImmediate(this.#flush);
  }

  #batching = 0;

  /**
   * Runs `starts` and submits the probes it started in one native call when it returns, not in
   * the next turn of the event loop (the scheduler starts a slot's checks so: one call, no
   * immediate callback and its extra poll of the loop per slot).
   */
  batch(starts: () => void): void {
    this.#batching++;
    try {
      starts();
    } finally {
      if (--this.#batching === 0 && this.#queued.length > 0) {
        if (this.#flushing) clearImmediate(this.#flushing);
        this.#flush();
      }
    }
  }

  /**
   * Runs one probe (from prepareProbe); resolves when it completes, its own timeout included.
   * Rejects when the transport is closed before the probe completes.
   */
  probe(prepared: PreparedProbe): Promise<ProbeCompletion> {
    return new Promise((resolve, reject) => this.start(prepared, new PromiseClient(resolve, reject)));
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
      for (const id of ids) this.#fail(id, error as Error);
    }
  };

  #fail(id: number, error: Error): void {
    const client = this.#clients[id];
    if (client === undefined) return;
    this.#clients[id] = undefined;
    this.#freeIds.push(id);
    this.#completed.count++;
    client.probeFailed(error, this.#tags[id]!);
  }

  /** Closes every socket and joins the thread; probes in flight fail. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#flushing) clearImmediate(this.#flushing);
    this.#queued = [];
    this.#queuedIds = [];
    this.#native.close();
    const error = new Error('the probe transport is closed');
    for (let id = 1; id < this.#clients.length; id++) this.#fail(id, error);
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
