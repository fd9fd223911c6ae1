// The kernel suite's helpers: thin synchronous wrappers over the public kit (lib/testing), kept
// for the existing tests. New tests can use 'lib/testing' directly (withNetns, topology, …).
import type { Stats } from '../../lib/index';
import { runCommandSync } from '../../lib/testing/command';
import { Netns, createNetnsSync } from '../../lib/testing/netns';
import type { NetnsProcess } from '../../lib/testing/process';
import { waitFor as kitWaitFor } from '../../lib/testing/wait';

/** Runs a command and returns its stdout; throws (a CommandError, with stderr) on a non-zero exit. */
export function run(command: string, args: string[], options: { input?: string } = {}): string {
  return runCommandSync([command, ...args], options);
}

/** Runs a command inside a named network namespace. */
export function runIn(netns: string, command: string, args: string[], options: { input?: string } = {}): string {
  return run('ip', ['netns', 'exec', netns, command, ...args], options);
}

export interface TestNetns {
  name: string;
  /** Path to hand to `Ipvs.open({ netns })`. */
  path: string;
  /** Runs a command inside this namespace. */
  run(command: string, args: string[], options?: { input?: string }): string;
  /** Kills what still runs in it and deletes it. */
  remove(): void;
  /** The kit's namespace object, for the kit's async helpers (veth, servers, clients). */
  kit?: Netns;
}

/** Creates a fresh network namespace (IPVS state is per namespace) with loopback up. */
export function createNetns(prefix = 't'): TestNetns {
  const ns = createNetnsSync({ prefix });
  return {
    name: ns.name,
    path: ns.path,
    run: (command, args, options) => ns.execSync([command, ...args], options),
    remove: () => ns.removeSync(),
    kit: ns,
  };
}

/** `ipvsadm -S -n` in a namespace, as sorted lines (the oracle's view of the table). */
export function ipvsadmSave(netns: TestNetns): string[] {
  return netns.run('ipvsadm', ['-S', '-n']).split('\n').filter(Boolean).sort();
}

/**
 * Joins two namespaces with a veth pair, brings both ends up and gives them the optional
 * addresses (CIDR, e.g. '10.1.0.1/24'; IPv6 ones are added with nodad so they are usable at once).
 */
export function connectNetns(
  a: TestNetns, aIf: string, b: TestNetns, bIf: string,
  addresses: { a?: string[]; b?: string[] } = {},
): void {
  const commands = [['link', 'add', aIf, 'type', 'veth', 'peer', 'name', bIf, 'netns', b.name]];
  const forEnd = (ifname: string, list: string[] = []) => [
    ...list.map((cidr) => ['addr', 'add', cidr, 'dev', ifname, ...(cidr.includes(':') ? ['nodad'] : [])]),
    ['link', 'set', ifname, 'up'],
  ];
  run('ip', ['-n', a.name, '-batch', '-'], { input: [...commands, ...forEnd(aIf, addresses.a)].map((c) => c.join(' ')).join('\n') });
  run('ip', ['-n', b.name, '-batch', '-'], { input: forEnd(bIf, addresses.b).map((c) => c.join(' ')).join('\n') });
}

/**
 * Polls `probe` until it returns a value other than undefined/false, or throws after
 * `timeoutMs` with the last error or `what`. For things the kernel does periodically.
 */
export function waitFor<T>(
  what: string, probe: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 15_000, intervalMs = 250 } = {},
): Promise<T> {
  return kitWaitFor(what, probe, { timeoutMs, intervalMs });
}

const countersOf = (s: Stats): string => [s.connections, s.packetsIn, s.packetsOut, s.bytesIn, s.bytesOut].join(',');
const ratesOf = (s: Stats): string => [s.connectionRate, s.packetRateIn, s.packetRateOut, s.byteRateIn, s.byteRateOut].join(',');
const NO_RATES = '0,0,0,0,0';

/**
 * Polls `read` until `ready` holds and the counters of every `stats` it returns are final.
 * IPVS folds its per-CPU counters into what it reports only when that object's rate estimator
 * runs: every 2 s, or later on a loaded host, so no wall-clock wait is enough. A run shows as
 * a change of the object's rates (they decay after traffic): counters that did not move across
 * one hold everything counted before the first reading. An object without any rate (idle, or
 * just zeroed) shows no run: it must keep its counters for longer than one estimator period.
 */
export function settledStats<T>(
  what: string, read: () => Promise<T>, stats: (value: T) => Stats[], ready: (value: T) => boolean,
  { timeoutMs = 30_000 } = {},
): Promise<T> {
  let first: { counters: string; rates: string[]; at: number } | undefined;
  return kitWaitFor(what, async () => {
    const value = await read();
    const all = stats(value);
    const now = { counters: all.map(countersOf).join(';'), rates: all.map(ratesOf), at: Date.now() };
    if (!ready(value) || first === undefined || now.counters !== first.counters) {
      first = now;
      return false;
    }
    const since = first;
    const ran = now.rates.every((rates, i) => rates !== since.rates[i] || (rates === NO_RATES && since.rates[i] === NO_RATES && now.at - since.at > 2_500));
    return ran && value;
  }, { timeoutMs, intervalMs: 250 });
}

export interface BackgroundProcess {
  /** Output so far (stdout and stderr). */
  output(): string;
  /** Writes to its stdin (kept open until stop()). */
  write(text: string): void;
  /** Kills the whole process group. */
  stop(): void;
}

/** Starts a long-running command inside a namespace in its own process group (killed with the namespace). */
export function spawnIn(netns: TestNetns, command: string, args: string[]): BackgroundProcess {
  const child: NetnsProcess = (netns.kit ?? new Netns(netns.name)).spawn([command, ...args]);
  return {
    output: () => child.output(),
    write: (input) => child.write(input),
    stop: () => { void child.stop(); },
  };
}
