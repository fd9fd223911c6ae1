// The public handle: validates every input, then runs the request on the addon's thread pool,
// in call order, over the handle's own netlink socket.
import { constants as osConstants } from 'node:os';

import { Batch, keepShapes } from './batch';
import {
  countConnectionsIn, readConnectionTableIn, streamConnectionsIn, type ConnectionCounts, type ConnectionReadOptions,
  type ConnectionStream, type ConnectionStreamOptions, type ConnectionTable, type CountConnectionsOptions,
} from './connections';
import { Command } from './constants';
import { checkDaemonSpec, checkDaemonState, checkTimeouts, daemonFromWire, timeoutsFromWire, type WireDaemon, type WireTimeouts } from './config';
import { packDestinationKey, packDestinationSpec } from './destination';
import { IpvsError, IpvsUnavailableError, fromNativeError } from './errors';
import { nativeAddon, type NativeHandle, type ObjectRequest } from './native';
import { RequestWriter, requestRecord } from './records';
import { checkServiceKey, packServiceDefinition, type CheckedKey, type WireService } from './service';
import { appendTableFromNative, destinationsFromNative, servicesFromNative, type ServiceWithDestinations } from './table';
import type { ApplyOptions, ApplyResult, DesiredService, Plan, PlanOptions } from './reconcile/types';
import type {
  DaemonConfig, DaemonSpec, DaemonState, Destination, DestinationKey, DestinationSpec, IpvsInfo, OpenOptions,
  Service, ServiceKey, ServiceSpec, Timeouts,
} from './types';
import { expectObject, expectString, rejectUnknownKeys } from './validate';

const { ENOENT, ESRCH, EBADF, EINVAL } = osConstants.errno;

function openError(error: unknown, netns: string | undefined): Error {
  const native = error as { errno?: number; path?: string };
  if (native?.errno === ENOENT && !native.path) return new IpvsUnavailableError(error);
  if (native?.path && netns !== undefined) {
    const reason = native.errno === ENOENT
      ? `network namespace not found: ${netns}`
      : native.errno === EINVAL ? `not a network namespace: ${netns}` : undefined;
    return new IpvsError({ errno: native.errno ?? 0, operation: 'open', path: native.path, cause: error }, reason);
  }
  return fromNativeError(error, 'open');
}

/**
 * A handle on the kernel's IPVS table of one network namespace. Every method returns a
 * Promise and runs off the event loop; calls on one handle are carried out in call order.
 * Invalid input is rejected before anything is sent, with a TypeError or RangeError naming
 * the field; kernel errors reject with an {@link IpvsError} carrying the kernel's errno.
 */
export class Ipvs implements AsyncDisposable {
  /** The network namespace path the handle is bound to; undefined for the caller's own. */
  readonly netns: string | undefined;
  #handle: NativeHandle | undefined;
  #tail: Promise<unknown> = Promise.resolve();
  #closed: Promise<void> | undefined;

  private constructor(handle: NativeHandle, netns: string | undefined) {
    this.#handle = handle;
    this.netns = netns;
  }

  /**
   * Opens a netlink socket (inside `options.netns` if given) and resolves the IPVS family.
   * @throws {IpvsUnavailableError} code 'ENOENT' when the kernel has no IPVS (`modprobe ip_vs`).
   * @throws {IpvsError} 'ENOENT' with `path` when the namespace does not exist, 'EPERM' when
   *   the namespace cannot be entered (CAP_SYS_ADMIN is needed).
   * @throws {TypeError} for malformed options.
   */
  static async open(options: OpenOptions = {}): Promise<Ipvs> {
    const opts = expectObject(options, 'options');
    rejectUnknownKeys(opts, new Set(['netns']), 'options');
    let netns: string | undefined;
    if (opts.netns !== undefined) {
      netns = expectString(opts.netns, 'options.netns');
      if (netns.length === 0 || netns.includes('\0')) throw new TypeError('options.netns must be a non-empty path');
    }
    try {
      const addon = nativeAddon();
      keepShapes();
      return new Ipvs(await addon.IpvsHandle.open(netns ?? ''), netns);
    } catch (error) {
      throw openError(error, netns);
    }
  }

