// The most recent events shown on the page: the director's, or, with no director, changes
// seen between two readings of the kernel's table.
import type { StatusEvent, StatusService } from './status';

export class EventLog {
  readonly capacity: number;
  #events: StatusEvent[] = [];

  constructor(capacity = 50) {
    this.capacity = capacity;
  }

  push(event: StatusEvent): void {
    this.#events.push(event);
    if (this.#events.length > this.capacity) this.#events.splice(0, this.#events.length - this.capacity);
  }

  /** Oldest first. */
  recent(): StatusEvent[] {
    return [...this.#events];
  }
}

/**
 * What changed between two readings: services and destinations added or removed, and kernel
 * weights changed (by anyone: ipvsadm, a director, this process).
 */
export function tableChanges(before: StatusService[], after: StatusService[], time: number): StatusEvent[] {
  const events: StatusEvent[] = [];
  const old = new Map(before.map((s) => [s.name, s]));
  const now = new Map(after.map((s) => [s.name, s]));
  for (const [name, service] of now) {
    const previous = old.get(name);
    if (!previous) {
      events.push({ time, type: 'service-added', service: name });
      continue;
    }
    const oldDests = new Map(previous.destinations.map((d) => [d.name, d]));
    for (const dest of service.destinations) {
      const was = oldDests.get(dest.name);
      if (!was) events.push({ time, type: 'destination-added', service: name, destination: dest.name, message: `weight ${dest.weight}` });
      else if (was.weight !== dest.weight) {
        events.push({ time, type: 'weight', service: name, destination: dest.name, message: `weight ${was.weight} → ${dest.weight}` });
      }
    }
    const newDests = new Set(service.destinations.map((d) => d.name));
    for (const dest of previous.destinations) {
      if (!newDests.has(dest.name)) events.push({ time, type: 'destination-removed', service: name, destination: dest.name });
    }
  }
  for (const name of old.keys()) if (!now.has(name)) events.push({ time, type: 'service-removed', service: name });
  return events;
}
