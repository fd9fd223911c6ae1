// Our own IPVS metrics: per service and per destination counters, the kernel's rate
// estimates, weights, thresholds and connection counts, the sync daemons, optional counts of
// the connection table by state, and the cost of each reading.
import type { Registry } from 'prom-client';

import { AF_INET6 } from '../constants';
import type { ServiceWithDestinations } from '../table';
import { Counter, type TableView } from '../table-view';
import type { Destination, Stats } from '../types';
import {
  DESTINATION_LABEL_NAMES, SERVICE_INFO_LABEL_NAMES, SERVICE_LABEL_NAMES, destinationLabels, serviceInfoLabels, serviceLabels,
  type DestinationLabels, type ServiceInfoLabels, type ServiceLabels,
} from './labels';
import { registerSampledMetric, type TableFamily } from './sampled-metric';
import { serviceCount, type IpvsSample, type IpvsSampler } from './sampler';

type ServiceLabel = keyof ServiceLabels;
type DestinationLabel = keyof DestinationLabels;
type ServiceInfoLabel = keyof ServiceInfoLabels;

const forwardLabels = new Map<string, readonly string[]>();

/** A destination's ipvs_destination_info label after its shared ones: one array per method, not one per row. */
function forwardValues(view: TableView, d: number): readonly string[] {
  const forward = view.forwardName(d);
  let values = forwardLabels.get(forward);
  if (!values) forwardLabels.set(forward, (values = [forward]));
  return values;
}

/** A service's ipvs_service_info labels after `service`, from the packed records, as serviceInfoLabels has them. */
function serviceInfoValues(view: TableView, s: number): string[] {
  const family = view.serviceAf(s) === AF_INET6 ? 'inet6' : 'inet';
  const fwmark = view.fwmark(s);
  if (fwmark !== 0) return [family, '', '', '', String(fwmark), view.scheduler(s)];
  return [family, view.protocolName(s), view.serviceAddress(s), String(view.port(s)), '', view.scheduler(s)];
}

/** Reads one field of Stats (a function per field: a keyed read in the hot loop is slower). */
const STATS_FIELD: Record<keyof Stats, (stats: Stats) => bigint> = {
  connections: (s) => s.connections, packetsIn: (s) => s.packetsIn, packetsOut: (s) => s.packetsOut,
  bytesIn: (s) => s.bytesIn, bytesOut: (s) => s.bytesOut, connectionRate: (s) => s.connectionRate,
  packetRateIn: (s) => s.packetRateIn, packetRateOut: (s) => s.packetRateOut, byteRateIn: (s) => s.byteRateIn,
  byteRateOut: (s) => s.byteRateOut,
};

/** The counters of Stats, with the words of their metric names. */
const COUNTERS: Array<[suffix: string, help: string, field: keyof Stats]> = [
  ['connections_total', 'Connections scheduled', 'connections'],
  ['incoming_packets_total', 'Packets from clients', 'packetsIn'],
  ['outgoing_packets_total', 'Packets to clients', 'packetsOut'],
  ['incoming_bytes_total', 'Bytes from clients', 'bytesIn'],
  ['outgoing_bytes_total', 'Bytes to clients', 'bytesOut'],
];

/** The kernel's rate estimates (updated every 2 s, smoothed over about 8 s). */
const RATES: Array<[suffix: string, help: string, field: keyof Stats]> = [
  ['connections_per_second', 'Connections per second, as the kernel estimates it', 'connectionRate'],
  ['incoming_packets_per_second', 'Packets per second from clients, as the kernel estimates it', 'packetRateIn'],
  ['outgoing_packets_per_second', 'Packets per second to clients, as the kernel estimates it', 'packetRateOut'],
  ['incoming_bytes_per_second', 'Bytes per second from clients, as the kernel estimates it', 'byteRateIn'],
  ['outgoing_bytes_per_second', 'Bytes per second to clients, as the kernel estimates it', 'byteRateOut'],
];

/**
 * Gauges per destination: read from a Destination, and from the packed records. The weight and
 * the active and inactive connections are node_exporter's node_ipvs_backend_* (the same values,
 * once).
 */
