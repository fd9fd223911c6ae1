// One reading of the kernel's IPVS state, shared by everything that asks for it at the same
// time: every metric family of a scrape, the status page and its event stream.
import type { ConnectionCount } from '../connections';
import type { Ipvs } from '../ipvs';
import { tableFromNative, tableFromNativeInSlices, type ServiceWithDestinations } from '../table';
import { TableView } from '../table-view';
import type { DaemonConfig } from '../types';
import { readGlobalStats, type GlobalStats } from './proc-stats';

/** The table, the namespace's totals and the sync daemons, read together. */
export interface IpvsSample {
  /** When the reading started (ms since the epoch). */
  at: number;
  /** How long the reading took, in seconds. */
  durationSeconds: number;
  /** Undefined when the reading failed (see `error`). Built from the kernel's records when first read. */
  readonly services: ServiceWithDestinations[] | undefined;
  /** @internal The table as packed records: what the exposition writes from, building no objects. */
  readonly table?: TableView | undefined;
  global: GlobalStats | undefined;
  daemons: DaemonConfig[] | undefined;
  /** Connection-table entries by kernel state name, when the sampler counts them. */
  connectionStates: ConnectionCount[] | undefined;
  /** The first error met; a failed reading still yields a sample, so scrapes can report it. */
  error: Error | undefined;
}

export interface IpvsSamplerOptions {
  /** Also count the connection table by state (a read of /proc/net/ip_vs_conn each time). Default false. */
  connectionStates?: boolean;
}

/** A reading whose Service objects are built only if something asks for them. */
class Sample implements IpvsSample {
  at: number;
  durationSeconds: number;
  readonly table: TableView | undefined;
  global: GlobalStats | undefined;
  daemons: DaemonConfig[] | undefined;
  connectionStates: ConnectionCount[] | undefined;
  error: Error | undefined;
  #services: ServiceWithDestinations[] | undefined;

  constructor(fields: Omit<IpvsSample, 'services'>) {
    this.at = fields.at;
    this.durationSeconds = fields.durationSeconds;
    this.table = fields.table;
    this.global = fields.global;
    this.daemons = fields.daemons;
    this.connectionStates = fields.connectionStates;
    this.error = fields.error;
  }

  get services(): ServiceWithDestinations[] | undefined {
    if (!this.table) return undefined;
    this.#services ??= tableFromNative(this.table.native);
    return this.#services;
  }

  /** The services, built a slice at a time (the event loop runs between slices). */
  async servicesInSlices(): Promise<ServiceWithDestinations[] | undefined> {
    if (!this.table) return undefined;
    this.#services ??= await tableFromNativeInSlices(this.table.native);
    return this.#services;
  }
}

/**
 * @internal The services of `sample`, built without holding the event loop for long (a
 * sample's `services` getter builds them all at once).
 */
export function servicesInSlices(sample: IpvsSample): Promise<ServiceWithDestinations[] | undefined> {
  return sample instanceof Sample ? sample.servicesInSlices() : Promise.resolve(sample.services);
}

/** @internal How many services `sample` has, without building them; undefined when the reading failed. */
export function serviceCount(sample: IpvsSample): number | undefined {
  return sample.table ? sample.table.serviceCount : sample.services?.length;
}

/**
 * Reads the table on demand. Concurrent callers of {@link IpvsSampler.sample} share one
 * reading, so a scrape costs one `listTable()` however many metrics it has.
 */
export class IpvsSampler {
  readonly ipvs: Ipvs;
  readonly countsConnectionStates: boolean;
  #inFlight: Promise<IpvsSample> | undefined;
  #latest: IpvsSample | undefined;

  constructor(ipvs: Ipvs, options: IpvsSamplerOptions = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    if (options.connectionStates !== undefined && typeof options.connectionStates !== 'boolean') {
      throw new TypeError(`options.connectionStates must be a boolean, got ${typeof options.connectionStates}`);
    }
    this.ipvs = ipvs;
    this.countsConnectionStates = options.connectionStates ?? false;
  }

  /** The most recent completed reading, if any. */
  get latest(): IpvsSample | undefined {
    return this.#latest;
  }

  /** A fresh reading, or the one in progress. Never rejects: failures are in `error`. */
  sample(): Promise<IpvsSample> {
    this.#inFlight ??= this.#read().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #read(): Promise<IpvsSample> {
    const at = Date.now();
    const started = process.hrtime.bigint();
    let error: Error | undefined;
    const keep = <T>(promise: Promise<T>): Promise<T | undefined> =>
      promise.catch((e: unknown) => {
        error ??= e instanceof Error ? e : new Error(String(e));
        return undefined;
      });
    // The packed records, as listTable() reads them, without the objects it builds from them.
    const readTable = async (): Promise<TableView> => new TableView(await this.ipvs.enqueue('listTable', (handle) => handle.listTable()));
    const [table, daemons, global, connectionStates] = await Promise.all([
      keep(readTable()),
      keep(this.ipvs.listDaemons()),
      keep(readGlobalStats(this.ipvs.netns)),
      this.countsConnectionStates ? keep(this.ipvs.countConnections({ by: 'state' })) : undefined,
    ]);
    const durationSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const sample = new Sample({
      at, durationSeconds, table, global, daemons,
      connectionStates: connectionStates ? [...connectionStates] : undefined, error,
    });
    this.#latest = sample;
    return sample;
  }
}
