// The director engine: health-checks every configured real server, keeps the kernel table at
// the state the checks call for (through reconcile's plan/apply), and handles quorum and sorry
// servers, drains, drift repair and live configuration updates. It never throws once started:
// kernel errors are 'error' events and are retried with backoff; failing servers are data.
import { spawn } from 'node:child_process';

import { IpvsError } from '../errors';
import { Ipvs } from '../ipvs';
import { plannedListing } from '../reconcile/plan';
import { addressTextAt, destinationRecordsOf } from '../reconcile/records';
import { destinationKeyText, type TableService } from '../reconcile/settings';
import type { DesiredService, PlanOperation, ReconcileScope } from '../reconcile/types';
import { layoutOf } from '../table-view';
import type { Destination, DestinationKey, DestinationSpec, ServiceKey, ServiceSpec } from '../types';
import { expectObject, expectOneOf, rejectUnknownKeys } from '../validate';
import type { CheckResult, CheckTarget } from './checks/index';
import { acquireProbeTransport } from './checks/probe-transport';
import { checkEnvironment } from './checks/exec';
import {
  DEFAULT_CHECK_PORTS, hostPort, resolveConfig, serviceId, type DirectorConfig, type ResolvedConfig,
  type ResolvedDestination, type ResolvedService,
} from './config';
import {
  EventHub, type DirectorEvent, type DirectorEventOf, type DirectorEventType, type DrainedEvent, type EventIteratorOptions,
  type WeightEvent,
} from './events';
import { openConnectionsByDestination } from './drain-count';
import { DestinationHealth, type HealthState } from './health';
import { CheckSchedule, type RunCheck } from './scheduler';
import { VrrpFollower, type ResolvedVrrp, type VrrpStatus } from './vrrp';

export interface DirectorOptions {
  /** An open handle to drive; the director does not close it. Default: one it opens (and closes on stop). */
  ipvs?: Ipvs;
  /** The network namespace for the handle the director opens, e.g. '/run/netns/lb'. */
  netns?: string;
  /** Emit a 'check' event for every attempt. Default false. */
  checkEvents?: boolean;
}

export interface StopOptions {
  /** 'as-is' (default) leaves the table as it is; 'remove' deletes the configured services. */
  leave?: 'as-is' | 'remove';
}

/** A check's state in {@link DirectorStatus}. */
export interface CheckStatus {
  type: string;
  state: HealthState;
  successes: number;
  failures: number;
  /** The last attempt, if any: outcome, message, latency (ms) and when (Date.now()). */
  last?: { ok: boolean; message: string; latency: number; at: number };
}

/** A destination in {@link DirectorStatus}. */
export interface DestinationStatus {
  id: string;
  address: string;
  port: number;
  /** 'up', 'down', 'pending' (not checked yet), 'draining', or 'drained' (held out by drain()). */
  health: HealthState | 'draining' | 'drained';
  /** The configured weight. */
  configuredWeight: number;
  /** The weight the director keeps in the kernel now (0 when quiesced), undefined when absent. */
  weight: number | undefined;
  /** The last connection counts read from the kernel (refreshed every resyncInterval and while draining). */
  connections: { active: number; inactive: number; persistent: number };
  checks: CheckStatus[];
  drain?: { reason: 'removed' | 'requested'; started: number; deadline: number };
  sorry?: boolean;
}

/** A service in {@link DirectorStatus}. */
export interface ServiceStatus {
  id: string;
  key: ServiceKey;
  quorum: { state: 'up' | 'down'; liveWeight: number; quorum: number; hysteresis: number };
  sorry: boolean;
  destinations: DestinationStatus[];
}

export interface DirectorStatus {
  running: boolean;
  services: ServiceStatus[];
  /** Whether the table matched the director's state at the last sync (false after a kernel error, until a retry succeeds). */
  inSync: boolean;
  /** With the `vrrp` option: the followed instance's state and the sync daemon's. */
  vrrp?: VrrpStatus;
}

interface Ramp {
  start: number;
  timer: ReturnType<typeof setInterval>;
}

interface DestState {
  cfg: ResolvedDestination;
  health: DestinationHealth;
  schedule: CheckSchedule | undefined;
  ramp: Ramp | undefined;
  /** Ramp on the next transition to up (destinations added while running, or after a failure). */
  rampOnUp: boolean;
  /** Held out by drain() until undrain(). */
  held: boolean;
  /** Why its weight changes next, when it is not its health. */
  hint: WeightEvent['reason'] | undefined;
}

interface DrainState {
  id: string;
  spec: DestinationSpec;
  reason: 'removed' | 'requested';
  started: number;
  deadline: number;
  /** For a destination removed from the configuration: its state, restored if it comes back. */
  dest: DestState | undefined;
  waiters: Array<{ resolve: (event: DrainedEvent) => void; reject: (error: Error) => void }>;
}

interface SvcState {
  cfg: ResolvedService;
  dests: Map<string, DestState>;
  drains: Map<string, DrainState>;
  quorum: 'up' | 'down';
  sorry: boolean;
  /** Removed from the configuration: deleted once its drains end. */
  retired: boolean;
}

interface Counts {
  active: number;
  inactive: number;
  persistent: number;
}

/** @internal Replaces a director's check runner (unit tests drive the health machine with it). */
export let replaceCheckRunner: (director: Director, run: RunCheck) => void;

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const NO_COUNTS: Counts = Object.freeze({ active: 0, inactive: 0, persistent: 0 });

/**
 * A health-checking director for one network namespace's IPVS table.
 *
 * ```ts
 * const director = new Director(await loadConfig('director.yaml'), { netns: '/run/netns/lb' });
 * director.on('down', (e) => console.log(`${e.destination} down: ${e.reason}`));
 * await director.start();
 * // … director.update(newConfig), director.drain(service, destination), director.status()
 * await director.stop();
 * ```
 *
 * Semantics (see the README's director section): a destination is up when all its checks
 * pass; a failed one is quiesced (weight 0) or removed; a recovered one gets its weight back,
 * ramped over `slowStart`; on a restart, destinations already serving in the kernel stay up
 * until their checks fail, and new ones get no traffic before their first passing round.
 */
