// `ipvs-netlink director FILE`: runs the director in the foreground on a YAML or JSON
// configuration, or on a keepalived.conf / ldirectord.cf read through the importers, printing
// one line per event (JSON lines with --json). --listen serves the metrics and the status page
// for it. SIGHUP reloads the file (a bad file is reported and the running configuration kept);
// SIGTERM and SIGINT stop.
import { readFile } from 'node:fs/promises';

import { Command, CommanderError, Option } from 'commander';

import { Director } from '../director/director';
import type { DirectorConfig } from '../director/config';
import type { DirectorEvent } from '../director/events';
import { importKeepalived } from '../director/import/keepalived';
import { importLdirectord } from '../director/import/ldirectord';
import { formatUnsupported, type ImportResult } from '../director/import/result';
import { loadConfig } from '../director/loader';
import { isLoopback, parseListenAddress, parseTokenFile } from '../metrics/access';
// The metrics server (and prom-client) load only with --listen.
import type { MetricsEndpoint } from '../metrics';

interface DirectorCliOptions {
  json?: boolean;
  netns?: string;
  checkEvents?: boolean;
  leave: 'as-is' | 'remove';
  keepalived?: string;
  ldirectord?: string;
  listen?: string;
  tokenFile?: string;
}

/** Where the configuration comes from: the director's own YAML/JSON, or an imported file. */
export interface ConfigSource {
  format: 'director' | 'keepalived' | 'ldirectord';
  file: string;
}

/** The command line, checked: the configuration's source and the options. */
export interface DirectorInvocation {
  source: ConfigSource;
  json: boolean;
  netns: string | undefined;
  checkEvents: boolean;
  leave: 'as-is' | 'remove';
  listen: string | undefined;
  tokenFile: string | undefined;
}

/**
 * Parses and checks the arguments after `director`. Exactly one of FILE, `--keepalived FILE` and
 * `--ldirectord FILE`; `--token-file` only with `--listen`, and required when `--listen` is
 * not a loopback address (as `ipvs-netlink metrics`).
 * @throws {CommanderError} for a commander usage error or --help (exitCode 0 for --help).
 * @throws {TypeError} for a combination commander cannot check, with the message to print.
 */
export function parseDirectorArgs(argv: string[], output: { out(text: string): void; err(text: string): void } = {
  out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text),
}): DirectorInvocation {
  const program = new Command('ipvs-netlink director')
    .description('Run a health-checking director in the foreground, on a YAML or JSON configuration, a keepalived.conf\n' +
      '(--keepalived) or an ldirectord.cf (--ldirectord). SIGHUP reloads the file; SIGTERM or SIGINT stop gracefully.')
    .argument('[file]', 'the configuration (YAML or JSON)')
    .option('--keepalived <file>', 'run a keepalived.conf (virtual_server blocks) through the importer; unsupported directives go to stderr')
    .option('--ldirectord <file>', 'run an ldirectord.cf through the importer; unsupported directives go to stderr')
    .option('--json', 'print each event as a JSON line')
    .option('--netns <path>', 'network namespace of the IPVS table (e.g. /run/netns/lb)')
    .option('--check-events', 'also print every check attempt')
    .option('--listen <addr>', 'serve /metrics, /api/status and the status page on HOST:PORT, [IPV6]:PORT, :PORT or PORT (loopback)')
    .option('--token-file <file>', 'a file holding the bearer token for --listen; required when it is not a loopback address')
    .addOption(new Option('--leave <what>', 'on stop, leave the table as it is, or remove the configured services').choices(['as-is', 'remove']).default('as-is'))
    .helpOption('-h, --help', 'show this help')
    .exitOverride()
    .configureOutput({ writeOut: output.out, writeErr: output.err });
  program.parse(argv, { from: 'user' });
  const options = program.opts<DirectorCliOptions>();
  const file = program.args[0];
  const sources: ConfigSource[] = [
    ...(file !== undefined ? [{ format: 'director' as const, file }] : []),
    ...(options.keepalived !== undefined ? [{ format: 'keepalived' as const, file: options.keepalived }] : []),
    ...(options.ldirectord !== undefined ? [{ format: 'ldirectord' as const, file: options.ldirectord }] : []),
  ];
  if (sources.length !== 1) {
    throw new TypeError(sources.length === 0
      ? 'give a configuration: FILE, --keepalived FILE or --ldirectord FILE'
      : `give one configuration, not ${sources.map((s) => (s.format === 'director' ? s.file : `--${s.format}`)).join(' and ')}`);
  }
  if (options.tokenFile !== undefined && options.listen === undefined) throw new TypeError('--token-file goes with --listen');
  if (options.listen !== undefined) {
    const { host } = parseListenAddress(options.listen);
    if (options.tokenFile === undefined && !isLoopback(host)) {
      throw new TypeError(`--listen ${options.listen} is not a loopback address: give --token-file FILE (requests without the token get 401)`);
    }
  }
  return {
    source: sources[0]!, json: options.json === true, netns: options.netns, checkEvents: options.checkEvents === true,
    leave: options.leave, listen: options.listen, tokenFile: options.tokenFile,
  };
}

