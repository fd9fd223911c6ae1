// `ipvs-netlink restore [FILE]`: applies ipvsadm rules (as `ipvsadm -S` writes them, one
// command line per line) in one batch. Every line is checked first: an error names its line
// and nothing is applied. --dry-run stops after the check. Kernel errors name their line too;
// the kernel does not roll back, so the other lines stay applied (exit status 1).
import { readFile } from 'node:fs/promises';

import type { Ipvs } from '../ipvs';
import { reportError } from './common';
import * as io from './io';

export interface RestoreArgs {
  file: string | undefined;
  netns: string | undefined;
  dryRun: boolean;
}

/**
 * The usual command lines (`[--netns PATH] [--dry-run] [FILE]`) read without loading
 * commander; undefined for anything else (--help, a mistake), which commander then handles.
 */
/** @internal */
export function plainArgs(argv: readonly string[]): RestoreArgs | undefined {
  const args: RestoreArgs = { file: undefined, netns: undefined, dryRun: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--dry-run' && !args.dryRun) {
      args.dryRun = true;
    } else if (arg === '--netns' && args.netns === undefined && i + 1 < argv.length && !argv[i + 1]!.startsWith('-')) {
      args.netns = argv[++i];
    } else if (arg.startsWith('--netns=') && args.netns === undefined && arg.length > '--netns='.length) {
      args.netns = arg.slice('--netns='.length);
    } else if (args.file === undefined && (arg === '-' || !arg.startsWith('-'))) {
      args.file = arg;
    } else {
      return undefined;
    }
  }
  return args;
}

/** @internal */
export async function commanderArgs(argv: string[]): Promise<RestoreArgs | number> {
  const { newProgram, parseArgs } = await import('./program');
  const program = newProgram('restore', 'Apply ipvsadm rules (`ipvsadm -S` output) from FILE or standard input, in one batch.')
    .argument('[file]', 'the rules; standard input when absent or "-"')
    .option('--dry-run', 'check every line and print what would be done, without touching the kernel');
  const done = parseArgs(program, argv);
  if (done !== undefined) return done;
  const options = program.opts<{ netns?: string; dryRun?: boolean }>();
  return { file: program.args[0], netns: options.netns, dryRun: options.dryRun === true };
}

export async function main(argv: string[]): Promise<number> {
  const args = plainArgs(argv) ?? await commanderArgs(argv);
  if (typeof args === 'number') return args;
  const { file, netns, dryRun } = args;
  const source = file === undefined || file === '-' ? '<stdin>' : file;
  // The handle opens on the addon's thread while the input is read and checked; it is closed
  // unused if a line is wrong.
  let opening: Promise<Ipvs> | undefined;
  let ipvs: Ipvs | undefined;
  try {
    const reading = file === undefined || file === '-' ? io.readInput() : readFile(file, 'utf8');
    const { parseRestoreInput, applyRestore } = await import('./ipvsadm/restore');
    const { IpvsadmExit } = await import('./ipvsadm/command');
    const text = await reading;
    if (!dryRun) {
      // Ipvs.open() hands the socket's opening to the addon's thread before it returns, and the
      // check below never yields: load the module first, so the two run side by side.
      const { Ipvs } = await import('../ipvs');
      opening = Ipvs.open(netns === undefined ? {} : { netns });
      opening.catch(() => {});
    }
    let plan;
    try {
      plan = await parseRestoreInput(text);
    } catch (error) {
      if (error instanceof IpvsadmExit) {
        io.stderr(`ipvs-netlink restore: ${source}:${error.line ?? 0}: ${error.text.trimEnd()}\n` +
          'nothing was applied\n');
        return 2;
      }
      throw error;
    }
    for (const step of plan.invalid) io.stderr(`ipvs-netlink restore: ${source}:${step.line}: ${step.error.text}\n`);
    if (plan.invalid.length > 0) {
      io.stderr('nothing was applied\n');
      return 2;
    }
    if (dryRun) {
      io.stdout(`${source}: ${plan.commands} command${plan.commands === 1 ? '' : 's'} checked, nothing applied (--dry-run)\n`);
      return 0;
    }
    ipvs = await opening!;
    let failures = 0;
    await applyRestore(ipvs, plan, (failure) => {
      failures++;
      io.stderr(`ipvs-netlink restore: ${source}:${failure.line}: ${failure.message}${failure.code ? ` (${failure.code})` : ''}\n`);
    });
    return failures > 0 ? 1 : 0;
  } catch (error) {
    return reportError('restore', error);
  } finally {
    if (ipvs) await ipvs.close();
    else await opening?.then((unused) => unused.close(), () => {});
  }
}
