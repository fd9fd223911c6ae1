// Named network namespaces for tests: made fresh, configured with `ip`, removed with everything
// that runs in them. The test process itself never enters a namespace (no setns): commands run
// through `ip netns exec`, and IPVS handles through `Ipvs.open({ netns: ns.path })`.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync, type Stats } from 'node:fs';

import { runCommand, runCommandSync, toArgv, type CommandLine, type ExecOptions } from './command';
import { spawnProcess, type NetnsProcess } from './process';

/** Options of {@link createNetns} and {@link withNetns}. */
export interface NetnsOptions {
  /** Start of the namespace's name (letters, digits, `-`, `_`; at most 20); a random suffix follows. Default `'t'`. */
  prefix?: string;
}

/** Options of {@link Netns.addRoute}. */
export interface RouteOptions {
  /** Next hop (gateway) address. */
  via?: string;
  /** Output interface. */
  dev?: string;
  /** Preferred source address for locally generated packets. */
  src?: string;
  /** Treat the gateway as directly reachable on `dev` even if no prefix covers it. */
  onlink?: boolean;
}

const PREFIX = /^[A-Za-z0-9_-]{1,20}$/;
const IFNAME = /^[^\s/:]{1,15}$/;
const SYSCTL_KEY = /^[A-Za-z0-9_][A-Za-z0-9_.\-/]*$/;

const live = new Set<Netns>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A test runner that exits without running `finally` blocks still leaves nothing behind.
  process.on('exit', () => {
    for (const ns of live) {
      try { ns.removeSync(); } catch { /* best effort at exit */ }
    }
  });
}

function checkIfname(ifname: unknown, what = 'ifname'): asserts ifname is string {
  if (typeof ifname !== 'string' || !IFNAME.test(ifname)) {
    throw new TypeError(`${what} must be an interface name (1-15 characters, no spaces, '/' or ':'), got ${JSON.stringify(ifname)}`);
  }
}

/** Lines for `ip -batch -`; tokens with spaces or quotes are refused rather than quoted. */
function batchInput(commands: ReadonlyArray<readonly string[]>): string {
  return commands.map((argv) => {
    for (const token of argv) {
      if (typeof token !== 'string' || token === '' || /[\s"'\\#]/.test(token)) throw new TypeError(`ip batch argument ${JSON.stringify(token)} must be a non-empty word`);
    }
    return argv.join(' ');
  }).join('\n') + '\n';
}

/** Pids of the processes whose network namespace is the one mounted at `nsPath`. */
function pidsIn(nsPath: string): number[] {
  let target: Stats;
  try { target = statSync(nsPath); } catch { return []; }
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const st = statSync(`/proc/${entry}/ns/net`);
      if (st.ino === target.ino && st.dev === target.dev) pids.push(Number(entry));
    } catch { /* exited, or a kernel thread */ }
  }
  return pids;
}

/**
 * Turns IPv6 duplicate address detection off in a new namespace, before it has any link: every
 * IPv6 address, the link-local ones each interface makes for itself included, is usable at
 * once instead of tentative for a second or more (EADDRNOTAVAIL for a socket bound to it, an
 * IPv6 multicast sender such as a sync daemon, …). A kernel without IPv6 is left as it is.
 */
const DAD_OFF = '[ ! -d /proc/sys/net/ipv6 ] || { echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad && echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad; }';

