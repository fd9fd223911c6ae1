// Shared by the service, destination, oracle, error and concurrency kernel tests.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, expect } from 'vitest';

import { Ipvs, IpvsError } from '../../lib/index';
import { createNetns, type TestNetns } from './helpers';
import { SCHEDULERS } from '../../lib/constants';

/** The ip_vs_twos scheduler came with Linux 6.2 (it is in 6.6); the 6.1 VM kernel lacks it. */
export const HAS_TWOS = (() => {
  const kernel = process.env.IPVS_VM_KERNEL ?? readFileSync('/proc/sys/kernel/osrelease', 'utf8');
  const [major = 0, minor = 0] = kernel.split('.').map((n) => parseInt(n, 10));
  return major > 6 || (major === 6 && minor >= 2);
})();

export const KERNEL_SCHEDULERS = SCHEDULERS.filter((s) => s !== 'twos' || HAS_TWOS);

/** The compiled package (scripts/test.sh builds it), for child processes and Workers. */
export const DIST_INDEX = path.resolve(process.cwd(), 'dist/index.js');

/** Awaits a rejection and checks it is an IpvsError with that code, errno and operation. */
export async function expectIpvsError(promise: Promise<unknown>, code: string, operation: string): Promise<IpvsError> {
  const error = await promise.then(
    (value) => { throw new Error(`expected ${operation} to fail with ${code}, it resolved with ${String(value)}`); },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(IpvsError);
  const ipvsError = error as IpvsError;
  expect({ code: ipvsError.code, operation: ipvsError.operation }).toEqual({ code, operation });
  expect(ipvsError.errno).toBe(errnoOf(code));
  expect(ipvsError.message).toContain(`(${code})`);
  return ipvsError;
}

const ERRNOS: Record<string, number> = { EPERM: 1, ENOENT: 2, ESRCH: 3, EBADF: 9, EEXIST: 17, EINVAL: 22, ERANGE: 34 };

function errnoOf(code: string): number {
  const errno = ERRNOS[code];
  if (errno === undefined) throw new Error(`add ${code} to ERRNOS`);
  return errno;
}

const STAT_FIELDS = [
  'connections', 'packetsIn', 'packetsOut', 'bytesIn', 'bytesOut',
  'connectionRate', 'packetRateIn', 'packetRateOut', 'byteRateIn', 'byteRateOut',
];

/** Stats carry exactly the ten counters, each a bigint. */
export function expectStats(stats: unknown): void {
  expect(Object.keys(stats as object).sort()).toEqual([...STAT_FIELDS].sort());
  for (const field of STAT_FIELDS) expect(typeof (stats as Record<string, unknown>)[field], field).toBe('bigint');
}

/** Drops the stats (checked separately) so the rest can be compared with toEqual. */
export function withoutStats<T extends { stats?: unknown }>(value: T): Omit<T, 'stats'> {
  const { stats: _stats, ...rest } = value;
  return rest;
}

/** ipvsadm -S -n as a sorted list of lines. */
export function saveLines(output: string): string[] {
  return output.split('\n').map((l) => l.trimEnd()).filter(Boolean).sort();
}

/**
 * Gives the enclosing describe block a fresh namespace and a handle bound to it: made before
 * its tests, closed and removed after them; with `flushAfterEach`, `ipvsadm -C` after each test.
 */
export function withFreshNetns(
  prefix: string,
  receive: (opened: { ns: TestNetns; ipvs: Ipvs }) => void,
  options: { flushAfterEach?: boolean } = {},
): void {
  let opened: { ns: TestNetns; ipvs: Ipvs } | undefined;
  beforeAll(async () => {
    const ns = createNetns(prefix);
    opened = { ns, ipvs: await Ipvs.open({ netns: ns.path }) };
    receive(opened);
  });
  if (options.flushAfterEach) afterEach(() => opened?.ns.run('ipvsadm', ['-C']));
  afterAll(async () => {
    await opened?.ipvs.close();
    opened?.ns.remove();
  });
}
