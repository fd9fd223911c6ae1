// Loads the compiled addon (a prebuilt binary from prebuilds/ first, then build/Release) and
// describes, in one interface, everything it exports.
import path from 'node:path';

import type { ConnectionAddon } from './connections';
import type { ProbeLayout } from './director/checks/probe-codec';
import type { NativeProbeTransportClass } from './director/checks/probe-transport';
import type { FaultHooks } from './internal/faults';
import type { WireDaemon, WireTimeouts } from './config';

const packageRoot = path.join(__dirname, '..');

/** @internal The fields of one kind of packed record: word offset and present bit of each. */
export interface RecordKindLayout<Field extends string> {
  /** Words per record; word 0 holds the present bits. */
  words: number;
  at: Readonly<Record<Field, number>>;
  bit: Readonly<Record<Field, number>>;
}

/** @internal Service record fields (native/record_layout.h). */
export type ServiceField =
  | 'af' | 'protocol' | 'address' | 'port' | 'fwmark' | 'scheduler' | 'flags' | 'flagsMask' | 'timeout' | 'netmask'
  | 'peName' | 'destinationCount' | 'stats';

/** @internal Destination record fields (native/record_layout.h). */
export type DestinationField =
  | 'address' | 'port' | 'forward' | 'weight' | 'upperThreshold' | 'lowerThreshold' | 'af' | 'tunnelType'
  | 'tunnelPort' | 'tunnelFlags' | 'activeConnections' | 'inactiveConnections' | 'persistentConnections' | 'stats';

/** @internal The record layout the addon exports when it loads: written once, in C++. */
export interface RecordLayout {
  service: RecordKindLayout<ServiceField>;
  destination: RecordKindLayout<DestinationField>;
  /** A request: the command word, then a service record and a destination record. */
  request: { words: number; command: number; service: number; destination: number };
  /** The ten u64 counters of a stats field, in order, each two words (low, high). */
  statsCounters: readonly string[];
}

/** @internal Packed service and destination records, as listTable and query resolve. */
export interface NativeTable {
  services: Uint32Array;
  destinations: Uint32Array;
  /** Schedulers and persistence engines, referred to by index. */
  strings: string[];
}

/** @internal Test-only tuning of the addon's chunking (see native BatchOptions). */
export interface BatchTuning {
  /** Requests per sendmsg(), used as given (even above the receive-buffer budget). */
  acksPerChunk?: number;
  /** SO_RCVBUF for this batch only, in bytes (the kernel doubles it). */
  receiveBuffer?: number;
}

/** @internal What executeBatch resolves to. */
export interface NativeBatchResults {
  /** 0, or the errno the kernel answered, per request. */
  errors: Int32Array;
  /** 1 where the answer was lost (the operation may or may not have been applied). */
  unknown: Uint8Array;
  /** The kernel's extended-ack message, by request index, where it sent one. */
  messages: Record<number, string>;
  /** sendmsg() calls that carried requests. */
  sendCalls: number;
  /** Chunks whose acks were partly lost (ENOBUFS). */
  overruns: number;
}

/** @internal The requests that still travel as objects: daemons, timeouts, info. */
export interface ObjectRequest {
  command: number;
  daemon?: WireDaemon;
  timeouts?: WireTimeouts;
}

/** @internal One netlink socket (native/ipvs_handle.h). */
export interface NativeHandle {
  /** Daemon, config and info commands; resolves to the decoded reply (or undefined). */
  execute(request: ObjectRequest): Promise<unknown>;
  /**
   * Request records (lib/records.ts) -> one errno per request. A single call is a batch of one.
   * The addon reads the records in place: they must not change until the promise settles.
   */
  executeBatch(records: Uint32Array, strings: string[], tuning?: BatchTuning): Promise<NativeBatchResults>;
  /** One GET_SERVICE or GET_DEST request record -> the reply as packed records. */
  query(record: Uint32Array, strings: string[]): Promise<NativeTable>;
  /**
   * Query records (GET_SERVICE or GET_DEST, as `query` takes them) answered one after the other
   * in one thread-pool job, into one packed table; `counts[i]` is how many records the i-th
   * request produced (services, or destinations). The first error rejects.
   */
  queryMany(records: Uint32Array, strings: string[]): Promise<NativeTable & { counts: Uint32Array }>;
  /**
   * Every service and its destinations, read in one thread-pool job, as packed records. With
   * `onPart`, the table arrives in parts of whole services while the job runs: `onPart` gets
   * each part but the last, in order, all before the promise resolves with the last part.
   * `onPart` must not throw.
   */
  listTable(onPart?: (part: NativeTable) => void): Promise<NativeTable>;
  close(): void;
}

