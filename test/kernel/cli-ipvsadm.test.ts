// `ipvs-netlink ipvsadm` against the real ipvsadm 1.31, line by line: each command line runs
// with ours (in-process main(), output captured) in one namespace and with /usr/sbin/ipvsadm
// in another; exit status, stdout and stderr must be identical, and after every command that
// can change something, so must both tables (-Sn, -Ln, --daemon, --timeout). The two sides run
// one after the other, not side by side: the kernel keeps every namespace's services in one hash
// table and a dump resumes at a position counted over all of them, so a change in one namespace
// between the parts of a dump in the other repeats or skips a line of ipvsadm's there (ours
// checks its dumps: native/service_dump.h).
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ours, type Outcome } from './cli-helpers';
import { createNetns, type TestNetns } from './helpers';

interface Case {
  args: string;
  stdin?: string;
  /**
   * What may legitimately differ: the -h text names our --netns option ('status'); --nosort
   * prints the kernel's hash order, which Linux 6.1 derives from the namespace's address, so
   * two namespaces list the same table in different orders ('lines': the same lines).
   */
  compare?: 'status' | 'lines';
}

const c = (args: string, more: Omit<Case, 'args'> = {}): Case => ({ args, ...more });

// Every command and option of ipvsadm 1.31, valid and invalid; run in this order.
const CASES: Case[] = [
  // services
  c('-A -t 10.0.0.1:80'), c('-A -t 10.0.0.1:80'), c('-A -t 10.0.0.2:80 -s rr'), c('-A -t 10.0.0.3:80 -s wrr -p'),
  c('-A -t 10.0.0.4:80 -s sh -b sh-port'), c('-A -t 10.0.0.5:80 -s sh -b sh-fallback,sh-port -p 60 -M 255.255.255.0'),
  c('-A -t 10.0.0.6:80 -s mh -b mh-fallback'), c('-A -t 10.0.0.7:80 -s mh -b mh-port,mh-fallback'),
  c('-A -t 10.0.0.8:80 -s wlc -b flag-1,flag-2,flag-3'), c('-A -u 10.0.0.1:53 -o'),
  c('-A -u 10.0.0.2:53 -s rr -p 100 --pe sip'), c('-A --sctp-service 10.0.0.1:5000 -s lc'), c('-A -f 1'),
  c('-A -f 2 -6 -s sed'), c('-A -f 3 -6 -p 120 -M 64'), c('-A -f 2147483647 -s nq'), c('-A -f 65536 -s fo'),
  c('-A -t [2001:db8::1]:443 -s rr'), c('-A -t [2001:db8::1]:80 -p 30 -M 96'), c('-A -u [2001:db8::2]:53 -s ovf -o'),
  c('-A -t 10.200.1.1:80 -s dh'), c('-A -t 10.100.0.1:8080 -s lblc'), c('-A -t 10.0.0.9:0 -p 300 -s lblcr'),
  c('-A -t 10.0.0.10:0'), c('-A -t 10.0.0.11:80 -s twos'), c('-A -t 10.0.0.12:80 -s bogus'),
  c('-A -t 10.0.0.13:80 --pe bogus'), c('-A -t 10.0.0.14:80 -o'), c('-A -t 10.0.0.15:http'),
  c('-A -t 10.0.0.16:nosuchsvc'), c('-A -t 10.0.0.17'), c('-A -t 80'), c('-A -t 10.0.0.18:70000'), c('-A -t 10.1:81'),
  c('-A -t 0x0a000013:82'), c('-A -t [2001:db8::3]'), c('-A -t 2001:db8::4'), c('-A -t=10.0.0.20:80'),
  c('--add-service --tcp-service=10.0.0.21:80 --scheduler=rr --persistent=50'),
  c('--add-service --tcp-service 10.0.0.22:80 --persistent 40 --netmask 255.255.0.0'), c('-A -t 10.0.0.23:80 -p20'),
  c('-A -t 10.0.0.24:80 -ps rr'), c('-A -t 10.0.0.25:80 -p 0'), c('-A -t 10.0.0.26:80 -p 2678401'),
  c('-A -t 10.0.0.27:80 -p 2678400'), c('-A -t 10.0.0.28:80 -M 255.255.255.0'), c('-A -t 10.0.0.29:80 -p -M 300.1.1.1'),
  c('-A -t [2001:db8::5]:80 -p -M 129'), c('-A -t 10.0.0.30:80 -b bogus'), c('-A -t 10.0.0.31:80 -b sh-port'),
  c('-A -t 10.0.0.32:80 -s rr -s wrr'), c('-A -t 10.0.0.33:80 -u 10.0.0.33:80'), c('-A -f 0'), c('-A -f 4294967296'),
  c('-A -f abc'), c('-A -6 -f 5'), c('-A -t 10.0.0.34:80 -6'), c('-A -t 10.0.0.35:80 -r 1.1.1.1'),
  c('-A -t 10.0.0.36:80 -w 5'), c('-A'), c('-A -t 10.0.0.37:80 extra'), c('-A -t 10.0.0.38:80 -Q'),
  c('-A -t 10.0.0.39:80 --bogus'), c('-A -t'), c('-A -t 10.0.0.40:80 -n'), c('-A -t 10.0.0.41:80 -A'),
  c('-A -t 10.0.0.42:80 -s rr -p 20 -M 255.255.255.128'), c('-A -t 10.0.0.43:80 -p -s rr'),
  c('-E -t 10.0.0.1:80 -s rr -p 10'), c('-E -t 10.0.0.99:80 -s rr'), c('-E -t 10.0.0.2:80 -s bogus'),
  c('-E -f 1 -6 -s rr'), c('-E -u 10.0.0.1:53 -s rr'), c('-E -t 10.0.0.5:80 -s sh'), c('-D -t 10.0.0.99:80'),
  c('-D -t 10.0.0.23:80'), c('-D -t 10.0.0.1:80 -s rr'), c('-D -f 2 -6'), c('--delete-service --tcp-service 10.0.0.27:80'),
  // real servers
  c('-a -t 10.0.0.2:80 -r 192.168.10.1'), c('-a -t 10.0.0.2:80 -r 192.168.10.2:8080 -m -w 5'),
  c('-a -t 10.0.0.2:80 -r 192.168.10.3:8080 -g'), c('-a -t 10.0.0.2:80 -r 192.168.10.4 -i'),
  c('-a -t 10.0.0.2:80 -r 192.168.10.5 -i --tun-type gue --tun-port 6080'),
  c('-a -t 10.0.0.2:80 -r 192.168.10.6 -i --tun-type gue --tun-port 6081 --tun-csum'),
  c('-a -t 10.0.0.2:80 -r 192.168.10.7 -i --tun-type gue --tun-port 6082 --tun-remcsum'),
  c('-a -t 10.0.0.2:80 -r 192.168.10.8 -i --tun-type gre'), c('-a -t 10.0.0.2:80 -r 192.168.10.9 -i --tun-type gre --tun-csum'),
  c('-a -t 10.0.0.2:80 -r 192.168.10.10 -i --tun-type ipip'), c('-a -t 10.0.0.2:80 -r 192.168.10.11 -i --tun-type gue'),
  c('-a -t 10.0.0.2:80 -r 192.168.10.12 -i --tun-type gre --tun-remcsum'),
  c('-a -t 10.0.0.2:80 -r 192.168.10.13 -i --tun-type ipip --tun-csum'),
  c('-a -t 10.0.0.2:80 -r 192.168.10.14 -i --tun-type gue --tun-port 1 --tun-csum --tun-nocsum'),
  c('-a -t 10.0.0.2:80 -r 192.168.10.15 -m --tun-type gre'), c('-a -t 10.0.0.2:80 -r 192.168.10.16 -i --tun-type vxlan'),
  c('-a -t 10.0.0.2:80 -r 192.168.10.17 -i --tun-type gue --tun-port 0'), c('-a -t 10.0.0.2:80 -r 192.168.10.1'),
  c('-a -t 10.0.0.99:80 -r 192.168.10.1'), c('-a -t 10.0.0.2:80 -r 192.168.10.18 -w 65535 -x 1000 -y 500 -m'),
  c('-a -t 10.0.0.2:80 -r 192.168.10.19 -w 65536'), c('-a -t 10.0.0.2:80 -r 192.168.10.20 -w -1'),
  c('-a -t 10.0.0.2:80 -r 192.168.10.24 -w 2147483648'), c('-a -t 10.0.0.2:80 -r 192.168.10.25 -w 2147483647 -m'),
  c('-a -t 10.0.0.2:80 -r 192.168.10.21 -x 10 -y 20 -m'), c('-a -t 10.0.0.2:80 -r 192.168.10.22 -x 2147483648'),
  c('-a -t 10.0.0.2:80 -r 192.168.10.23 -w 0 -m'), c('-a -t 10.0.0.2:80 -r [2001:db8::10]'),
  c('-a -t 10.0.0.4:80 -r [2001:db8::10]:80 -i'), c('-a -t [2001:db8::1]:443 -r [2001:db8::20]:8443 -m -w 3'),
  c('-a -t [2001:db8::1]:443 -r [2001:db8::21] -g'), c('-a -t [2001:db8::1]:443 -r 10.20.0.1 -i'),
  c('-a -t [2001:db8::1]:443 -r [2001:db8::22]:443 -i --tun-type gue --tun-port 7000'),
  c('-a -f 1 -r 192.168.30.1 -m'), c('-a -f 1 -r 192.168.30.2:8080 -m'), c('-a -f 3 -6 -r [2001:db8::30] -g'),
  c('-a -f 2147483647 -r 192.168.30.3 -g -w 9'), c('-a -u 10.0.0.1:53 -r 192.168.40.1:5353 -m'),
  c('-a --sctp-service 10.0.0.1:5000 -r 192.168.50.1 -m'), c('-a -t 10.0.0.2:80'),
  c('-a -t 10.0.0.2:80 -r 192.168.10.30 -s rr'), c('-a -t 10.0.0.2:80 -r 192.168.10.31 -p'),
  c('-a -t 10.0.0.2:80 -r 192.168.10.32 -m -i'), c('-a -t 10.0.0.2:80 -r 80'), c('-a -t 10.0.0.2:80 -r 192.168.10.33:http -m'),
  c('--add-server --tcp-service 10.0.0.3:80 --real-server 192.168.11.1 --masquerading --weight 2 --u-threshold 5 --l-threshold 1'),
  c('-a -t 10.0.0.3:80 -r 192.168.11.2 --gatewaying'), c('-a -t 10.0.0.3:80 -r 192.168.11.3 --ipip'),
  c('-e -t 10.0.0.2:80 -r 192.168.10.2:8080 -m -w 7'), c('-e -t 10.0.0.2:80 -r 192.168.10.2:8080 -w 7'),
  c('-e -t 10.0.0.2:80 -r 192.168.10.99 -m'), c('-e -t 10.0.0.99:80 -r 192.168.10.1'),
  c('-e -t 10.0.0.2:80 -r 192.168.10.5 -i --tun-type gre --tun-csum'), c('-e -t 10.0.0.2:80 -r 192.168.10.4 -m'),
  c('-d -t 10.0.0.2:80 -r 192.168.10.1'), c('-d -t 10.0.0.2:80 -r 192.168.10.1'), c('-d -t 10.0.0.99:80 -r 192.168.10.1'),
  c('-d -t 10.0.0.2:80 -r 192.168.10.2:8080 -m'), c('-d -t 10.0.0.2:80 -r 192.168.10.2:8080'), c('-d -t 10.0.0.2:80'),
  // listings
  c('-L -n'), c('-Ln'), c('-l -n'), c('--list --numeric'), c('-L -n --stats'), c('-L -n --stats --exact'), c('-L -n --rate'),
  c('-L -n --rate --exact'), c('-L -n --thresholds'), c('-L -n --persistent-conn'), c('-L -n --tun-info'),
  c('-L -n --nosort', { compare: 'lines' }), c('-L -n --sort'), c('-L -n -t 10.0.0.2:80'), c('-L -n -t 10.0.0.99:80'), c('-L -n -f 3 -6'),
  c('-L -n -u 10.0.0.1:53 --stats'), c('-L -n -t [2001:db8::1]:443 --tun-info'), c('-L -n --timeout'), c('-L -n --daemon'),
  c('-Lnc'), c('-L -n -c --persistent-conn'), c('-L -n -c --stats'), c('-L --timeout --persistent-conn'),
  c('-L -c -t 10.0.0.2:80'), c('-L --timeout --daemon'), c('-S -n'), c('-Sn'), c('--save --numeric'),
  c('-S -n --stats'), c('-L -n --stats --rate'), c('-L -n --thresholds --persistent-conn'), c('-L -n -x 5'),
  c('-L -n --tun-info --stats'), c('-L -n -X'), c('-L -n --nosort --stats', { compare: 'lines' }), c('-n -L'), c('-Q'), c('-L -L'),
  c('-L'), c('-S'), c(''), c('-L -t 10.0.0.2:80'),
  // zero
  c('-Z'), c('-Z -t 10.0.0.2:80'), c('-Z -t 10.0.0.99:80'), c('-Z -f 1'), c('-Z -n'), c('--zero --udp-service 10.0.0.1:53'),
  // timeouts
  c('--set 100 20 30'), c('-L --timeout'), c('--set 0 0 0'), c('--set 1 2'), c('--set 1 2 3 4'), c('--set -1 2 3'),
  c('--set 2678401 1 1'), c('--set abc 1 1'), c('--set 900 120 300'),
  // daemons
  c('--start-daemon master --mcast-interface lo --syncid 3'), c('--start-daemon master --mcast-interface lo'),
  c('--start-daemon backup --mcast-interface lo --mcast-group 224.0.0.90 --mcast-port 9000 --mcast-ttl 2 --sync-maxlen 1400 --syncid 7'),
  c('-L --daemon'), c('--stop-daemon master'), c('--stop-daemon master'), c('--stop-daemon backup'),
  c('--start-daemon bogus'), c('--stop-daemon bogus'), c('--start-daemon master --mcast-group 10.0.0.1'),
  c('--start-daemon master --mcast-group 2001:db8::1'), c('--start-daemon master --mcast-port 0'),
  c('--start-daemon master --mcast-ttl 256'), c('--start-daemon master --sync-maxlen 65508'),
  c('--start-daemon master --syncid 256'), c('--start-daemon master --mcast-interface nosuchif0'),
  c('--start-daemon master -t 10.0.0.1:80'), c('--start-daemon'),
  c('--start-daemon master --mcast-interface lo --mcast-group ff02::1:81 --mcast-port 8849'), c('-L --daemon'),
  c('--stop-daemon master --syncid 3'), c('-L --daemon'),
  // restore from standard input
  c('-R', { stdin: '-A -t 10.5.0.1:80 -s rr\n-a -t 10.5.0.1:80 -r 192.168.60.1 -m\n' }),
  c('-R', { stdin: '-A -t 10.5.0.2:80\n-A -t 10.5.0.2:80\n-A -t 10.5.0.3:80\n' }),
  c('-R', { stdin: '-A -t 10.5.0.4:80 -q\n-A -t 10.5.0.5:80\n' }),
  c('-R', { stdin: '\n\n  \nipvsadm -A -t 10.5.0.6:80\n\t-a -t 10.5.0.6:80 -r 192.168.60.2\n' }),
  c('-R', { stdin: '-A -t 10.5.0.7:80\n-A -t 10.5.0.7:80\n' }), c('-R', { stdin: '-R\n' }),
  c('-R -n'), c('-R', { stdin: '-C\n-A -f 77 -s rr\n-a -f 77 -r 192.168.70.1 -m\n-E -f 77 -s wrr\n' }),
  c('--restore', { stdin: '-A -t 10.5.0.8:80\n-D -t 10.5.0.8:80\n-D -t 10.5.0.8:80\n' }),
  // version, help, clear
  c('-v'), c('-h', { compare: 'status' }), c('--help', { compare: 'status' }), c('-C -n'), c('-C'), c('-L -n'),
];

