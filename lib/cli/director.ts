// `ipvs-netlink director FILE`: runs the director in the foreground on a YAML or JSON
// configuration, printing one line per event (JSON lines with --json). SIGHUP reloads the
// file (a bad file is reported and the running configuration kept); SIGTERM and SIGINT stop.
import { Command, CommanderError, Option } from 'commander';

import { Director } from '../director/director';
import type { DirectorEvent } from '../director/events';
import { loadConfig } from '../director/loader';

interface DirectorCliOptions {
  json?: boolean;
  netns?: string;
  checkEvents?: boolean;
  leave: 'as-is' | 'remove';
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
 * Exit status: 0 after a graceful stop, 1 when the configuration cannot be loaded or the
 * director cannot start (IPVS missing, no permission), 2 for a usage error.
 */
export async function main(argv: string[]): Promise<number> {
  const program = new Command('ipvs-netlink director')
    .description('Run a health-checking director on a YAML or JSON configuration, in the foreground.\n' +
      'SIGHUP reloads the file; SIGTERM or SIGINT stop gracefully.')
    .argument('<file>', 'the configuration (YAML or JSON)')
    .option('--json', 'print each event as a JSON line')
    .option('--netns <path>', 'network namespace of the IPVS table (e.g. /run/netns/lb)')
    .option('--check-events', 'also print every check attempt')
    .addOption(new Option('--leave <what>', 'on stop, leave the table as it is, or remove the configured services').choices(['as-is', 'remove']).default('as-is'))
    .helpOption('-h, --help', 'show this help')
    .exitOverride()
    .configureOutput({ writeOut: (text) => process.stdout.write(text), writeErr: (text) => process.stderr.write(text) });
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    throw error;
  }
  const [file] = program.args as [string];
  const options = program.opts<DirectorCliOptions>();
  const print = (event: DirectorEvent): void => {
    process.stdout.write(`${options.json ? eventJson(event) : formatEvent(event)}\n`);
  };
  const note = (type: string, message: string): void => {
    const time = Date.now();
    process.stdout.write(options.json ? `${JSON.stringify({ type, time, message })}\n` : `${new Date(time).toISOString()} ${type} ${message}\n`);
  };

  let director: Director;
  try {
    director = new Director(await loadConfig(file), {
      ...(options.netns ? { netns: options.netns } : {}), checkEvents: options.checkEvents === true,
    });
  } catch (error) {
    process.stderr.write(`ipvs-netlink director: ${(error as Error).message}\n`);
    return 1;
  }
  for (const type of EVENT_TYPES) director.on(type, print);
  try {
    await director.start();
  } catch (error) {
    process.stderr.write(`ipvs-netlink director: cannot start: ${(error as Error).message}\n`);
    return 1;
  }
  note('started', `${file}${options.netns ? ` in ${options.netns}` : ''}`);

  return new Promise<number>((resolve) => {
    let reloading = Promise.resolve();
    const reload = (): void => {
      reloading = reloading.then(async () => {
        try {
          await director.update(await loadConfig(file));
          note('reloaded', file);
        } catch (error) {
          note('reload-failed', `${(error as Error).message} (the running configuration is kept)`);
        }
      });
    };
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGHUP', reload);
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      note('stopping', `on ${signal}${options.leave === 'remove' ? ', removing the configured services' : ''}`);
      void reloading.then(() => director.stop({ leave: options.leave })).then(() => resolve(0), () => resolve(1));
    };
    process.on('SIGHUP', reload);
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