export class Director {
  readonly #events = new EventHub();
  readonly #options: DirectorOptions;
  readonly #services = new Map<string, SvcState>();
  #config: ResolvedConfig;
  #ipvs: Ipvs | undefined;
  #ownsHandle = false;
  #running = false;
  #stopped = false;
  #resyncTimer: ReturnType<typeof setInterval> | undefined;
  #drainTimer: ReturnType<typeof setInterval> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Checks not run (EMFILE…) since the last 'check' error event, reported at most once a second. */
  #notRun: { count: number; last: { service: string; destination: string; what: string; code?: string } | undefined; at: number; timer?: ReturnType<typeof setTimeout> } =
    { count: 0, last: undefined, at: 0 };
  #backoff = 0;
  // Sync bookkeeping: requests coalesce; one sync runs at a time.
  #syncQueued = false;
  #syncing: Promise<void> | undefined;
  #syncWaiters: Array<() => void> = [];
  /** A requested sync waits for this (performance.now()); see #requestSync. */
  #nextSyncAt = 0;
  #syncTimer: ReturnType<typeof setTimeout> | undefined;
  /** Whether the last sync applied everything: drift is only drift against a trusted state. */
  #trusted = false;
  /** Each desired element's JSON at the last successful sync, by 'service' or 'service|destination'. */
  #lastDesired = new Map<string, string>();
  /** What each destination's weight in the kernel is, as far as the director knows. */
  #kernelWeights = new Map<string, { weight: number; present: boolean }>();
  #counts = new Map<string, Counts>();
  #drainPolling = false;
  #readingCounts = false;
  /** The next sync refreshes the connection counts from its listing (set every resyncInterval). */
  #countsWanted = false;
  /** A listing whose connection counts #counts does not hold yet (see #countsFromListing). */
  #countsListing: TableService[] | undefined;
  /** How attempts are made; undefined: the checks' own way (native probes where possible). */
  #run: RunCheck | undefined;
  /** Lets go of the probe transport the checks use (held while running). */
  #releaseTransport: (() => void) | undefined;
  #vrrp: VrrpFollower | undefined;

  /**
   * Checks the configuration (nothing is opened or sent yet).
   * @throws {TypeError|RangeError} for an invalid configuration or options, naming the path
   *   ('services[0].checks[1].timeout must be …').
   */
  constructor(config: DirectorConfig, options: DirectorOptions = {}) {
    const opts = expectObject(options, 'options');
    rejectUnknownKeys(opts, new Set(['ipvs', 'netns', 'checkEvents']), 'options');
    if (opts.ipvs !== undefined && !(opts.ipvs instanceof Ipvs)) throw new TypeError('options.ipvs must be an Ipvs handle');
    if (opts.ipvs !== undefined && opts.netns !== undefined) throw new TypeError('options: give ipvs or netns, not both');
    this.#config = resolveConfig(config);
    this.#options = options;
    this.#events.onListenerError = (error) => this.#error('listener', error);
    this.#vrrp = this.#config.vrrp ? this.#newVrrpFollower(this.#config.vrrp) : undefined;
  }

