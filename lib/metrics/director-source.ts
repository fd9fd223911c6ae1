// What the metrics and the status page need from a director: its events and a status
// snapshot. Structural, so any object of this shape can be served (the Director of
// `ipvs-netlink/director` is one).
import type { ServiceKey } from '../types';

/** The events the page and the metrics follow. */
export const DIRECTOR_EVENT_NAMES = [
  'up', 'down', 'weight', 'drain-start', 'drained', 'quorum-lost', 'quorum-gained', 'sorry-on', 'sorry-off',
  'drift-repaired', 'applied', 'error', 'check',
] as const;
export type DirectorEventName = (typeof DIRECTOR_EVENT_NAMES)[number];

/** A destination as events name it. */
export interface DirectorDestinationRef {
  address: string;
  port: number;
}

/** One check's outcome. `latency` is in seconds. */
export interface DirectorCheckResult {
  type: string;
  ok: boolean;
  latency: number;
  /** What went wrong or what the server answered (untrusted text: shown escaped). */
  message?: string;
  /** When the check finished (ms since the epoch). */
  at?: number;
}

/** The payload of every event; fields that do not apply are absent. */
export interface DirectorEventPayload {
  service?: ServiceKey;
  destination?: DirectorDestinationRef;
  /** `check` events. */
  check?: DirectorCheckResult;
  /** `weight` events. */
  weight?: number;
  /** `error` events: the error, or its message. */
  error?: unknown;
  /** Free text (e.g. what a drift repair changed). */
  message?: string;
}

export interface DirectorDrainStatus {
  /** ms since the epoch. */
  startedAt: number;
  /** Seconds after which the destination is deleted with connections left; absent: none. */
  timeout?: number;
  /** Active + inactive connections and persistence templates still pointing at it. */
  connections: number;
}

export interface DirectorDestinationStatus extends DirectorDestinationRef {
  /** 'up', 'down', or a director-specific word ('unknown' before the first check). */
  health: string;
  /** The weight set in the kernel now. */
  weight: number;
  /** The weight configured for it. */
  configuredWeight?: number;
  lastCheck?: DirectorCheckResult;
  drain?: DirectorDrainStatus;
}

export interface DirectorServiceStatus {
  service: ServiceKey;
  quorum?: { up: boolean; liveWeight: number; required: number };
  /** Whether the sorry server(s) are in. */
  sorry?: boolean;
  destinations: DirectorDestinationStatus[];
}

export interface DirectorStatus {
  services: DirectorServiceStatus[];
}

/** A director as the metrics and the status page see it. */
export interface DirectorSource {
  on(event: DirectorEventName, listener: (payload: DirectorEventPayload) => void): unknown;
  off(event: DirectorEventName, listener: (payload: DirectorEventPayload) => void): unknown;
  status(): DirectorStatus;
}

/** Subscribes to every event; returns the unsubscribe function. */
export function followDirector(director: DirectorSource, listener: (name: DirectorEventName, payload: DirectorEventPayload) => void): () => void {
  const listeners = DIRECTOR_EVENT_NAMES.map((name) => {
    const fn = (payload: DirectorEventPayload): void => listener(name, payload ?? {});
    director.on(name, fn);
    return [name, fn] as const;
  });
  return () => {
    for (const [name, fn] of listeners) director.off(name, fn);
  };
}
