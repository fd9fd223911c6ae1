// The director's metrics: health, drains, quorum and sorry servers read from its status at
// scrape time; checks, transitions, repairs and errors counted from its events.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

import type { DestinationStatus, DirectorStatus, ServiceStatus } from '../director';
import { followDirector, type DirectorSource } from './director-source';
import {
  DESTINATION_LABEL_NAMES, SERVICE_LABEL_NAMES, destinationLabels, serviceLabels, type DestinationLabels, type ServiceLabels,
} from './labels';

type ServiceLabel = keyof ServiceLabels;
type DestinationLabel = keyof DestinationLabels;

const VRRP_STATES = ['master', 'backup', 'fault', 'stop', 'deleted', 'unknown'] as const;

/** Check latency buckets, seconds: from a local connect (sub-ms) to a timeout (the 5–10 s defaults). */
const CHECK_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function statusGauge<L extends string>(registry: Registry, director: DirectorSource, name: string, help: string,
  labelNames: readonly L[], fill: (status: DirectorStatus, set: (labels: Record<L, string>, value: number) => void) => void): void {
  new Gauge<L>({
    name, help, labelNames: labelNames as L[], registers: [registry],
    collect(this: Gauge<L>) {
      const status = director.status();
      this.reset();
      fill(status, (labels, value) => this.set(labels, value));
    },
  });
}

function eachDestination(status: DirectorStatus, fn: (labels: DestinationLabels, d: DestinationStatus, s: ServiceStatus) => void): void {
  for (const s of status.services) {
    const labels = serviceLabels(s.key);
    for (const d of s.destinations) fn(destinationLabels(labels, d), d, s);
  }
}

/**
 * Registers the `ipvs_director_*` families on `registry` and follows `director`'s events.
 * The check histogram and failure counter need 'check' events: construct the Director with
 * `{ checkEvents: true }`.
 * @returns a function that stops following the events.
 */