/** With IPVS_CLI_DIFF_LOG=FILE, each comparison is appended to FILE as it happens (for slow hosts). */
function progress(line: string): void {
  const file = process.env.IPVS_CLI_DIFF_LOG;
  if (file) appendFileSync(file, `${line}\n`);
}

const MUTATING = /^(-[AEDaedCRZ]|--(add|edit|delete|clear|restore|zero|set|start|stop))/;

/** The listings that show what a command of this kind can change. */
function snapshotListings(args: string): string[][] {
  if (/^--(start|stop)-daemon/.test(args)) return [['-L', '--daemon']];
  if (args.startsWith('--set')) return [['-L', '--timeout']];
  if (/^(-[RC]|--restore)/.test(args)) return [['-Sn'], ['-Ln', '--thresholds'], ['-L', '--daemon'], ['-L', '--timeout']];
  // -Sn shows everything a service or real server change sets but thresholds.
  return /(^| )-[xy] /.test(args) ? [['-Sn'], ['-Ln', '--thresholds']] : [['-Sn']];
}

const sortedLines = (text: string): string => text.split('\n').sort().join('\n');

const quote = (arg: string): string => `'${arg.replace(/'/g, `'\\''`)}'`;
const MARK = '\u0001';

/**
 * Every case through the real ipvsadm in one shell inside the namespace (one process start
 * for `ip netns exec`, not one per command): status, stdout and stderr of each command, then
 * the listings of its snapshot. ipvsadm writes straight to the shell's stdout and stderr, each
 * command's part ended by a mark, so each command costs one process start, ipvsadm's own.
 */
function runTheirs(netns: string, cases: readonly Case[]): Outcome[][] {
  const dir = mkdtempSync(path.join(tmpdir(), 'cli-diff-'));
  const lines = ['cd ' + quote(dir)];
  const run = (args: string[], stdin: string | undefined, id: string): void => {
    if (stdin !== undefined) writeFileSync(path.join(dir, `in.${id}`), stdin);
    const input = stdin !== undefined ? `in.${id}` : '/dev/null';
    lines.push(`ipvsadm ${args.map(quote).join(' ')} <${input}; printf '${MARK}%s${MARK}' "$?"; printf '${MARK}' >&2`);
  };
  cases.forEach((test, i) => {
    run(test.args === '' ? [] : test.args.split(' '), test.stdin, String(i));
    if (MUTATING.test(test.args)) snapshotListings(test.args).forEach((args, j) => run(args, undefined, `${i}.${j}`));
  });
  writeFileSync(path.join(dir, 'script.sh'), `${lines.join('\n')}\n`);
  const result = spawnSync('ip', ['netns', 'exec', netns, 'bash', path.join(dir, 'script.sh')], { encoding: 'utf8', maxBuffer: 1 << 26 });
  rmSync(dir, { recursive: true, force: true });
  if (result.status !== 0) throw new Error(`the ipvsadm script failed: ${result.stderr}`);
  // stdout: <stdout> MARK <status> MARK per command; stderr: <stderr> MARK per command.
  const fields = result.stdout.split(MARK);
  const errors = result.stderr.split(MARK);
  const outcomes: Outcome[] = [];
  for (let k = 0; k + 1 < fields.length; k += 2) {
    outcomes.push({ status: Number(fields[k + 1]), stdout: fields[k]!, stderr: errors[k / 2] ?? '' });
  }
  if (errors.length !== outcomes.length + 1 || fields.length !== 2 * outcomes.length + 1) {
    throw new Error(`the ipvsadm script's output is not one part per command: ${fields.length} stdout fields, ${errors.length} stderr fields`);
  }
  const perCase: Outcome[][] = [];
  let next = 0;
  for (const test of cases) {
    const count = 1 + (MUTATING.test(test.args) ? snapshotListings(test.args).length : 0);
    perCase.push(outcomes.slice(next, next + count));
    next += count;
  }
  if (next !== outcomes.length) throw new Error(`expected ${next} ipvsadm results, got ${outcomes.length}`);
  return perCase;
}

