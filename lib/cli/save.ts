// `ipvs-netlink save`: the table as ipvsadm rules (`ipvsadm -S -n`; names with --resolve),
// which `ipvs-netlink restore` and `ipvsadm -R` both read back, or as JSON.
import { openIpvs, reportError, toJson } from './common';
import * as io from './io';
import { newProgram, parseArgs } from './program';

export async function main(argv: string[]): Promise<number> {
  const program = newProgram('save', 'Print the IPVS table as ipvsadm rules (as `ipvsadm -S -n`), or as JSON.')
    .option('--json', 'JSON: every service with its destinations')
    .option('--resolve', 'print host and service names instead of numbers (ipvsadm -S without -n)');
  const done = parseArgs(program, argv);
  if (done !== undefined) return done;
  const options = program.opts<{ netns?: string; json?: boolean; resolve?: boolean }>();
  if (!options.json) {
    const { main: ipvsadm } = await import('./ipvsadm');
    return ipvsadm([...(options.netns ? ['--netns', options.netns] : []), '-S', ...(options.resolve ? [] : ['-n'])]);
  }
  try {
    const ipvs = await openIpvs(options.netns);
    try {
      const { sortServices } = await import('./ipvsadm/format');
      io.stdout(toJson(sortServices(await ipvs.listTable())));
      return 0;
    } finally {
      await ipvs.close();
    }
  } catch (error) {
    return reportError('save', error);
  }
}