export function registerDirectorMetrics(registry: Registry, director: DirectorSource): () => void {
  statusGauge<DestinationLabel>(registry, director, 'ipvs_director_destination_up',
    'Whether the director holds the real server up (1: all its checks pass) or not (0)', DESTINATION_LABEL_NAMES, (status, set) => {
      eachDestination(status, (labels, d) => set(labels, d.health === 'up' ? 1 : 0));
    });
  statusGauge<DestinationLabel | 'health'>(registry, director, 'ipvs_director_destination_health',
    'The real server\'s health as a label (up, down, pending, draining, drained); always 1',
    [...DESTINATION_LABEL_NAMES, 'health'], (status, set) => {
      eachDestination(status, (labels, d) => set({ ...labels, health: d.health }, 1));
    });
  statusGauge<DestinationLabel>(registry, director, 'ipvs_director_destination_configured_weight',
    'The weight configured for the real server (the kernel\'s is node_ipvs_backend_weight)', DESTINATION_LABEL_NAMES, (status, set) => {
      eachDestination(status, (labels, d) => set(labels, d.configuredWeight));
    });
  statusGauge<DestinationLabel>(registry, director, 'ipvs_director_drain_remaining_connections',
    'Connections and persistence templates left on a draining real server', DESTINATION_LABEL_NAMES, (status, set) => {
      eachDestination(status, (labels, d) => {
        if (d.drain) set(labels, d.connections.active + d.connections.inactive + d.connections.persistent);
      });
    });
  statusGauge<DestinationLabel>(registry, director, 'ipvs_director_drain_elapsed_seconds',
    'Time since a draining real server was set to weight 0', DESTINATION_LABEL_NAMES, (status, set) => {
      const now = Date.now();
      eachDestination(status, (labels, d) => {
        if (d.drain) set(labels, Math.max(0, now - d.drain.started) / 1000);
      });
    });
  statusGauge<DestinationLabel>(registry, director, 'ipvs_director_drain_deadline_seconds',
    'Time left before a draining real server is deleted even with connections left', DESTINATION_LABEL_NAMES, (status, set) => {
      const now = Date.now();
      eachDestination(status, (labels, d) => {
        if (d.drain) set(labels, Math.max(0, d.drain.deadline - now) / 1000);
      });
    });
  statusGauge<ServiceLabel>(registry, director, 'ipvs_director_quorum_up',
    'Whether the virtual service has quorum (1) or not (0)', SERVICE_LABEL_NAMES, (status, set) => {
      for (const s of status.services) set(serviceLabels(s.key), s.quorum.state === 'up' ? 1 : 0);
    });
  statusGauge<ServiceLabel>(registry, director, 'ipvs_director_live_weight',
    'Sum of the weights of the live real servers, which quorum is measured against', SERVICE_LABEL_NAMES, (status, set) => {
      for (const s of status.services) set(serviceLabels(s.key), s.quorum.liveWeight);
    });
  statusGauge<ServiceLabel>(registry, director, 'ipvs_director_quorum_required',
    'The live weight the virtual service needs for quorum', SERVICE_LABEL_NAMES, (status, set) => {
      for (const s of status.services) set(serviceLabels(s.key), s.quorum.quorum);
    });
  statusGauge<ServiceLabel>(registry, director, 'ipvs_director_sorry_active',
    'Whether the sorry server(s) of the virtual service are in (1) or not (0)', SERVICE_LABEL_NAMES, (status, set) => {
      for (const s of status.services) set(serviceLabels(s.key), s.sorry ? 1 : 0);
    });
  statusGauge(registry, director, 'ipvs_director_in_sync',
    'Whether the kernel table matched the director\'s state at its last sync (0 after a kernel error, until a retry succeeds)',
    [], (status, set) => set({}, status.inSync ? 1 : 0));

  // With the `vrrp` option: every state as a series (1 for the current one), as node_exporter's systemd unit states.
  statusGauge<'instance' | 'state'>(registry, director, 'ipvs_director_vrrp_state',
    'The followed keepalived VRRP instance\'s state (1 for the current one: master, backup, fault, stop, deleted, unknown)',
    ['instance', 'state'], (status, set) => {
      if (!status.vrrp) return;
      for (const state of VRRP_STATES) set({ instance: status.vrrp.instance, state }, status.vrrp.state === state ? 1 : 0);
    });
  statusGauge<'state'>(registry, director, 'ipvs_director_sync_daemon_state',
    'The connection-sync daemon the director keeps running for VRRP (1 for the current one: master, backup, none)',
    ['state'], (status, set) => {
      if (!status.vrrp) return;
      for (const state of ['master', 'backup', 'none'] as const) set({ state }, status.vrrp.daemon === state ? 1 : 0);
    });

  // Events name services by id ('tcp 10.0.0.1:80'); their labels come from the status.
  const serviceIds = new Map<string, ServiceLabels>();
  const labelsOfService = (id: string): ServiceLabels | undefined => {
    let labels = serviceIds.get(id);
    if (!labels) {
      for (const s of director.status().services) serviceIds.set(s.id, serviceLabels(s.key));
      labels = serviceIds.get(id);
    }
    return labels;
  };

  const checkDuration = new Histogram<'check'>({
    name: 'ipvs_director_check_duration_seconds', help: 'Health check latency by check type',
    labelNames: ['check'], buckets: CHECK_BUCKETS, registers: [registry],
  });
  const failureSeries = new Map<string, Record<DestinationLabel | 'check', string>>();
  const checkFailures = new Counter<DestinationLabel | 'check'>({
    name: 'ipvs_director_check_failures_total', help: 'Failed health checks by real server and check type',
    labelNames: [...DESTINATION_LABEL_NAMES, 'check'], registers: [registry],
    // Real servers that left the configuration leave the output too.
    collect(this: Counter<DestinationLabel | 'check'>) {
      const known = new Set<string>();
      eachDestination(director.status(), (labels) => known.add(seriesKey(labels)));
      for (const [key, series] of failureSeries) {
        if (known.has(seriesKey(series))) continue;
        this.remove(series);
        failureSeries.delete(key);
      }
    },
  });
  const transitions = new Counter<'to'>({
    name: 'ipvs_director_transitions_total', help: 'Real servers going up or down', labelNames: ['to'], registers: [registry],
  });
  const driftRepairs = new Counter({
    name: 'ipvs_director_drift_repairs_total', help: 'Changes made to the kernel by others and undone by the director',
    registers: [registry],
  });
  const applied = new Counter({
    name: 'ipvs_director_applied_operations_total', help: 'Operations the director sent to the kernel', registers: [registry],
  });
  const errors = new Counter<'operation'>({
    name: 'ipvs_director_errors_total',
    help: 'Errors by what was being done (apply: the kernel refused a change, retried with backoff; read-table; …)',
    labelNames: ['operation'], registers: [registry],
  });
  const vrrpTransitions = new Counter<'instance' | 'to'>({
    name: 'ipvs_director_vrrp_transitions_total', help: 'State changes of the followed keepalived VRRP instance, by new state',
    labelNames: ['instance', 'to'], registers: [registry],
  });
  transitions.inc({ to: 'up' }, 0);
  transitions.inc({ to: 'down' }, 0);
  errors.inc({ operation: 'apply' }, 0);

  return followDirector(director, (event) => {
    switch (event.type) {
      case 'check': {
        checkDuration.observe({ check: event.checkType }, event.latency / 1000);
        if (event.ok) return;
        const service = labelsOfService(event.service);
        if (!service) return;
        const [address, port] = splitDestinationId(event.destination);
        const labels = destinationLabels(service, { address, port });
        const series = { ...labels, check: event.checkType };
        failureSeries.set(`${seriesKey(labels)}\0${event.checkType}`, series);
        checkFailures.inc(series);
        return;
      }
      case 'up':
      case 'down':
        transitions.inc({ to: event.type });
        return;
      case 'drift-repaired':
        driftRepairs.inc();
        return;
      case 'applied':
        applied.inc(event.operations.length);
        return;
      case 'error':
        errors.inc({ operation: event.operation }, event.count ?? 1);
        return;
      case 'vrrp':
        vrrpTransitions.inc({ instance: event.instance, to: event.to });
        return;
      default:
    }
  });
}

function seriesKey(labels: DestinationLabels): string {
  return DESTINATION_LABEL_NAMES.map((name) => labels[name]).join('\0');
}

/** '10.0.0.2:80' → ['10.0.0.2', 80]; '[2001:db8::2]:80' → ['2001:db8::2', 80]. */
export function splitDestinationId(id: string): [string, number] {
  const colon = id.lastIndexOf(':');
  const host = id.slice(0, colon);
  return [host.startsWith('[') ? host.slice(1, -1) : host, Number(id.slice(colon + 1))];
}
