// `ipvs-netlink convert --from keepalived|ldirectord FILE`: prints the equivalent director YAML on
// standard output and every directive that was not carried over on standard error, one
// `file:line: directive: reason` per line.
import { relative } from 'node:path';

import { Command, CommanderError, Option } from 'commander';
import { stringify } from 'yaml';

import { importKeepalived } from '../director/import/keepalived';
import { importLdirectord } from '../director/import/ldirectord';
import { ConfigImportError, formatUnsupported, type ImportResult } from '../director/import/result';

export interface ConvertOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processOutput: ConvertOutput = {
  stdout: (text) => { process.stdout.write(text); },
  stderr: (text) => { process.stderr.write(text); },
};

const IMPORTERS: Record<string, (path: string) => Promise<ImportResult>> = {
  keepalived: importKeepalived,
  ldirectord: importLdirectord,
};

/** A path as the user will recognise it: relative to the working directory when under it. */
function shown(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') ? rel : file;
}

/**
 * Runs `convert` with the arguments after the command name. Exit status: 0 when converted (even
 * with unsupported directives, which are listed on stderr), 1 when the file cannot be read or is
 * malformed (`file:line: reason`), 2 for a usage mistake.
 */
export async function main(argv: string[], output: ConvertOutput = processOutput): Promise<number> {
  const program = new Command('ipvs-netlink convert')
    .description('Convert a keepalived.conf or ldirectord.cf into a director configuration (YAML)')
    .addOption(new Option('--from <format>', 'the source format').choices(Object.keys(IMPORTERS)).makeOptionMandatory())
    .argument('<file>', 'the configuration file to convert')
    .helpOption('-h, --help', 'show this help')
    .exitOverride()
    .configureOutput({ writeOut: output.stdout, writeErr: output.stderr });
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    throw error;
  }
  const format = program.opts<{ from: string }>().from;
  const file = program.args[0]!;
  let result: ImportResult;
  try {
    result = await IMPORTERS[format]!(file);
  } catch (error) {
    if (error instanceof ConfigImportError) {
      output.stderr(`ipvs-netlink convert: ${shown(error.file)}:${error.line}: ${error.reason}\n`);
      return 1;
    }
    throw error;
  }
  output.stdout(stringify(result.config, { lineWidth: 0 }));
  for (const entry of result.unsupported) output.stderr(`${formatUnsupported({ ...entry, file: shown(entry.file) })}\n`);
  return 0;
}
