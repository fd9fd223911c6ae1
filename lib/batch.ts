// Batches: many service and destination changes sent to the kernel in as few sendmsg() calls
// as the socket buffers allow, with one result per operation, in order.
import { Command } from './constants';
import { packDestinationKey, packDestinationSpec, type WireDestination } from './destination';
import { IpvsError } from './errors';
import type { BatchTuning, NativeBatchResults, NativeHandle } from './native';
import { RequestWriter } from './records';
import { checkServiceKey, packServiceDefinition, type CheckedKey, type WireService } from './service';
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

/** @internal What the last commit cost. */
export interface BatchStats {
  /** sendmsg() calls that carried requests. */
  sendCalls: number;
  /** Chunks whose acks were partly lost (ENOBUFS). */
  overruns: number;
}

/** @internal How a Batch reaches the kernel: Ipvs.enqueue, so it runs in call order. */
export type BatchRunner = <T>(operation: string, work: (handle: NativeHandle) => Promise<T>) => Promise<T>;

const OK: BatchResult = Object.freeze({ ok: true as const });
let queueRecord: ((batch: Batch, operation: BatchOperation, command: number, service: WireService,
  destination: WireDestination | undefined) => void) | undefined;
// V8 frees the hidden class (map) of a kind of object once no object of that kind is alive at
// a full GC, and throws away every optimized function that relied on it. Between bursts of
// work a process holds no batch, checked key or request record, so each burst would compile
// the batch and validation path again (20-odd functions, on V8's worker threads, whose zones
// stay in their malloc arenas). One small batch, never committed, keeps those kinds alive.
let shapeKeeper: Batch | null | undefined;
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
    queueRecord = (batch, operation, command, service, destination) => {
      batch.#begin(operation).add(command, service, destination);
      batch.#operations.push(operation);
    };
  }

  readonly #run: BatchRunner;
  #operations: BatchOperation[] = [];
  #records = new RequestWriter();
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
    const records = this.#begin('addService');
    const key = packServiceDefinition(spec, records, records.begin(Command.NEW_SERVICE));
    this.#end('addService');
    this.#remember(spec, key);
    return this;
  }

  /**
   * Queues replacing a service's settings (see `Ipvs.editService`; omitted options take their
   * defaults). Kernel errors: 'ESRCH' (no such service), 'ENOENT', 'EINVAL', 'EPERM'.
   */
  editService(spec: ServiceSpec): this {
    const records = this.#begin('editService');
    const key = packServiceDefinition(spec, records, records.begin(Command.SET_SERVICE));
    this.#end('editService');
    this.#remember(spec, key);
    return this;
  }

  /** Queues deleting a service and its destinations. Kernel errors: 'ESRCH', 'EPERM'. */
  deleteService(key: ServiceKey): this {
    const records = this.#begin('deleteService');
    const checked = checkServiceKey(key);
    records.setService(records.begin(Command.DEL_SERVICE), checked.record);
    return this.#end('deleteService');
  }

  /**
   * Queues adding a real server (see `Ipvs.addDestination`). Kernel errors: 'ESRCH' (no such
   * service), 'EEXIST' (the destination exists), 'EINVAL', 'EPERM'.
   */
  addDestination(service: ServiceKey, spec: DestinationSpec): this {
    const records = this.#begin('addDestination');
    const checked = this.#checkKey(service);
    const base = records.begin(Command.NEW_DEST);
    records.setService(base, checked.record);
    packDestinationSpec(spec, checked, records, base);
    return this.#end('addDestination');
  }

  /**
   * Queues replacing a real server's settings. Kernel errors: 'ESRCH' (no service), 'ENOENT'
   * (no such destination), 'EINVAL', 'EPERM'.
   */
  editDestination(service: ServiceKey, spec: DestinationSpec): this {
    const records = this.#begin('editDestination');
    const checked = this.#checkKey(service);
    const base = records.begin(Command.SET_DEST);
    records.setService(base, checked.record);
    packDestinationSpec(spec, checked, records, base);
    return this.#end('editDestination');
  }

  /** Queues removing a real server. Kernel errors: 'ESRCH' (no service), 'ENOENT' (no destination), 'EPERM'. */
  deleteDestination(service: ServiceKey, destination: DestinationKey): this {
    const records = this.#begin('deleteDestination');
    const checked = this.#checkKey(service);
    const base = records.begin(Command.DEL_DEST);
    records.setService(base, checked.record);
    packDestinationKey(destination, checked, records, base);
    return this.#end('deleteDestination');
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
    this.#records = new RequestWriter();
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
   * pure function of those properties, and its key record is copied, not kept.
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

  /** The records to write the next operation into; throws once the batch is committed. */
  #begin(operation: BatchOperation): RequestWriter {
    if (this.#committed) {
      throw new Error(`cannot ${operation}: this batch was already committed; start another with ipvs.batch()`);
    }
    return this.#records;
  }

  /** Counts the operation whose record is written (every check passed). */
  #end(operation: BatchOperation): this {
    this.#records.end();
    this.#operations.push(operation);
    return this;
  }
}

/** @internal Makes, once, the batch that keeps the batch path's object kinds alive (see shapeKeeper). */
export function keepShapes(): void {
  if (shapeKeeper !== undefined) return;
  shapeKeeper = null;
  const keeper = new Batch(() => Promise.reject(new Error('never committed')));
  const key = { protocol: 'tcp', address: '192.0.2.1', port: 80 } as const;
  const destination = { address: '192.0.2.2', port: 80 } as const;
  keeper
    .addService({ ...key, scheduler: 'wlc' })
    .addDestination(key, destination)
    .editDestination(key, destination)
    .deleteDestination(key, destination)
    .deleteService({ fwmark: 1 });
  shapeKeeper = keeper;
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
  queueRecord!(batch, operation, command, service, destination);
}

/** @internal Tests: how the next commit of `batch` chunks its requests. */
export function tuneBatch(batch: Batch, tuning: BatchTuning): void {
  tunings.set(batch, { ...tuning });
}

/** @internal Tests and benchmarks: what the last commit of `batch` cost. */
export function batchStats(batch: Batch): BatchStats | undefined {
  return stats.get(batch);
}