const DESTINATION_GAUGES: Array<[name: string, help: string, read: (d: Destination) => number, record: (view: TableView, d: number) => number]> = [
  ['ipvs_destination_upper_threshold', 'Connection limit (0: none)', (d) => d.upperThreshold, (v, d) => v.upperThreshold(d)],
  ['ipvs_destination_lower_threshold', 'Connections below which an overloaded destination is used again (0: none)', (d) => d.lowerThreshold,
    (v, d) => v.lowerThreshold(d)],
  ['ipvs_destination_persistent_connections', 'Persistence templates pointing at the destination now', (d) => d.persistentConnections,
    (v, d) => v.persistentConnections(d)],
];

interface LabelledRows {
  services: Array<[ServiceWithDestinations, ServiceLabels]>;
  destinations: Array<[Destination, DestinationLabels]>;
}

// Label objects are built once per sample and shared by every family.
const labelCache = new WeakMap<IpvsSample, LabelledRows>();

function labelled(sample: IpvsSample, services: ServiceWithDestinations[]): LabelledRows {
  let rows = labelCache.get(sample);
  if (!rows) {
    rows = { services: [], destinations: [] };
    for (const service of services) {
      const labels = serviceLabels(service);
      rows.services.push([service, labels]);
      for (const destination of service.destinations) rows.destinations.push([destination, destinationLabels(labels, destination)]);
    }
    labelCache.set(sample, rows);
  }
  return rows;
}

function perService(registry: Registry, sampler: IpvsSampler, name: string, help: string, type: 'counter' | 'gauge',
  read: (service: ServiceWithDestinations) => number | bigint, table: TableFamily): void {
  registerSampledMetric<ServiceLabel>(registry, sampler, {
    name, help, type, labelNames: SERVICE_LABEL_NAMES, table,
    fill: (sample, put) => {
      if (!sample.services) return false;
      for (const [service, labels] of labelled(sample, sample.services).services) put(labels, read(service));
      return true;
    },
  });
}

function perDestination(registry: Registry, sampler: IpvsSampler, name: string, help: string, type: 'counter' | 'gauge',
  read: (destination: Destination) => number | bigint, table: TableFamily): void {
  registerSampledMetric<DestinationLabel>(registry, sampler, {
    name, help, type, labelNames: DESTINATION_LABEL_NAMES, table,
    fill: (sample, put) => {
      if (!sample.services) return false;
      for (const [destination, labels] of labelled(sample, sample.services).destinations) put(labels, read(destination));
      return true;
    },
  });
}