/** The namespace's first command: DAD off (see DAD_OFF), then loopback up. */
function firstCommand(name: string): string[] {
  return ['ip', 'netns', 'exec', name, 'sh', '-c', `${DAD_OFF} && ip link set lo up`];
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * A named network namespace (`/run/netns/NAME`), made by {@link createNetns} or
 * {@link withNetns}. Every method runs `ip` or the given command inside it; none changes the
 * calling process's namespace. Failing commands reject with a {@link CommandError}.
 */
export class Netns {
  /** The namespace's name, as `ip netns list` shows it. */
  readonly name: string;
  /** Its path, for `Ipvs.open({ netns: ns.path })` and `nsenter --net=`. */
  readonly path: string;
  readonly #processes = new Set<NetnsProcess>();
  #removed = false;

  /** Use {@link createNetns} or {@link withNetns}: they create the namespace this object names. */
  constructor(name: string) {
    this.name = name;
    this.path = `/run/netns/${name}`;
  }

  /** True once {@link remove} has run. */
  get removed(): boolean { return this.#removed; }

  #argv(command: CommandLine): string[] {
    if (this.#removed) throw new Error(`network namespace ${this.name} was removed`);
    return ['ip', 'netns', 'exec', this.name, ...toArgv(command)];
  }

  /**
   * Runs a command inside the namespace and resolves with its stdout. A string runs under
   * `sh -c`; an array runs as is. Rejects with a {@link CommandError} (exit status, stderr)
   * when it fails or outlives `options.timeoutMs` (default 60 s).
   */
  async exec(command: CommandLine, options?: ExecOptions): Promise<string> {
    return runCommand(this.#argv(command), options);
  }

  /** {@link exec}, synchronously: blocks the event loop, so keep it to set-up and assertions. */
  execSync(command: CommandLine, options?: ExecOptions): string {
    return runCommandSync(this.#argv(command), options);
  }

  /** Runs `ip ARGS…` on this namespace (`ip -n NAME ARGS…`) and resolves with its stdout. */
  async ip(args: readonly string[], options?: ExecOptions): Promise<string> {
    if (this.#removed) throw new Error(`network namespace ${this.name} was removed`);
    return runCommand(['ip', '-n', this.name, ...args], options);
  }

  /**
   * Runs several `ip` commands on this namespace in one process (`ip -n NAME -batch -`), in
   * order, stopping at the first failure: `ipBatch([['link', 'set', 'eth0', 'up'], ['route', …]])`.
   */
  async ipBatch(commands: ReadonlyArray<readonly string[]>, options?: ExecOptions): Promise<void> {
    if (this.#removed) throw new Error(`network namespace ${this.name} was removed`);
    if (commands.length === 0) return;
    await runCommand(['ip', '-n', this.name, '-batch', '-'], { ...options, input: batchInput(commands) });
  }

  /**
   * Starts a long-running command inside the namespace (a server, `tcpdump`, a daemon), in
   * its own process group. It is killed when the namespace is removed, or earlier by `stop()`.
   */
  spawn(command: CommandLine): NetnsProcess {
    const child = spawnProcess(this.#argv(command));
    this.#processes.add(child);
    void child.exited.then(() => this.#processes.delete(child));
    return child;
  }

  /**
   * Sets sysctls of this namespace: `sysctl('net.ipv4.ip_forward', 1)`, or several in one
   * process: `sysctl({ 'net.ipv4.conf.all.arp_ignore': 1, 'net.ipv4.conf.all.arp_announce': 2 })`.
   * `/` also separates, for interface names with dots.
   */
  async sysctl(key: string | Readonly<Record<string, string | number>>, value?: string | number): Promise<void> {
    const entries = typeof key === 'string' ? [[key, value] as const] : typeof key === 'object' && key !== null ? Object.entries(key) : [];
    if (entries.length === 0) throw new TypeError('key must be a sysctl name or an object of sysctl names and values');
    const args: string[] = [];
    for (const [name, v] of entries) {
      if (typeof name !== 'string' || !SYSCTL_KEY.test(name) || name.includes('..')) {
        throw new TypeError(`key must be a sysctl name such as 'net.ipv4.ip_forward', got ${JSON.stringify(name)}`);
      }
      if ((typeof v !== 'string' && typeof v !== 'number') || /[\n\0]/.test(String(v))) {
        throw new TypeError(`value of ${name} must be a number or a one-line string, got ${String(v)}`);
      }
      args.push(`/proc/sys/${name.includes('/') ? name : name.replace(/\./g, '/')}`, String(v));
    }
    const script = 'while [ $# -gt 0 ]; do printf "%s\\n" "$2" > "$1" || exit 1; shift 2; done';
    await this.exec(['sh', '-c', script, 'sh', ...args]);
  }

  /**
   * Adds addresses (CIDR: `'10.0.1.2/24'`, `'2001:db8::2/64'`) to an interface. IPv6
   * addresses skip duplicate address detection so they are usable at once.
   */
  async addAddress(ifname: string, addresses: string | readonly string[]): Promise<void> {
    checkIfname(ifname);
    const list = typeof addresses === 'string' ? [addresses] : addresses;
    if (!Array.isArray(list) || list.length === 0) throw new TypeError('addresses must be a CIDR string or a non-empty array of them');
    for (const cidr of list) {
      if (typeof cidr !== 'string' || !/^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(cidr)) {
        throw new TypeError(`address must be an IPv4 or IPv6 address with an optional /prefix, got ${JSON.stringify(cidr)}`);
      }
      await this.ip(['addr', 'add', cidr, 'dev', ifname, ...(cidr.includes(':') ? ['nodad'] : [])]);
    }
  }

  /**
   * Adds a route: `addRoute('default', { via: '10.0.2.1' })`,
   * `addRoute('10.0.1.0/24', { dev: 'eth0' })`. Needs `via` or `dev`.
   */
  async addRoute(destination: string, options: RouteOptions): Promise<void> {
    if (typeof destination !== 'string' || !/^(default|[0-9a-fA-F.:]+(\/\d{1,3})?)$/.test(destination)) {
      throw new TypeError(`destination must be 'default' or an address with an optional /prefix, got ${JSON.stringify(destination)}`);
    }
    if (typeof options !== 'object' || options === null || (!options.via && !options.dev)) {
      throw new TypeError('options must name a gateway (via) or an interface (dev)');
    }
    if (options.dev !== undefined) checkIfname(options.dev, 'options.dev');
    const args = ['route', 'add', destination];
    if (options.via) args.push('via', options.via);
    if (options.dev) args.push('dev', options.dev);
    if (options.src) args.push('src', options.src);
    if (options.onlink) args.push('onlink');
    await this.ip(args);
  }

  /** Brings an interface up. */
  async linkUp(ifname: string): Promise<void> {
    checkIfname(ifname);
    await this.ip(['link', 'set', ifname, 'up']);
  }

  /**
   * Kills every process in the namespace (the ones {@link spawn} started and any other, such as
   * daemons that forked), then deletes it, which also destroys its interfaces (and the veth
   * peers in other namespaces). Idempotent.
   */
  async remove(): Promise<void> {
    if (this.#removed) return;
    await Promise.all([...this.#processes].map((p) => p.stop()));
    for (let attempt = 0; ; attempt += 1) {
      const pids = pidsIn(this.path);
      if (pids.length === 0) break;
      if (attempt === 100) throw new Error(`processes ${pids.join(' ')} in network namespace ${this.name} did not exit after SIGKILL`);
      for (const pid of pids) { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already gone */ } }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    this.#removed = true;
    live.delete(this);
    await runCommand(['ip', 'netns', 'delete', this.name]);
  }

  /** {@link remove}, synchronously (blocks the event loop). */
  removeSync(): void {
    if (this.#removed) return;
    for (let attempt = 0; ; attempt += 1) {
      const pids = pidsIn(this.path);
      if (pids.length === 0) break;
      if (attempt === 100) throw new Error(`processes ${pids.join(' ')} in network namespace ${this.name} did not exit after SIGKILL`);
      for (const pid of pids) { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already gone */ } }
      sleepSync(20);
    }
    this.#removed = true;
    live.delete(this);
    runCommandSync(['ip', 'netns', 'delete', this.name]);
  }

  /** `await using ns = await createNetns()` removes it at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }
}

function newName(options: NetnsOptions): string {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const prefix = options.prefix ?? 't';
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw new TypeError(`options.prefix must be 1-20 letters, digits, '-' or '_', got ${JSON.stringify(prefix)}`);
  }
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/**
 * Creates a fresh network namespace with loopback up and IPv6 duplicate address detection off
 * (addresses usable at once, link-local ones included). You remove it (`await ns.remove()` or
 * `await using`); {@link withNetns} does that for you. Needs root (CAP_SYS_ADMIN) and `ip`.
 */
export async function createNetns(options: NetnsOptions = {}): Promise<Netns> {
  const ns = new Netns(newName(options));
  await runCommand(['ip', 'netns', 'add', ns.name]);
  installExitHook();
  live.add(ns);
  try {
    await runCommand(firstCommand(ns.name));
  } catch (error) {
    await ns.remove().catch(() => undefined);
    throw error;
  }
  return ns;
}

/**
 * Creates several namespaces with one `ip` process (loopback stays down: bring it up in the
 * namespace's first {@link Netns.ipBatch}), IPv6 duplicate address detection off in each as in
 * {@link createNetns}. For topologies, where process start-up dominates.
 */
export async function createNetnsGroup(prefixes: readonly string[]): Promise<Netns[]> {
  const group = prefixes.map((prefix) => new Netns(newName({ prefix })));
  installExitHook();
  try {
    await runCommand(['ip', '-batch', '-'], { input: batchInput(group.map((ns) => ['netns', 'add', ns.name])) });
    // One shell for the group, the namespaces side by side.
    const script = `p=; for n; do ip netns exec "$n" sh -c '${DAD_OFF}' & p="$p $!"; done; s=0; for c in $p; do wait $c || s=1; done; exit $s`;
    await runCommand(['sh', '-c', script, 'sh', ...group.map((ns) => ns.name)]);
  } catch (error) {
    await Promise.all(group.filter((ns) => existsSync(ns.path)).map((ns) => { live.add(ns); return ns.remove().catch(() => undefined); }));
    throw error;
  }
  for (const ns of group) live.add(ns);
  return group;
}

/** {@link createNetns}, synchronously (blocks the event loop). */
export function createNetnsSync(options: NetnsOptions = {}): Netns {
  const ns = new Netns(newName(options));
  runCommandSync(['ip', 'netns', 'add', ns.name]);
  installExitHook();
  live.add(ns);
  try {
    runCommandSync(firstCommand(ns.name));
  } catch (error) {
    try { ns.removeSync(); } catch { /* keep the first error */ }
    throw error;
  }
  return ns;
}

/**
 * Runs `fn` with a fresh namespace and removes the namespace afterwards, whatever happens:
 * processes started in it are killed and its interfaces destroyed, even when `fn` throws.
 * Resolves with what `fn` returns.
 *
 * ```ts
 * await withNetns(async (ns) => {
 *   await using ipvs = await Ipvs.open({ netns: ns.path });
 *   await ipvs.addService({ protocol: 'tcp', address: '10.0.0.1', port: 80 });
 * });
 * ```
 */
export async function withNetns<T>(fn: (ns: Netns) => Promise<T> | T, options: NetnsOptions = {}): Promise<T> {
  if (typeof fn !== 'function') throw new TypeError('fn must be a function');
  const ns = await createNetns(options);
  let result: T;
  try {
    result = await fn(ns);
  } catch (error) {
    await ns.remove().catch(() => undefined);
    throw error;
  }
  await ns.remove();
  return result;
}
