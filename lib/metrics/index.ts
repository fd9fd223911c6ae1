// ipvs-netlink/metrics: Prometheus metrics and the live status page for an IPVS namespace,
// optionally with a director's state.
import { Registry } from 'prom-client';

import { Ipvs } from '../ipvs';
import { DEFAULT_LISTEN } from './access';
import { registerDirectorMetrics } from './director-metrics';
import type { DirectorSource } from './director-source';
import { registerIpvsMetrics } from './ipvs-metrics';
import { registerNodeExporterMetrics } from './node-exporter';
import { IpvsSampler } from './sampler';
import { checkCompression, MetricsServer, type MetricsCompression } from './server';
import { LiveStatusFeed } from './status-feed';

export { DEFAULT_LISTEN, isLoopback, parseListenAddress, parseTokenFile, type ListenAddress } from './access';
export { registerDirectorMetrics } from './director-metrics';
export { DIRECTOR_EVENT_TYPES, type DirectorSource } from './director-source';
export { registerIpvsMetrics } from './ipvs-metrics';
export { registerNodeExporterMetrics } from './node-exporter';
export { parseGlobalStats, readGlobalStats, type GlobalStats } from './proc-stats';
export { IpvsSampler, type IpvsSample, type IpvsSamplerOptions } from './sampler';
export { MetricsServer, type MetricsCompression, type MetricsServerOptions } from './server';
export type {
  StatusCheck, StatusCounters, StatusDestination, StatusDrain, StatusEvent, StatusService, StatusSnapshot,
} from './status';
export { LiveStatusFeed, type FeedMessage, type LiveStatusFeedOptions, type StatusFeed } from './status-feed';

export interface MetricsRegistryOptions {
  ipvs: Ipvs;
  /** Count the connection table by state on every scrape (`ipvs_connection_entries`). Default false. */
  connectionStates?: boolean;
  /**
   * Add the `ipvs_director_*` families for this director (and its state on the page). The
   * check histogram and failure counter need the Director built with `{ checkEvents: true }`.
   */
  director?: DirectorSource;
  /** Register on this registry instead of a new one. */
  registry?: Registry;
}

export interface MetricsRegistry {
  registry: Registry;
  sampler: IpvsSampler;
  /** Stops following the director's events. */
  close(): void;
}

/**
 * A prom-client registry with node_exporter's `node_ipvs_*` families, our `ipvs_*` families
 * and, given a director, the `ipvs_director_*` families. Every scrape reads the table once
 * (one `listTable()`, the daemons and /proc/net/ip_vs_stats), shared by all families.
 * @throws {TypeError} for malformed options.
 */
export function createMetricsRegistry(options: MetricsRegistryOptions): MetricsRegistry {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  if (!options.ipvs || typeof options.ipvs.listTable !== 'function') throw new TypeError('options.ipvs must be an open Ipvs handle');
  const registry = options.registry ?? new Registry();
  const sampler = new IpvsSampler(options.ipvs, { connectionStates: options.connectionStates ?? false });
  registerNodeExporterMetrics(registry, sampler);
  registerIpvsMetrics(registry, sampler);
  const unfollow = options.director ? registerDirectorMetrics(registry, options.director) : undefined;
  return { registry, sampler, close: () => unfollow?.() };
}

export interface ServeMetricsOptions extends Omit<MetricsRegistryOptions, 'ipvs'> {
  /** The handle to read; it stays open on close(). Without it, one is opened on `netns` and closed with the endpoint. */
  ipvs?: Ipvs;
  /** The namespace to open a handle in, when `ipvs` is not given, e.g. '/run/netns/lb'. */
  netns?: string;
  /** `HOST:PORT`, `[V6]:PORT`, `:PORT` (every address) or `PORT` (loopback). Default `127.0.0.1:9110`. */
  listen?: string;
  /** Required for a non-loopback address: requests without it get 401. */
  token?: string;
  /** How often the page gets a fresh snapshot while it is open, ms. Default 2000. */
  intervalMs?: number;
  /**
   * When /metrics is gzipped for a scraper that accepts it: `remote` (default: unless the
   * scraper is on loopback, where the plain text is cheaper to pass), `always` or `never`.
   */
  compression?: MetricsCompression;
}

export interface MetricsEndpoint {
  server: MetricsServer;
  registry: Registry;
  /** `http://host:port/`. */
  url: string;
  /** Closes the listener and stops following the director; a handle given as `ipvs` stays open. */
  close(): Promise<void>;
}

/**
 * Serves `/metrics`, the status page (`/`), `/api/status` and `/api/events` for `options.ipvs`'s
 * namespace. This is what `ipvs-netlink metrics` runs, and what `ipvs-netlink director FILE
 * --listen ADDR` calls with its director: `serveMetrics({ director, netns, listen, token })`
 * (build the Director with `checkEvents: true` for the check histogram and failure counter).
 * @throws {TypeError} for malformed options, or a non-loopback `listen` without a `token`.
 * @throws {IpvsError} when the handle cannot be opened on `netns` ('ENOENT', 'EPERM').
 * @throws {Error} with code EADDRINUSE, EACCES or EADDRNOTAVAIL when the address cannot be bound.
 */
export async function serveMetrics(options: ServeMetricsOptions): Promise<MetricsEndpoint> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  if (options.ipvs !== undefined && options.netns !== undefined) throw new TypeError('options: give ipvs or netns, not both');
  checkCompression(options.compression);
  const owned = options.ipvs === undefined ? await Ipvs.open(options.netns === undefined ? {} : { netns: options.netns }) : undefined;
  try {
    return await serveOn(owned ?? options.ipvs!, options, owned);
  } catch (error) {
    await owned?.close();
    throw error;
  }
}

async function serveOn(ipvs: Ipvs, options: ServeMetricsOptions, owned: Ipvs | undefined): Promise<MetricsEndpoint> {
  const metrics = createMetricsRegistry({ ...options, ipvs });
  const feed = new LiveStatusFeed(metrics.sampler, {
    ...(options.director ? { director: options.director } : {}),
    ...(options.intervalMs !== undefined ? { intervalMs: options.intervalMs } : {}),
  });
  let server: MetricsServer;
  try {
    server = await MetricsServer.start({
      listen: options.listen ?? DEFAULT_LISTEN, registry: metrics.registry, feed,
      ...(options.token !== undefined ? { token: options.token } : {}),
      ...(options.compression !== undefined ? { compression: options.compression } : {}),
    });
  } catch (error) {
    feed.close();
    metrics.close();
    throw error;
  }
  return {
    server, registry: metrics.registry, url: server.url,
    close: async () => {
      feed.close();
      metrics.close();
      await server.close();
      await owned?.close();
    },
  };
}
