// `ipvs-netlink restore [FILE]`: applies ipvsadm rules (as `ipvsadm -S` writes them, one
// command line per line) in one batch. Every line is checked first: an error names its line
// and nothing is applied. --dry-run stops after the check. Kernel errors name their line too;
// the kernel does not roll back, so the other lines stay applied (exit status 1).
import { readFile } from 'node:fs/promises';

import { openIpvs, reportError } from './common';
import * as io from './io';
import { newProgram, parseArgs } from './program';

export async function main(argv: string[]): Promise<number> {
  const program = newProgram('restore', 'Apply ipvsadm rules (`ipvsadm -S` output) from FILE or standard input, in one batch.')
    .argument('[file]', 'the rules; standard input when absent or "-"')
    .option('--dry-run', 'check every line and print what would be done, without touching the kernel');
  const done = parseArgs(program, argv);
  if (done !== undefined) return done;
  const options = program.opts<{ netns?: string; dryRun?: boolean }>();
  const file = program.args[0];
  const source = file === undefined || file === '-' ? '<stdin>' : file;
  try {
    const text = file === undefined || file === '-' ? await io.readInput() : await readFile(file, 'utf8');
    const { parseRestoreInput, applyRestore } = await import('./ipvsadm/run');
    const { IpvsadmExit } = await import('./ipvsadm/options');
    let lines;
    try {
      lines = await parseRestoreInput(text);
    } catch (error) {
      if (error instanceof IpvsadmExit) {
        io.stderr(`ipvs-netlink restore: ${source}:${error.line ?? 0}: ${error.text.trimEnd()}\n` +
          'nothing was applied\n');
        return 2;
      }
      throw error;
    }
    const invalid = lines.filter((line) => !line.entry);
    for (const line of invalid) io.stderr(`ipvs-netlink restore: ${source}:${line.line}: ${line.error!.text}\n`);
    if (invalid.length > 0) {
      io.stderr('nothing was applied\n');
      return 2;
    }
    if (options.dryRun) {
      io.stdout(`${source}: ${lines.length} command${lines.length === 1 ? '' : 's'} checked, nothing applied (--dry-run)\n`);
      return 0;
    }
    const ipvs = await openIpvs(options.netns);
    let failures = 0;
    try {
      await applyRestore(ipvs, lines, (failure) => {
        failures++;
        io.stderr(`ipvs-netlink restore: ${source}:${failure.line}: ${failure.message}${failure.code ? ` (${failure.code})` : ''}\n`);
      });
    } finally {
      await ipvs.close();
    }
    return failures > 0 ? 1 : 0;
  } catch (error) {
    return reportError('restore', error);
  }
}
