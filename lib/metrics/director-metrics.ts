// The director's metrics: health, drains, quorum and sorry servers read from its status at
// scrape time; checks, repairs and errors counted from its events as they happen.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

import {
  DESTINATION_LABEL_NAMES, SERVICE_LABEL_NAMES, destinationLabels, serviceLabels, type DestinationLabels, type ServiceLabels,
} from './labels';
import { followDirector, type DirectorSource, type DirectorStatus } from './director-source';

type ServiceLabel = keyof ServiceLabels;
type DestinationLabel = keyof DestinationLabels;

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

/**
 * Registers the `ipvs_director_*` families on `registry` and follows `director`'s events.
 * @returns a function that stops following the events.
 */
export function registerDirectorMetrics(registry: Registry, director: DirectorSource): () => void {
  statusGauge<DestinationLabel>(registry, director, 'ipvs_director_destination_up',
    'Whether the director holds the real server up (1: all its checks pass) or down (0)', DESTINATION_LABEL_NAMES, (status, set) => {
      for (const s of status.services) {
        const labels = serviceLabels(s.service);
        for (const d of s.destinations) set(destinationLabels(labels, d), d.health === 'up' ? 1 : 0);
      }
    });
  statusGauge<DestinationLabel>(registry, director, 'ipvs_director_destination_configured_weight',
    'The weight configured for the real server (the kernel\'s is ipvs_destination_weight)', DESTINATION_LABEL_NAMES, (status, set) => {
      for (const s of status.services) {
        const labels = serviceLabels(s.service);
        for (const d of s.destinations) if (d.configuredWeight !== undefined) set(destinationLabels(labels, d), d.configuredWeight);
      }
    });
  statusGauge<DestinationLabel>(registry, director, 'ipvs_director_drain_remaining_connections',
    'Connections (and persistence templates) left on a draining real server', DESTINATION_LABEL_NAMES, (status, set) => {
      for (const s of status.services) {
        const labels = serviceLabels(s.service);
        for (const d of s.destinations) if (d.drain) set(destinationLabels(labels, d), d.drain.connections);
      }
    });
  statusGauge<DestinationLabel>(registry, director, 'ipvs_director_drain_elapsed_seconds',
    'Time since a draining real server was set to weight 0', DESTINATION_LABEL_NAMES, (status, set) => {
      const now = Date.now();
      for (const s of status.services) {
        const labels = serviceLabels(s.service);
        for (const d of s.destinations) if (d.drain) set(destinationLabels(labels, d), Math.max(0, now - d.drain.startedAt) / 1000);
      }
    });
  statusGauge<ServiceLabel>(registry, director, 'ipvs_director_quorum_up',
    'Whether the virtual service has quorum (1) or runs on its sorry servers (0)', SERVICE_LABEL_NAMES, (status, set) => {
      for (const s of status.services) if (s.quorum) set(serviceLabels(s.service), s.quorum.up ? 1 : 0);
    });
  statusGauge<ServiceLabel>(registry, director, 'ipvs_director_live_weight',
    'Sum of the weights of the live real servers, which quorum is measured against', SERVICE_LABEL_NAMES, (status, set) => {
      for (const s of status.services) if (s.quorum) set(serviceLabels(s.service), s.quorum.liveWeight);
    });
  statusGauge<ServiceLabel>(registry, director, 'ipvs_director_quorum_required',
    'The live weight the virtual service needs for quorum', SERVICE_LABEL_NAMES, (status, set) => {
      for (const s of status.services) if (s.quorum) set(serviceLabels(s.service), s.quorum.required);
    });
  statusGauge<ServiceLabel>(registry, director, 'ipvs_director_sorry_active',
    'Whether the sorry server(s) of the virtual service are in (1) or not (0)', SERVICE_LABEL_NAMES, (status, set) => {
      for (const s of status.services) set(serviceLabels(s.service), s.sorry ? 1 : 0);
    });

  const checkDuration = new Histogram<'check'>({
    name: 'ipvs_director_check_duration_seconds', help: 'Health check latency by check type',
    labelNames: ['check'], buckets: CHECK_BUCKETS, registers: [registry],
  });
  const checkFailures = new Counter<DestinationLabel | 'check'>({
    name: 'ipvs_director_check_failures_total', help: 'Failed health checks by real server and check type',
    labelNames: [...DESTINATION_LABEL_NAMES, 'check'], registers: [registry],
    // Destinations that left the configuration leave the output too.
    collect(this: Counter<DestinationLabel | 'check'>) {
      const known = new Set<string>();
      for (const s of director.status().services) {
        const labels = serviceLabels(s.service);
        for (const d of s.destinations) known.add(seriesKey(destinationLabels(labels, d)));
      }
      for (const [key, series] of failureSeries) {
        if (known.has(seriesKey(series))) continue;
        this.remove(series);
        failureSeries.delete(key);
      }
    },
  });
  const failureSeries = new Map<string, Record<DestinationLabel | 'check', string>>();
  const transitions = new Counter<'to'>({
    name: 'ipvs_director_transitions_total', help: 'Real servers going up or down', labelNames: ['to'], registers: [registry],
  });
  const driftRepairs = new Counter({
    name: 'ipvs_director_drift_repairs_total', help: 'Changes made to the kernel by others and repaired by the director',
    registers: [registry],
  });
  const applies = new Counter({
    name: 'ipvs_director_applies_total', help: 'Changes the director applied to the kernel', registers: [registry],
  });
  const applyErrors = new Counter({
    name: 'ipvs_director_apply_errors_total', help: 'Errors from the kernel while applying (each retried with backoff)',
    registers: [registry],
  });
  transitions.inc({ to: 'up' }, 0);
  transitions.inc({ to: 'down' }, 0);

  return followDirector(director, (name, payload) => {
    switch (name) {
      case 'check': {
        const check = payload.check;
        if (!check) return;
        if (Number.isFinite(check.latency) && check.latency >= 0) checkDuration.observe({ check: check.type }, check.latency);
        if (!check.ok && payload.service && payload.destination) {
          const labels = destinationLabels(serviceLabels(payload.service), payload.destination);
          const series = { ...labels, check: check.type };
          failureSeries.set(`${seriesKey(labels)}\0${check.type}`, series);
          checkFailures.inc(series);
        }
        return;
      }
      case 'up':
      case 'down':
        transitions.inc({ to: name });
        return;
      case 'drift-repaired':
        driftRepairs.inc();
        return;
      case 'applied':
        applies.inc();
        return;
      case 'error':
        applyErrors.inc();
        return;
      default:
    }
  });
}

function seriesKey(labels: DestinationLabels): string {
  return DESTINATION_LABEL_NAMES.map((name) => labels[name]).join('\0');
}
