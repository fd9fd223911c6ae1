// The public handle: validates every input, then runs the request on the addon's thread pool,
// in call order, over the handle's own netlink socket.
import { constants as osConstants } from 'node:os';

import { Batch, type BatchTuning, type NativeBatchResults } from './batch';
import {
  countConnections, readConnectionTable, streamConnections, type ConnectionCounts, type ConnectionReadOptions,
  type ConnectionStream, type ConnectionStreamOptions, type ConnectionTable, type CountConnectionsOptions,
} from './connections';
import { Command } from './constants';
import { checkDaemonSpec, checkDaemonState, checkTimeouts, daemonFromWire, timeoutsFromWire, type WireDaemon, type WireTimeouts } from './config';
import { checkDestinationKey, checkDestinationSpec, destinationFromWire, type WireDestination } from './destination';
import { IpvsError, IpvsUnavailableError, fromNativeError } from './errors';
import { nativeAddon } from './native';
import { applyTable, planTable } from './reconcile/apply';
import type { ApplyOptions, ApplyResult, DesiredService, Plan, PlanOptions } from './reconcile/types';
import { checkServiceKey, checkServiceSpec, serviceFromWire, type WireService } from './service';
import { tableFromNative, type NativeTable } from './table';
import type {
  DaemonConfig, DaemonSpec, DaemonState, Destination, DestinationKey, DestinationSpec, IpvsInfo, OpenOptions,
  Service, ServiceKey, ServiceSpec, Timeouts,
} from './types';
import { expectObject, expectString, rejectUnknownKeys } from './validate';

/** A request as the addon takes it (see native/ipvs_handle.cc). */
export interface WireRequest {
  command: number;
  service?: WireService;
  destination?: WireDestination;
  daemon?: WireDaemon;
  timeouts?: WireTimeouts;
}

export interface NativeHandle {
  execute(request: WireRequest): Promise<unknown>;
  /** Packed requests (see lib/batch.ts RecordWriter) -> one errno per request. */
  executeBatch(records: Uint32Array, strings: string[], tuning?: BatchTuning): Promise<NativeBatchResults>;
  /** Every service and its destinations, read in one thread-pool job, packed (see lib/table.ts). */
  listTable(): Promise<NativeTable>;
  close(): void;
}

