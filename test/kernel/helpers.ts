import { execFileSync } from 'node:child_process';
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
