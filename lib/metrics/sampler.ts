// One reading of the kernel's IPVS state, shared by everything that asks for it at the same
// time: every metric family of a scrape, the status page and its event stream.
import type { ConnectionCount } from '../connections';
import type { Ipvs } from '../ipvs';
import type { ServiceWithDestinations } from '../table';
import type { DaemonConfig } from '../types';
import { readGlobalStats, type GlobalStats } from './proc-stats';

/** The table, the namespace's totals and the sync daemons, read together. */
export interface IpvsSample {
  /** When the reading started (ms since the epoch). */
  at: number;
  /** How long the reading took, in seconds. */
  durationSeconds: number;
  /** Undefined when the reading failed (see `error`). */
  services: ServiceWithDestinations[] | undefined;
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
    const [services, daemons, global, connectionStates] = await Promise.all([
      keep(this.ipvs.listTable()),
      keep(this.ipvs.listDaemons()),
      keep(readGlobalStats(this.ipvs.netns)),
      this.countsConnectionStates ? keep(this.ipvs.countConnections({ by: 'state' })) : undefined,
    ]);
    const durationSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const sample: IpvsSample = {
      at, durationSeconds, services, global, daemons,
      connectionStates: connectionStates ? [...connectionStates] : undefined, error,
    };
    this.#latest = sample;
    return sample;
  }
}
