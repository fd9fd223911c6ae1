// The rows of the table-sized families, shared by all of them for one sample: every service,
// every destination and node_exporter's backends, each with its label set encoded once as
// bytes (`{a="x",b="y"` without the closing brace, so that a family can append a label of
// its own). Built in slices, yielding to the event loop between them.
import type { ServiceWithDestinations } from '../table';
import type { Destination } from '../types';
import { SERVICE_LABEL_NAMES, nodeExporterBackendLabels, serviceLabels } from './labels';
import type { IpvsSample } from './sampler';

/** node_exporter's backend: one per destination, summed where two share their labels. */
export interface Backend {
  activeConnections: number;
  inactiveConnections: number;
  weight: number;
}

export interface TableSeries {
  services: ServiceWithDestinations[];
  serviceLabels: Uint8Array[];
  destinations: Destination[];
  destinationLabels: Uint8Array[];
  backends: Backend[];
  backendLabels: Uint8Array[];
}

/** Rows per slice of the event loop. */
const ROWS_PER_SLICE = 250;

export function escapeLabelValue(value: string): string {
  return /[\\"\n]/.test(value) ? value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : value;
}

/** `{a="x",b="y"` (no closing brace) for `names` of `labels`. */
export function openLabels(labels: Record<string, string>, names: readonly string[]): string {
  let text = '';
  for (let i = 0; i < names.length; i++) text += `${i === 0 ? '{' : ','}${names[i]}="${escapeLabelValue(labels[names[i]!] ?? '')}"`;
  return text;
}

const encode = (text: string): Uint8Array => Buffer.from(text, 'utf8');

/** Stands in for a destination where only the service's part of a label set is wanted. */
const NO_DESTINATION = { address: '', port: 0 } as Destination;

export const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const cache = new WeakMap<IpvsSample, Promise<TableSeries | undefined>>();

/** The rows of `sample` (undefined when its reading failed), built once per sample. */
export function tableSeries(sample: IpvsSample): Promise<TableSeries | undefined> {
  let series = cache.get(sample);
  if (!series) {
    series = sample.services ? build(sample.services) : Promise.resolve(undefined);
    cache.set(sample, series);
  }
  return series;
}

async function build(services: ServiceWithDestinations[]): Promise<TableSeries> {
  const rows: TableSeries = { services, serviceLabels: [], destinations: [], destinationLabels: [], backends: [], backendLabels: [] };
  // Backends share labels only across the address families of one fwmark: only those are merged.
  const fwmarkBackends = new Map<string, Backend>();
  let sliced = 0;
  for (const service of services) {
    const serviceText = openLabels(serviceLabels(service) as unknown as Record<string, string>, SERVICE_LABEL_NAMES);
    rows.serviceLabels.push(encode(serviceText));
    // The label sets of destinationLabels() and nodeExporterBackendLabels(), written around
    // each destination's address and port.
    const backend = nodeExporterBackendLabels(service, NO_DESTINATION);
    const backendHead = `{local_address="${escapeLabelValue(backend.local_address)}",local_port="${backend.local_port}",remote_address="`;
    const backendTail = `",proto="${escapeLabelValue(backend.proto)}",local_mark="${backend.local_mark}"`;
    const fwmark = 'fwmark' in service;
    for (const destination of service.destinations) {
      const address = escapeLabelValue(destination.address);
      rows.destinations.push(destination);
      rows.destinationLabels.push(encode(`${serviceText},real_address="${address}",real_port="${destination.port}"`));
      const text = `${backendHead}${address}",remote_port="${destination.port}${backendTail}`;
      const sum = fwmark ? fwmarkBackends.get(text) : undefined;
      if (sum) {
        sum.activeConnections += destination.activeConnections;
        sum.inactiveConnections += destination.inactiveConnections;
        sum.weight += destination.weight;
      } else {
        const row = { activeConnections: destination.activeConnections, inactiveConnections: destination.inactiveConnections, weight: destination.weight };
        if (fwmark) fwmarkBackends.set(text, row);
        rows.backends.push(row);
        rows.backendLabels.push(encode(text));
      }
      if (++sliced === ROWS_PER_SLICE) {
        sliced = 0;
        await nextTick();
      }
    }
  }
  return rows;
}
