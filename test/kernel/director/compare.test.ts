// The seeds' own configurations, compared with the real programs. The real keepalived and the
// real ldirectord (Debian's packages) each run a configuration in their own namespace; our
// director runs the same file, imported, in another. The same HTTP servers go up and down for
// all four, and at every step each table must reach the expected one (`ipvsadm -S -n`).
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createNetns, ipvsadmSave, run, spawnIn, waitFor, type BackgroundProcess, type TestNetns } from '../helpers';

const NET = '10.77.0';
const VIP = `${NET}.100`;
const SERVERS = { srv1: `${NET}.11`, srv2: `${NET}.12`, sorry: `${NET}.13` } as const;
const BODY = 'OK\n';
const DIGEST = createHash('md5').update(BODY).digest('hex');
const DIST = path.resolve(process.cwd(), 'dist');
const RUNNER = path.resolve(__dirname, 'run-director.cjs');
/** Under TCG emulation a check round plus perl/keepalived start-up can take several seconds. */
const STEP_TIMEOUT_MS = 25_000;

const keepalivedConf = `
global_defs {
    router_id compare
}

virtual_server ${VIP} 80 {
    delay_loop 2
    lb_algo rr
    lb_kind NAT
    protocol TCP
    sorry_server ${SERVERS.sorry} 8080

    real_server ${SERVERS.srv1} 8080 {
        weight 2
        inhibit_on_failure
        HTTP_GET {
            url {
                path /health
                digest ${DIGEST}
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server ${SERVERS.srv2} 8080 {
        weight 1
        inhibit_on_failure
        HTTP_GET {
            url {
                path /health
                digest ${DIGEST}
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
`;

const ldirectordCf = `checkinterval=2
negotiatetimeout=1
quiescent=yes

virtual=${VIP}:80
\treal=${SERVERS.srv1}:8080 masq 2
\treal=${SERVERS.srv2}:8080 masq 1
\tfallback=${SERVERS.sorry}:8080 masq
\tservice=http
\trequest="health"
\treceive="^OK"
\tscheduler=rr
\tprotocol=tcp
\tchecktype=negotiate
`;

function table(weights: { srv1: number; srv2: number; sorry: boolean }): string[] {
  return [
    `-A -t ${VIP}:80 -s rr`,
    `-a -t ${VIP}:80 -r ${SERVERS.srv1}:8080 -m -w ${weights.srv1}`,
    `-a -t ${VIP}:80 -r ${SERVERS.srv2}:8080 -m -w ${weights.srv2}`,
    ...(weights.sorry ? [`-a -t ${VIP}:80 -r ${SERVERS.sorry}:8080 -m -w 1`] : []),
  ].sort();
}

