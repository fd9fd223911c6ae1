// node_exporter's IPVS metrics (collector/ipvs_linux.go), same names, types and labels, so
// that dashboards built on node_exporter keep working against this exporter.
import type { Registry } from 'prom-client';

import type { Stats } from '../types';
import { NODE_EXPORTER_BACKEND_LABEL_NAMES, nodeExporterBackendLabels, type NodeExporterBackendLabels } from './labels';
import { registerSampledMetric } from './sampled-metric';
import type { IpvsSampler } from './sampler';

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
      name, help, type: 'gauge', labelNames: NODE_EXPORTER_BACKEND_LABEL_NAMES,
      fill: (sample, put) => {
        if (!sample.services) return false;
        const sums = new Map<string, { labels: NodeExporterBackendLabels; value: number }>();
        for (const service of sample.services) {
          for (const destination of service.destinations) {
            const labels = nodeExporterBackendLabels(service, destination);
            const key = NODE_EXPORTER_BACKEND_LABEL_NAMES.map((label) => labels[label]).join('\0');
            const sum = sums.get(key);
            if (sum) sum.value += destination[field];
            else sums.set(key, { labels, value: destination[field] });
          }
        }
        for (const { labels, value } of sums.values()) put(labels, value);
        return true;
      },
    });
  }
}
