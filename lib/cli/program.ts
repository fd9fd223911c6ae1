// commander set-up shared by the friendly commands: output through lib/cli/io, no
// process.exit, and --netns on every command.
import { Command, CommanderError } from 'commander';

import * as io from './io';

export function newProgram(name: string, description: string): Command {
  return new Command(`ipvs-netlink ${name}`)
    .description(description)
    .option('--netns <path>', 'network namespace to work in (e.g. /run/netns/lb)')
    .helpOption('-h, --help', 'show this help')
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.stdout(text), writeErr: (text) => io.stderr(text) });
}

/**
 * Parses argv (after the command name) with `program`. Returns the exit status when parsing
 * ended the command (--help: 0, a usage error: 2), undefined to go on.
 */
export function parseArgs(program: Command, argv: string[]): number | undefined {
  try {
    program.parse(argv, { from: 'user' });
    return undefined;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    throw error;
  }
}

export function integer(name: string, min: number, max = Number.MAX_SAFE_INTEGER): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new CommanderError(2, 'commander.invalidArgument', `error: ${name} must be an integer from ${min} to ${max}, got '${text}'`);
    }
    return value;
  };
}