interface NativeModule {
  IpvsHandle: { open(netnsPath: string): Promise<NativeHandle> };
}

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
    const addon = nativeAddon() as unknown as NativeModule;
    try {
      return new Ipvs(await addon.IpvsHandle.open(netns ?? ''), netns);
    } catch (error) {
      throw openError(error, netns);
    }
  }

  /** Runs `request` after every earlier call on this handle has settled. */
  protected execute<T>(operation: string, request: WireRequest): Promise<T> {
    return this.enqueue(operation, (handle) => handle.execute(request) as Promise<T>);
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

  /** Every virtual service in the namespace, with stats. @throws {IpvsError} 'EPERM'. */
  async listServices(): Promise<Service[]> {
    const wires = await this.execute<WireService[]>('listServices', { command: Command.GET_SERVICE });
    return wires.map(serviceFromWire);
  }

  /** One service. @throws {IpvsError} 'ESRCH' when there is no such service, 'EPERM'. */
  async getService(key: ServiceKey): Promise<Service> {
    const { wire } = checkServiceKey(key);
    const [found] = await this.execute<WireService[]>('getService', { command: Command.GET_SERVICE, service: wire });
    if (!found) throw new IpvsError({ errno: ESRCH, operation: 'getService' });
    return serviceFromWire(found);
  }

  /**
   * Adds a virtual service. Defaults: scheduler 'wlc', not persistent, netmask /32 or /128.
   * @throws {IpvsError} 'EEXIST' if it exists, 'ENOENT' if the scheduler or persistence
   *   engine module is missing, 'EINVAL', 'EPERM'.
   */
  async addService(spec: ServiceSpec): Promise<void> {
    await this.execute('addService', { command: Command.NEW_SERVICE, service: checkServiceSpec(spec) });
  }

  /**
   * Replaces a service's settings. Like ipvsadm -E, the spec is the whole definition: omitted
   * options take their defaults (scheduler 'wlc', not persistent, …), they are not kept.
   * @throws {IpvsError} 'ESRCH' when there is no such service, 'ENOENT' for a missing
   *   scheduler or persistence engine, 'EINVAL', 'EPERM'.
   */
  async editService(spec: ServiceSpec): Promise<void> {
    await this.execute('editService', { command: Command.SET_SERVICE, service: checkServiceSpec(spec) });
  }

  /** Deletes a service and its destinations. @throws {IpvsError} 'ESRCH', 'EPERM'. */
  async deleteService(key: ServiceKey): Promise<void> {
    const { wire } = checkServiceKey(key);
    await this.execute('deleteService', { command: Command.DEL_SERVICE, service: wire });
  }

  // ---- destinations ------------------------------------------------------------------------

  /**
   * The real servers of a service, with stats and connection counts.
   * @throws {IpvsError} 'ESRCH' when there is no such service (the kernel itself would answer
   *   an empty list), 'EPERM'.
   */
  async listDestinations(key: ServiceKey): Promise<Destination[]> {
    const checked = checkServiceKey(key);
    const wires = await this.enqueue('listDestinations', async (handle) => {
      // One queue slot for both requests, so nothing (close() included) runs in between.
      const [exists] = (await handle.execute({ command: Command.GET_SERVICE, service: checked.wire })) as WireService[];
      if (!exists) throw new IpvsError({ errno: ESRCH, operation: 'listDestinations' });
      return (await handle.execute({ command: Command.GET_DEST, service: checked.wire })) as WireDestination[];
    });
    return wires.map((wire) => destinationFromWire(wire, checked));
  }

  /**
   * Adds a real server. Defaults: forward 'route', weight 1, port = the service's port.
   * @throws {IpvsError} 'ESRCH' when the service does not exist, 'EEXIST' when the destination
   *   does, 'EINVAL' (e.g. mixed families while a sync daemon runs), 'EPERM'.
   */
  async addDestination(service: ServiceKey, spec: DestinationSpec): Promise<void> {
    const checked = checkServiceKey(service);
    const destination = checkDestinationSpec(spec, checked);
    await this.execute('addDestination', { command: Command.NEW_DEST, service: checked.wire, destination });
  }

  /**
   * Replaces a real server's settings; omitted options take their defaults.
   * @throws {IpvsError} 'ESRCH' (no service), 'ENOENT' (no destination), 'EINVAL', 'EPERM'.
   */
  async editDestination(service: ServiceKey, spec: DestinationSpec): Promise<void> {
    const checked = checkServiceKey(service);
    const destination = checkDestinationSpec(spec, checked);
    await this.execute('editDestination', { command: Command.SET_DEST, service: checked.wire, destination });
  }

  /** Removes a real server. @throws {IpvsError} 'ESRCH' (no service), 'ENOENT' (no destination), 'EPERM'. */
  async deleteDestination(service: ServiceKey, destination: DestinationKey): Promise<void> {
    const checked = checkServiceKey(service);
    const wire = checkDestinationKey(destination, checked);
    await this.execute('deleteDestination', { command: Command.DEL_DEST, service: checked.wire, destination: wire });
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
    await this.execute('flush', { command: Command.FLUSH });
  }

  /**
   * Zeroes one service's counters (and its destinations'), or every service's. The kernel
   * folds per-CPU counters in every 2 s, so traffic of the last moments may still appear.
   * @throws {IpvsError} 'ESRCH' when there is no such service, 'EPERM'.
   */
  async zero(key?: ServiceKey): Promise<void> {
    const service = key === undefined ? undefined : checkServiceKey(key).wire;
    await this.execute('zero', { command: Command.ZERO, ...(service ? { service } : {}) });
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
   * no destinations.
   * @throws {IpvsError} 'EPERM'.
   */
  async listTable(): Promise<Array<Service & { destinations: Destination[] }>> {
    return tableFromNative(await this.enqueue('listTable', (handle) => handle.listTable()));
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
    return streamConnections(this.netns, options);
  }

  /**
   * The whole connection table as typed columns and string tables (`.length`, `.at(i)`,
   * iteration), without an object per connection.
   * @throws {IpvsError} 'ENOENT', 'EPERM', 'EBADF'; {@link ConnectionParseError} in strict mode.
   */
  async connectionTable(options?: ConnectionReadOptions): Promise<ConnectionTable> {
    this.#throwIfClosed('connectionTable');
    return readConnectionTable(this.netns, options);
  }

  /**
   * Counts connections by client, destination, service or state, entirely in native code
   * (e.g. clients with more than 100 ESTABLISHED connections: `{ by: 'client', state:
   * 'ESTABLISHED', minCount: 101 }`).
   * @throws {IpvsError} 'ENOENT', 'EPERM', 'EBADF'; {@link ConnectionParseError} in strict mode.
   */
  async countConnections(options: CountConnectionsOptions): Promise<ConnectionCounts> {
    this.#throwIfClosed('countConnections');
    return countConnections(this.netns, options);
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
   * @throws {IpvsError} 'EPERM', 'EBADF' (closed handle) from reading the table.
   */
  async plan(desired: DesiredService[], options?: PlanOptions): Promise<Plan> {
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
   * @throws {IpvsError} 'EPERM', 'EBADF' when the table cannot be read or nothing could be sent.
   */
  async apply(desiredOrPlan: DesiredService[] | Plan, options?: ApplyOptions): Promise<ApplyResult> {
    return applyTable(this, desiredOrPlan, options);
  }
}

function noop(): void {}

function closedError(operation: string): IpvsError {
  return new IpvsError({ errno: EBADF, operation }, 'The handle is closed');
}
