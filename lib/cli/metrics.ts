// `ipvs-netlink metrics`: serves Prometheus metrics and the live status page for a namespace
// until SIGINT or SIGTERM.
import { readFile } from 'node:fs/promises';

import { Command, CommanderError, Option } from 'commander';

import { Ipvs } from '../ipvs';
import { DEFAULT_LISTEN, isLoopback, parseListenAddress, parseTokenFile, serveMetrics } from '../metrics';

interface MetricsOptions {
  listen: string;
  netns?: string;
  tokenFile?: string;
  connectionStates?: boolean;
  interval: string;
}

function program(): Command {
  return new Command('ipvs-netlink metrics')
    .description('Serve Prometheus metrics (/metrics) and a live status page (/) for an IPVS table, until SIGINT or SIGTERM.')
    .addOption(new Option('--listen <addr>', 'HOST:PORT, [IPV6]:PORT, :PORT (every address) or PORT (loopback)').default(DEFAULT_LISTEN))
    .option('--netns <path>', 'the network namespace, e.g. /run/netns/lb (default: this process\'s)')
    .option('--token-file <file>', 'a file holding the bearer token; required when --listen is not a loopback address')
    .option('--connection-states', 'also count the connection table by state on every scrape (ipvs_connection_entries)')
    .addOption(new Option('--interval <ms>', 'how often the open page gets a fresh snapshot').default('2000'))
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text), writeOut: (text) => process.stdout.write(text) })
    .allowExcessArguments(false);
}

/**
 * Runs `ipvs-netlink metrics ARGV…` (argv after the command name) until SIGINT or SIGTERM.
 * @returns the exit status: 0 after a signal (or --help), 2 for a usage error, 1 when the
 *   namespace cannot be opened, the token file read or the address bound.
 */
export async function main(argv: string[]): Promise<number> {
  const cmd = program();
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    throw error;
  }
  const options = cmd.opts<MetricsOptions>();
  let token: string | undefined;
  let intervalMs: number;
  try {
    const { host } = parseListenAddress(options.listen);
    intervalMs = Number(options.interval);
    if (!/^\d+$/.test(options.interval) || intervalMs < 100 || intervalMs > 3_600_000) {
      throw new RangeError(`--interval must be a whole number of milliseconds from 100 to 3600000, got '${options.interval}'`);
    }
    if (options.tokenFile === undefined && !isLoopback(host)) {
      throw new TypeError(`--listen ${options.listen} is not a loopback address: give --token-file FILE (requests without the token get 401)`);
    }
  } catch (error) {
    process.stderr.write(`ipvs-netlink metrics: ${(error as Error).message}\n`);
    return 2;
  }
  let ipvs: Ipvs | undefined;
  try {
    if (options.tokenFile !== undefined) token = parseTokenFile(await readFile(options.tokenFile, 'utf8'), options.tokenFile);
    ipvs = await Ipvs.open(options.netns === undefined ? {} : { netns: options.netns });
    const endpoint = await serveMetrics({
      ipvs, listen: options.listen, intervalMs, connectionStates: options.connectionStates ?? false,
      ...(token !== undefined ? { token } : {}),
    });
    process.stderr.write(`ipvs-netlink metrics: serving ${endpoint.url}metrics and the status page at ${endpoint.url}\n`);
    await untilSignal();
    await endpoint.close();
    return 0;
  } catch (error) {
    process.stderr.write(`ipvs-netlink metrics: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await ipvs?.close();
  }
}

/** Resolves on the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

if (require.main === module) {
  main(process.argv.slice(2)).then((status) => { process.exitCode = status; });
}
