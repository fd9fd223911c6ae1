// Fault injection for the tests: not part of the public API (no entry point exports it, and
// its types are not published). Process-wide; `setFaults({})` restores the defaults.
import { nativeAddon } from '../native';

export interface FaultOptions {
  /** How long any receive waits for the kernel (default 10,000 ms). */
  replyTimeoutMs?: number;
  /** The next this many received acks are thrown away unread, as if lost. */
  dropAcks?: number;
  /** The next dump fails with EBADMSG, as a decode error would, after this many replies. */
  failDumpAfter?: number;
  /** The next abandoned dump is not read to its end: the socket is replaced instead. */
  skipDrain?: boolean;
  /** Added to the namespace's service count, so that every service dump looks incomplete. */
  serviceCountBias?: number;
}

export interface FaultStats {
  /** Abandoned dumps read to their end. */
  drainedDumps: number;
  /** Sockets replaced after an abandoned dump could not be finished. */
  reconnects: number;
  /** Services a dump repeated (the kernel's resume position moved), dropped from its answer. */
  repeatedServices: number;
  /** Service dumps made again because they listed fewer services than the namespace counts. */
  repeatedDumps: number;
  /** Acks still to be dropped. */
  dropAcksLeft: number;
  /** Record buffers that collected listings gave back, kept for the next listing, and their bytes. */
  recordPoolBuffers: number;
  recordPoolBytes: number;
}

/** @internal The addon's fault hooks. */
export interface FaultHooks {
  set(options: FaultOptions): void;
  stats(): FaultStats;
}

function hooks(): FaultHooks {
  return nativeAddon().faults;
}

/** Sets every fault at once; options left out go back to their defaults. */
export function setFaults(options: FaultOptions): void {
  hooks().set(options);
}

export function faultStats(): FaultStats {
  return hooks().stats();
}
