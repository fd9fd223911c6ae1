// `ipvs-netlink director` on the host: argument and configuration errors, and the event lines.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it, vi } from 'vitest';

import { CommanderError } from 'commander';

import { eventJson, formatEvent, main, parseDirectorArgs, readSource } from '../../../lib/cli/director';

function capture(): { out: () => string; err: () => string; restore: () => void } {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => { out += String(chunk); return true; });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => { err += String(chunk); return true; });
  return { out: () => out, err: () => err, restore: () => { o.mockRestore(); e.mockRestore(); } };
}

describe('ipvs-netlink director', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'director-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('exits 2 on a usage error and 0 for --help', async () => {
    const io = capture();
    try {
      expect(await main([])).toBe(2);
      expect(await main(['a.yaml', '--leave', 'later'])).toBe(2);
      expect(await main(['--help'])).toBe(0);
    } finally {
      io.restore();
    }
    expect(io.err()).toContain("argument 'later' is invalid");
    expect(io.out()).toContain('SIGHUP reloads the file');
  });

  it('exits 1 with the file, line and path of an invalid configuration, before opening anything', async () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'services:\n  - protocol: tcp\n    address: 10.0.0.1\n    port: 80\n    destinations: [{ address: 10.0.1.1, weight: x }]\n');
    const io = capture();
    try {
      expect(await main([file, '--json'])).toBe(1);
    } finally {
      io.restore();
    }
    expect(io.err()).toBe(`ipvs-netlink director: ${file}:5:41: services[0].destinations[0].weight must be an integer, got "x"\n`);
  });

  it('prints one line per event, as text or JSON', () => {
    const time = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    const down = { type: 'down', time, service: 'tcp 10.0.0.1:80', destination: '10.0.1.1:80', from: 'up', reason: 'http: HTTP 503' } as const;
    expect(formatEvent(down)).toBe('2026-01-02T03:04:05.678Z down tcp 10.0.0.1:80 10.0.1.1:80 (was up): http: HTTP 503');
    const weight = { type: 'weight', time, service: 's', destination: 'd', from: 2, to: 0, present: true, reason: 'health' } as const;
    expect(formatEvent(weight)).toBe('2026-01-02T03:04:05.678Z weight s d 2 -> 0 [health]');
    const error = { type: 'error', time, operation: 'apply', error: Object.assign(new Error('boom'), { code: 'EPERM' }), retryIn: 500 } as const;
    expect(formatEvent(error)).toBe('2026-01-02T03:04:05.678Z error apply: boom (retry in 500 ms)');
    expect(JSON.parse(eventJson(error))).toEqual({ type: 'error', time, operation: 'apply', retryIn: 500, error: { name: 'Error', message: 'boom', code: 'EPERM' } });
    expect(JSON.parse(eventJson(down))).toEqual(down);
    const vrrp = { type: 'vrrp', time, instance: 'VI_1', from: 'backup', to: 'master', priority: 100 } as const;
    expect(formatEvent(vrrp)).toBe('2026-01-02T03:04:05.678Z vrrp VI_1 backup -> master (priority 100)');
    const sync = { type: 'sync-daemon', time, from: 'backup', to: 'master', interface: 'eth1', syncId: 7, latency: 12 } as const;
    expect(formatEvent(sync)).toBe('2026-01-02T03:04:05.678Z sync-daemon backup -> master on eth1, sync id 7, 12 ms');
  });

  const quiet = { out: () => {}, err: () => {} };

  it('takes the configuration from FILE, --keepalived FILE or --ldirectord FILE, exactly one', () => {
    expect(parseDirectorArgs(['d.yaml'], quiet)).toMatchObject({ source: { format: 'director', file: 'd.yaml' }, listen: undefined, leave: 'as-is' });
    expect(parseDirectorArgs(['--keepalived', '/etc/keepalived/keepalived.conf'], quiet).source)
      .toEqual({ format: 'keepalived', file: '/etc/keepalived/keepalived.conf' });
    expect(parseDirectorArgs(['--ldirectord', 'l.cf', '--json', '--netns', '/run/netns/lb'], quiet))
      .toMatchObject({ source: { format: 'ldirectord', file: 'l.cf' }, json: true, netns: '/run/netns/lb' });
    expect(() => parseDirectorArgs([], quiet)).toThrow(new TypeError('give a configuration: FILE, --keepalived FILE or --ldirectord FILE'));
    expect(() => parseDirectorArgs(['d.yaml', '--keepalived', 'k.conf'], quiet)).toThrow(new TypeError('give one configuration, not d.yaml and --keepalived'));
    expect(() => parseDirectorArgs(['--keepalived', 'k.conf', '--ldirectord', 'l.cf'], quiet)).toThrow(/not --keepalived and --ldirectord/);
    expect(() => parseDirectorArgs(['--keepalived'], quiet)).toThrow(CommanderError);
  });

  it('--listen: a loopback address alone, any other with --token-file; --token-file only with --listen', () => {
    expect(parseDirectorArgs(['d.yaml', '--listen', '127.0.0.1:0'], quiet)).toMatchObject({ listen: '127.0.0.1:0', tokenFile: undefined });
    expect(parseDirectorArgs(['d.yaml', '--listen', '9110'], quiet).listen).toBe('9110');
    expect(parseDirectorArgs(['d.yaml', '--listen', '[::1]:9110'], quiet).listen).toBe('[::1]:9110');
    expect(() => parseDirectorArgs(['d.yaml', '--listen', ':9110'], quiet))
      .toThrow(new TypeError('--listen :9110 is not a loopback address: give --token-file FILE (requests without the token get 401)'));
    expect(parseDirectorArgs(['d.yaml', '--listen', '10.0.0.1:9110', '--token-file', 't'], quiet)).toMatchObject({ listen: '10.0.0.1:9110', tokenFile: 't' });
    expect(() => parseDirectorArgs(['d.yaml', '--listen', 'nowhere'], quiet)).toThrow(/must be HOST:PORT/);
    expect(() => parseDirectorArgs(['d.yaml', '--listen', '1:99999'], quiet)).toThrow(RangeError);
    expect(() => parseDirectorArgs(['d.yaml', '--token-file', 't'], quiet)).toThrow(new TypeError('--token-file goes with --listen'));
  });

  it('exits 2 for a bad combination, with the reason on stderr, and 1 for an unreadable token file', async () => {
    const io = capture();
    try {
      expect(await main(['d.yaml', '--ldirectord', 'l.cf'])).toBe(2);
      expect(await main(['d.yaml', '--listen', '0.0.0.0:9110'])).toBe(2);
      expect(await main([path.join(dir, 'none.yaml'), '--listen', '127.0.0.1:0', '--token-file', path.join(dir, 'missing-token')])).toBe(1);
    } finally {
      io.restore();
    }
    expect(io.err()).toContain('ipvs-netlink director: give one configuration, not d.yaml and --ldirectord\n');
    expect(io.err()).toContain('ipvs-netlink director: --listen 0.0.0.0:9110 is not a loopback address');
    expect(io.err()).toContain('missing-token');
  });

  it('reads a keepalived.conf and an ldirectord.cf through the importers, reporting what is not carried over with its line', async () => {
    const keepalived = path.join(dir, 'keepalived.conf');
    writeFileSync(keepalived, [
      'global_defs {',
      '  router_id lb1',
      '}',
      'virtual_server 10.0.0.1 80 {',
      '  delay_loop 2',
      '  lb_algo rr',
      '  lb_kind NAT',
      '  protocol TCP',
      '  real_server 10.0.1.1 8080 {',
      '    weight 3',
      '    inhibit_on_failure',
      '    notify_down /bin/true',
      '    HTTP_GET {',
      '      url {',
      '        path /health',
      '        status_code 200',
      '      }',
      '      connect_timeout 1',
      '    }',
      '  }',
      '}',
      '',
    ].join('\n'));
    const lines: string[] = [];
    const config = await readSource({ format: 'keepalived', file: keepalived }, (line) => lines.push(line));
    expect(config.services).toHaveLength(1);
    expect(config.services[0]).toMatchObject({
      protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'rr', onFailure: 'quiesce',
      checks: [{ type: 'http', path: '/health', expectStatus: [200], interval: 2, timeout: 1 }],
    });
    expect(config.services[0]!.destinations[0]).toEqual({ address: '10.0.1.1', port: 8080, forward: 'masq', weight: 3 });
    expect(lines.some((l) => l.startsWith(`${keepalived}:1: global_defs: `))).toBe(true);
    expect(lines.some((l) => l.startsWith(`${keepalived}:12: notify_down: `))).toBe(true);
    expect(lines.every((l) => l.endsWith('\n'))).toBe(true);

    const ldirectord = path.join(dir, 'ldirectord.cf');
    writeFileSync(ldirectord, [
      'checktimeout=1',
      'emailalert=root@localhost',
      'virtual=10.0.0.2:80',
      '\treal=10.0.2.1:80 masq 2',
      '\tservice=http',
      '\trequest="health"',
      '\treceive="ok"',
      '\tchecktype=negotiate',
      '\tquiescent=yes',
      '',
    ].join('\n'));
    const reported: string[] = [];
    const imported = await readSource({ format: 'ldirectord', file: ldirectord }, (line) => reported.push(line));
    expect(imported.services[0]).toMatchObject({ address: '10.0.0.2', port: 80 });
    expect(imported.services[0]!.destinations[0]).toMatchObject({ address: '10.0.2.1', port: 80, forward: 'masq', weight: 2 });
    expect(reported.some((l) => l.startsWith(`${ldirectord}:2: emailalert: `))).toBe(true);
  });
});
