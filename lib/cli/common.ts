// What every command shares: --netns, opening the handle, error reporting, JSON output.
import type { Ipvs } from '../ipvs';
import * as io from './io';

/** Removes `--netns PATH` / `--netns=PATH` from argv; returns the path and the rest. */
export function takeNetns(argv: readonly string[]): { netns: string | undefined; rest: string[] } {
  const rest: string[] = [];
  let netns: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg === '--netns') {
      if (i + 1 >= argv.length) throw new UsageError('--netns needs a path (e.g. /run/netns/lb)');
      netns = argv[++i];
    } else if (arg.startsWith('--netns=')) {
      netns = arg.slice('--netns='.length);
    } else {
      rest.push(arg);
    }
  }
  if (netns !== undefined && netns === '') throw new UsageError('--netns needs a path (e.g. /run/netns/lb)');
  return { netns, rest };
}

/** A mistake in the command line: printed with the command's usage hint, exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Opens a handle on `netns` (or the current namespace). */
export async function openIpvs(netns: string | undefined): Promise<Ipvs> {
  const { Ipvs } = await import('../ipvs');
  return Ipvs.open(netns === undefined ? {} : { netns });
}

/** JSON with bigints as decimal strings (counters can exceed 2^53) and a final newline. */
export function toJson(value: unknown, indent: number | undefined = 2): string {
  return `${JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), indent)}\n`;
}

/** Prints an error as `ipvs-netlink COMMAND: message` and returns the exit status for it. */
export function reportError(command: string, error: unknown): number {
  if (error instanceof UsageError) {
    io.stderr(`ipvs-netlink ${command}: ${error.message}\n`);
    return 2;
  }
  const message = error instanceof Error ? error.message : String(error);
  io.stderr(`ipvs-netlink ${command}: ${message}\n`);
  return 1;
}
