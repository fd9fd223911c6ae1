// Batches: many service and destination changes sent to the kernel in as few sendmsg() calls
// as the socket buffers allow, with one result per operation, in order.
import { Command } from './constants';
import { checkDestinationKey, checkDestinationSpec } from './destination';
import { IpvsError } from './errors';
import type { WireDestination } from './destination';
import type { NativeHandle } from './ipvs';
import type { WireService } from './service';
import { checkServiceDefinition, checkServiceKey, type CheckedKey } from './service';
import type { DestinationKey, DestinationSpec, ServiceKey, ServiceSpec } from './types';

/** The operations a batch can carry, named as the {@link Ipvs} methods they mirror. */
export type BatchOperation =
  | 'addService' | 'editService' | 'deleteService'
  | 'addDestination' | 'editDestination' | 'deleteDestination';

/**
 * The kernel's answer to one operation of a batch was lost, so whether it was applied is not
 * known: the receive buffer overflowed (code 'ENOBUFS', the only cause in practice) or reading
 * the socket failed (then `code` is that errno). `unknown` is always true. Read the table
 * (`listServices`, `listTable`) to find out what happened.
 */
export class BatchUnknownError extends IpvsError {
  readonly unknown = true as const;

  constructor(errno: number, operation: BatchOperation) {
    super(
      { errno, operation },
      "the kernel's answer was lost (netlink receive buffer overflow), so it is not known " +
        'whether the operation was applied; read the table to find out',
    );
    this.name = 'BatchUnknownError';
  }
}

/**
 * One operation's outcome, at the operation's index:
 * - `{ ok: true }`: the kernel acknowledged it;
 * - `{ ok: false, unknown: false, error }`: the kernel refused it; `error` is an
 *   {@link IpvsError} whose `operation` is the batch operation ('addService', …) and whose
 *   `code` is the kernel's errno, exactly as the single call would have rejected;
 * - `{ ok: false, unknown: true, error }`: its answer was lost ({@link BatchUnknownError},
 *   code 'ENOBUFS'); it may or may not have been applied.
 */
export type BatchResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly unknown: false; readonly error: IpvsError }
  | { readonly ok: false; readonly unknown: true; readonly error: BatchUnknownError };

/** @internal Test-only tuning of the addon's chunking (see native BatchOptions). */
export interface BatchTuning {
  /** Requests per sendmsg(), used as given (even above the receive-buffer budget). */
  acksPerChunk?: number;
  /** SO_RCVBUF for this batch only, in bytes (the kernel doubles it). */
  receiveBuffer?: number;
}

/** @internal What the last commit cost. */
export interface BatchStats {
  /** sendmsg() calls that carried requests. */
  sendCalls: number;
  /** Chunks whose acks were partly lost (ENOBUFS). */
  overruns: number;
}

/** @internal What the addon's executeBatch resolves to (native/ipvs_handle.cc, BatchWorker). */
export interface NativeBatchResults extends BatchStats {
  /** 0, or the errno the kernel answered, per request. */
  errors: Int32Array;
  /** 1 where the answer was lost (the operation may or may not have been applied). */
  unknown: Uint8Array;
  /** The kernel's extended-ack message, by request index, where it sent one. */
  messages: Record<number, string>;
}

// ---- packed records ------------------------------------------------------------------------
// One request = RECORD_WORDS u32 words in host order, the layout native/ipvs_handle.cc
// (namespace record) decodes on the thread pool. Packing as operations are queued keeps
// commit() from converting thousands of objects on the JS thread.
const RECORD_WORDS = 32;
const W = {
  command: 0, present: 1,
  svcAf: 2, svcProtocol: 3, svcAddress: 4, svcPort: 8, fwmark: 9, scheduler: 10, flags: 11, flagsMask: 12,
  timeout: 13, netmask: 14, peName: 15,
  destAddress: 16, destPort: 20, forward: 21, weight: 22, upperThreshold: 23, lowerThreshold: 24, destAf: 25,
  tunnelType: 26, tunnelPort: 27, tunnelFlags: 28,
} as const;
// Bit n of the `present` word: that field is set (record::Bit in the addon).
const HAS_SVC_AF = 1 << 0;
const HAS_SVC_PROTOCOL = 1 << 1;
const HAS_SVC_ADDRESS = 1 << 2;
const HAS_SVC_PORT = 1 << 3;
const HAS_FWMARK = 1 << 4;
const HAS_SCHEDULER = 1 << 5;
const HAS_FLAGS = 1 << 6;
const HAS_FLAGS_MASK = 1 << 7;
const HAS_TIMEOUT = 1 << 8;
const HAS_NETMASK = 1 << 9;
const HAS_PE_NAME = 1 << 10;
const HAS_SERVICE = 1 << 11;
const HAS_DEST_ADDRESS = 1 << 12;
const HAS_DEST_PORT = 1 << 13;
const HAS_FORWARD = 1 << 14;
const HAS_WEIGHT = 1 << 15;
const HAS_UPPER_THRESHOLD = 1 << 16;
const HAS_LOWER_THRESHOLD = 1 << 17;
const HAS_DEST_AF = 1 << 18;
const HAS_TUNNEL_TYPE = 1 << 19;
const HAS_TUNNEL_PORT = 1 << 20;
const HAS_TUNNEL_FLAGS = 1 << 21;
const HAS_DESTINATION = 1 << 22;

