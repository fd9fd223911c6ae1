// `ipvs-netlink director --keepalived FILE --listen ADDR` against the real kernel: the command
// runs a keepalived.conf through the importer inside a namespace, reports what it does not
// carry over with file and line, drives the table, and serves /metrics and /api/status.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createNetns, spawnIn, waitFor, type BackgroundProcess, type TestNetns } from '../helpers';

describe('ipvs-netlink director --keepalived … --listen … (kernel)', () => {
  let ns: TestNetns;
  let command: BackgroundProcess;
  const dir = mkdtempSync(path.join(tmpdir(), 'director-cli-'));
  const conf = path.join(dir, 'keepalived.conf');

  beforeAll(() => {
    ns = createNetns('dcli');
    ns.run('ip', ['link', 'add', 'rs0', 'type', 'dummy']);
    ns.run('ip', ['addr', 'add', '10.2.0.1/24', 'dev', 'rs0']);
    ns.run('ip', ['link', 'set', 'rs0', 'up']);
    // MISC_CHECK: the checks need no server process; /bin/true passes, /bin/false fails.
    writeFileSync(conf, [
      'global_defs {',
      '  router_id lb-test',
      '}',
      'virtual_server 10.1.0.1 80 {',
      '  delay_loop 1',
      '  lb_algo wrr',
      '  lb_kind NAT',
      '  protocol TCP',
      '  real_server 10.2.0.5 8080 {',
      '    weight 3',
      '    inhibit_on_failure',
      '    MISC_CHECK {',
      '      misc_path /bin/true',
      '    }',
      '  }',
      '  real_server 10.2.0.6 8080 {',
      '    weight 2',
      '    inhibit_on_failure',
      '    notify_up /bin/true',
      '    MISC_CHECK {',
      '      misc_path /bin/false',
      '    }',
      '  }',
      '}',
      '',
    ].join('\n'));
    command = spawnIn(ns, process.execPath, ['dist/cli/bin.js', 'director', '--keepalived', conf, '--listen', '127.0.0.1:0', '--json']);
  });

  afterAll(() => {
    command?.stop();
    ns?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the imported configuration, reports unsupported directives with their lines, and serves metrics and status', async () => {
    const url = await waitFor('the command to start', () => /metrics at (http:\/\/127\.0\.0\.1:\d+\/)metrics/.exec(command.output())?.[1], { timeoutMs: 240_000 })
      .catch((error: Error) => { throw new Error(`${error.message}; output: ${command.output().slice(-2000)}`); });
    // Every directive not carried over, with file and line, on stderr (merged in output()).
    expect(command.output()).toContain(`${conf}:1: global_defs: `);
    expect(command.output()).toContain(`${conf}:19: notify_up: `);

    // The first round of checks decides: .5 serves at weight 3, .6 (failing) is quiesced.
    const table = await waitFor('the table after the first checks', () => {
      const text = ns.run('ipvsadm', ['-Ln']);
      return /10\.2\.0\.5:8080\s+Masq\s+3\b/.test(text) && /10\.2\.0\.6:8080\s+Masq\s+0\b/.test(text) ? text : undefined;
    }, { timeoutMs: 30_000 });
    expect(table).toContain('TCP  10.1.0.1:80 wrr');

    const status = await waitFor('/api/status with the director\'s view', () => {
      const body = JSON.parse(ns.run('curl', ['-s', '--max-time', '5', `${url}api/status`])) as {
        director: boolean; services: Array<{ name: string; destinations: Array<{ name: string; health?: string; weight?: number; configuredWeight?: number }> }>;
      };
      const dests = body.services.find((s) => s.name === 'tcp 10.1.0.1:80')?.destinations ?? [];
      return dests.some((d) => d.health === 'down') && dests.some((d) => d.health === 'up') ? body : undefined;
    }, { timeoutMs: 30_000 });
    expect(status.director).toBe(true);
    const service = status.services.find((s) => s.name === 'tcp 10.1.0.1:80')!;
    expect(service.destinations.map((d) => [d.name, d.health, d.weight, d.configuredWeight]).sort()).toEqual([
      ['10.2.0.5:8080', 'up', 3, 3],
      ['10.2.0.6:8080', 'down', 0, 2],
    ]);

    const metrics = ns.run('curl', ['-s', '--max-time', '5', `${url}metrics`]);
    expect(metrics).toMatch(/^ipvs_director_in_sync 1$/m);
    expect(metrics).toMatch(/^ipvs_director_check_failures_total\{[^}]*10\.2\.0\.6[^}]*\} [1-9]/m);
    expect(metrics).toMatch(/^node_ipvs_backend_weight\{[^}]*remote_address="10\.2\.0\.5"[^}]*\} 3$/m);

    // The events went to stdout as JSON lines.
    const events = command.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; destination?: string });
    expect(events.some((e) => e.type === 'down' && e.destination === '10.2.0.6:8080')).toBe(true);
  }, 360_000);
});
