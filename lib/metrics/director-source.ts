// What the metrics and the status page need from a director: its events and its status
// snapshot. The Director of `ipvs-netlink/director` is one; anything of the same shape (a test
// double, a wrapper) can be served too.
import type { Director } from '../director';

/** The part of a Director that is read: on/off for events, status() for the snapshot. */
export type DirectorSource = Pick<Director, 'on' | 'off' | 'status'>;

export type { DirectorEvent, DirectorEventType } from '../director';

/** Every event type, for subscribing to all of them. */
export const DIRECTOR_EVENT_TYPES = [
  'check', 'up', 'down', 'weight', 'drain-start', 'drained', 'quorum-lost', 'quorum-gained', 'sorry-on', 'sorry-off',
  'drift-repaired', 'applied', 'error', 'vrrp', 'sync-daemon',
] as const satisfies ReadonlyArray<import('../director').DirectorEventType>;

/** Subscribes `listener` to every event; returns the unsubscribe function. */
export function followDirector(director: DirectorSource, listener: (event: import('../director').DirectorEvent) => void): () => void {
  for (const type of DIRECTOR_EVENT_TYPES) director.on(type, listener);
  return () => {
    for (const type of DIRECTOR_EVENT_TYPES) director.off(type, listener);
  };
}