// Fields are written one by one, by name: a loop over a table of keys made every read a
// generic keyed load, which cost more than the rest of queueing.
class RecordWriter {
  words = new Uint32Array(RECORD_WORDS * 256);
  bytes = new Uint8Array(this.words.buffer);
  count = 0;
  readonly strings: string[] = [];
  readonly #stringIndex = new Map<string, number>();

  add(command: number, service: WireService | undefined, destination: WireDestination | undefined): void {
    if ((this.count + 1) * RECORD_WORDS > this.words.length) {
      const grown = new Uint32Array(this.words.length * 2);
      grown.set(this.words);
      this.words = grown;
      this.bytes = new Uint8Array(grown.buffer);
    }
    const base = this.count * RECORD_WORDS;
    const w = this.words;
    let present = 0;
    w[base + W.command] = command;
    if (service) {
      present |= HAS_SERVICE;
      if (service.af !== undefined) { present |= HAS_SVC_AF; w[base + W.svcAf] = service.af; }
      if (service.protocol !== undefined) { present |= HAS_SVC_PROTOCOL; w[base + W.svcProtocol] = service.protocol; }
      if (service.address !== undefined) { present |= HAS_SVC_ADDRESS; this.#address(base + W.svcAddress, service.address); }
      if (service.port !== undefined) { present |= HAS_SVC_PORT; w[base + W.svcPort] = service.port; }
      if (service.fwmark !== undefined) { present |= HAS_FWMARK; w[base + W.fwmark] = service.fwmark; }
      if (service.scheduler !== undefined) { present |= HAS_SCHEDULER; w[base + W.scheduler] = this.#string(service.scheduler); }
      if (service.flags !== undefined) { present |= HAS_FLAGS; w[base + W.flags] = service.flags; }
      if (service.flagsMask !== undefined) { present |= HAS_FLAGS_MASK; w[base + W.flagsMask] = service.flagsMask; }
      if (service.timeout !== undefined) { present |= HAS_TIMEOUT; w[base + W.timeout] = service.timeout; }
      if (service.netmask !== undefined) { present |= HAS_NETMASK; w[base + W.netmask] = service.netmask; }
      if (service.peName !== undefined) { present |= HAS_PE_NAME; w[base + W.peName] = this.#string(service.peName); }
    }
    if (destination) {
      present |= HAS_DESTINATION;
      const d = destination;
      if (d.address !== undefined) { present |= HAS_DEST_ADDRESS; this.#address(base + W.destAddress, d.address); }
      if (d.port !== undefined) { present |= HAS_DEST_PORT; w[base + W.destPort] = d.port; }
      if (d.forward !== undefined) { present |= HAS_FORWARD; w[base + W.forward] = d.forward; }
      if (d.weight !== undefined) { present |= HAS_WEIGHT; w[base + W.weight] = d.weight; }
      if (d.upperThreshold !== undefined) { present |= HAS_UPPER_THRESHOLD; w[base + W.upperThreshold] = d.upperThreshold; }
      if (d.lowerThreshold !== undefined) { present |= HAS_LOWER_THRESHOLD; w[base + W.lowerThreshold] = d.lowerThreshold; }
      if (d.af !== undefined) { present |= HAS_DEST_AF; w[base + W.destAf] = d.af; }
      if (d.tunnelType !== undefined) { present |= HAS_TUNNEL_TYPE; w[base + W.tunnelType] = d.tunnelType; }
      if (d.tunnelPort !== undefined) { present |= HAS_TUNNEL_PORT; w[base + W.tunnelPort] = d.tunnelPort; }
      if (d.tunnelFlags !== undefined) { present |= HAS_TUNNEL_FLAGS; w[base + W.tunnelFlags] = d.tunnelFlags; }
    }
    w[base + W.present] = present >>> 0;
    this.count += 1;
  }

  records(): Uint32Array {
    return this.words.subarray(0, this.count * RECORD_WORDS);
  }

  #address(word: number, address: Uint8Array): void {
    // 16 bytes as they are in memory: the addon copies the words back to bytes unchanged.
    const bytes = this.bytes;
    const at = word * 4;
    for (let i = 0; i < 16; i++) bytes[at + i] = address[i] ?? 0;
  }

  #string(text: string): number {
    let index = this.#stringIndex.get(text);
    if (index === undefined) {
      index = this.strings.length;
      this.strings.push(text);
      this.#stringIndex.set(text, index);
    }
    return index;
  }
}

/** @internal How a Batch reaches the kernel: Ipvs.enqueue, so it runs in call order. */
export type BatchRunner = <T>(operation: string, work: (handle: NativeHandle) => Promise<T>) => Promise<T>;

const OK: BatchResult = Object.freeze({ ok: true as const });
let pushWire: ((batch: Batch, operation: BatchOperation, command: number, service: WireService,
  destination: WireDestination | undefined) => void) | undefined;
const tunings = new WeakMap<Batch, BatchTuning>();
const stats = new WeakMap<Batch, BatchStats>();

/**
 * A list of service and destination changes applied together with {@link Batch.commit}. Get one
 * from `ipvs.batch()`. Each method takes the same arguments as the {@link Ipvs} method of the
 * same name, checks them at once (throwing a TypeError or RangeError naming the field, as that
 * method would reject) and returns the batch, so calls can be chained.
 *
 * Operations run in the order they were queued, exactly as the same calls one after another
 * would: a later operation sees the effect of an earlier one (add a service, then its
 * destinations). **The kernel does not roll back**: an operation that fails does not stop or
 * undo the others. A batch is used once.
 */
export class Batch {
  static {
    pushWire = (batch, operation, command, service, destination) => { batch.#push(operation, command, service, destination); };
  }

  readonly #run: BatchRunner;
  #operations: BatchOperation[] = [];
  #records = new RecordWriter();
  #committed = false;
  // The last service key checked, to skip re-checking it for each of its destinations.
  #lastKey: { value: object; keys: string[]; values: unknown[]; checked: CheckedKey } | undefined;

  /** @internal Use `ipvs.batch()`. */
  constructor(run: BatchRunner) {
    this.#run = run;
  }

  /** How many operations are queued. */
  get size(): number {
    return this.#operations.length;
  }

  /**
   * Queues adding a virtual service (see `Ipvs.addService`). Kernel errors in its result:
   * 'EEXIST', 'ENOENT' (scheduler or persistence engine module missing), 'EINVAL', 'EPERM'.
   */
  addService(spec: ServiceSpec): this {
    const { key, wire } = checkServiceDefinition(spec);
    this.#push('addService', Command.NEW_SERVICE, wire, undefined);
    this.#remember(spec, key);
    return this;
  }

  /**
   * Queues replacing a service's settings (see `Ipvs.editService`; omitted options take their
   * defaults). Kernel errors: 'ESRCH' (no such service), 'ENOENT', 'EINVAL', 'EPERM'.
   */
  editService(spec: ServiceSpec): this {
    const { key, wire } = checkServiceDefinition(spec);
    this.#push('editService', Command.SET_SERVICE, wire, undefined);
    this.#remember(spec, key);
    return this;
  }

  /** Queues deleting a service and its destinations. Kernel errors: 'ESRCH', 'EPERM'. */
  deleteService(key: ServiceKey): this {
    return this.#push('deleteService', Command.DEL_SERVICE, checkServiceKey(key).wire, undefined);
  }

  /**
   * Queues adding a real server (see `Ipvs.addDestination`). Kernel errors: 'ESRCH' (no such
   * service), 'EEXIST' (the destination exists), 'EINVAL', 'EPERM'.
   */
  addDestination(service: ServiceKey, spec: DestinationSpec): this {
    const checked = this.#checkKey(service);
    const destination = checkDestinationSpec(spec, checked);
    return this.#push('addDestination', Command.NEW_DEST, checked.wire, destination);
  }

  /**
   * Queues replacing a real server's settings. Kernel errors: 'ESRCH' (no service), 'ENOENT'
   * (no such destination), 'EINVAL', 'EPERM'.
   */
  editDestination(service: ServiceKey, spec: DestinationSpec): this {
    const checked = this.#checkKey(service);
    const destination = checkDestinationSpec(spec, checked);
    return this.#push('editDestination', Command.SET_DEST, checked.wire, destination);
  }

  /** Queues removing a real server. Kernel errors: 'ESRCH' (no service), 'ENOENT' (no destination), 'EPERM'. */
  deleteDestination(service: ServiceKey, destination: DestinationKey): this {
    const checked = this.#checkKey(service);
    const wire = checkDestinationKey(destination, checked);
    return this.#push('deleteDestination', Command.DEL_DEST, checked.wire, wire);
  }

  /**
   * Sends every queued operation, after every earlier call on the handle has settled, and
   * resolves to one {@link BatchResult} per operation, in queue order. The requests go out in
   * as few sendmsg() calls as the socket buffers allow, each chunk sized so that all of its
   * acks fit the receive buffer; if acks are lost anyway (ENOBUFS), the operations concerned
   * are reported `unknown` rather than guessed.
   *
   * The kernel does not roll back: operations before and after a failed one are applied.
   * Resolves to `[]` for an empty batch.
   *
   * @throws {IpvsError} (as a rejection) only when nothing was sent: 'EBADF' when the handle
   *   is closed, or a system error before the first request went out.
   * @throws {Error} (as a rejection) when the batch was already committed.
   */
  commit(): Promise<BatchResult[]> {
    if (this.#committed) {
      return Promise.reject(new Error('this batch was already committed; start another with ipvs.batch()'));
    }
    this.#committed = true;
    const operations = this.#operations;
    const records = this.#records;
    this.#operations = [];
    this.#records = new RecordWriter();
    const tuning = tunings.get(this);
    return this.#run('batch', async (handle) => {
      if (operations.length === 0) return [];
      const native = await handle.executeBatch(records.records(), records.strings, tuning);
      if (native.errors.length !== operations.length) {
        throw new Error(`batch: the addon answered ${native.errors.length} results for ${operations.length} requests`);
      }
      stats.set(this, { sendCalls: native.sendCalls, overruns: native.overruns });
      const results = new Array<BatchResult>(operations.length);
      for (let i = 0; i < operations.length; i++) results[i] = toResult(native, i, operations[i] as BatchOperation);
      return results;
    });
  }

  /**
   * checkServiceKey, reusing the last result when `service` is the same plain object with the
   * same own properties (the usual add-a-service-then-its-destinations loop): the check is a
   * pure function of those properties, and the wire record is copied, not kept.
   */
  #checkKey(service: ServiceKey): CheckedKey {
    const last = this.#lastKey;
    if (last && last.value === service && unchanged(service, last.keys, last.values)) return last.checked;
    const checked = checkServiceKey(service);
    this.#remember(service, checked);
    return checked;
  }

