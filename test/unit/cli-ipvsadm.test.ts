// The ipvsadm command line and output formats, without a kernel (the differential against the
// real ipvsadm is test/kernel/cli-ipvsadm.test.ts).
import { describe, expect, it } from 'vitest';

import { formatConnections } from '../../lib/cli/ipvsadm/connection-listing';
import { Namer, formatDaemons, largeNumber } from '../../lib/cli/ipvsadm/format';
import { inetAton, ntop6 } from '../../lib/cli/ipvsadm/names';
import { Cmd, Fmt, IpvsadmExit, parseCommandLine } from '../../lib/cli/ipvsadm/options';
import { parseRestoreInput } from '../../lib/cli/ipvsadm/restore';
import { main } from '../../lib/cli/main';
import { formatTable } from '../../lib/cli/ipvsadm/service-listing';
import { TableView } from '../../lib/table-view';
import type { Destination, Service } from '../../lib/types';
import { packTable } from './packed-table';

async function failure(args: string): Promise<{ status: number; text: string; soft: boolean }> {
  try {
    await parseCommandLine(args.split(' ').filter(Boolean));
  } catch (error) {
    if (error instanceof IpvsadmExit) return { status: error.status, text: error.text, soft: error.soft };
    throw error;
  }
  throw new Error(`parsed: ${args}`);
}

describe('ipvsadm command line', () => {
  it('scans like popt: clusters, attached and = values, the optional -p argument, leftovers', async () => {
    const e = await parseCommandLine(['-A', '-t10.0.0.1:80', '-p20', '--scheduler=rr', '-M', '255.255.255.0']);
    if (typeof e === 'string') throw new Error(e);
    expect(e.cmd).toBe(Cmd.ADD);
    expect([...e.svc.addr.subarray(0, 4)]).toEqual([10, 0, 0, 1]);
    expect([e.svc.port, e.svc.timeout, e.svc.sched, e.svc.netmask]).toEqual([80, 20, 'rr', 0xffffff00]);
    const p = await parseCommandLine(['-A', '-t', '10.0.0.1:80', '-p', '-s', 'rr']);
    if (typeof p === 'string') throw new Error(p);
    expect(p.svc.timeout).toBe(360);
    const l = await parseCommandLine(['-Lnc']);
    if (typeof l === 'string') throw new Error(l);
    expect(l.format & Fmt.NUMERIC).toBe(Fmt.NUMERIC);
    expect(await parseCommandLine(['-h'])).toBe('help');
  });

  it("fails in ipvsadm's words and with its exit statuses", async () => {
    expect(await failure('-A')).toEqual({ status: 2, soft: false, text: "You need to supply the 'service-address' option for the 'add-service' command" });
    expect(await failure('-Q')).toMatchObject({ status: 255, text: "Try `ipvsadm -h' or 'ipvsadm --help' for more information." });
    expect(await failure('-A -t 1.2.3.4:80 -Q')).toEqual({ status: 255, soft: true, text: '-Q: unknown option' });
    expect(await failure('-A -t')).toEqual({ status: 255, soft: true, text: '-t: missing argument' });
    expect(await failure('-A -t 1.2.3.4:80 -ps rr')).toMatchObject({ status: 2, text: "invalid timeout value `s' specified" });
    expect(await failure('-a -t 1.2.3.4:80 -r 1.1.1.1 -i --tun-type gue')).toMatchObject({
      text: "You need to supply the 'tun-port' option for the 'gue' tunnel type",
    });
    expect(await failure('-a -t 1.2.3.4:80 -r 1.1.1.1 -i --tun-type gue --tun-port 5 --tun-csum --tun-remcsum')).toMatchObject({
      text: "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type",
    });
    expect(await failure('-L -c -t 1.2.3.4:80')).toMatchObject({
      text: "The option 'service-address' conflicts with the 'connection' option in the 'list' command",
    });
    expect(await failure('-A -6 -f 5')).toMatchObject({ text: '-6 used before -f\n' });
    expect(await failure('--set 1 2')).toMatchObject({ text: '--set option requires 3 timeout values' });
  });

  it('tokenizes -R input as config_stream_read does', async () => {
    for (const fast of [true, false]) {
      const plan = await parseRestoreInput('\n  \nipvsadm -A -t 1.1.1.1:80\n\t-C \r\n-L', { fast });
      expect(plan.commands).toBe(3);
      expect(plan.steps.map((step) => (step.kind === 'batch' ? { batch: step.lines } : step.kind === 'command' ? { command: step.entry.cmd, line: step.line } : step)))
        .toEqual([{ batch: [3] }, { command: Cmd.FLUSH, line: 4 }, { command: Cmd.LIST, line: 5 }]);
    }
  });

  it("has inet_aton's and glibc inet_ntop's forms", () => {
    const out = new Uint8Array(4);
    expect(inetAton('10.1', out) && [...out]).toEqual([10, 0, 0, 1]);
    expect(inetAton('0x0a000013', out) && [...out]).toEqual([10, 0, 0, 19]);
    expect(inetAton('010.0.0.1', out) && [...out]).toEqual([8, 0, 0, 1]);
    expect(inetAton('300.1.1.1', out)).toBe(false);
    const v6 = (words: number[]): Uint8Array => new Uint8Array(words.flatMap((w) => [w >> 8, w & 0xff]));
    expect(ntop6(v6([0, 0, 0, 0, 0, 0, 0x0a00, 1]))).toBe('::10.0.0.1');
    expect(ntop6(v6([0, 0, 0, 0, 0, 0xffff, 0x0a00, 1]))).toBe('::ffff:10.0.0.1');
    expect(ntop6(v6([0, 0, 0, 0, 0, 0, 0, 1]))).toBe('::1');
    expect(ntop6(v6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]))).toBe('2001:db8::1:0:0:1');
  });
});