  #newVrrpFollower(config: ResolvedVrrp): VrrpFollower {
    return new VrrpFollower(config, {
      transition: (event) => this.#emit({ type: 'vrrp', time: Date.now(), ...event }),
      daemon: (event) => this.#emit({ type: 'sync-daemon', time: Date.now(), ...event }),
      error: (operation, error, retryIn) => this.#error(operation, error, retryIn === undefined ? {} : { retryIn }),
    });
  }

  static {
    replaceCheckRunner = (director, run) => {
      director.#run = run;
    };
  }

  // ---- events ------------------------------------------------------------------------------

  /** Adds a listener. Listeners that throw are reported as 'error' events, never to the caller. */
  on<T extends DirectorEventType>(type: T, listener: (event: DirectorEventOf<T>) => void): this {
    this.#events.on(type, listener as (event: DirectorEvent) => void);
    return this;
  }

  off<T extends DirectorEventType>(type: T, listener: (event: DirectorEventOf<T>) => void): this {
    this.#events.off(type, listener as (event: DirectorEvent) => void);
    return this;
  }

  /**
   * Every event from now on, as an async iterator (`for await (const e of director.events())`);
   * it ends when the director stops, or on `options.signal`. A reader that falls more than
   * `bufferSize` (default 10,000) events behind loses the oldest.
   */
  events(options?: EventIteratorOptions): AsyncIterableIterator<DirectorEvent> {
    return this.#events.iterate(options);
  }

  #emit(event: DirectorEvent): void {
    this.#events.emit(event);
  }

  #error(operation: string, error: unknown, extra: { service?: string; destination?: string; retryIn?: number } = {}): void {
    const err = error instanceof Error ? error : new Error(String(error));
    this.#emit({ type: 'error', time: Date.now(), error: err, operation, ...extra });
  }

  // ---- lifetime ----------------------------------------------------------------------------

  /**
   * Opens the handle (unless one was given), reads the table, takes over what is there without
   * a blip, applies the configuration and starts the checks. Resolves once the first sync ran.
   * @throws {IpvsUnavailableError} / {IpvsError} ('ENOENT', 'EPERM') when the table cannot be
   *   opened or read at all; nothing keeps running then.
   */
  async start(): Promise<void> {
    if (this.#running || this.#stopped) throw new Error(this.#stopped ? 'the director was stopped' : 'the director is already running');
    this.#ipvs = this.#options.ipvs ?? await Ipvs.open(this.#options.netns === undefined ? {} : { netns: this.#options.netns });
    if (this.#config.vrrp) this.#vrrp = this.#newVrrpFollower(this.#config.vrrp);
    this.#ownsHandle = this.#options.ipvs === undefined;
    let live: Awaited<ReturnType<Ipvs['listTable']>>;
    try {
      live = await this.#ipvs.listTable();
      // The sync daemon follows VRRP whatever the checks do: both nodes keep the same table.
      await this.#vrrp?.start(this.#ipvs);
    } catch (error) {
      this.#vrrp?.stop();
      if (this.#ownsHandle) await this.#ipvs.close();
      throw error;
    }
    this.#running = true;
    this.#releaseTransport = acquireProbeTransport();
    const liveByService = new Map(live.map((s) => [serviceId(s), s]));
    for (const cfg of this.#config.services) {
      const kernel = liveByService.get(cfg.id);
      const kernelDests = new Map((kernel?.destinations ?? []).map((d) => [hostPort(d.address, d.port), d]));
      for (const [id, d] of kernelDests) {
        this.#kernelWeights.set(`${cfg.id}|${id}`, { weight: d.weight, present: true });
        this.#counts.set(`${cfg.id}|${id}`, countsOf(d));
      }
      const sorryInKernel = cfg.sorryServers.some((s) => kernelDests.has(s.id));
      const svc: SvcState = {
        cfg, dests: new Map(), drains: new Map(), quorum: sorryInKernel ? 'down' : 'up', sorry: sorryInKernel, retired: false,
      };
      this.#services.set(cfg.id, svc);
      for (const dest of cfg.destinations) {
        // Serving in the kernel (present with a weight): up until its checks say otherwise.
        const serving = (kernelDests.get(dest.id)?.weight ?? 0) > 0 && !sorryInKernel;
        svc.dests.set(dest.id, this.#newDest(dest, serving ? 'up' : 'pending', false));
      }
      // Whatever else the kernel has in a configured service came from an earlier configuration: drain it.
      const known = new Set([...cfg.destinations.map((d) => d.id), ...cfg.sorryServers.map((s) => s.id)]);
      for (const [id, d] of kernelDests) {
        if (!known.has(id)) this.#startDrain(svc, id, specOf(d), 'removed', undefined);
      }
    }
    await this.#sync();
    for (const svc of this.#services.values()) {
      for (const [id, dest] of svc.dests) this.#startChecks(svc, id, dest);
      this.#evaluateQuorum(svc);
    }
    this.#startResync();
  }

  /**
   * Stops the checks and timers, waits for a sync in progress, and with `leave: 'remove'`
   * deletes the configured services (and those being retired). Closes the handle it opened.
   * Never rejects: a kernel error while removing is an 'error' event.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    const opts = expectObject(options, 'options');
    rejectUnknownKeys(opts, new Set(['leave']), 'options');
    const leave = opts.leave === undefined ? 'as-is' : expectOneOf(opts.leave, 'options.leave', ['as-is', 'remove'] as const);
    if (this.#stopped) return;
    this.#stopped = true;
    this.#running = false;
    this.#vrrp?.stop();
    clearInterval(this.#resyncTimer);
    clearInterval(this.#drainTimer);
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#syncTimer);
    clearTimeout(this.#notRun.timer);
    for (const svc of this.#services.values()) {
      for (const dest of svc.dests.values()) this.#stopChecks(dest);
      for (const drain of svc.drains.values()) if (drain.dest) this.#stopChecks(drain.dest);
    }
    this.#releaseTransport?.();
    await this.#syncing;
    if (leave === 'remove' && this.#ipvs) {
      const batch = this.#ipvs.batch();
      for (const svc of this.#services.values()) batch.deleteService(svc.cfg.key);
      try {
        const results = await batch.commit();
        for (const r of results) if (!r.ok && r.error.code !== 'ESRCH') this.#error('deleteService', r.error);
      } catch (error) {
        this.#error('deleteService', error);
      }
    }
    if (this.#ownsHandle) await this.#ipvs?.close();
    for (const svc of this.#services.values()) {
      for (const drain of svc.drains.values()) {
        for (const waiter of drain.waiters.splice(0)) waiter.reject(new Error(`the director stopped before ${drain.id} was drained`));
      }
    }
    this.#events.end();
  }

  // ---- configuration -----------------------------------------------------------------------

  /**
   * Applies a new configuration. Destinations whose checks did not change keep their health
   * (so a reload never flaps); changed checks restart from the current state (a serving
   * destination stays up until the new checks fail); new destinations start as on a restart;
   * removed destinations and services drain; a removed destination put back cancels its drain.
   * Resolves after the table was synced.
   * @throws {TypeError|RangeError} for an invalid configuration: then nothing changes.
   */
  async update(config: DirectorConfig): Promise<void> {
    const next = resolveConfig(config);
    if (!this.#running) throw new Error('the director is not running');
    if (JSON.stringify(next.vrrp) !== JSON.stringify(this.#vrrp?.config)) {
      this.#vrrp?.stop();
      this.#vrrp = next.vrrp ? this.#newVrrpFollower(next.vrrp) : undefined;
      await this.#vrrp?.start(this.#ipvs!).catch((error: unknown) => this.#error('vrrp-fifo', error));
    }
    const nextIds = new Set(next.services.map((s) => s.id));
    for (const [id, svc] of this.#services) {
      if (!nextIds.has(id) && !svc.retired) this.#retire(svc);
    }
    for (const cfg of next.services) {
      let svc = this.#services.get(cfg.id);
      if (!svc) {
        svc = { cfg, dests: new Map(), drains: new Map(), quorum: 'up', sorry: false, retired: false };
        this.#services.set(cfg.id, svc);
        for (const dest of cfg.destinations) {
          const state = this.#newDest(dest, 'pending', true);
          svc.dests.set(dest.id, state);
          this.#startChecks(svc, dest.id, state);
        }
        continue;
      }
      svc.retired = false;
      svc.cfg = cfg;
      const keep = new Set(cfg.destinations.map((d) => d.id));
      for (const [id, dest] of svc.dests) {
        if (!keep.has(id)) {
          svc.dests.delete(id);
          this.#stopChecks(dest);
          if (this.#kernelWeights.get(`${cfg.id}|${id}`)?.present) this.#startDrain(svc, id, dest.cfg.spec, 'removed', dest);
        }
      }
      for (const destCfg of cfg.destinations) {
        const drain = svc.drains.get(destCfg.id);
        let dest = svc.dests.get(destCfg.id);
        if (!dest && drain) {
          // Put back while draining: the drain ends, the destination resumes.
          svc.drains.delete(destCfg.id);
          dest = drain.dest;
          if (dest) svc.dests.set(destCfg.id, dest);
        }
        if (!dest && this.#held.has(`${cfg.id}|${destCfg.id}`)) continue;  // drained by request: out until undrain()
        if (!dest) {
          dest = this.#newDest(destCfg, 'pending', true);
          svc.dests.set(destCfg.id, dest);
          this.#startChecks(svc, destCfg.id, dest);
          continue;
        }
        if (dest.cfg.spec.weight !== destCfg.spec.weight) dest.hint = 'config';
        if (dest.cfg.checksKey !== destCfg.checksKey) {
          this.#stopChecks(dest);
          const keepUp = dest.health.state === 'up';
          dest.cfg = destCfg;
          dest.health = new DestinationHealth(destCfg.checks, keepUp ? 'up' : 'pending');
        } else {
          dest.cfg = destCfg;
        }
        if (!dest.held && !dest.schedule) this.#startChecks(svc, destCfg.id, dest);
      }
    }
    const resyncChanged = next.resyncInterval !== this.#config.resyncInterval;
    this.#config = next;
    if (resyncChanged) this.#startResync();
    for (const svc of this.#services.values()) this.#evaluateQuorum(svc);
    await this.#sync();
  }

  /**
   * Drains a destination: weight 0 now, deleted once it has no connections left (its entries
   * in the connection table, persistence templates included, TIME_WAIT and CLOSE left out) or
   * the service's drainTimeout passes. It stays out (its
   * checks stop) until {@link undrain}. Resolves with the 'drained' event; rejects if the
   * director stops first.
   * @throws {RangeError} when the service or destination is not configured.
   */
  drain(service: ServiceKey | string, destination: DestinationKey | string): Promise<DrainedEvent> {
    const { svc, id, dest } = this.#find(service, destination);
    const existing = svc.drains.get(id);
    if (existing) return new Promise((resolve, reject) => existing.waiters.push({ resolve, reject }));
    if (!dest) throw new RangeError(`destination ${id} of ${svc.cfg.id} is already drained; undrain() it first`);
    const promise = new Promise<DrainedEvent>((resolve, reject) => {
      this.#stopChecks(dest);
      dest.held = true;
      svc.dests.delete(id);
      const drain = this.#startDrain(svc, id, dest.cfg.spec, 'requested', dest);
      drain.waiters.push({ resolve, reject });
    });
    this.#evaluateQuorum(svc);
    return promise;
  }

  /**
   * Puts back a destination drained by {@link drain} (or cancels its drain in progress): it
   * starts over as a new destination (first passing round, then slowStart if configured).
   * @throws {RangeError} when the service or destination is not configured.
   */
  async undrain(service: ServiceKey | string, destination: DestinationKey | string): Promise<void> {
    const { svc, id } = this.#find(service, destination);
    const drain = svc.drains.get(id);
    const held = drain?.dest ?? this.#held.get(`${svc.cfg.id}|${id}`);
    if (drain) svc.drains.delete(id);
    this.#held.delete(`${svc.cfg.id}|${id}`);
    const cfg = svc.cfg.destinations.find((d) => d.id === id)!;
    const dest = held ?? this.#newDest(cfg, 'pending', true);
    dest.held = false;
    dest.cfg = cfg;
    dest.health = new DestinationHealth(cfg.checks, 'pending');
    dest.rampOnUp = true;
    svc.dests.set(id, dest);
    this.#startChecks(svc, id, dest);
    await this.#sync();
  }

  /** Destinations drained by drain() and deleted, held out until undrain(). */
  readonly #held = new Map<string, DestState>();

  #find(service: ServiceKey | string, destination: DestinationKey | string): { svc: SvcState; id: string; dest: DestState | undefined } {
    const svcId = typeof service === 'string' ? service : serviceId(service);
    const svc = this.#services.get(svcId);
    if (!svc || svc.retired) throw new RangeError(`service ${svcId} is not in the configuration`);
    const defaultPort = 'port' in svc.cfg.key ? svc.cfg.key.port : 0;
    const id = typeof destination === 'string' ? destination : hostPort(destination.address, destination.port ?? defaultPort);
    if (!svc.cfg.destinations.some((d) => d.id === id)) throw new RangeError(`destination ${id} is not configured in ${svcId}`);
    return { svc, id, dest: svc.dests.get(id) };
  }

  // ---- health ------------------------------------------------------------------------------

  #newDest(cfg: ResolvedDestination, initial: HealthState, rampOnUp: boolean): DestState {
    return { cfg, health: new DestinationHealth(cfg.checks, initial), schedule: undefined, ramp: undefined, rampOnUp, held: false, hint: undefined };
  }

  #startChecks(svc: SvcState, id: string, dest: DestState): void {
    if (!this.#running || dest.schedule) return;
    const targets = dest.cfg.checks.map((check): CheckTarget => {
      const port = check.port ?? (dest.cfg.spec.port || DEFAULT_CHECK_PORTS[check.type] || 0);
      return {
        address: check.address ?? dest.cfg.spec.address,
        port,
        ...(check.bindAddress ? { bindAddress: check.bindAddress } : {}),
        service: svc.cfg.key,
        destination: { address: dest.cfg.spec.address, port: dest.cfg.spec.port },
      };
    });
    dest.schedule = new CheckSchedule(dest.cfg.checks, targets, this.#run,
      (index, result, lateness, at) => this.#onResult(svc, id, dest, index, result, lateness, at));
  }

  /**
   * Reports checks not run as 'error' events, at most one a second (they come in floods, from
   * an overloaded host that has no time to spare for an event each): the event names the
   * latest, and `count` says how many it stands for.
   */
  #countNotRun(service: string, destination: string, what: string, code: string | undefined): void {
    const state = this.#notRun;
    state.count++;
    state.last = { service, destination, what, ...(code ? { code } : {}) };
    if (state.timer) return;
    const flush = (): void => {
      state.timer = undefined;
      if (state.count === 0 || !state.last || !this.#running) return;
      const { count, last } = state;
      state.count = 0;
      state.at = Date.now();
      const error = Object.assign(new Error(count > 1 ? `${last.what} (and ${count - 1} more in the last second)` : last.what),
        last.code ? { code: last.code } : {});
      this.#emit({ type: 'error', time: state.at, error, operation: 'check', service: last.service, destination: last.destination, count });
    };
    const wait = state.at + 1000 - Date.now();
    if (wait <= 0) return flush();
    state.timer = setTimeout(flush, wait);
    state.timer.unref?.();
  }

  #stopChecks(dest: DestState): void {
    dest.schedule?.stop();
    dest.schedule = undefined;
    if (dest.ramp) clearInterval(dest.ramp.timer);
    dest.ramp = undefined;
  }

  #onResult(svc: SvcState, id: string, dest: DestState, index: number, result: CheckResult, lateness: number, at: number): void {
    if (!this.#running || svc.dests.get(id) !== dest) return;
    const health = dest.health;
    const check = health.checks[index]!;
    // A passing attempt that changes nothing (the common case) costs this much and no more.
    const single = health.checks.length === 1;
    const dynamicBefore = single ? check.weight : health.dynamicWeight;
    const before = single ? check.state : health.state;
    const changed = check.record(result, at);
    if (result.notRun !== undefined) {
      // This host's failure (EMFILE…), not the server's: reported, not counted; the next
      // attempt comes at the next interval.
      this.#countNotRun(svc.cfg.id, id, `${dest.cfg.checks[index]!.type} check not run: ${result.notRun}`,
        /^E[A-Z]+$/.test(result.notRun) ? result.notRun : undefined);
      return;
    }
    if (this.#options.checkEvents && this.#events.wants('check')) {
      this.#emit({
        type: 'check', time: at, service: svc.cfg.id, destination: id, check: index, checkType: dest.cfg.checks[index]!.type,
        ok: result.ok, message: result.message, latency: result.latency, lateness, state: check.state,
      });
    }
    const after = !changed ? before : single ? check.state : health.state;
    if (before === after) {
      if (after === 'up' && (single ? check.weight : health.dynamicWeight) !== dynamicBefore) {
        dest.hint = 'dynamic';
        this.#evaluateQuorum(svc);
        this.#requestSync();
      }
      return;
    }
    if (after === 'up') {
      this.#emit({ type: 'up', time: at, service: svc.cfg.id, destination: id, from: before });
      if (dest.rampOnUp && dest.cfg.slowStart > 0) this.#startRamp(dest);
      dest.rampOnUp = true;
    } else if (after === 'down') {
      const failing = dest.health.checks.findIndex((c) => c.state === 'down');
      const reason = `${dest.cfg.checks[failing]?.type ?? 'check'}: ${dest.health.checks[failing]?.last?.message ?? 'failed'}`;
      if (dest.ramp) clearInterval(dest.ramp.timer);
      dest.ramp = undefined;
      dest.rampOnUp = true;
      this.#emit({ type: 'down', time: at, service: svc.cfg.id, destination: id, from: before, reason });
    }
    this.#evaluateQuorum(svc);
    this.#requestSync();
  }

  #startRamp(dest: DestState): void {
    const durationMs = dest.cfg.slowStart * 1000;
    // About 20 steps, no more often than every 100 ms.
    const stepMs = Math.max(100, durationMs / 20);
    const ramp: Ramp = {
      start: Date.now(),
      timer: setInterval(() => {
        if (Date.now() - ramp.start >= durationMs) {
          clearInterval(ramp.timer);
          if (dest.ramp === ramp) dest.ramp = undefined;
        }
        this.#requestSync();
      }, stepMs),
    };
    dest.ramp = ramp;
  }

  /** The weight a destination should have in the kernel now; undefined when it should be absent. */
  #weightOf(svc: SvcState, dest: DestState): { weight: number | undefined; reason: WeightEvent['reason'] } {
    const absentOrZero = dest.cfg.onFailure === 'remove' ? undefined : 0;
    if (svc.sorry) return { weight: absentOrZero, reason: 'quorum' };
    const state = dest.health.state;
    if (state !== 'up') return { weight: absentOrZero, reason: 'health' };
    const dynamic = dest.health.dynamicWeight;
    const full = dynamic ?? dest.cfg.spec.weight;
    if (dest.ramp) {
      const fraction = (Date.now() - dest.ramp.start) / (dest.cfg.slowStart * 1000);
      if (fraction < 1) return { weight: Math.min(full, Math.max(1, Math.floor(full * fraction))), reason: 'slow-start' };
    }
    return { weight: full, reason: dest.hint ?? (dynamic !== undefined ? 'dynamic' : 'health') };
  }

  /** Sum of the (full) weights of the live destinations. */
  #liveWeight(svc: SvcState): number {
    let sum = 0;
    for (const dest of svc.dests.values()) {
      if (dest.health.state === 'up') sum += dest.health.dynamicWeight ?? dest.cfg.spec.weight;
    }
    return sum;
  }

  /**
   * Quorum with hysteresis, as keepalived: lost below quorum − hysteresis, gained at ≥ quorum +
   * hysteresis. Not judged while a destination awaits its first check round.
   */
  #evaluateQuorum(svc: SvcState): void {
    if (!this.#running || svc.retired) return;
    for (const dest of svc.dests.values()) if (dest.health.state === 'pending') return;
    const { quorum, hysteresis } = svc.cfg;
    const liveWeight = this.#liveWeight(svc);
    const base = { time: Date.now(), service: svc.cfg.id, liveWeight, quorum, hysteresis };
    if (svc.quorum === 'up' && liveWeight < quorum - hysteresis) {
      svc.quorum = 'down';
      this.#emit({ type: 'quorum-lost', ...base });
      if (svc.cfg.sorryServers.length > 0 && !svc.sorry) {
        svc.sorry = true;
        this.#emit({ type: 'sorry-on', time: base.time, service: svc.cfg.id, servers: svc.cfg.sorryServers.map((s) => s.id) });
      }
      if (svc.cfg.quorumDown) this.#runQuorumCommand(svc, svc.cfg.quorumDown, 'quorumDown');
      this.#requestSync();
    } else if (svc.quorum === 'down' && liveWeight >= quorum + hysteresis) {
      svc.quorum = 'up';
      this.#emit({ type: 'quorum-gained', ...base });
      if (svc.sorry) {
        svc.sorry = false;
        this.#emit({ type: 'sorry-off', time: base.time, service: svc.cfg.id, servers: svc.cfg.sorryServers.map((s) => s.id) });
      }
      if (svc.cfg.quorumUp) this.#runQuorumCommand(svc, svc.cfg.quorumUp, 'quorumUp');
      this.#requestSync();
    }
  }

  #runQuorumCommand(svc: SvcState, command: string, which: string): void {
    const env = checkEnvironment({ address: '', port: 0, service: svc.cfg.key, destination: { address: '', port: 0 } });
    delete env.IPVS_DEST_ADDRESS; delete env.IPVS_DEST_PORT; delete env.IPVS_CHECK_ADDRESS; delete env.IPVS_CHECK_PORT;
    const child = spawn('/bin/sh', ['-c', command], { env: { ...process.env, ...env }, stdio: 'ignore' });
    child.once('error', (error) => this.#error(which, error, { service: svc.cfg.id }));
    child.once('exit', (code, signal) => {
      if (code !== 0) this.#error(which, new Error(`${which} command exited with ${code ?? signal}: ${command}`), { service: svc.cfg.id });
    });
  }

  // ---- drains ------------------------------------------------------------------------------

  #startDrain(svc: SvcState, id: string, spec: DestinationSpec, reason: 'removed' | 'requested', dest: DestState | undefined): DrainState {
    const started = Date.now();
    const drain: DrainState = { id, spec, reason, started, deadline: started + svc.cfg.drainTimeout * 1000, dest, waiters: [] };
    svc.drains.set(id, drain);
    this.#emit({ type: 'drain-start', time: started, service: svc.cfg.id, destination: id, reason, deadline: drain.deadline });
    this.#requestSync();
    this.#startDrainPoll();
    return drain;
  }

  #retire(svc: SvcState): void {
    svc.retired = true;
    for (const [id, dest] of svc.dests) {
      this.#stopChecks(dest);
      if (this.#kernelWeights.get(`${svc.cfg.id}|${id}`)?.present) this.#startDrain(svc, id, dest.cfg.spec, 'removed', undefined);
    }
    svc.dests.clear();
    for (const sorry of svc.cfg.sorryServers) {
      if (this.#kernelWeights.get(`${svc.cfg.id}|${sorry.id}`)?.present) this.#startDrain(svc, sorry.id, sorry.spec, 'removed', undefined);
    }
    svc.sorry = false;
    if (svc.drains.size === 0) void this.#deleteRetired(svc);
  }

  async #deleteRetired(svc: SvcState): Promise<void> {
    this.#services.delete(svc.cfg.id);
    if (this.#config.scope !== 'listed') return;  // reconcile deletes owned services that are not desired
    await this.#syncing;
    try {
      await this.#ipvs!.deleteService(svc.cfg.key);
      this.#emit({ type: 'applied', time: Date.now(), failed: 0, operations: [{ op: 'deleteService', service: svc.cfg.key, destinations: 0, reason: 'removed from the configuration and drained' }] });
    } catch (error) {
      if (!(error instanceof IpvsError && error.code === 'ESRCH')) this.#error('deleteService', error, { service: svc.cfg.id });
    }
  }

  #startDrainPoll(): void {
    if (this.#drainTimer || !this.#running) return;
    const periodMs = Math.min(1000, this.#config.resyncInterval * 1000);
    this.#drainTimer = setInterval(() => void this.#pollDrains(), periodMs);
  }

  async #pollDrains(): Promise<void> {
    if (this.#drainPolling || !this.#running) return;
    const draining = [...this.#services.values()].filter((s) => s.drains.size > 0);
    if (draining.length === 0) {
      clearInterval(this.#drainTimer);
      this.#drainTimer = undefined;
      return;
    }
    this.#drainPolling = true;
    try {
      const open = openConnectionsByDestination(await this.#ipvs!.connectionTable());
      const now = Date.now();
      for (const svc of draining) {
        for (const drain of [...svc.drains.values()]) {
          // Only once the sync put it at weight 0 (or it is gone).
          const known = this.#kernelWeights.get(`${svc.cfg.id}|${drain.id}`);
          if (known?.present && known.weight !== 0 && now < drain.deadline) continue;
          const left = known?.present ? open.get(drain.id) ?? 0 : 0;
          if (left > 0 && now < drain.deadline) continue;
          svc.drains.delete(drain.id);
          if (drain.reason === 'requested' && drain.dest) this.#held.set(`${svc.cfg.id}|${drain.id}`, drain.dest);
          const event: DrainedEvent = {
            type: 'drained', time: now, service: svc.cfg.id, destination: drain.id, reason: left > 0 ? 'timeout' : 'connections', connections: left,
          };
          this.#emit(event);
          for (const waiter of drain.waiters) waiter.resolve(event);
        }
        if (svc.retired && svc.drains.size === 0) {
          await this.#sync();
          void this.#deleteRetired(svc);
        }
      }
      this.#requestSync();
    } catch (error) {
      this.#error('connections', error);
    } finally {
      this.#drainPolling = false;
    }
  }

  /** Reads the table for connection counts: service id → destination id → destination. */
  async #readCounts(): Promise<Map<string, Map<string, Destination>>> {
    const live = await this.#ipvs!.listTable();
    const out = new Map<string, Map<string, Destination>>();
    for (const s of live) {
      const id = serviceId(s);
      if (!this.#services.has(id)) continue;
      const dests = new Map<string, Destination>();
      for (const d of s.destinations) {
        const destId = hostPort(d.address, d.port);
        dests.set(destId, d);
        this.#counts.set(`${id}|${destId}`, countsOf(d));
      }
      out.set(id, dests);
    }
    return out;
  }

  // ---- the table ---------------------------------------------------------------------------

  #startResync(): void {
    clearInterval(this.#resyncTimer);
    if (!this.#running) return;
    this.#resyncTimer = setInterval(() => {
      // The sync lists the table anyway: the connection counts are read from its listing.
      this.#countsWanted = true;
      this.#requestSync();
    }, this.#config.resyncInterval * 1000);
  }

  /**
   * The connection counts of a listing a sync planned against, read from its records (no
   * Destination objects) when status() asks for them: a resync itself reads nothing more.
   */
  #countsFromListing(listing: TableService[]): void {
    const L = layoutOf();
    const texts = new Map<number, string>();
    for (const service of listing) {
      const id = serviceId(service);
      if (!this.#services.has(id)) continue;
      const records = destinationRecordsOf(service);
      if (!records) continue;
      const w = records.words;
      for (let i = 0; i < records.count; i++) {
        const base = records.start + i * records.stride;
        this.#counts.set(`${id}|${destinationKeyText({ address: addressTextAt(records, i, texts), port: w[base + L.dst.port]! })}`, {
          active: w[base + L.dst.activeConnections]!, inactive: w[base + L.dst.inactiveConnections]!,
          persistent: w[base + L.dst.persistentConnections]!,
        });
      }
    }
  }

  /** Counts from a listing of their own, when the sync's could not give them. */
  #readCountsAlone(): void {
    if (this.#readingCounts) return;
    // One read at a time: on a slow host a read can outlast the interval.
    this.#readingCounts = true;
    void this.#readCounts()
      .catch((error: unknown) => this.#error('read-table', error))
      .finally(() => { this.#readingCounts = false; });
  }

  /** The table the director wants now, with each element's JSON for telling drift from intent. */
  #desired(): { services: DesiredService[]; elements: Map<string, string>; weights: Map<string, Wanted> } {
    const services: DesiredService[] = [];
    const elements = new Map<string, string>();
    const weights = new Map<string, Wanted>();
    for (const svc of this.#services.values()) {
      const destinations: DestinationSpec[] = [];
      const svcId = svc.cfg.id;
      // Every sync (on each health change, and every resyncInterval) asks this of every
      // destination: what stays the same from one sync to the next is kept (desiredEntry).
      const put = (id: string, spec: DestinationSpec, weight: number | undefined, reason: WeightEvent['reason']): void => {
        const entry = desiredEntry(svcId, id, spec);
        if (weight === undefined) {
          weights.set(entry.key, { weight: 0, present: false, reason });
          return;
        }
        if (entry.weight !== weight) {
          const full = { ...spec, weight };
          entry.weight = weight;
          entry.full = full;
          entry.json = JSON.stringify(full);
          entry.wanted = undefined;
        }
        if (entry.wanted?.reason !== reason) entry.wanted = { weight, present: true, reason };
        destinations.push(entry.full!);
        elements.set(entry.key, entry.json);
        weights.set(entry.key, entry.wanted);
      };
      for (const [id, dest] of svc.dests) {
        const { weight, reason } = this.#weightOf(svc, dest);
        put(id, dest.cfg.spec, weight, reason);
      }
      for (const sorry of svc.cfg.sorryServers) {
        if (!svc.retired) put(sorry.id, sorry.spec, svc.sorry ? sorry.spec.weight : undefined, 'quorum');
      }
      for (const drain of svc.drains.values()) put(drain.id, drain.spec, 0, 'drain');
      const spec: ServiceSpec = svc.cfg.spec;
      services.push({ ...spec, destinations });
      elements.set(svcId, JSON.stringify(spec));
    }
    return { services, elements, weights };
  }

  #requestSync(): void {
    if (this.#syncQueued || !this.#running) return;
    this.#syncQueued = true;
    // A request made during a sync is scheduled when that sync ends (#sync).
    if (!this.#syncing) this.#scheduleSync();
  }

  #scheduleSync(): void {
    const run = (): void => {
      this.#syncTimer = undefined;
      this.#syncQueued = false;
      void this.#sync();
    };
    // Coalesce what happens in one turn of the event loop into one sync, and leave the loop
    // as long again as the last sync took before the next: when many destinations change at
    // once, syncs of a large table take at most half the time and the checks keep theirs.
    const wait = this.#nextSyncAt - performance.now();
    if (wait > 0) this.#syncTimer = setTimeout(run, wait);
    else setImmediate(run);
  }

  /** Runs a sync after any in progress; resolves when the table reflects the state at call time. */
  #sync(): Promise<void> {
    if (this.#syncing) {
      return new Promise((resolve) => {
        this.#syncWaiters.push(resolve);
      });
    }
    this.#syncing = (async () => {
      try {
        for (;;) {
          const waiters = this.#syncWaiters.splice(0);
          await this.#syncOnce();
          for (const resolve of waiters) resolve();
          if (this.#syncWaiters.length === 0) break;
        }
      } finally {
        this.#syncing = undefined;
        if (this.#syncQueued && this.#running) this.#scheduleSync();
      }
    })();
    return this.#syncing;
  }

  async #syncOnce(): Promise<void> {
    if (!this.#ipvs || this.#stopped) return;
    const started = performance.now();
    try {
      await this.#syncTable();
    } finally {
      const now = performance.now();
      this.#nextSyncAt = now + (now - started);
    }
  }

  async #syncTable(): Promise<void> {
    const { services, elements, weights } = this.#desired();
    let result: Awaited<ReturnType<Ipvs['apply']>>;
    try {
      result = await this.#ipvs!.apply(services, { scope: this.#config.scope as ReconcileScope, verify: 'none' });
    } catch (error) {
      this.#trusted = false;
      this.#scheduleRetry('apply', error);
      return;
    }
    if (this.#countsWanted) {
      this.#countsWanted = false;
      // Kept as the listing's records, read only if status() asks; a handle that is not the
      // addon's gives no records, and the counts then take a listing of their own.
      const listing = plannedListing(result.plan);
      if (listing && listing.every((service) => destinationRecordsOf(service) !== undefined)) this.#countsListing = listing;
      else this.#readCountsAlone();
    }
    const intended: PlanOperation[] = [];
    let failed = 0;
    let firstError: unknown;
    for (const r of result.results) {
      const op = r.operation;
      const svcKey = serviceId(op.service);
      const destId = 'destination' in op ? hostPort(op.destination.address, op.destination.port ?? portOf(op.service)) : undefined;
      const element = destId === undefined ? svcKey : `${svcKey}|${destId}`;
      const isDrift = this.#trusted && this.#lastDesired.get(element) === elements.get(element) &&
        !(op.op === 'deleteService' && this.#lastDesired.has(element));
      if (!r.ok) {
        failed++;
        firstError ??= r.error;
        this.#error(op.op, r.error, { service: svcKey, ...(destId ? { destination: destId } : {}) });
        continue;
      }
      if (destId !== undefined) this.#noteWeight(svcKey, destId, op, weights.get(element), !isDrift);
      if (isDrift) {
        this.#emit({
          type: 'drift-repaired', time: Date.now(), service: svcKey, ...(destId ? { destination: destId } : {}), op: op.op,
          reason: op.reason, changes: 'changes' in op ? op.changes : [],
        });
      } else {
        intended.push(op);
      }
    }
    if (intended.length > 0 || failed > 0) {
      this.#emit({ type: 'applied', time: Date.now(), operations: intended, failed });
    }
    if (failed > 0) {
      this.#trusted = false;
      this.#scheduleRetry('apply', firstError, true);
      return;
    }
    this.#trusted = true;
    this.#lastDesired = elements;
    this.#backoff = 0;
    for (const svc of this.#services.values()) for (const dest of svc.dests.values()) dest.hint = undefined;
  }

  /** Records a destination's new kernel weight; emits 'weight' for the director's own changes. */
  #noteWeight(
    svcKey: string, destId: string, op: PlanOperation, wanted: Wanted | undefined,
    announce: boolean,
  ): void {
    const key = `${svcKey}|${destId}`;
    const now = op.op === 'deleteDestination'
      ? { weight: 0, present: false }
      : { weight: (op as { destination: DestinationSpec }).destination.weight ?? 1, present: true };
    const before = this.#kernelWeights.get(key) ?? { weight: 0, present: false };
    this.#kernelWeights.set(key, now);
    if (!announce || (before.weight === now.weight && before.present === now.present)) return;
    this.#emit({
      type: 'weight', time: Date.now(), service: svcKey, destination: destId, from: before.weight, to: now.weight, present: now.present,
      reason: wanted?.reason ?? 'config',
    });
  }

  #scheduleRetry(operation: string, error: unknown, reported = false): void {
    const retryIn = Math.min(BACKOFF_FIRST_MS * 2 ** this.#backoff, BACKOFF_MAX_MS);
    this.#backoff++;
    if (!reported) this.#error(operation, error, { retryIn });
    else this.#error('retry', new Error(`the table could not be fully applied; retrying in ${retryIn} ms`), { retryIn });
    clearTimeout(this.#retryTimer);
    if (this.#running) this.#retryTimer = setTimeout(() => this.#requestSync(), retryIn);
  }

  // ---- status ------------------------------------------------------------------------------

  /** A snapshot of every service and destination: health, checks, weights, connections. */
  status(): DirectorStatus {
    const services: ServiceStatus[] = [];
    if (this.#countsListing) {
      this.#countsFromListing(this.#countsListing);
      this.#countsListing = undefined;
    }
    const { weights } = this.#desired();
    for (const svc of this.#services.values()) {
      const destinations: DestinationStatus[] = [];
      const base = (id: string, address: string, port: number, configuredWeight: number): Omit<DestinationStatus, 'health' | 'checks'> => {
        const w = weights.get(`${svc.cfg.id}|${id}`);
        return {
          id, address, port, configuredWeight, weight: w?.present ? w.weight : undefined,
          connections: this.#counts.get(`${svc.cfg.id}|${id}`) ?? NO_COUNTS,
        };
      };
      for (const cfg of svc.cfg.destinations) {
        const dest = svc.dests.get(cfg.id);
        const drain = svc.drains.get(cfg.id);
        const state = dest ?? drain?.dest ?? this.#held.get(`${svc.cfg.id}|${cfg.id}`);
        const health: DestinationStatus['health'] = drain ? 'draining' : dest ? dest.health.state : 'drained';
        destinations.push({
          ...base(cfg.id, cfg.spec.address, cfg.spec.port, cfg.spec.weight),
          health,
          checks: (state?.health.checks ?? []).map((c, i) => ({
            type: cfg.checks[i]?.type ?? 'tcp', state: c.state, successes: c.successes, failures: c.failures,
            ...(c.last ? { last: { ok: c.last.ok, message: c.last.message, latency: c.last.latency, at: c.last.at } } : {}),
          })),
          ...(drain ? { drain: { reason: drain.reason, started: drain.started, deadline: drain.deadline } } : {}),
        });
      }
      for (const drain of svc.drains.values()) {
        if (svc.cfg.destinations.some((d) => d.id === drain.id) && !svc.retired) continue;
        destinations.push({
          ...base(drain.id, drain.spec.address, drain.spec.port ?? 0, drain.spec.weight ?? 1), health: 'draining', checks: [],
          drain: { reason: drain.reason, started: drain.started, deadline: drain.deadline },
        });
      }
      for (const sorry of svc.cfg.sorryServers) {
        destinations.push({ ...base(sorry.id, sorry.spec.address, sorry.spec.port, sorry.spec.weight), health: svc.sorry ? 'up' : 'down', checks: [], sorry: true });
      }
      services.push({
        id: svc.cfg.id, key: svc.cfg.key, sorry: svc.sorry, destinations,
        quorum: { state: svc.quorum, liveWeight: this.#liveWeight(svc), quorum: svc.cfg.quorum, hysteresis: svc.cfg.hysteresis },
      });
    }
    return { running: this.#running, services, inSync: this.#trusted, ...(this.#vrrp ? { vrrp: this.#vrrp.status() } : {}) };
  }
}

/** The weight a sync wants for a destination, and why. */
interface Wanted {
  weight: number;
  present: boolean;
  reason: WeightEvent['reason'];
}

/**
 * What a sync asks of one desired destination, kept per spec object while its weight stays:
 * its key, the spec with the weight, that spec's JSON (how a sync tells drift from intent) and
 * the wanted weight. Every sync goes through them all, and they rarely change.
 */
interface DesiredEntry {
  svcId: string;
  id: string;
  key: string;
  weight: number | undefined;
  full: DestinationSpec | undefined;
  json: string;
  wanted: Wanted | undefined;
}
const desiredEntries = new WeakMap<DestinationSpec, DesiredEntry>();
function desiredEntry(svcId: string, id: string, spec: DestinationSpec): DesiredEntry {
  let entry = desiredEntries.get(spec);
  if (entry?.svcId !== svcId || entry.id !== id) {
    entry = { svcId, id, key: `${svcId}|${id}`, weight: undefined, full: undefined, json: '', wanted: undefined };
    desiredEntries.set(spec, entry);
  }
  return entry;
}

function countsOf(d: Destination): Counts {
  return { active: d.activeConnections, inactive: d.inactiveConnections, persistent: d.persistentConnections };
}

function specOf(d: Destination): DestinationSpec {
  const spec: DestinationSpec = {
    address: d.address, port: d.port, forward: d.forward === 'bypass' ? 'route' : d.forward, weight: d.weight,
    upperThreshold: d.upperThreshold, lowerThreshold: d.lowerThreshold,
  };
  if (d.tunnel) spec.tunnel = d.tunnel;
  return spec;
}

function portOf(service: ServiceKey): number {
  return 'port' in service ? service.port : 0;
}