describe('ipvs-netlink ipvsadm vs ipvsadm 1.31, command by command', () => {
  let mine: TestNetns;
  let real: TestNetns;

  beforeAll(() => {
    mine = createNetns('cli-o');
    real = createNetns('cli-t');
  });
  afterAll(() => {
    mine?.remove();
    real?.remove();
  });

  it(`runs ${CASES.length} command lines with identical status, output and tables`, async () => {
    expect(CASES.length).toBeGreaterThanOrEqual(150);
    const started = Date.now();
    const expected = runTheirs(real.name, CASES);
    progress(`ipvsadm script done in ${Date.now() - started} ms`);
    const theirsMs = Date.now() - started;
    const ipvsadm = (args: string[], stdin?: string): Promise<Outcome> => ours(['ipvsadm', '--netns', mine.path, ...args], stdin);
    let snapshots = 0;
    for (const [i, test] of CASES.entries()) {
      const args = test.args === '' ? [] : test.args.split(' ');
      const label = `ipvsadm ${test.args}${test.stdin ? ` <<< ${JSON.stringify(test.stdin)}` : ''}`;
      const [want, ...wantSnapshots] = expected[i]!;
      const got = await ipvsadm(args, test.stdin);
      progress(`${i} ${label} ${JSON.stringify(got) === JSON.stringify(want) ? 'same' : `DIFF ours=${JSON.stringify(got)} theirs=${JSON.stringify(want)}`}`);
      if (test.compare === 'status') expect.soft({ label, status: got.status }).toEqual({ label, status: want!.status });
      else if (test.compare === 'lines') expect.soft({ label, ...got, stdout: sortedLines(got.stdout) }).toEqual({ label, ...want, stdout: sortedLines(want!.stdout) });
      else expect.soft({ label, ...got }).toEqual({ label, ...want });
      if (!MUTATING.test(test.args)) continue;
      const listings = snapshotListings(test.args);
      for (const [j, listing] of listings.entries()) {
        const snapshot = await ipvsadm(listing);
        if (JSON.stringify(snapshot) !== JSON.stringify(wantSnapshots[j])) progress(`  TABLE DIFF after ${label}: ${listing.join(' ')}\nours=${JSON.stringify(snapshot)}\ntheirs=${JSON.stringify(wantSnapshots[j])}`);
        expect.soft({ after: label, listing: listing.join(' '), ...snapshot }).toEqual({ after: label, listing: listing.join(' '), ...wantSnapshots[j] });
        snapshots++;
      }
    }
    console.log(`differential: ${CASES.length} command lines, ${snapshots} listings after them; ipvsadm ${theirsMs} ms, ours ${Date.now() - started - theirsMs} ms`);
  }, 900_000);
});