describe('ipvsadm output', () => {
  const stats = (n: bigint) => ({
    connections: n, packetsIn: n, packetsOut: n, bytesIn: n, bytesOut: n, connectionRate: n, packetRateIn: n,
    packetRateOut: n, byteRateIn: n, byteRateOut: n,
  });
  const dest = (address: string, extra: Partial<Destination> = {}): Destination => ({
    address, family: 'inet', port: 80, forward: 'masq', weight: 1, upperThreshold: 0, lowerThreshold: 0,
    activeConnections: 0, inactiveConnections: 0, persistentConnections: 0, stats: stats(0n), ...extra,
  });
  const service = (address: string, destinations: Destination[], extra: Partial<Service> = {}) => ({
    protocol: 'tcp', address, port: 80, family: 'inet', scheduler: 'wlc', netmask: '255.255.255.255', onePacket: false,
    schedulerFlags: [], stats: stats(0n), destinations, ...extra,
  }) as Service & { destinations: Destination[] };

  it('prints K/M/G/T like print_largenum, or exact', () => {
    expect(largeNumber(99999999n, 0)).toBe(' 99999999');
    expect(largeNumber(100000000n, 0)).toBe('  100000K');
    expect(largeNumber(1234567890n, 0)).toBe('    1234M');
    expect(largeNumber(123456789012n, 0)).toBe('     123G');
    expect(largeNumber(123456789012345n, 0)).toBe('     123T');
    expect(largeNumber(123456789012n, Fmt.EXACT)).toBe(' 123456789012');
  });

  it('sorts by unsigned address and prints fwmarks unsigned (two ipvsadm 1.31 bugs not copied)', () => {
    const table = [
      service('192.168.0.1', []), service('10.0.0.1', [dest('192.168.1.2'), dest('10.1.1.1')]),
      { fwmark: 4294967295, family: 'inet', scheduler: 'rr', netmask: '255.255.255.255', onePacket: false, schedulerFlags: [], stats: stats(0n), destinations: [] } as unknown as Service & { destinations: Destination[] },
    ];
    const text = formatTable(new TableView(packTable(table)), Fmt.NUMERIC | Fmt.RULE, new Namer(true), { version: '1.2.1', connectionTableSize: 4096 }).toString();
    expect(text).toBe([
      '-A -t 10.0.0.1:80 -s wlc', '-a -t 10.0.0.1:80 -r 10.1.1.1:80 -m -w 1', '-a -t 10.0.0.1:80 -r 192.168.1.2:80 -m -w 1',
      '-A -t 192.168.0.1:80 -s wlc', '-A -f 4294967295 -s rr', '',
    ].join('\n'));
    const stat = formatTable(new TableView(packTable([service('10.0.0.1', [dest('10.1.1.1', { stats: stats(123456789n) })], { stats: stats(5n) })])),
      Fmt.NUMERIC | Fmt.STATS, new Namer(true), { version: '1.2.1', connectionTableSize: 4096 }).toString();
    expect(stat.split('\n').slice(3)).toEqual([
      'TCP  10.0.0.1:80                         5        5        5        5        5',
      `  -> ${'10.1.1.1:80'.padEnd(28)}${'  123456K'.repeat(5)}`, '',
    ]);
  });

  it('prints the connection table as list_conn, endpoints formatted once', () => {
    const client = new Uint8Array(32);
    client.set([10, 1, 0, 2], 0);
    client.set([0xfd, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 16);
    const table = {
      length: 2,
      columns: {
        protocol: new Uint8Array([0, 0]), clientFamily: new Uint8Array([4, 6]), clientAddress: client,
        clientPort: new Uint16Array([40000, 40001]), virtualAddress: new Uint32Array([0, 2]), virtualPort: new Uint16Array([8080, 8080]),
        destinationAddress: new Uint32Array([1, 3]), destinationPort: new Uint16Array([8080, 8080]), state: new Uint16Array([0, 1]),
        origin: new Uint8Array(2), expires: new Uint32Array([899, 3]), pe: new Uint32Array(2), protocols: ['TCP'],
        states: ['ESTABLISHED', 'TIME_WAIT'], addresses: ['10.1.0.1', '10.2.0.2', 'fd01::1', 'fd02::2'], peNames: [], peData: [],
      },
    } as unknown as Parameters<typeof formatConnections>[0];
    expect(formatConnections(table, Fmt.NUMERIC, new Namer(true)).toString()).toBe([
      'IPVS connection entries',
      'pro expire state       source             virtual            destination',
      'TCP 14:59  ESTABLISHED 10.1.0.2:40000     10.1.0.1:8080      10.2.0.2:8080',
      'TCP 00:03  TIME_WAIT   [fd01::2]:40001    [fd01::1]:8080     [fd02::2]:8080', '',
    ].join('\n'));
  });

  it('prints daemons as list_daemon', () => {
    expect(formatDaemons([{ state: 'backup', interface: 'eth1', syncId: 7, maxLength: 1400, group: 'ff02::1:81', port: 9000, ttl: 2 }]))
      .toBe('backup sync daemon (mcast=eth1, syncid=7, maxlen=1400, group=ff02::1:81, port=9000, ttl=2)\n');
  });
});

describe('the dispatcher', () => {
  it('refuses an unknown command with status 2', async () => {
    const write = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      expect(await main(['nosuch'])).toBe(2);
    } finally {
      process.stderr.write = write;
    }
  });
});
