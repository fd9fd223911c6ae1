// The seeds' own configurations, compared with the real programs. The real keepalived and the
// real ldirectord (Debian's packages) each run a configuration in their own namespace; our
// director runs the same file, imported, with its table in another namespace. The same HTTP
// servers go up and down for all four, and at every step each table must reach the expected
// one (`ipvsadm -S -n`), so all four agree.
//
// Topology (one shell script builds it, to keep process spawns few under emulation): a LAN
// namespace with a bridge; on it the server namespace (10.77.0.11–13, one HTTP server whose
// /health answers per local address), the keepalived, ldirectord and two director-table
// namespaces, and this process's own namespace (10.77.0.6), from which the in-process
// directors' checks leave, as they would for any program using the library with `netns`.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Director } from '../../../lib/director/index';
import { importKeepalived } from '../../../lib/director/import/keepalived';
import { importLdirectord } from '../../../lib/director/import/ldirectord';
import type { ImportResult } from '../../../lib/director/import/result';
import { ipvsadmSave, run, spawnIn, waitFor, type BackgroundProcess, type TestNetns } from '../helpers';

const NET = '10.77.0';
const VIP = `${NET}.100`;
const SERVERS = { srv1: `${NET}.11`, srv2: `${NET}.12`, sorry: `${NET}.13` } as const;
const BODY = 'OK\n';
const DIGEST = createHash('md5').update(BODY).digest('hex');
/** Under TCG emulation on a loaded host a check round can take seconds; every step polls up to this. */
const STEP_TIMEOUT_MS = 45_000;

/** GET /health answers BODY (200) while DIR/<local address> exists, 404 otherwise. */
const HTTP_SERVER = `
import http.server, os, sys
root = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == '/health' and os.path.exists(os.path.join(root, self.connection.getsockname()[0]))
        body = b'OK\\n' if ok else b'no\\n'
        self.send_response(200 if ok else 404)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer.allow_reuse_address = True
server = http.server.ThreadingHTTPServer(('0.0.0.0', 8080), H)
print('listening', flush=True)
server.serve_forever()
`;

const keepalivedConf = `
global_defs {
    router_id compare
}

virtual_server ${VIP} 80 {
    delay_loop 4
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
            connect_timeout 3
            retry 2
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
            connect_timeout 3
            retry 2
            delay_before_retry 1
        }
    }
}
`;

