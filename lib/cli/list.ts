// `ipvs-netlink list`: the table as ipvsadm -Ln prints it (numeric unless --resolve), or as
// JSON: services with their destinations, stats and rates (64-bit counters as decimal
// strings), timeouts, daemons or connections.
import { openIpvs, reportError, toJson } from './common';
import * as io from './io';
import { newProgram, parseArgs } from './program';

interface ListOptions {
  netns?: string;
  json?: boolean;
  resolve?: boolean;
  tcpService?: string;
  udpService?: string;
  sctpService?: string;
  fwmarkService?: string;
  ipv6?: boolean;
  stats?: boolean;
  rate?: boolean;
  thresholds?: boolean;
  persistentConn?: boolean;
  tunInfo?: boolean;
  exact?: boolean;
  nosort?: boolean;
  timeout?: boolean;
  daemon?: boolean;
  connection?: boolean;
}

/** ipvsadm's argv for the same listing. */
function ipvsadmArgs(o: ListOptions): string[] {
  const args = ['-L'];
  if (!o.resolve) args.push('-n');
  if (o.tcpService) args.push('-t', o.tcpService);
  if (o.udpService) args.push('-u', o.udpService);
  if (o.sctpService) args.push('--sctp-service', o.sctpService);
  if (o.fwmarkService) args.push('-f', o.fwmarkService);
  if (o.ipv6) args.push('-6');
  const flags: Array<[keyof ListOptions, string]> = [
    ['stats', '--stats'], ['rate', '--rate'], ['thresholds', '--thresholds'], ['persistentConn', '--persistent-conn'],
    ['tunInfo', '--tun-info'], ['exact', '--exact'], ['nosort', '--nosort'], ['timeout', '--timeout'],
    ['daemon', '--daemon'], ['connection', '-c'],
  ];
  for (const [key, flag] of flags) if (o[key]) args.push(flag);
  return args;
}

export async function main(argv: string[]): Promise<number> {
  const program = newProgram('list', 'List the IPVS table (as `ipvsadm -Ln`), or print it as JSON.')
    .option('--json', 'JSON: services with destinations, stats and rates; or timeouts, daemons, connections')
    .option('--resolve', 'print host and service names instead of numbers (ipvsadm without -n)')
    .option('-t, --tcp-service <host:port>', 'only this TCP service')
    .option('-u, --udp-service <host:port>', 'only this UDP service')
    .option('--sctp-service <host:port>', 'only this SCTP service')
    .option('-f, --fwmark-service <mark>', 'only this firewall-mark service')
    .option('-6, --ipv6', 'the fwmark service is IPv6')
    .option('--stats', 'counters')
    .option('--rate', 'rates')
    .option('--thresholds', 'thresholds and connection counts')
    .option('--persistent-conn', 'persistent connection counts')
    .option('--tun-info', 'tunnel settings')
    .option('--exact', 'exact numbers (no K/M/G)')
    .option('--nosort', 'kernel order instead of sorted')
    .option('--timeout', 'the TCP, TCP FIN and UDP timeouts')
    .option('--daemon', 'the connection-sync daemons')
    .option('-c, --connection', 'the connection table (see also `ipvs-netlink conns`)');
  const done = parseArgs(program, argv);
  if (done !== undefined) return done;
  const options = program.opts<ListOptions>();
  if (!options.json) {
    const { main: ipvsadm } = await import('./ipvsadm');
    return ipvsadm([...(options.netns ? ['--netns', options.netns] : []), ...ipvsadmArgs(options)]);
  }
  try {
    const { parseCommandLine, has, Opt } = await import('./ipvsadm/options');
    const entry = await parseCommandLine(ipvsadmArgs(options));
    if (typeof entry === 'string') return 0;
    const ipvs = await openIpvs(options.netns);
    try {
      if (has(entry, Opt.CONNECTION)) {
        const { connectionsJson } = await import('./conns');
        io.stdout(toJson(await connectionsJson(ipvs, {})));
      } else if (has(entry, Opt.TIMEOUT)) {
        io.stdout(toJson(await ipvs.getTimeouts()));
      } else if (has(entry, Opt.DAEMON)) {
        io.stdout(toJson(await ipvs.listDaemons()));
      } else if (has(entry, Opt.SERVICE)) {
        const { getServiceEntry } = await import('./ipvsadm/run');
        const service = await getServiceEntry(ipvs, entry);
        if (!service) {
          io.stderr('ipvs-netlink list: No such service\n');
          return 1;
        }
        io.stdout(toJson(service));
      } else {
        const { sortServices } = await import('./ipvsadm/format');
        const [info, table] = await Promise.all([ipvs.info(), ipvs.listTable()]);
        io.stdout(toJson({ ...info, services: options.nosort ? table : sortServices(table) }));
      }
      return 0;
    } finally {
      await ipvs.close();
    }
  } catch (error) {
    const { IpvsadmExit } = await import('./ipvsadm/options');
    if (error instanceof IpvsadmExit) {
      io.stderr(`ipvs-netlink list: ${error.text}\n`);
      return error.status;
    }
    return reportError('list', error);
  }
}
