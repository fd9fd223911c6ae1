// Following a keepalived VRRP instance: its state arrives as lines on a FIFO (keepalived's own
// `vrrp_notify_fifo`, or one a `notify` script writes to), and the connection-sync daemon is
// switched as keepalived's `lvs_sync_daemon` switches it: master daemon on the VRRP master,
// backup daemon otherwise. keepalived holds the VIP; the director holds the table and the sync.
import { execFile } from 'node:child_process';
import { close as closeFd, constants as fsConstants, open as openFd } from 'node:fs';
import { stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { Socket } from 'node:net';

import { checkDaemonSpec } from '../config';
import { IpvsError } from '../errors';
import type { Ipvs } from '../ipvs';
import type { DaemonConfig, DaemonSpec, DaemonState } from '../types';
import { describe, expectObject, expectString, rejectUnknownKeys } from '../validate';

/** A VRRP instance's state as keepalived reports it, in lower case. */
export type VrrpState = 'master' | 'backup' | 'fault' | 'stop' | 'deleted';

/** The connection-sync daemon settings the director switches between master and backup. */
export type VrrpSyncConfig = Omit<DaemonSpec, 'state'>;

/**
 * Follow a keepalived VRRP instance and switch the connection-sync daemon with it. Give exactly
 * one of `keepalivedFifo` and `notify`.
 */
export interface VrrpConfig {
  /**
   * Path of keepalived's `vrrp_notify_fifo` (or `notify_fifo`): lines such as
   * `INSTANCE "VI_1" MASTER 100`. Created (mode 0600) when missing, so that it outlives keepalived's restarts.
   */
  keepalivedFifo?: string;
  /**
   * Path of a FIFO the director creates, for a keepalived `notify` script to write its arguments
   * to (`INSTANCE VI_1 MASTER 100`, quotes optional). See the README's "Two directors".
   */
  notify?: string;
  /** The vrrp_instance to follow (lines of other instances and of groups are ignored). */
  instance: string;
  /** The sync daemon: multicast interface, syncId (default 0), maxLength, group, port, ttl. */
  sync: VrrpSyncConfig;
}

/** @internal */
export interface ResolvedVrrp {
  fifo: string;
  source: 'keepalivedFifo' | 'notify';
  instance: string;
  sync: VrrpSyncConfig;
}

/** One state line: `INSTANCE "VI_1" MASTER 100`, `GROUP "G1" BACKUP`. */
export interface VrrpNotification {
  kind: 'instance' | 'group';
  name: string;
  state: VrrpState;
  priority?: number;
}

const VRRP_FIELDS = new Set(['keepalivedFifo', 'notify', 'instance', 'sync']);
const STATES: Record<string, VrrpState> = { MASTER: 'master', BACKUP: 'backup', FAULT: 'fault', STOP: 'stop', DELETED: 'deleted' };
const LINE = /^\s*(INSTANCE|GROUP)\s+(?:"([^"]*)"|(\S+))\s+([A-Z_]+)(?:\s+(\d+))?\s*$/;
const MAX_LINE = 4096;
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 30_000;
/** How often the FIFO's path is checked for having been replaced (keepalived recreates one it made). */
const REOPEN_CHECK_MS = 2000;

/**
 * Parses one line of keepalived's notify FIFO or of a notify script's arguments. Returns
 * undefined for lines that are not VRRP state changes: checker lines (`VS …`, `RS …`), priority
 * notices (`MASTER_PRIORITY`, `MASTER_RX_LOWER_PRI`), anything else.
 */
export function parseVrrpLine(line: string): VrrpNotification | undefined {
  const match = LINE.exec(line);
  if (!match) return undefined;
  const state = STATES[match[4]!];
  if (!state) return undefined;
  const notification: VrrpNotification = {
    kind: match[1] === 'INSTANCE' ? 'instance' : 'group', name: match[2] ?? match[3]!, state,
  };
  if (match[5] !== undefined) notification.priority = Number(match[5]);
  return notification;
}