const ldirectordCf = `checkinterval=4
negotiatetimeout=3
failurecount=3
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
  const tag = randomBytes(3).toString('hex');
  const ns = (name: string): TestNetns => ({
    name: `cmp${name}-${tag}`,
    path: `/run/netns/cmp${name}-${tag}`,
    run: (command, args, options) => run('ip', ['netns', 'exec', `cmp${name}-${tag}`, command, ...args], options),
    remove: () => { try { run('ip', ['netns', 'delete', `cmp${name}-${tag}`]); } catch { /* already gone */ } },
  });
  const lan = ns('lan');
  const srv = ns('srv');
  const tables = { keepalived: ns('ka'), directorKeepalived: ns('dka'), ldirectord: ns('ld'), directorLdirectord: ns('dld') };
  const members: Array<[TestNetns, string[]]> = [
    [srv, Object.values(SERVERS)],
    [tables.keepalived, [`${NET}.2`]],
    [tables.directorKeepalived, [`${NET}.3`]],
    [tables.ldirectord, [`${NET}.4`]],
    [tables.directorLdirectord, [`${NET}.5`]],
  ];
  const programs: Record<string, BackgroundProcess> = {};
  const directors: Director[] = [];
  const imports: Record<string, ImportResult> = {};
  const directorErrors: string[] = [];
  const hostVeth = `cmph-${tag}`;
  let dir: string;

  const t0 = Date.now();
  const log = (what: string) => { console.error(`[compare +${((Date.now() - t0) / 1000).toFixed(1)} s] ${what}`); };

  function setHealthy(server: 'srv1' | 'srv2', healthy: boolean): void {
    const flag = path.join(dir, 'health', SERVERS[server]);
    if (healthy) writeFileSync(flag, ''); else unlinkSync(flag);
  }

  /** Waits until every namespace's table is `expected`; on timeout shows each table and the programs' output. */
  async function expectTables(step: string, expected: string[]): Promise<void> {
    let last: Record<string, string[]> = {};
    try {
      await waitFor(step, () => {
        last = Object.fromEntries(Object.entries(tables).map(([name, n]) => [name, ipvsadmSave(n)]));
        return Object.values(last).every((lines) => JSON.stringify(lines) === JSON.stringify(expected));
      }, { timeoutMs: STEP_TIMEOUT_MS, intervalMs: 250 });
      log(step);
    } catch (error) {
      const detail = Object.entries(last).map(([name, lines]) => `${name}:\n  ${lines.join('\n  ')}`).join('\n');
      const logs = Object.entries(programs).map(([name, p]) => `--- ${name}\n${p.output().slice(-2500)}`).join('\n');
      throw new Error(`${String(error)}\nexpected:\n  ${expected.join('\n  ')}\n${detail}\n${logs}\n${directorErrors.join('\n')}`);
    }
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'compare-'));
    const script = [
      'set -e',
      ...[lan, ...members.map(([n]) => n)].map((n) => `ip netns add ${n.name}; ip -n ${n.name} link set lo up`),
      `ip -n ${lan.name} link add br0 type bridge; ip -n ${lan.name} link set br0 up`,
      ...members.flatMap(([n, addresses], i) => [
        `ip -n ${lan.name} link add p${i} type veth peer name eth0 netns ${n.name}`,
        `ip -n ${lan.name} link set p${i} master br0 up`,
        ...addresses.map((a) => `ip -n ${n.name} addr add ${a}/24 dev eth0`),
        `ip -n ${n.name} link set eth0 up`,
      ]),
      `ip link add ${hostVeth} type veth peer name ph netns ${lan.name}`,
      `ip -n ${lan.name} link set ph master br0 up`,
      `ip addr add ${NET}.6/24 dev ${hostVeth}`,
      `ip link set ${hostVeth} up`,
    ].join('\n');
    run('sh', ['-c', script]);
    log('topology');

    run('mkdir', ['-p', path.join(dir, 'health')]);
    for (const address of Object.values(SERVERS)) writeFileSync(path.join(dir, 'health', address), '');
    programs.servers = spawnIn(srv, 'python3', ['-c', HTTP_SERVER, path.join(dir, 'health')]);

    const kaFile = path.join(dir, 'keepalived.conf');
    const ldFile = path.join(dir, `compare-${tag}.cf`);
    writeFileSync(kaFile, keepalivedConf);
    writeFileSync(ldFile, ldirectordCf);
    const pid = (what: string) => path.join(dir, `keepalived-${what}.pid`);
    programs.keepalived = spawnIn(tables.keepalived, 'keepalived', [
      '--dont-fork', '--log-console', '--log-detail', '--no-syslog', '--check', '--use-file', kaFile,
      '--pid', pid('main'), '--checkers_pid', pid('checkers'), '--vrrp_pid', pid('vrrp'),
    ]);
    programs.ldirectord = spawnIn(tables.ldirectord, 'ldirectord', ['-d', ldFile, 'start']);
    await waitFor('the HTTP server', () => programs.servers!.output().includes('listening'), { timeoutMs: 60_000, intervalMs: 50 });
    // The directors' checks leave from this namespace: it must reach every server.
    for (const address of Object.values(SERVERS)) {
      await waitFor(`${address} from this namespace`, () => run('curl', ['-sf', '--max-time', '5', `http://${address}:8080/health`]) === BODY);
    }
    log('programs started');

    imports.keepalived = await importKeepalived(kaFile);
    imports.ldirectord = await importLdirectord(ldFile);
    for (const [name, table] of [['keepalived', tables.directorKeepalived], ['ldirectord', tables.directorLdirectord]] as const) {
      const director = new Director(imports[name]!.config, { netns: table.path, checkEvents: true });
      director.on('error', (event) => { directorErrors.push(`director (${name}): ${event.operation}: ${String(event.error)}`); });
      director.on('check', (event) => {
        directorErrors.push(`director (${name}) check ${JSON.stringify(event)}`);
        if (directorErrors.length > 40) directorErrors.shift();
      });
      directors.push(director);
      await director.start();
    }
    log('directors started');
  }, 120_000);

  afterAll(async () => {
    await Promise.all(directors.map((d) => d.stop()));
    for (const child of Object.values(programs)) child.stop();
    for (const n of [...members.map(([m]) => m), lan]) n.remove();
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

    // What the imports could not carry over, by line.
    expect(imports.keepalived!.unsupported.map((u) => [u.line, u.directive]))
      .toEqual([[2, 'global_defs'], [23, 'delay_before_retry'], [36, 'delay_before_retry']]);
    expect(imports.ldirectord!.unsupported).toEqual([]);
  }, 180_000);
});