/** Registers every `ipvs_*` family (see the README's metric table) on `registry`. */
export function registerIpvsMetrics(registry: Registry, sampler: IpvsSampler): void {
  for (const [suffix, help, field] of COUNTERS) {
    const read = STATS_FIELD[field];
    const counter = Counter[field];
    perService(registry, sampler, `ipvs_service_${suffix}`, `${help} by the virtual service`, 'counter', (s) => read(s.stats),
      { rows: 'services', counter });
    perDestination(registry, sampler, `ipvs_destination_${suffix}`, `${help} through the real server`, 'counter', (d) => read(d.stats),
      { rows: 'destinations', counter });
  }
  for (const [suffix, help, field] of RATES) {
    const read = STATS_FIELD[field];
    const counter = Counter[field];
    perService(registry, sampler, `ipvs_service_${suffix}`, `${help}, for the virtual service`, 'gauge', (s) => read(s.stats),
      { rows: 'services', counter });
    perDestination(registry, sampler, `ipvs_destination_${suffix}`, `${help}, for the real server`, 'gauge', (d) => read(d.stats),
      { rows: 'destinations', counter });
    registerSampledMetric(registry, sampler, {
      name: `ipvs_${suffix}`, help: `${help}, for the whole namespace`, type: 'gauge', labelNames: [],
      fill: (sample, put) => {
        if (!sample.global) return false;
        put({}, sample.global[field]);
        return true;
      },
    });
  }
  for (const [name, help, read, record] of DESTINATION_GAUGES) {
    perDestination(registry, sampler, name, help, 'gauge', read, { rows: 'destinations', value: record });
  }
  perService(registry, sampler, 'ipvs_service_destinations', 'Real servers of the virtual service', 'gauge', (s) => s.destinations.length,
    { rows: 'services', value: (v, s) => v.destinationCountOf(s) });
  perService(registry, sampler, 'ipvs_service_persistence_timeout_seconds', 'Persistence timeout (0: not persistent)', 'gauge',
    (s) => s.persistent ?? 0, { rows: 'services', value: (v, s) => v.persistent(s) ?? 0 });
  registerSampledMetric<ServiceInfoLabel | 'scheduler'>(registry, sampler, {
    name: 'ipvs_service_info',
    help: 'The virtual service\'s address family, protocol, address, port or fwmark, and scheduler, as labels; always 1', type: 'gauge',
    labelNames: [...SERVICE_INFO_LABEL_NAMES, 'scheduler'],
    table: {
      rows: 'services', value: () => 1,
      extra: { names: [...SERVICE_INFO_LABEL_NAMES.slice(1), 'scheduler'], values: serviceInfoValues },
    },
    fill: (sample, put) => {
      if (!sample.services) return false;
      for (const service of sample.services) put({ ...serviceInfoLabels(service), scheduler: service.scheduler }, 1);
      return true;
    },
  });
  registerSampledMetric<DestinationLabel | 'forward'>(registry, sampler, {
    name: 'ipvs_destination_info', help: 'The real server\'s forwarding method, as a label; always 1', type: 'gauge',
    labelNames: [...DESTINATION_LABEL_NAMES, 'forward'],
    table: { rows: 'destinations', value: () => 1, extra: { names: ['forward'], values: forwardValues } },
    fill: (sample, put) => {
      if (!sample.services) return false;
      for (const [destination, labels] of labelled(sample, sample.services).destinations) put({ ...labels, forward: destination.forward }, 1);
      return true;
    },
  });
  registerSampledMetric(registry, sampler, {
    name: 'ipvs_services', help: 'Virtual services in the namespace', type: 'gauge', labelNames: [],
    fill: (sample, put) => {
      const count = serviceCount(sample);
      if (count === undefined) return false;
      put({}, count);
      return true;
    },
  });
  registerSampledMetric<'state'>(registry, sampler, {
    name: 'ipvs_sync_daemon_running', help: 'Whether the connection-sync daemon runs in this state (1) or not (0)',
    type: 'gauge', labelNames: ['state'],
    fill: (sample, put) => {
      if (!sample.daemons) return false;
      for (const state of ['master', 'backup'] as const) put({ state }, sample.daemons.some((d) => d.state === state) ? 1 : 0);
      return true;
    },
  });
  registerSampledMetric<'state' | 'interface' | 'sync_id'>(registry, sampler, {
    name: 'ipvs_sync_daemon_info', help: 'A running connection-sync daemon, its interface and sync ID as labels; always 1',
    type: 'gauge', labelNames: ['state', 'interface', 'sync_id'],
    fill: (sample, put) => {
      if (!sample.daemons) return false;
      for (const d of sample.daemons) put({ state: d.state, interface: d.interface, sync_id: String(d.syncId) }, 1);
      return true;
    },
  });
  if (sampler.countsConnectionStates) {
    registerSampledMetric<'state'>(registry, sampler, {
      name: 'ipvs_connection_entries', help: 'Entries of the connection table by state (persistence templates are NONE)',
      type: 'gauge', labelNames: ['state'],
      fill: (sample, put) => {
        if (!sample.connectionStates) return false;
        for (const { key, count } of sample.connectionStates) put({ state: key }, count);
        return true;
      },
    });
  }
  registerSampledMetric(registry, sampler, {
    name: 'ipvs_up', help: 'Whether the last reading of the IPVS table succeeded (1) or not (0)', type: 'gauge', labelNames: [],
    fill: (sample, put) => {
      put({}, sample.error ? 0 : 1);
      return true;
    },
  });
  registerSampledMetric(registry, sampler, {
    name: 'ipvs_scrape_duration_seconds', help: 'Time taken to read the IPVS table, totals and daemons for this scrape',
    type: 'gauge', labelNames: [],
    fill: (sample, put) => {
      put({}, sample.durationSeconds);
      return true;
    },
  });
}
