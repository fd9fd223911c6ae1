// `ipvs-netlink ipvsadm ARGS…`: the ipvsadm 1.31 command line, for scripts. Same options,
// checks, messages, exit statuses and output (byte for byte with -n); see
// lib/cli/ipvsadm/format.ts for the two ipvsadm bugs deliberately not copied, and the README
// for the differences (restore input is checked in full before anything is applied).
import type { Ipvs } from '../ipvs';
import { openIpvs, takeNetns } from './common';
import * as io from './io';
import { IpvsadmExit } from './ipvsadm/options';

const SCHEDULERS = 'rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh';
const VERSION = 'ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n';

function usage(): string {
  const p = 'ipvsadm';
  return `${VERSION}Usage:
  ${p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]
  ${p} -D virtual-service
  ${p} -C
  ${p} -R
  ${p} -S [-n]
  ${p} -a|e virtual-service -r server-address [options]
  ${p} -d virtual-service -r server-address
  ${p} -L|l [virtual-service] [options]
  ${p} -Z [virtual-service]
  ${p} --set tcp tcpfin udp
  ${p} --start-daemon {master|backup} [daemon-options]
  ${p} --stop-daemon {master|backup}
  ${p} -h

Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --start-daemon              start connection sync daemon
  --stop-daemon               stop connection sync daemon
  --help            -h        display this help message

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
  --sctp-service    service-address   service-address is host[:port]
  --fwmark-service|-f fwmark          fwmark is an integer greater than zero

Options:
  --ipv6         -6                   fwmark entry uses IPv6
  --scheduler    -s scheduler         one of ${SCHEDULERS},
                                      the default scheduler is wlc.
  --pe            engine              alternate persistence engine may be sip,
                                      not set by default.
  --persistent   -p [timeout]         persistent service
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --tun-type      type                one of ipip|gue|gre,
                                      the default tunnel type is ipip.
  --tun-port      port                tunnel destination port
  --tun-nocsum                        tunnel encapsulation without checksum
  --tun-csum                          tunnel encapsulation with checksum
  --tun-remcsum                       tunnel encapsulation with remote checksum
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --tun-info                          output of tunnel information
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --ops          -o                   one-packet scheduling
  --numeric      -n                   numeric output of addresses and ports
  --sched-flags  -b flags             scheduler flags (comma-separated)
Daemon Options:
  --syncid sid                        syncid for connection sync (default=255)
  --sync-maxlen length                Max sync message length (default=1472)
  --mcast-interface interface         multicast interface for connection sync
  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)
  --mcast-port port                   UDP port (default=8848)
  --mcast-ttl ttl                     Multicast TTL (default=1)
ipvs-netlink:
  --netns PATH                        run in the network namespace at PATH (e.g. /run/netns/lb)
`;
}

/**
 * Runs one ipvsadm command line. Exit statuses as ipvsadm's: 0, 1 (a listing failed),
 * 2 (bad command line), 255 (a kernel error, or an unknown option).
 */
export async function main(argv: string[]): Promise<number> {
  let ipvs: Ipvs | undefined;
  let opening: Promise<Ipvs> | undefined;
  try {
    const { netns, rest } = takeNetns(argv);
    // ipvsadm opens its socket before it reads its command line (ipvs_init()). The handle opens
    // on the addon's thread while the rest of the command loads and the line is parsed; a
    // mistake in the line is still what gets reported, and the handle is closed unused.
    opening = open(netns);
    opening.catch(() => {});
    const { Cmd, Opt, has, parseCommandLine } = await import('./ipvsadm/options');
    const run = await import('./ipvsadm/run');
    if (rest.length === 0) {
      ipvs = await opening;
      await run.listAll(ipvs, 0);
      return 0;
    }
    const entry = await parseCommandLine(rest);
    if (entry === 'help') {
      io.stdout(usage());
      return 0;
    }
    if (entry === 'version') {
      io.stdout(VERSION);
      return 0;
    }
    if (entry.cmd === Cmd.LIST && has(entry, Opt.CONNECTION)) {
      // The connection table is a /proc file: read it while the handle opens (ipvsadm's
      // ipvs_init(), whose failure still comes first).
      const { readConnectionTable } = await import('../connections');
      const reading = readConnectionTable(netns === undefined ? {} : { netns });
      reading.catch(() => {});
      ipvs = await opening;
      await run.listConnections(reading, entry.format);
      return 0;
    }
    // node:tty (and with it net and stream) is loaded only here: a listing does without it.
    if (entry.cmd === Cmd.RESTORE && !(await import('node:tty')).isatty(0)) {
      // Standard input (a file or a pipe: not a terminal, which would wait for input after a
      // failure to open) is read and checked while the handle opens; a failure to open still
      // comes first, as ipvs_init() does before anything else.
      const planning = run.readRestore();
      planning.catch(() => {});
      ipvs = await opening;
      return await run.restore(ipvs, await planning);
    }
    ipvs = await opening;
    return await run.runEntry(ipvs, entry, { restoring: false });
  } catch (error) {
    if (error instanceof IpvsadmExit) {
      if (error.text) io.stderr(`${error.text}\n`);
      return error.status;
    }
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(`${message}\n`);
    return 2;
  } finally {
    if (ipvs) await ipvs.close();
    else await opening?.then((unused) => unused.close(), () => {});
  }
}

async function open(netns: string | undefined): Promise<Ipvs> {
  try {
    return await openIpvs(netns);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new IpvsadmExit(2, `Can't initialize ipvs: ${message}\nAre you sure that IP Virtual Server is built in the kernel or as module?`);
  }
}