/**
 * Reads the configuration from its source. For an imported file, every directive that was not
 * carried over is written to `report` as `file:line: directive: reason`.
 * @throws {ConfigFileError} / {ConfigImportError} (from the importers) naming the file and line; {TypeError} /
 *   {RangeError} when the result is not a valid configuration.
 */
export async function readSource(source: ConfigSource, report: (line: string) => void): Promise<DirectorConfig> {
  if (source.format === 'director') return loadConfig(source.file);
  const result: ImportResult = await (source.format === 'keepalived' ? importKeepalived : importLdirectord)(source.file);
  for (const entry of result.unsupported) report(`${formatUnsupported(entry)}\n`);
  return result.config;
}

/** One event as a line of text. */
export function formatEvent(event: DirectorEvent): string {
  const at = new Date(event.time).toISOString();
  const where = 'destination' in event && event.destination ? `${event.service} ${event.destination}` : 'service' in event ? event.service ?? '' : '';
  let detail: string;
  switch (event.type) {
    case 'check':
      detail = `#${event.check} ${event.checkType} ${event.ok ? 'ok' : 'FAIL'} ${event.latency.toFixed(1)} ms: ${event.message}`;
      break;
    case 'up':
      detail = `(was ${event.from})`;
      break;
    case 'down':
      detail = `(was ${event.from}): ${event.reason}`;
      break;
    case 'weight':
      detail = `${event.from} -> ${event.to}${event.present ? '' : ' (removed)'} [${event.reason}]`;
      break;
    case 'drain-start':
      detail = `[${event.reason}] deadline ${new Date(event.deadline).toISOString()}`;
      break;
    case 'drained':
      detail = event.reason === 'timeout' ? `at the deadline, ${event.connections} connection(s) left` : 'no connections left';
      break;
    case 'quorum-lost':
    case 'quorum-gained':
      detail = `live weight ${event.liveWeight}, quorum ${event.quorum} ± ${event.hysteresis}`;
      break;
    case 'sorry-on':
    case 'sorry-off':
      detail = event.servers.join(', ');
      break;
    case 'drift-repaired':
      detail = `${event.op}: ${event.reason}${event.changes.map((c) => ` ${c.field} ${JSON.stringify(c.before)} -> ${JSON.stringify(c.after)}`).join(',')}`;
      break;
    case 'applied':
      detail = `${event.operations.length} operation(s)${event.failed ? `, ${event.failed} failed` : ''}: ` +
        event.operations.map((op) => op.op + ('destination' in op ? ` ${op.destination.address}${op.destination.port === undefined ? '' : `:${op.destination.port}`}` : '')).join(', ');
      break;
    case 'error':
      detail = `${event.operation}: ${event.error.message}${event.retryIn === undefined ? '' : ` (retry in ${event.retryIn} ms)`}`;
      break;
    case 'vrrp':
      detail = `${event.instance} ${event.from} -> ${event.to}${event.priority === undefined ? '' : ` (priority ${event.priority})`}`;
      break;
    case 'sync-daemon':
      detail = `${event.from} -> ${event.to} on ${event.interface}, sync id ${event.syncId}, ${event.latency} ms`;
      break;
  }
  return `${at} ${event.type}${where ? ` ${where}` : ''} ${detail}`.trimEnd();
}

