// `ipvs-netlink conns`: the connection table as `ipvsadm -Lnc` prints it, or counted natively
// by client, destination, service or state (no object per connection), as text or JSON.
import { countConnections, readConnectionTable, type ConnectionGroupBy, type ConnectionReadOptions } from '../connections';
import type { Ipvs } from '../ipvs';
import { reportError, toJson, UsageError } from './common';
import { GROUPS, countLines, plainArgs, type ConnsOptions } from './conns-args';
import { countKey, takeHeadStart } from './head-start';
import * as io from './io';

export { plainArgs, type ConnsOptions } from './conns-args';

/** `tcp:10.0.0.1:80`, `udp:[2001:db8::1]:53`, `10.0.0.1:80`, `tcp::80`: a connection service filter. */
function parseServiceFilter(text: string): ConnectionReadOptions['service'] {
  const match = /^(?:(tcp|udp|sctp):)?(?:\[([^\]]+)\]|([^:]*))(?::(\d+))?$/i.exec(text);
  if (!match) throw new UsageError(`--service must look like tcp:10.0.0.1:80 or udp:[2001:db8::1]:53, got '${text}'`);
  const filter: NonNullable<ConnectionReadOptions['service']> = {};
  if (match[1]) filter.protocol = match[1].toLowerCase();
  const address = match[2] ?? match[3];
  if (address) filter.address = address;
  if (match[4] !== undefined) filter.port = Number(match[4]);
  return filter;
}

function readOptions(o: ConnsOptions): ConnectionReadOptions {
  const read: ConnectionReadOptions = {};
  if (o.sync) read.sync = true;
  if (o.state?.length) read.state = o.state;
  if (o.service) read.service = parseServiceFilter(o.service);
  return read;
}

/** Every connection as a plain object (the JSON form of the -c listing). */
export async function connectionsJson(ipvs: Ipvs, options: ConnectionReadOptions): Promise<unknown[]> {
  return [...await ipvs.connectionTable(options)];
}

/** @internal */
export async function commanderArgs(argv: string[]): Promise<ConnsOptions | number> {
  const { integer, newProgram, parseArgs } = await import('./program');
  const program = newProgram('conns', 'The IPVS connection table (as `ipvsadm -Lnc`), or connection counts.')
    .option('--by <key>', `count connections by ${GROUPS.join(', ')}`, (value) => {
      if (!GROUPS.includes(value as ConnectionGroupBy)) throw new UsageError(`--by must be one of ${GROUPS.join(', ')}, got '${value}'`);
      return value;
    })
    .option('--state <state>', 'only connections in this state (ESTABLISHED, SYN_RECV, …); repeatable',
      (value: string, previous: string[] = []) => [...previous, value])
    .option('--min <n>', 'with --by: only keys with at least N connections', integer('--min', 1))
    .option('--top <k>', 'with --by: only the K keys with the most connections', integer('--top', 1, 2 ** 32 - 1))
    .option('--service <svc>', 'only connections of this virtual service (tcp:10.0.0.1:80, udp:[2001:db8::1]:53, tcp::80)')
    .option('--sync', 'read ip_vs_conn_sync: adds where each entry came from (local or sync)')
    .option('--resolve', 'print host and service names instead of numbers (listing only)')
    .option('--json', 'JSON: the connections, or the counts with a scan summary');
  const done = parseArgs(program, argv);
  return done ?? program.opts<ConnsOptions>();
}

export async function main(argv: string[]): Promise<number> {
  let o: ConnsOptions;
  try {
    const parsed = plainArgs(argv) ?? await commanderArgs(argv);
    if (typeof parsed === 'number') return parsed;
    o = parsed;
  } catch (error) {
    return reportError('conns', error);
  }
  try {
    if (!o.by && (o.min !== undefined || o.top !== undefined)) throw new UsageError('--min and --top count keys: give --by too');
    // The connection table is a /proc file: no netlink handle is needed to read or count it.
    const read = { ...readOptions(o), ...(o.netns !== undefined ? { netns: o.netns } : {}) };
    if (o.by) {
      // The bin may have started this count already (lib/cli/head-start.ts): text output only.
      // (A count that succeeded there, the bin prints itself without loading this command.)
      const early = o.json ? undefined : await takeHeadStart<{ keys: string[]; counts: number[] }>(countKey(argv));
      if (early) {
        io.stdout(countLines(early.keys.map((key, i) => ({ key, count: early.counts[i] ?? 0 }))));
        return 0;
      }
      const counts = await countConnections({
        ...read, by: o.by, ...(o.min !== undefined ? { minCount: o.min } : {}), ...(o.top !== undefined ? { top: o.top } : {}),
      });
      if (o.json) {
        io.stdout(toJson({ by: o.by, counts: [...counts], scan: counts.scan }));
      } else {
        io.stdout(countLines(counts));
      }
      return 0;
    }
    const table = await readConnectionTable(read);
    if (o.json) {
      io.stdout(toJson([...table]));
      return 0;
    }
    const [{ Namer, connectionAddresses }, { formatConnections }] = await Promise.all([
      import('./ipvsadm/format'), import('./ipvsadm/connection-listing'),
    ]);
    const namer = new Namer(!o.resolve);
    if (o.resolve) await namer.resolve(connectionAddresses(table));
    io.stdoutBytes(formatConnections(table, 0, namer, { origins: o.sync === true }));
    return 0;
  } catch (error) {
    return reportError('conns', error);
  }
}