/** The sync daemon state keepalived's lvs_sync_daemon runs in each VRRP state. */
export function daemonStateFor(state: VrrpState): DaemonState {
  // STOP/DELETED: keepalived stops its own daemons on exit; the director outlives keepalived and
  // keeps receiving, so the connections are here when this node is elected again.
  return state === 'master' ? 'master' : 'backup';
}

/**
 * Checks the `vrrp` section of a director configuration.
 * @throws {TypeError} for a wrong type or an unknown field; {RangeError} for a bad sync setting,
 *   or when neither or both of keepalivedFifo and notify are given.
 */
export function checkVrrpConfig(value: unknown, field = 'vrrp'): ResolvedVrrp {
  const spec = expectObject(value, field);
  rejectUnknownKeys(spec, VRRP_FIELDS, field);
  if ((spec.keepalivedFifo === undefined) === (spec.notify === undefined)) {
    throw new RangeError(`${field} must have exactly one of keepalivedFifo and notify`);
  }
  const source = spec.keepalivedFifo !== undefined ? 'keepalivedFifo' : 'notify';
  const fifo = expectString(spec[source], `${field}.${source}`);
  if (!fifo.startsWith('/')) throw new RangeError(`${field}.${source} must be an absolute path, got ${describe(fifo)}`);
  const instance = expectString(spec.instance, `${field}.instance`);
  if (instance === '' || /["\s]/.test(instance)) {
    throw new RangeError(`${field}.instance must be a vrrp_instance name (no spaces or quotes), got ${describe(instance)}`);
  }
  const sync = expectObject(spec.sync, `${field}.sync`);
  if ('state' in sync) throw new TypeError(`${field}.sync.state is not a known option (the VRRP state decides it)`);
  // Both states must accept it (the backup's maxLength minimum is higher).
  checkDaemonSpec({ ...sync, state: 'master' }, `${field}.sync`);
  checkDaemonSpec({ ...sync, state: 'backup' }, `${field}.sync`);
  return { fifo, source, instance, sync: { ...(sync as unknown as VrrpSyncConfig) } };
}

/** @internal Reads lines from a FIFO without blocking: opened read-write, so it never sees EOF. */
export class FifoLineReader {
  readonly #path: string;
  readonly #onLine: (line: string) => void;
  readonly #onError: (error: Error) => void;
  #socket: Socket | undefined;
  #ino: number | undefined;
  #partial = '';
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #checking = false;

  constructor(path: string, onLine: (line: string) => void, onError: (error: Error) => void) {
    this.#path = path;
    this.#onLine = onLine;
    this.#onError = onError;
  }

  /** Creates the FIFO when missing and opens it. @throws when the path is not a FIFO, or cannot be made or opened. */
  async open(): Promise<void> {
    await this.#openOnce();
    this.#timer = setInterval(() => void this.#checkReplaced(), REOPEN_CHECK_MS);
    this.#timer.unref();
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#socket?.destroy();
    this.#socket = undefined;
  }

  async #openOnce(): Promise<void> {
    let info = await stat(this.#path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (!info) {
      await mkfifo(this.#path);
      info = await stat(this.#path);
    }
    if (!info.isFIFO()) throw Object.assign(new Error(`${this.#path} is not a FIFO`), { code: 'EINVAL', path: this.#path });
    // Read-write: opening never waits for a writer, and a writer that exits is no end of file.
    // A plain fd (not a FileHandle, which closes it when collected): the socket owns it.
    const fd = await promisify(openFd)(this.#path, fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
    if (this.#closed) {
      closeFd(fd, () => {});
      return;
    }
    this.#ino = info.ino;
    this.#partial = '';
    const socket = new Socket({ fd, readable: true, writable: false });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#data(chunk));
    socket.on('error', (error) => this.#onError(error));
    this.#socket = socket;
  }

  #data(chunk: string): void {
    const text = this.#partial + chunk;
    const lines = text.split('\n');
    this.#partial = lines.pop() ?? '';
    if (this.#partial.length > MAX_LINE) this.#partial = '';
    for (const line of lines) this.#onLine(line);
  }

  /** keepalived deletes a FIFO it created when it exits and makes a new one when it starts. */
  async #checkReplaced(): Promise<void> {
    if (this.#checking || this.#closed) return;
    this.#checking = true;
    try {
      const info = await stat(this.#path).catch(() => undefined);
      if (info?.ino === this.#ino && info?.isFIFO()) return;
      this.#socket?.destroy();
      this.#socket = undefined;
      await this.#openOnce();
    } catch (error) {
      this.#onError(error as Error);
    } finally {
      this.#checking = false;
    }
  }
}

function mkfifo(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('mkfifo', ['-m', '600', path], (error, _stdout, stderr) => {
      if (!error) resolve();
      else if (/File exists/.test(stderr)) resolve();
      else reject(new Error(`mkfifo ${path} failed: ${stderr.trim() || error.message}`, { cause: error }));
    });
  });
}

/** What {@link VrrpFollower} reports through the director. */
export interface VrrpHooks {
  /** A state line of the followed instance. */
  transition(event: { instance: string; from: VrrpState | 'unknown'; to: VrrpState; priority?: number }): void;
  /** The sync daemon now runs in `to`; `latency` is ms from the state line (or start) to done. */
  daemon(event: { from: DaemonState | 'none'; to: DaemonState; interface: string; syncId: number; latency: number }): void;
  error(operation: string, error: unknown, retryIn?: number): void;
}

/** The VRRP part of the director's status. */
export interface VrrpStatus {
  instance: string;
  /** 'unknown' until keepalived reports a transition. */
  state: VrrpState | 'unknown';
  /** Date.now() of the last transition (or of the start). */
  since: number;
  priority?: number;
  /** The daemon the director keeps running ('none' before the first switch succeeded). */
  daemon: DaemonState | 'none';
  transitions: number;
}

/** The calls on an Ipvs handle the follower makes (a fake kernel in unit tests). */
export type DaemonControl = Pick<Ipvs, 'startDaemon' | 'stopDaemon' | 'listDaemons'>;

/**
 * @internal The state machine: a notification of the followed instance sets the wanted daemon
 * state; one switch runs at a time, reconciling the kernel's daemons with it (a failed switch is
 * retried with backoff while the state stands).
 */
export class VrrpFollower {
  readonly #config: ResolvedVrrp;
  readonly #hooks: VrrpHooks;
  #ipvs: DaemonControl | undefined;
  #reader: FifoLineReader | undefined;
  #state: VrrpState | 'unknown' = 'unknown';
  #since = Date.now();
  #priority: number | undefined;
  #transitions = 0;
  /** undefined: keep what runs (a restart while keepalived is master must not interrupt the sync). */
  #wanted: DaemonState | undefined;
  #wantedAt = 0;
  #running: DaemonState | 'none' = 'none';
  #switching: Promise<void> | undefined;
  #again = false;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #backoff = 0;
  #stopped = false;

  constructor(config: ResolvedVrrp, hooks: VrrpHooks) {
    this.#config = config;
    this.#hooks = hooks;
  }

  get config(): ResolvedVrrp {
    return this.#config;
  }

  /**
   * Reads the daemons that run, starts the backup daemon unless one in the configured settings
   * already runs (as keepalived does when it starts), then opens the FIFO.
   * @throws when the FIFO cannot be made or opened, or the daemons cannot be read.
   */
  async start(ipvs: DaemonControl, options: { openFifo?: boolean } = {}): Promise<void> {
    this.#ipvs = ipvs;
    const running = await ipvs.listDaemons();
    const current = running.find((d) => sameSettings(d, this.#config.sync));
    if (current && running.length === 1) this.#running = current.state;
    else this.#want('backup');
    if (options.openFifo !== false) {
      this.#reader = new FifoLineReader(this.#config.fifo, (line) => this.handleLine(line), (error) => this.#hooks.error('vrrp-fifo', error));
      await this.#reader.open();
    }
    await this.settled();
  }

  stop(): void {
    this.#stopped = true;
    this.#reader?.close();
    clearTimeout(this.#retryTimer);
  }

  /** Feeds one line (from the FIFO; unit tests call it directly). */
  handleLine(line: string): void {
    const notification = parseVrrpLine(line);
    if (notification) this.handle(notification);
  }

  handle(notification: VrrpNotification): void {
    if (this.#stopped || notification.kind !== 'instance' || notification.name !== this.#config.instance) return;
    const from = this.#state;
    if (notification.priority !== undefined) this.#priority = notification.priority;
    if (from === notification.state) return;
    this.#state = notification.state;
    this.#since = Date.now();
    this.#transitions++;
    this.#hooks.transition({
      instance: this.#config.instance, from, to: notification.state,
      ...(notification.priority !== undefined ? { priority: notification.priority } : {}),
    });
    this.#want(daemonStateFor(notification.state));
  }

  /** Resolves when no switch is running or queued (retries pending after a failure do not count). */
  async settled(): Promise<void> {
    while (this.#switching) await this.#switching;
  }

  status(): VrrpStatus {
    return {
      instance: this.#config.instance, state: this.#state, since: this.#since,
      ...(this.#priority !== undefined ? { priority: this.#priority } : {}),
      daemon: this.#running, transitions: this.#transitions,
    };
  }

  #want(state: DaemonState): void {
    this.#wanted = state;
    this.#wantedAt = Date.now();
    this.#backoff = 0;
    clearTimeout(this.#retryTimer);
    this.#kick();
  }

  #kick(): void {
    if (this.#switching) {
      this.#again = true;
      return;
    }
    this.#switching = (async () => {
      try {
        do {
          this.#again = false;
          await this.#switchOnce();
        } while (this.#again && !this.#stopped);
      } finally {
        this.#switching = undefined;
      }
    })();
  }

  async #switchOnce(): Promise<void> {
    const wanted = this.#wanted;
    const ipvs = this.#ipvs;
    if (wanted === undefined || !ipvs || this.#stopped) return;
    const other: DaemonState = wanted === 'master' ? 'backup' : 'master';
    const from = this.#running;
    try {
      const running = await ipvs.listDaemons();
      // As keepalived: stop the other state's daemon first, then start the wanted one.
      if (running.some((d) => d.state === other)) await ignoreCode(ipvs.stopDaemon(other), 'ESRCH');
      const same = running.find((d) => d.state === wanted);
      if (same && !sameSettings(same, this.#config.sync)) await ignoreCode(ipvs.stopDaemon(wanted), 'ESRCH');
      if (!same || !sameSettings(same, this.#config.sync)) await ignoreCode(ipvs.startDaemon({ ...this.#config.sync, state: wanted }), 'EEXIST');
    } catch (error) {
      if (this.#stopped) return;
      this.#running = 'none';
      const retryIn = Math.min(RETRY_FIRST_MS * 2 ** this.#backoff, RETRY_MAX_MS);
      this.#backoff++;
      this.#hooks.error('sync-daemon', error, retryIn);
      clearTimeout(this.#retryTimer);
      this.#retryTimer = setTimeout(() => this.#kick(), retryIn);
      return;
    }
    this.#backoff = 0;
    this.#running = wanted;
    if (this.#wanted === wanted) this.#wanted = undefined;
    if (from !== wanted) {
      this.#hooks.daemon({
        from, to: wanted, interface: this.#config.sync.interface, syncId: this.#config.sync.syncId ?? 0, latency: Date.now() - this.#wantedAt,
      });
    }
  }
}

function sameSettings(running: DaemonConfig, sync: VrrpSyncConfig): boolean {
  if (running.interface !== sync.interface || running.syncId !== (sync.syncId ?? 0)) return false;
  if (sync.maxLength !== undefined && running.maxLength !== sync.maxLength) return false;
  if (sync.port !== undefined && (running.port ?? 8848) !== sync.port) return false;
  if (sync.ttl !== undefined && (running.ttl ?? 1) !== sync.ttl) return false;
  if (sync.group !== undefined && running.group !== undefined && running.group !== sync.group) return false;
  return true;
}

async function ignoreCode(promise: Promise<void>, code: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    if (!(error instanceof IpvsError && error.code === code)) throw error;
  }
}