  /** Keeps `checked`, the check of `service`, for #checkKey (addService's spec is a key too). */
  #remember(service: object, checked: CheckedKey): void {
    if (Object.getPrototypeOf(service) !== Object.prototype) return;
    const keys = Object.keys(service);
    const values = keys.map((key) => (service as Record<string, unknown>)[key]);
    this.#lastKey = { value: service, keys, values, checked };
  }

  #push(operation: BatchOperation, command: number, service: WireService, destination: WireDestination | undefined): this {
    if (this.#committed) {
      throw new Error(`cannot ${operation}: this batch was already committed; start another with ipvs.batch()`);
    }
    this.#records.add(command, service, destination);
    this.#operations.push(operation);
    return this;
  }
}

/**
 * Whether `value` has exactly the enumerable properties `keys` with `values`, in that order.
 * for-in walks the object's cached key list without allocating; any difference, an inherited
 * enumerable property included, counts as a change.
 */
function unchanged(value: object, keys: readonly string[], values: readonly unknown[]): boolean {
  let i = 0;
  for (const key in value) {
    if (key !== keys[i] || (value as Record<string, unknown>)[key] !== values[i]) return false;
    i++;
  }
  return i === keys.length;
}

function toResult(native: NativeBatchResults, i: number, operation: BatchOperation): BatchResult {
  const errno = native.errors[i] ?? 0;
  if (native.unknown[i]) return { ok: false, unknown: true, error: new BatchUnknownError(errno, operation) };
  if (errno === 0) return OK;
  const kernelMessage = native.messages[i];
  return { ok: false, unknown: false, error: new IpvsError({ errno, operation, ...(kernelMessage ? { kernelMessage } : {}) }) };
}

/**
 * @internal Queues a request already in wire form, unchecked: for the ipvsadm command line,
 * which builds requests exactly as ipvsadm does and leaves their judgement to the kernel.
 */
export function queueWire(
  batch: Batch, operation: BatchOperation, command: number, service: WireService, destination?: WireDestination,
): void {
  pushWire!(batch, operation, command, service, destination);
}

/** @internal Tests: how the next commit of `batch` chunks its requests. */
export function tuneBatch(batch: Batch, tuning: BatchTuning): void {
  tunings.set(batch, { ...tuning });
}

/** @internal Tests and benchmarks: what the last commit of `batch` cost. */
export function batchStats(batch: Batch): BatchStats | undefined {
  return stats.get(batch);
}