  /** @internal Runs a daemon, config or info request after every earlier call on this handle has settled. */
  protected execute<T>(operation: string, request: ObjectRequest): Promise<T> {
    return this.enqueue(operation, (handle) => handle.execute(request) as Promise<T>);
  }

  /**
   * @internal Runs one service or destination change (a batch of one request record) in call
   * order; rejects with the kernel's errno and extended-ack message.
   */
  change(operation: string, record: RequestWriter): Promise<void> {
    return this.enqueue(operation, async (handle) => {
      const answer = await handle.executeBatch(record.records(), record.strings);
      const errno = answer.errors[0] ?? 0;
      if (errno === 0 && !answer.unknown[0]) return;
      const kernelMessage = answer.messages[0];
      throw new IpvsError(
        { errno, operation, ...(kernelMessage ? { kernelMessage } : {}) },
        answer.unknown[0] ? "the kernel's answer was lost, so it is not known whether the operation was applied" : undefined,
      );
    });
  }

  /** @internal A GET_SERVICE or GET_DEST request, answered as packed records. */
  protected query(handle: NativeHandle, command: number, service?: WireService): ReturnType<NativeHandle['query']> {
    const record = requestRecord(command, service);
    return handle.query(record.records(), record.strings);
  }

  /** @internal Queues work that needs the native handle, in call order. */
  enqueue<T>(operation: string, work: (handle: NativeHandle) => Promise<T>): Promise<T> {
    const handle = this.#handle;
    if (!handle || this.#closed) return Promise.reject(closedError(operation));
    const result = this.#tail.then(() => work(handle)).catch((error: unknown) => {
      throw fromNativeError(error, operation);
    });
    this.#tail = result.then(noop, noop);
    return result;
  }

  /** The connection-table readers use no socket, but a closed handle is closed for them too. */
  #throwIfClosed(operation: string): void {
    if (!this.#handle || this.#closed) throw closedError(operation);
  }

  // ---- services ----------------------------------------------------------------------------

  /**
   * Every virtual service in the namespace, with stats, each once.
   * @throws {IpvsError} 'EPERM'; 'EAGAIN' when services kept being added or deleted (in any
   *   namespace: the kernel's dump position counts them all) through several dumps in a row.
   */
  async listServices(): Promise<Service[]> {
    return servicesFromNative(await this.enqueue('listServices', (handle) => this.query(handle, Command.GET_SERVICE)));
  }

  /** One service. @throws {IpvsError} 'ESRCH' when there is no such service, 'EPERM'. */
  async getService(key: ServiceKey): Promise<Service> {
    const { wire } = checkServiceKey(key);
    const [found] = servicesFromNative(await this.enqueue('getService', (handle) => this.query(handle, Command.GET_SERVICE, wire)));
    if (!found) throw new IpvsError({ errno: ESRCH, operation: 'getService' });
    return found;
  }

  /**
   * Adds a virtual service. Defaults: scheduler 'wlc', not persistent, netmask /32 or /128.
   * @throws {IpvsError} 'EEXIST' if it exists, 'ENOENT' if the scheduler or persistence
   *   engine module is missing, 'EINVAL', 'EPERM'.
   */
  async addService(spec: ServiceSpec): Promise<void> {
    await this.change('addService', serviceRecord(Command.NEW_SERVICE, spec));
  }

  /**
   * Replaces a service's settings. Like ipvsadm -E, the spec is the whole definition: omitted
   * options take their defaults (scheduler 'wlc', not persistent, …), they are not kept.
   * @throws {IpvsError} 'ESRCH' when there is no such service, 'ENOENT' for a missing
   *   scheduler or persistence engine, 'EINVAL', 'EPERM'.
   */
  async editService(spec: ServiceSpec): Promise<void> {
    await this.change('editService', serviceRecord(Command.SET_SERVICE, spec));
  }

  /** Deletes a service and its destinations. @throws {IpvsError} 'ESRCH', 'EPERM'. */
  async deleteService(key: ServiceKey): Promise<void> {
    await this.change('deleteService', keyRecord(Command.DEL_SERVICE, checkServiceKey(key)));
  }

  // ---- destinations ------------------------------------------------------------------------

  /**
   * The real servers of a service, with stats and connection counts.
   * @throws {IpvsError} 'ESRCH' when there is no such service (the kernel itself would answer
   *   an empty list), 'EPERM'.
   */
  async listDestinations(key: ServiceKey): Promise<Destination[]> {
    const checked = checkServiceKey(key);
    const table = await this.enqueue('listDestinations', async (handle) => {
      // One queue slot for both requests, so nothing (close() included) runs in between.
      const exists = await this.query(handle, Command.GET_SERVICE, checked.wire);
      if (exists.services.length === 0) throw new IpvsError({ errno: ESRCH, operation: 'listDestinations' });
      return this.query(handle, Command.GET_DEST, checked.wire);
    });
    return destinationsFromNative(table, checked.family);
  }

  /**
   * Adds a real server. Defaults: forward 'route', weight 1, port = the service's port.
   * @throws {IpvsError} 'ESRCH' when the service does not exist, 'EEXIST' when the destination
   *   does, 'EINVAL' (e.g. mixed families while a sync daemon runs), 'EPERM'.
   */
  async addDestination(service: ServiceKey, spec: DestinationSpec): Promise<void> {
    await this.change('addDestination', destinationRecord(Command.NEW_DEST, service, spec));
  }

  /**
   * Replaces a real server's settings; omitted options take their defaults.
   * @throws {IpvsError} 'ESRCH' (no service), 'ENOENT' (no destination), 'EINVAL', 'EPERM'.
   */
  async editDestination(service: ServiceKey, spec: DestinationSpec): Promise<void> {
    await this.change('editDestination', destinationRecord(Command.SET_DEST, service, spec));
  }

  /** Removes a real server. @throws {IpvsError} 'ESRCH' (no service), 'ENOENT' (no destination), 'EPERM'. */
  async deleteDestination(service: ServiceKey, destination: DestinationKey): Promise<void> {
    const checked = checkServiceKey(service);
    const record = new RequestWriter(1);
    const base = record.begin(Command.DEL_DEST);
    record.setService(base, checked.record);
    packDestinationKey(destination, checked, record, base);
    record.end();
    await this.change('deleteDestination', record);
  }

  // ---- timeouts, daemons, info, flush, zero -----------------------------------------------

  /** TCP, TCP-FIN and UDP timeouts in seconds. @throws {IpvsError} 'EPERM'. */
  async getTimeouts(): Promise<Timeouts> {
    return timeoutsFromWire(await this.execute<WireTimeouts>('getTimeouts', { command: Command.GET_CONFIG }));
  }

  /**
   * Sets the given timeouts, each 1–2147483 seconds; omitted ones stay as they are.
   * @throws {RangeError} for a value out of range. @throws {IpvsError} 'EINVAL', 'EPERM'.
   */
  async setTimeouts(timeouts: Partial<Timeouts>): Promise<void> {
    await this.execute('setTimeouts', { command: Command.SET_CONFIG, timeouts: checkTimeouts(timeouts) });
  }

  /**
   * Starts the connection-sync daemon in master or backup state.
   * @throws {IpvsError} 'EEXIST' when one in that state runs, 'ENODEV' for an unknown
   *   interface, 'EINVAL' when a service has destinations of the other address family,
   *   'EPERM'.
   */
  async startDaemon(spec: DaemonSpec): Promise<void> {
    await this.execute('startDaemon', { command: Command.NEW_DAEMON, daemon: checkDaemonSpec(spec) });
  }

  /** Stops the sync daemon in that state. @throws {IpvsError} 'ESRCH' when none runs, 'EPERM'. */
  async stopDaemon(state: DaemonState): Promise<void> {
    await this.execute('stopDaemon', { command: Command.DEL_DAEMON, daemon: { state: checkDaemonState(state) } });
  }

  /** The running sync daemons, as the kernel reports them. @throws {IpvsError} 'EPERM'. */
  async listDaemons(): Promise<DaemonConfig[]> {
    const wires = await this.execute<WireDaemon[]>('listDaemons', { command: Command.GET_DAEMON });
    return wires.map(daemonFromWire);
  }

  /** IPVS version and connection hash table size. @throws {IpvsError} 'EPERM'. */
  async info(): Promise<IpvsInfo> {
    const raw = await this.execute<{ version: number; connectionTableSize: number }>('info', { command: Command.GET_INFO });
    const v = raw.version;
    return { version: `${(v >> 16) & 0xff}.${(v >> 8) & 0xff}.${v & 0xff}`, connectionTableSize: raw.connectionTableSize };
  }

  /** Deletes every service (and destination) in the namespace. @throws {IpvsError} 'EPERM'. */
  async flush(): Promise<void> {
    await this.change('flush', requestRecord(Command.FLUSH));
  }

  /**
   * Zeroes one service's counters (and its destinations'), or every service's. The kernel
   * folds per-CPU counters in every 2 s, so traffic of the last moments may still appear.
   * @throws {IpvsError} 'ESRCH' when there is no such service, 'EPERM'.
   */
  async zero(key?: ServiceKey): Promise<void> {
    const record = key === undefined ? requestRecord(Command.ZERO) : keyRecord(Command.ZERO, checkServiceKey(key));
    await this.change('zero', record);
  }

  // ---- batches and whole-table listing ------------------------------------------------------

  /**
   * A new, empty {@link Batch}: queue service and destination changes on it, then
   * `await batch.commit()` to send them all at once (as few sendmsg() calls as the socket
   * buffers allow) and get one result per operation. The batch runs in call order with the
   * handle's other calls. The kernel does not roll back: a failed operation leaves the others
   * applied. Queue-time validation throws TypeError or RangeError naming the field; see
   * {@link Batch.commit} for the results and error codes.
   */
  batch(): Batch {
    return new Batch((operation, work) => this.enqueue(operation, work));
  }

  /**
   * Every service with its destinations (and stats), read on this handle's socket: one
   * service dump, then one destination dump per service (the kernel dumps destinations per
   * service, one dump at a time per socket). No other call on the handle runs in between, but
   * the kernel gives no snapshot: a service another process removes meanwhile is listed with
   * no destinations. Each service is listed once (see listServices).
   * @throws {IpvsError} 'EPERM'; 'EAGAIN' as listServices.
   */
  async listTable(): Promise<Array<Service & { destinations: Destination[] }>> {
    // The objects of each part are built while the addon dumps the next one.
    const services: ServiceWithDestinations[] = [];
    let failure: { error: unknown } | undefined;
    // The objects keep no view of the records: each part's memory goes back to the addon for
    // the next listing as soon as its objects are built.
    const { releaseRecords } = nativeAddon();
    const last = await this.enqueue('listTable', (handle) => handle.listTable((part) => {
      if (failure) return;
      try {
        appendTableFromNative(services, part);
        releaseRecords(part.services, part.destinations);
      } catch (error) {
        failure = { error };
      }
    }));
    if (failure) throw failure.error;
    appendTableFromNative(services, last);
    releaseRecords(last.services, last.destinations);
    return services;
  }

  // ---- the connection table -----------------------------------------------------------------

  /**
   * Streams this namespace's connection table (/proc/net/ip_vs_conn, or ip_vs_conn_sync with
   * `sync: true`) in batches of plain objects, parsed natively off the event loop.
   * @throws {TypeError|RangeError} for bad options, at once.
   * @throws {IpvsError} 'ENOENT' when IPVS is not loaded, 'EPERM' when the namespace cannot
   *   be entered, 'EBADF' (at once) when the handle is closed; {@link ConnectionParseError}
   *   for a malformed line in strict mode.
   */
  connections(options?: ConnectionStreamOptions): ConnectionStream {
    this.#throwIfClosed('connections');
    return streamConnectionsIn(this.netns, options);
  }

  /**
   * The whole connection table as typed columns and string tables (`.length`, `.at(i)`,
   * iteration), without an object per connection.
   * @throws {IpvsError} 'ENOENT', 'EPERM', 'EBADF'; {@link ConnectionParseError} in strict mode.
   */
  async connectionTable(options?: ConnectionReadOptions): Promise<ConnectionTable> {
    this.#throwIfClosed('connectionTable');
    return readConnectionTableIn(this.netns, options);
  }

  /**
   * Counts connections by client, destination, service or state, entirely in native code
   * (e.g. clients with more than 100 ESTABLISHED connections: `{ by: 'client', state:
   * 'ESTABLISHED', minCount: 101 }`).
   * @throws {IpvsError} 'ENOENT', 'EPERM', 'EBADF'; {@link ConnectionParseError} in strict mode.
   */
  async countConnections(options: CountConnectionsOptions): Promise<ConnectionCounts> {
    this.#throwIfClosed('countConnections');
    return countConnectionsIn(this.netns, options);
  }

  // ---- lifetime ----------------------------------------------------------------------------

  /** Waits for queued calls, then closes the socket. Later calls reject with 'EBADF'. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = this.#tail.then(() => {
        this.#handle?.close();
        this.#handle = undefined;
      });
    }
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- declarative state (lib/reconcile) ----------------------------------------------------

  /**
   * Computes the changes that take the owned part of this namespace's table to `desired`,
   * from one `listTable()`, without changing anything. See {@link Plan} for the ordering and
   * {@link PlanOptions} for `scope` ('listed' by default) and `removal` ('delete' by default).
   * The whole desired state is checked first; nothing is read when it is invalid.
   * @throws {TypeError} for a value of the wrong type, an unknown field or option; messages
   *   start with the path (`services[3].destinations[1].weight must be …`).
   * @throws {RangeError} for a value out of range, a duplicate service key or destination key,
   *   a service outside a filter scope.
   * @throws {IpvsError} 'EPERM', 'EBADF' (closed handle), 'EAGAIN' (as listServices) from
   *   reading the table.
   */
  async plan(desired: DesiredService[], options?: PlanOptions): Promise<Plan> {
    // Loaded on first use: one-shot commands that only list or change the table start faster.
    const { planTable } = await import('./reconcile/apply');
    return planTable(this, desired, options);
  }

  /**
   * Applies a desired state (planning it first, from one `listTable()`) or a {@link Plan} from
   * `plan()`: every operation in one batch, then a read-back that reports `drift`. Resolves to
   * one result per operation; a failed operation (kernel code 'ESRCH', 'EEXIST', 'ENOENT',
   * 'EINVAL', …, or 'ENOBUFS' with `unknown: true`) never hides the others, and the kernel does
   * not roll back. A Plan is refused when the owned part of the table changed since it was made,
   * unless `options.ifStale` is 'replan'.
   * @throws {PlanStaleError} code 'ESTALE', for a stale plan (nothing is sent).
   * @throws {TypeError|RangeError} for an invalid desired state, plan or option, before anything
   *   is read or sent.
   * @throws {IpvsError} 'EPERM', 'EBADF', 'EAGAIN' (as listServices) when the table cannot be
   *   read or nothing could be sent.
   */
  async apply(desiredOrPlan: DesiredService[] | Plan, options?: ApplyOptions): Promise<ApplyResult> {
    const { applyTable } = await import('./reconcile/apply');
    return applyTable(this, desiredOrPlan, options);
  }
}

function noop(): void {}

/** A request record naming the checked service `key`. */
function keyRecord(command: number, key: CheckedKey): RequestWriter {
  const record = new RequestWriter(1);
  record.setService(record.begin(command), key.record);
  record.end();
  return record;
}

/** A request record with a full service definition. @throws {TypeError|RangeError} as packServiceDefinition. */
function serviceRecord(command: number, spec: unknown): RequestWriter {
  const record = new RequestWriter(1);
  packServiceDefinition(spec, record, record.begin(command));
  record.end();
  return record;
}

/** A request record with a destination of `service`. @throws {TypeError|RangeError} as packDestinationSpec. */
function destinationRecord(command: number, service: unknown, spec: unknown): RequestWriter {
  const checked = checkServiceKey(service);
  const record = new RequestWriter(1);
  const base = record.begin(command);
  record.setService(base, checked.record);
  packDestinationSpec(spec, checked, record, base);
  record.end();
  return record;
}

function closedError(operation: string): IpvsError {
  return new IpvsError({ errno: EBADF, operation }, 'The handle is closed');
}
