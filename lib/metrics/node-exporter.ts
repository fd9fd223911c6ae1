// node_exporter's IPVS metrics (collector/ipvs_linux.go), same names, types and labels, so
// that dashboards built on node_exporter keep working against this exporter.
import type { Registry } from 'prom-client';

import type { Stats } from '../types';
import { NODE_EXPORTER_BACKEND_LABEL_NAMES, nodeExporterBackendLabels, type NodeExporterBackendLabels } from './labels';
import { registerSampledMetric } from './sampled-metric';
import type { IpvsSample, IpvsSampler } from './sampler';
import type { ServiceWithDestinations } from '../table';

type BackendLabel = keyof NodeExporterBackendLabels;

const TOTALS: Array<[name: string, help: string, field: keyof Stats]> = [
  ['node_ipvs_connections_total', 'The total number of connections made.', 'connections'],
  ['node_ipvs_incoming_packets_total', 'The total number of incoming packets.', 'packetsIn'],
  ['node_ipvs_outgoing_packets_total', 'The total number of outgoing packets.', 'packetsOut'],
  ['node_ipvs_incoming_bytes_total', 'The total amount of incoming data.', 'bytesIn'],
  ['node_ipvs_outgoing_bytes_total', 'The total amount of outgoing data.', 'bytesOut'],
];

const BACKEND: Array<[name: string, help: string, field: 'activeConnections' | 'inactiveConnections' | 'weight']> = [
  ['node_ipvs_backend_connections_active', 'The current active connections by local and remote address.', 'activeConnections'],
  ['node_ipvs_backend_connections_inactive', 'The current inactive connections by local and remote address.', 'inactiveConnections'],
  ['node_ipvs_backend_weight', 'The current backend weight by local and remote address.', 'weight'],
];

interface Backend {
  labels: NodeExporterBackendLabels;
  activeConnections: number;
  inactiveConnections: number;
  weight: number;
}

// Computed once per sample for the three backend families.
const backendCache = new WeakMap<IpvsSample, Backend[]>();

function backendsOf(sample: IpvsSample, services: ServiceWithDestinations[]): Backend[] {
  let backends = backendCache.get(sample);
  if (backends) return backends;
  const byKey = new Map<string, Backend>();
  for (const service of services) {
    for (const destination of service.destinations) {
      const labels = nodeExporterBackendLabels(service, destination);
      const key = `${labels.local_address}\0${labels.local_port}\0${labels.remote_address}\0${labels.remote_port}\0${labels.proto}\0${labels.local_mark}`;
      const sum = byKey.get(key);
      if (sum) {
        sum.activeConnections += destination.activeConnections;
        sum.inactiveConnections += destination.inactiveConnections;
        sum.weight += destination.weight;
      } else {
        byKey.set(key, {
          labels, activeConnections: destination.activeConnections, inactiveConnections: destination.inactiveConnections,
          weight: destination.weight,
        });
      }
    }
  }
  backends = [...byKey.values()];
  backendCache.set(sample, backends);
  return backends;
}

/**
 * Registers the eight `node_ipvs_*` families. The totals are the namespace's own
 * (/proc/net/ip_vs_stats), as node_exporter reads them. Backends with identical labels
 * (possible across address families of one fwmark) are summed, as node_exporter sums them.
 */
export function registerNodeExporterMetrics(registry: Registry, sampler: IpvsSampler): void {
  for (const [name, help, field] of TOTALS) {
    registerSampledMetric(registry, sampler, {
      name, help, type: 'counter', labelNames: [],
      fill: (sample, put) => {
        if (!sample.global) return false;
        put({}, sample.global[field]);
        return true;
      },
    });
  }
  for (const [name, help, field] of BACKEND) {
    registerSampledMetric<BackendLabel>(registry, sampler, {
      name, help, type: 'gauge', labelNames: NODE_EXPORTER_BACKEND_LABEL_NAMES, table: { rows: 'backends', value: field },
      fill: (sample, put) => {
        if (!sample.services) return false;
        for (const backend of backendsOf(sample, sample.services)) put(backend.labels, backend[field]);
        return true;
      },
    });
  }
}
