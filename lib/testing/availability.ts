// Whether this process can drive IPVS here, for skipping integration tests politely elsewhere.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const CAP_SYS_ADMIN = 21;
const CAP_NET_ADMIN = 12;

function hasCapability(bit: number): boolean {
  try {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
    return line !== undefined && ((BigInt(`0x${line.slice(7).trim()}`) >> BigInt(bit)) & 1n) === 1n;
  } catch {
    return false;
  }
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try { accessSync(path.join(dir, command), constants.X_OK); return true; } catch { return false; }
  });
}

/**
 * Why the kit cannot run here, or undefined when it can: Linux, IPVS in the kernel
 * (`/proc/net/ip_vs`; this library never loads modules), CAP_NET_ADMIN and CAP_SYS_ADMIN
 * (namespaces), and the `ip` command.
 */
export function ipvsUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return `IPVS needs Linux (this is ${process.platform})`;
  if (!existsSync('/proc/net/ip_vs')) return 'the kernel has no IPVS (/proc/net/ip_vs is missing: modprobe ip_vs, or run the tests with `npx ipvs-netlink sandbox -- …`)';
  if (!hasCapability(CAP_NET_ADMIN) || !hasCapability(CAP_SYS_ADMIN)) return 'IPVS tests need root (CAP_NET_ADMIN and CAP_SYS_ADMIN)';
  if (!onPath('ip')) return 'the `ip` command (iproute2) is not on PATH';
  return undefined;
}

/** True when IPVS integration tests can run here (see {@link ipvsUnavailableReason}). */
export function ipvsAvailable(): boolean {
  return ipvsUnavailableReason() === undefined;
}

/** A test context that can skip itself: vitest's `ctx` / `ctx.skip`, node:test's `t`. */
export interface SkippableContext {
  skip(note?: string): unknown;
}

/**
 * Skips a test when IPVS is not usable here. Returns the reason (a non-empty string) when
 * skipping and `false` otherwise, so it fits each runner:
 *
 * - node:test: `test('balances', { skip: skipUnlessIpvs() }, async () => …)`,
 *   or inside: `if (skipUnlessIpvs(t)) return;`
 * - vitest: `it.skipIf(skipUnlessIpvs())('balances', …)`, `describe.skipIf(…)`,
 *   or inside: `skipUnlessIpvs(ctx)` (vitest's `ctx.skip()` stops the test)
 * - jest: `(skipUnlessIpvs() ? it.skip : it)('balances', …)`
 */
export function skipUnlessIpvs(context?: SkippableContext): string | false {
  const reason = ipvsUnavailableReason();
  if (reason === undefined) return false;
  if (context !== undefined) {
    if (typeof context?.skip !== 'function') throw new TypeError('context must be a test context with a skip() method');
    context.skip(reason);
  }
  return reason;
}