/** One event as a JSON line (errors as { name, message, code }). */
export function eventJson(event: DirectorEvent): string {
  const value = event.type === 'error'
    ? { ...event, error: { name: event.error.name, message: event.error.message, code: (event.error as { code?: string }).code } }
    : event;
  return JSON.stringify(value);
}

const EVENT_TYPES: DirectorEvent['type'][] = [
  'check', 'up', 'down', 'weight', 'drain-start', 'drained', 'quorum-lost', 'quorum-gained', 'sorry-on', 'sorry-off',
  'drift-repaired', 'applied', 'error',
];

/**
 * Runs `ipvs-netlink director ARGV…` (argv after the command name) until SIGTERM or SIGINT.
 * Exit status: 0 after a graceful stop, 1 when the configuration cannot be loaded, the token
 * file read, the address bound or the director started (IPVS missing, no permission), 2 for a
 * usage error.
 */
export async function main(argv: string[]): Promise<number> {
  let invocation: DirectorInvocation;
  try {
    invocation = parseDirectorArgs(argv);
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof TypeError || error instanceof RangeError) {
      process.stderr.write(`ipvs-netlink director: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const { source, json, netns, checkEvents, leave } = invocation;
  const print = (event: DirectorEvent): void => {
    process.stdout.write(`${json ? eventJson(event) : formatEvent(event)}\n`);
  };
  const note = (type: string, message: string): void => {
    const time = Date.now();
    process.stdout.write(json ? `${JSON.stringify({ type, time, message })}\n` : `${new Date(time).toISOString()} ${type} ${message}\n`);
  };
  const report = (line: string): void => { process.stderr.write(line); };

  let director: Director;
  let token: string | undefined;
  try {
    if (invocation.tokenFile !== undefined) token = parseTokenFile(await readFile(invocation.tokenFile, 'utf8'), invocation.tokenFile);
    director = new Director(await readSource(source, report), {
      ...(netns ? { netns } : {}), checkEvents: checkEvents || invocation.listen !== undefined,
    });
  } catch (error) {
    process.stderr.write(`ipvs-netlink director: ${(error as Error).message}\n`);
    return 1;
  }
  // Every check attempt feeds the metrics with --listen; printed only with --check-events.
  for (const type of EVENT_TYPES) director.on(type, (event) => { if (event.type !== 'check' || checkEvents) print(event); });
  try {
    await director.start();
  } catch (error) {
    process.stderr.write(`ipvs-netlink director: cannot start: ${(error as Error).message}\n`);
    return 1;
  }
  let endpoint: MetricsEndpoint | undefined;
  if (invocation.listen !== undefined) {
    try {
      const { serveMetrics } = await import('../metrics');
      endpoint = await serveMetrics({ director, ...(netns ? { netns } : {}), listen: invocation.listen, ...(token !== undefined ? { token } : {}) });
    } catch (error) {
      process.stderr.write(`ipvs-netlink director: --listen ${invocation.listen}: ${(error as Error).message}\n`);
      await director.stop({ leave });
      return 1;
    }
  }
  note('started', `${source.format === 'director' ? '' : `${source.format} `}${source.file}${netns ? ` in ${netns}` : ''}` +
    `${endpoint ? `; metrics at ${endpoint.url}metrics, status page at ${endpoint.url}` : ''}`);

  return new Promise<number>((resolve) => {
    let reloading = Promise.resolve();
    const reload = (): void => {
      reloading = reloading.then(async () => {
        try {
          await director.update(await readSource(source, report));
          note('reloaded', source.file);
        } catch (error) {
          note('reload-failed', `${(error as Error).message} (the running configuration is kept)`);
        }
      });
    };
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGHUP', reload);
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      note('stopping', `on ${signal}${leave === 'remove' ? ', removing the configured services' : ''}`);
      void reloading
        .then(() => endpoint?.close())
        .then(() => director.stop({ leave }))
        .then(() => resolve(0), () => resolve(1));
    };
    process.on('SIGHUP', reload);
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