describe('keepalived and ldirectord configurations: the real programs and our director build the same tables', () => {
  const namespaces: TestNetns[] = [];
  const processes: BackgroundProcess[] = [];
  const programs: Record<string, BackgroundProcess> = {};
  const tables: Record<string, TestNetns> = {};
  let lan: TestNetns;
  let dir: string;
  const docroots: Record<string, string> = {};

  /** A namespace on the shared LAN bridge with one address. */
  function member(prefix: string, address: string): TestNetns {
    const ns = createNetns(prefix);
    namespaces.push(ns);
    const peer = `l${namespaces.length}-${randomBytes(2).toString('hex')}`;
    run('ip', ['-n', lan.name, 'link', 'add', peer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
    run('ip', ['-n', lan.name, 'link', 'set', peer, 'master', 'br0', 'up']);
    run('ip', ['-n', ns.name, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
    run('ip', ['-n', ns.name, 'link', 'set', 'eth0', 'up']);
    return ns;
  }

  function start(name: string, ns: TestNetns, command: string, args: string[]): BackgroundProcess {
    const child = spawnIn(ns, command, args);
    processes.push(child);
    programs[name] = child;
    return child;
  }

  function setHealthy(server: 'srv1' | 'srv2', healthy: boolean): void {
    const on = path.join(docroots[server]!, 'health');
    const off = `${on}.off`;
    if (healthy) renameSync(off, on); else renameSync(on, off);
  }

  /** Waits until every namespace's table is `expected`; on timeout says which differ and shows the programs' output. */
  async function expectTables(step: string, expected: string[]): Promise<void> {
    let last: Record<string, string[]> = {};
    try {
      await waitFor(step, () => {
        last = Object.fromEntries(Object.entries(tables).map(([name, ns]) => [name, ipvsadmSave(ns)]));
        return Object.values(last).every((lines) => JSON.stringify(lines) === JSON.stringify(expected));
      }, { timeoutMs: STEP_TIMEOUT_MS, intervalMs: 200 });
    } catch (error) {
      const detail = Object.entries(last).map(([name, lines]) => `${name}:\n  ${lines.join('\n  ')}`).join('\n');
      const logs = Object.entries(programs).map(([name, p]) => `--- ${name}\n${p.output().slice(-3000)}`).join('\n');
      throw new Error(`${String(error)}\nexpected:\n  ${expected.join('\n  ')}\n${detail}\n${logs}`);
    }
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'compare-'));
    lan = createNetns('cmp-lan');
    run('ip', ['-n', lan.name, 'link', 'add', 'br0', 'type', 'bridge']);
    run('ip', ['-n', lan.name, 'link', 'set', 'br0', 'up']);

    // The real HTTP servers: /health answers "OK\n" while the file is there, 404 otherwise.
    for (const [name, address] of Object.entries(SERVERS)) {
      const ns = member(`cmp-${name}`, address);
      const root = path.join(dir, name);
      docroots[name] = root;
      run('mkdir', ['-p', root]);
      writeFileSync(path.join(root, 'health'), BODY);
      start(name, ns, 'python3', ['-m', 'http.server', '8080', '--bind', address, '--directory', root]);
    }
    const probe = member('cmp-probe', `${NET}.9`);
    for (const address of Object.values(SERVERS)) {
      await waitFor(`http server ${address}`, () => probe.run('curl', ['-sf', '--max-time', '2', `http://${address}:8080/health`]) === BODY);
    }

    const kaFile = path.join(dir, 'keepalived.conf');
    const ldFile = path.join(dir, `compare-${randomBytes(3).toString('hex')}.cf`);
    writeFileSync(kaFile, keepalivedConf);
    writeFileSync(ldFile, ldirectordCf);

    tables.keepalived = member('cmp-ka', `${NET}.2`);
    const pid = (what: string) => path.join(dir, `keepalived-${what}.pid`);
    start('keepalived', tables.keepalived, 'keepalived', [
      '--dont-fork', '--log-console', '--log-detail', '--no-syslog', '--check', '--use-file', kaFile,
      '--pid', pid('main'), '--checkers_pid', pid('checkers'), '--vrrp_pid', pid('vrrp'),
    ]);
    tables.directorKeepalived = member('cmp-dka', `${NET}.3`);
    start('director (keepalived.conf)', tables.directorKeepalived, process.execPath, [RUNNER, DIST, 'keepalived', kaFile]);

    tables.ldirectord = member('cmp-ld', `${NET}.4`);
    start('ldirectord', tables.ldirectord, 'ldirectord', ['-d', ldFile, 'start']);
    tables.directorLdirectord = member('cmp-dld', `${NET}.5`);
    start('director (ldirectord.cf)', tables.directorLdirectord, process.execPath, [RUNNER, DIST, 'ldirectord', ldFile]);
  }, 60_000);

  afterAll(() => {
    for (const child of processes) child.stop();
    for (const ns of namespaces) ns.remove();
    lan?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('servers failing and recovering, through the sorry server and back', async () => {
    await expectTables('all servers up', table({ srv1: 2, srv2: 1, sorry: false }));

    setHealthy('srv1', false);  // inhibit_on_failure / quiescent=yes: weight 0, not removed
    await expectTables('srv1 down', table({ srv1: 0, srv2: 1, sorry: false }));

    setHealthy('srv2', false);  // no live weight left: the sorry server (fallback) goes in
    await expectTables('both down', table({ srv1: 0, srv2: 0, sorry: true }));

    setHealthy('srv1', true);   // quorum is back: the sorry server comes out
    await expectTables('srv1 back', table({ srv1: 2, srv2: 0, sorry: false }));

    setHealthy('srv2', true);
    await expectTables('all back', table({ srv1: 2, srv2: 1, sorry: false }));

    // The directors ran the imported files, and told what they could not carry over.
    const imported = (name: string) => JSON.parse(programs[name]!.output().split('\n').find((l) => l.includes('"imported"'))!);
    expect(imported('director (keepalived.conf)').unsupported.map((u: { line: number; directive: string }) => [u.line, u.directive]))
      .toEqual([[2, 'global_defs'], [23, 'delay_before_retry'], [36, 'delay_before_retry']]);
    expect(imported('director (ldirectord.cf)').unsupported).toEqual([]);
  }, 150_000);
});
