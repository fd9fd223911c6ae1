import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** Runs a command and returns its stdout; throws with stderr on a non-zero exit. */
export function run(command: string, args: string[], options: { input?: string } = {}): string {
  return execFileSync(command, args, { encoding: 'utf8', input: options.input, stdio: ['pipe', 'pipe', 'pipe'] });
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
  remove(): void;
}

/** Creates a fresh network namespace (IPVS state is per namespace) with loopback up. */
export function createNetns(prefix = 't'): TestNetns {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  run('ip', ['netns', 'add', name]);
  run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return {
    name,
    path: `/run/netns/${name}`,
    run: (command, args, options) => runIn(name, command, args, options),
    remove: () => run('ip', ['netns', 'delete', name]),
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
  run('ip', ['-n', a.name, 'link', 'add', aIf, 'type', 'veth', 'peer', 'name', bIf, 'netns', b.name]);
  for (const [ns, ifname, list] of [[a, aIf, addresses.a], [b, bIf, addresses.b]] as const) {
    for (const cidr of list ?? []) {
      const extra = cidr.includes(':') ? ['nodad'] : [];
      run('ip', ['-n', ns.name, 'addr', 'add', cidr, 'dev', ifname, ...extra]);
    }
    run('ip', ['-n', ns.name, 'link', 'set', ifname, 'up']);
  }
}

/**
 * Polls `probe` until it returns a value other than undefined/false, or throws after
 * `timeoutMs` with the last error or `what`. For things the kernel does periodically.
 */
export async function waitFor<T>(
  what: string, probe: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 15_000, intervalMs = 250 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export interface BackgroundProcess {
  /** Output so far (stdout and stderr). */
  output(): string;
  /** Writes to its stdin (kept open until stop()). */
  write(text: string): void;
  /** Kills the whole process group. */
  stop(): void;
}

/** Starts a long-running command inside a namespace in its own process group. */
export function spawnIn(netns: TestNetns, command: string, args: string[]): BackgroundProcess {
  const child = spawn('ip', ['netns', 'exec', netns.name, command, ...args], {
    detached: true, stdio: ['pipe', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdin?.on('error', () => { /* the process is gone */ });
  child.stdout?.on('data', (chunk: Buffer) => { text += chunk.toString(); });
  child.stderr?.on('data', (chunk: Buffer) => { text += chunk.toString(); });
  return {
    output: () => text,
    write: (input) => { child.stdin?.write(input); },
    stop: () => {
      if (child.pid !== undefined && child.exitCode === null) {
        try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
      }
    },
  };
}
