// The status snapshot behind the page and /api/status: the kernel's table, merged with the
// director's view of each destination when a director is served. Plain JSON (numbers, not
// BigInts); every string in it is data to be shown as text.
import type { Stats } from '../types';
import type { DirectorStatus } from '../director';
import { hostPort, serviceName } from './labels';
import type { IpvsSample } from './sampler';

export interface StatusCounters {
  connections: number;
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  connectionRate: number;
  packetRateIn: number;
  packetRateOut: number;
  byteRateIn: number;
  byteRateOut: number;
}

/** The most recent check attempt of a destination. `latency` in seconds. */
export interface StatusCheck {
  type: string;
  ok: boolean;
  /** What went wrong or what the server answered: untrusted text, shown escaped. */
  message: string;
  latency: number;
  /** ms since the epoch. */
  at: number;
}

export interface StatusDrain {
  reason: string;
  /** ms since the epoch. */
  started: number;
  /** ms since the epoch: deleted then even with connections left. */
  deadline: number;
  /** Active + inactive connections and persistence templates left. */
  connections: number;
}

export interface StatusDestination {
  /** `address:port`, `[v6]:port`. */
  name: string;
  address: string;
  port: number;
  /** Whether the kernel has it (a director may hold a removed, failed destination). */
  inKernel: boolean;
  forward?: string;
  weight?: number;
  activeConnections?: number;
  inactiveConnections?: number;
  persistentConnections?: number;
  stats?: StatusCounters;
  /** From the director: 'up', 'down', 'pending', 'draining', 'drained'. */
  health?: string;
  configuredWeight?: number;
  lastCheck?: StatusCheck;
  drain?: StatusDrain;
  /** A sorry server (in while the service lacks quorum). */
  sorry?: boolean;
}

export interface StatusService {
  /** `tcp 192.0.2.1:80`, `fwmark 7`. */
  name: string;
  inKernel: boolean;
  scheduler?: string;
  persistent?: number;
  stats?: StatusCounters;
  quorum?: { up: boolean; liveWeight: number; required: number; hysteresis: number };
  sorry?: boolean;
  destinations: StatusDestination[];
}

export interface StatusEvent {
  /** ms since the epoch. */
  time: number;
  type: string;
  service?: string;
  destination?: string;
  message?: string;
}

export interface StatusSnapshot {
  /** ms since the epoch of the kernel reading. */
  time: number;
  netns: string | null;
  /** The reading's error, if it failed. */
  error?: string;
  scrapeSeconds: number;
  totals?: StatusCounters;
  daemons: Array<{ state: string; interface: string; syncId: number }>;
  director: boolean;
  services: StatusService[];
  events: StatusEvent[];
}

export function countersOf(stats: Stats): StatusCounters {
  return {
    connections: Number(stats.connections), packetsIn: Number(stats.packetsIn), packetsOut: Number(stats.packetsOut),
    bytesIn: Number(stats.bytesIn), bytesOut: Number(stats.bytesOut), connectionRate: Number(stats.connectionRate),
    packetRateIn: Number(stats.packetRateIn), packetRateOut: Number(stats.packetRateOut),
    byteRateIn: Number(stats.byteRateIn), byteRateOut: Number(stats.byteRateOut),
  };
}

/** Builds the snapshot: kernel services in kernel order, then services only the director knows. */
export function buildStatus(sample: IpvsSample, netns: string | undefined, director: DirectorStatus | undefined,
  events: StatusEvent[]): StatusSnapshot {
  const services: StatusService[] = [];
  const byName = new Map<string, StatusService>();
  for (const service of sample.services ?? []) {
    const entry: StatusService = {
      name: serviceName(service), inKernel: true, scheduler: service.scheduler,
      ...(service.persistent !== undefined ? { persistent: service.persistent } : {}),
      stats: countersOf(service.stats),
      destinations: service.destinations.map((d) => ({
        name: hostPort(d.address, d.port), address: d.address, port: d.port, inKernel: true, forward: d.forward,
        weight: d.weight, activeConnections: d.activeConnections, inactiveConnections: d.inactiveConnections,
        persistentConnections: d.persistentConnections, stats: countersOf(d.stats),
      })),
    };
    services.push(entry);
    byName.set(entry.name, entry);
  }
  for (const s of director?.services ?? []) {
    const name = serviceName(s.key);
    let entry = byName.get(name);
    if (!entry) {
      entry = { name, inKernel: false, destinations: [] };
      services.push(entry);
      byName.set(name, entry);
    }
    entry.quorum = { up: s.quorum.state === 'up', liveWeight: s.quorum.liveWeight, required: s.quorum.quorum, hysteresis: s.quorum.hysteresis };
    entry.sorry = s.sorry;
    for (const d of s.destinations) {
      const destName = hostPort(d.address, d.port);
      let dest = entry.destinations.find((x) => x.name === destName);
      if (!dest) {
        dest = { name: destName, address: d.address, port: d.port, inKernel: false };
        entry.destinations.push(dest);
      }
      dest.health = d.health;
      dest.configuredWeight = d.configuredWeight;
      if (d.sorry) dest.sorry = true;
      let last: StatusCheck | undefined;
      for (const check of d.checks) {
        if (check.last && (!last || check.last.at >= last.at)) {
          last = { type: check.type, ok: check.last.ok, message: check.last.message, latency: check.last.latency / 1000, at: check.last.at };
        }
      }
      if (last) dest.lastCheck = last;
      if (d.drain) {
        dest.drain = {
          reason: d.drain.reason, started: d.drain.started, deadline: d.drain.deadline,
          connections: d.connections.active + d.connections.inactive + d.connections.persistent,
        };
      }
    }
  }
  return {
    time: sample.at, netns: netns ?? null, ...(sample.error ? { error: sample.error.message } : {}),
    scrapeSeconds: sample.durationSeconds,
    ...(sample.global ? { totals: countersOf(sample.global) } : {}),
    daemons: (sample.daemons ?? []).map((d) => ({ state: d.state, interface: d.interface, syncId: d.syncId })),
    director: director !== undefined, services, events,
  };
}
