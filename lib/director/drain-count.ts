// What still holds a draining destination: its entries in the connection table, persistence
// templates included, except those that are finished and only wait out a timer.
import type { ConnectionTable } from '../connections';
import { hostPort } from './config';

/**
 * TCP entries in these states carry no more data: TIME_WAIT lasts 2 minutes in IPVS and
 * CLOSE 10 s, and waiting for them would only delay the deletion. Every other entry counts:
 * ESTABLISHED and the other TCP states (the kernel's active and inactive counters), UDP and
 * SCTP entries, and persistence templates (state NONE), which the kernel's counters leave out.
 */
export const FINISHED_STATES: ReadonlySet<string> = new Set(['TIME_WAIT', 'CLOSE']);

/** Entries per destination id ('10.0.1.1:80'), finished ones left out. */
export function openConnectionsByDestination(table: ConnectionTable): Map<string, number> {
  const { destinationAddress, destinationPort, state, addresses, states } = table.columns;
  const finished = states.map((name) => FINISHED_STATES.has(name.toUpperCase()));
  const keys = new Map<number, string>();
  const counts = new Map<string, number>();
  for (let i = 0; i < table.length; i++) {
    if (finished[state[i]!]) continue;
    const slot = destinationAddress[i]! * 65536 + destinationPort[i]!;
    let key = keys.get(slot);
    if (key === undefined) keys.set(slot, (key = hostPort(addresses[destinationAddress[i]!]!, destinationPort[i]!)));
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}