/** @internal Everything the addon exports. */
export interface NativeAddon extends ConnectionAddon {
  IpvsHandle: { open(netnsPath: string): Promise<NativeHandle> };
  recordLayout: RecordLayout;
  /**
   * A handle's listTable() without a handle: opens a socket in `netnsPath` ('' for the caller's
   * namespace), lists and closes, all in one thread-pool job (the command's head start); with
   * onPart, in parts of whole services as listTable hands them over.
   */
  listTableIn(netnsPath: string, onPart?: (part: NativeTable) => void): Promise<NativeTable>;
  /**
   * Detaches record arrays of a listing whose objects are built (they read as empty from then
   * on), so the next listing writes its records into their memory, already in place, instead
   * of new pages. Arrays that are not the addon's own are left alone.
   */
  releaseRecords(...arrays: Uint32Array[]): void;
  /** A small /proc/net file of the namespace (e.g. ip_vs_stats), read off the event loop. */
  readProcNet(netnsPath: string, name: string): Promise<string>;
  /** Fault injection for the tests (lib/internal/faults.ts). */
  faults: FaultHooks;
  /** The health checks' probe thread (lib/director/checks/probe-transport.ts). */
  ProbeTransport: NativeProbeTransportClass;
  /** Its wire format's record sizes and limits (native/probe_codec.h). */
  probeLayout: ProbeLayout;
}

/**
 * Explains a failure to load the addon: a missing shared library or build is passed through
 * (as `cause`, with its own text in the message) with a hint naming what to install.
 */
export function explainLoadError(error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  if (/libnl(-genl)?-3\.so/.test(message)) {
    return new Error(
      `ipvs-netlink: the native addon needs the libnl-3 and libnl-genl-3 shared libraries: ${message}\n` +
        'Install them (Debian/Ubuntu: apt-get install libnl-3-200 libnl-genl-3-200; ' +
        'Fedora/RHEL: dnf install libnl3; Alpine: apk add libnl3).',
      { cause: error },
    );
  }
  if (/No native build was found/.test(message)) {
    return new Error(
      `ipvs-netlink: ${message}\nBuild from source with \`npm rebuild ipvs-netlink\` ` +
        '(needs a C++17 compiler, python3, make and the libnl-3-dev and libnl-genl-3-dev headers).',
      { cause: error },
    );
  }
  return error instanceof Error ? error : new Error(message);
}

function loadAddon(): NativeAddon {
  // A build from source is where node-gyp-build looks first; loading it directly spares every
  // command a directory scan and two modules. Prebuilds, and a build directory named by
  // IPVS_NETLINK_PREBUILD (node-gyp-build's override, used for the ASan build), still go
  // through node-gyp-build.
  const buildRoot = process.env.IPVS_NETLINK_PREBUILD || packageRoot;
  if (!process.env.PREBUILDS_ONLY) {
    try {
      return require(path.join(buildRoot, 'build', 'Release', 'ipvs_netlink.node')) as NativeAddon;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw explainLoadError(error);
    }
  }
  try {
    const load = require('node-gyp-build') as (dir: string) => NativeAddon;
    return load(packageRoot);
  } catch (error) {
    throw explainLoadError(error);
  }
}

let addon: NativeAddon | undefined;

/** @internal The native addon, loaded on first use so that importing the package never throws. */
export function nativeAddon(): NativeAddon {
  addon ??= loadAddon();
  return addon;
}
