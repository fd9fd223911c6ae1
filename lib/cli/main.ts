#!/usr/bin/env node
// The `ipvs-netlink` command: maps a command name to its module, imported only when that
// command runs, so that `ipvs-netlink ipvsadm -Ln` loads neither commander nor the other
// commands. Each module exports `main(argv): Promise<number>` (argv after the command name;
// the exit status). Adding a command is one line in COMMANDS.

export interface CommandModule {
  main(argv: string[]): Promise<number>;
}

interface CommandEntry {
  summary: string;
  load: () => Promise<CommandModule>;
  /** Done when main() returns: no loop, no child process or server left running. */
  oneShot?: true;
}

export const COMMANDS: Record<string, CommandEntry> = {
  ipvsadm: { summary: 'the ipvsadm 1.31 command line (same options, output and exit statuses)', load: () => import('./ipvsadm'), oneShot: true },
  list: { summary: 'list services and real servers (ipvsadm -L), or --json', load: () => import('./list'), oneShot: true },
  save: { summary: 'print the table as ipvsadm rules (ipvsadm -S), or --json', load: () => import('./save'), oneShot: true },
  restore: { summary: 'apply ipvsadm rules from a file or stdin in one batch (--dry-run to check)', load: () => import('./restore'), oneShot: true },
  conns: { summary: 'the connection table (ipvsadm -Lnc), or counts --by client|destination|service|state', load: () => import('./conns'), oneShot: true },
  autoban: { summary: 'add clients with too many connections to an ipset', load: () => import('./autoban') },
  apply: { summary: 'make the table equal to a desired state from YAML or JSON (plan, then apply)', load: () => import('./apply') },
  director: { summary: 'run the health-checking director in the foreground', load: () => import('./director') },
  convert: { summary: 'print a keepalived or ldirectord configuration as director YAML', load: () => import('./convert') },
  metrics: { summary: 'serve Prometheus metrics and the live status page', load: () => import('./metrics') },
  sandbox: { summary: 'run a command as root in a VM with IPVS, in the current directory', load: () => import('./sandbox') },
};

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(([name, entry]) => `  ${name.padEnd(width)}  ${entry.summary}`);
  return 'Usage: ipvs-netlink [--netns PATH] COMMAND [ARGS…]\n\n' +
    'Control the Linux IPVS load balancer over netlink.\n\nCommands:\n' + `${lines.join('\n')}\n\n` +
    'Every command takes --netns PATH (a network namespace, e.g. /run/netns/lb) and --help.\n';
}

/** Runs `ipvs-netlink ARGV…` and returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  let args = argv;
  const global: string[] = [];
  // `--netns PATH` before the command applies to it.
  while (args[0] === '--netns' || args[0]?.startsWith('--netns=')) {
    const take = args[0] === '--netns' ? 2 : 1;
    global.push(...args.slice(0, take));
    args = args.slice(take);
  }
  const [name, ...rest] = args;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const io = await import('./io');
    io.stdout(help());
    return name === undefined ? 2 : 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    const io = await import('./io');
    io.stderr(`ipvs-netlink: unknown command '${name}'\n\n${help()}`);
    return 2;
  }
  const module = await command.load();
  const status = await module.main([...global, ...rest]);
  if (command.oneShot) endsAtOnce = (await import('./io')).outputFlushed();
  return status;
}

// Set when the command that ran is one-shot and everything it wrote has left the process.
let endsAtOnce = false;

/** Runs `ipvs-netlink ARGV…` as the process: its exit status, or 70 with the stack of an unexpected error. */
export function runAsProcess(argv: string[]): void {
  main(argv).then(
    (status) => {
      process.exitCode = status;
      // Nothing is left to wait for: ending here skips tearing down the environment and the
      // heap, which under emulation costs a short command a tenth of its own work.
      if (endsAtOnce) process.exit(status);
    },
    (error: unknown) => {
      process.stderr.write(`ipvs-netlink: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
      process.exitCode = 70;
    },
  );
}

if (typeof require !== 'undefined' && typeof module !== 'undefined' && require.main === module) {
  runAsProcess(process.argv.slice(2));
}
