import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { resolveConfig } from '../../../../lib/director/config';
import { importKeepalived } from '../../../../lib/director/import/keepalived';
import { ConfigImportError } from '../../../../lib/director/import/result';

const FIXTURES = join(__dirname, 'fixtures', 'keepalived');
const main = join(FIXTURES, 'keepalived.conf');
const fwmark = join(FIXTURES, 'conf.d', '10-fwmark.conf');
const udp = join(FIXTURES, 'conf.d', '20-udp.conf');

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'ka-import-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

let counter = 0;
/** Writes `text` as a keepalived.conf in the temp directory (plus `extra` files) and imports it. */
async function importText(text: string, extra: Record<string, string> = {}) {
  const base = join(dir, `case-${counter += 1}`);
  await mkdir(base, { recursive: true });
  for (const [name, content] of Object.entries(extra)) {
    await mkdir(join(base, name, '..'), { recursive: true });
    await writeFile(join(base, name), content);
  }
  const file = join(base, 'keepalived.conf');
  await writeFile(file, text);
  return { file, ...await importKeepalived(file) };
}

async function importError(text: string, extra: Record<string, string> = {}): Promise<ConfigImportError> {
  const error = await importText(text, extra).then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(ConfigImportError);
  return error as ConfigImportError;
}

describe('importKeepalived: the runbook fixture', () => {
  it('maps every virtual server, including the ones from conf.d/*.conf, with keepalived\'s semantics', async () => {
    const { config } = await importKeepalived(main);
    expect(config).toEqual({
      services: [
        {
          protocol: 'tcp', address: '192.168.200.16', port: 80, scheduler: 'wrr', persistent: 50, netmask: '255.255.255.0',
          destinations: [
            { address: '192.168.201.100', port: 8080, forward: 'masq', weight: 2 },
            { address: '192.168.201.101', port: 8080, forward: 'masq', weight: 2 },
          ],
          // Identical checkers on every real server become the service's checks; one check per url.
          checks: [
            {
              type: 'http', path: '/health', host: 'www.example.com', bodyMd5: '640205b7b0fc66c1ea91c463fac6334d',
              interval: 6, timeout: 3, rise: 1, fall: 4,
            },
            {
              type: 'http', path: '/ready', host: 'www.example.com', expectStatus: [200, '300-399'],
              interval: 6, timeout: 3, rise: 1, fall: 4,
            },
          ],
          onFailure: 'quiesce',
          quorum: 2,
          hysteresis: 1,
          sorryServers: [{ address: '192.168.100.200', port: 8080, forward: 'masq', weight: 1 }],
          quorumUp: "/usr/local/bin/lvs-notify up 'web pool'",
          quorumDown: '/usr/local/bin/lvs-notify down',
        },
        {
          protocol: 'tcp', address: '10.10.10.2', port: 443, scheduler: 'rr',
          destinations: [
            {
              address: '10.10.10.11', port: 443, forward: 'route', weight: 1,
              checks: [
                {
                  type: 'https', path: '/status', host: 'api.example.com', bodyRegex: 'ok|healthy', sni: 'api.example.com',
                  port: 8443, interval: 10, timeout: 5, rise: 1, fall: 3,
                },
                { type: 'tcp', bindAddress: '10.10.10.1', interval: 10, timeout: 2, rise: 1, fall: 2 },
              ],
            },
            {
              address: '10.10.10.12', port: 443, forward: 'route', weight: 3,
              checks: [{ type: 'tcp', address: '10.10.20.12', port: 443, interval: 10, timeout: 5, rise: 1, fall: 2 }],
            },
          ],
          onFailure: 'remove',
        },
        {
          fwmark: 7, scheduler: 'sh', persistent: 360, schedulerFlags: ['sh-port'],
          destinations: [
            {
              address: '172.16.0.5', forward: 'tunnel', tunnel: { type: 'gue', port: 6080 }, weight: 1,
              checks: [{
                type: 'exec', command: ['/usr/lib/lvs/check-load', '--host', '172.16.0.5', '--label', 'farm a'],
                dynamicWeight: true, interval: 2, timeout: 1, rise: 1, fall: 1,
              }],
            },
            // A real server without checkers is always alive in keepalived.
            { address: '172.16.0.6', forward: 'route', weight: 0, checks: [{ type: 'none' }] },
          ],
          onFailure: 'remove',
        },
        {
          protocol: 'udp', address: '10.0.0.53', port: 53, scheduler: 'wlc',
          destinations: [{ address: '10.0.1.1', port: 53, forward: 'masq', weight: 1 }],
          checks: [{ type: 'dns', name: 'example.com', queryType: 'A', interval: 60, timeout: 5, rise: 1, fall: 4 }],
          onFailure: 'remove',
          quorum: 1,
        },
      ],
    });
    expect(() => resolveConfig(config)).not.toThrow();
  });

  it('lists every directive it does not carry, with its file and line, in reading order', async () => {
    const { unsupported } = await importKeepalived(main);
    expect(unsupported.map(({ file, line, directive }) => [file, line, directive])).toEqual([
      [main, 2, 'global_defs'],
      [main, 9, 'vrrp_instance'],
      [main, 30, 'quorum_down'],
      [main, 47, 'delay_before_retry'],
      [main, 53, 'notify_down'],
      [main, 65, 'delay_before_retry'],
      [fwmark, 8, 'alpha'],
      [fwmark, 16, 'real_server'],
      [udp, 1, 'virtual_server'],
      [udp, 1, 'virtual_server'],
      [udp, 8, 'SMTP_CHECK'],
    ]);
    const reasons = unsupported.map((entry) => entry.reason);
    expect(reasons[2]).toBe("running the script as another user is not supported; it runs as the director's user (keepalived_script)");
    expect(reasons[7]).toBe('real server port 80 is not used: with route forwarding keepalived sets it to 0, and so does the import');
    expect(reasons[8]).toMatch(/^no protocol given: keepalived defaults to UDP/);
    expect(reasons[9]).toBe("quorum 5 exceeds the real servers' total weight 1: keepalived lowers it to 1, and so does the import");
    // conf.d/README.txt does not match *.conf and its unbalanced block is never read.
    expect(unsupported.some((entry) => entry.file.endsWith('README.txt'))).toBe(false);
  });
});

describe('importKeepalived: defaults', () => {
  it('writes out keepalived\'s own defaults (wlc, NAT, weight 1, delay_loop 60, connect_timeout 5, retry 1, remove)', async () => {
    const { config, unsupported } = await importText(`
virtual_server 10.0.0.1 80 {
    protocol TCP
    real_server 10.0.0.2 {
        TCP_CHECK {
        }
        HTTP_GET {
            url {
                path /
            }
        }
    }
}`);
    expect(unsupported).toEqual([]);
    expect(config.services).toEqual([{
      protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'wlc',
      destinations: [{ address: '10.0.0.2', port: 80, forward: 'masq', weight: 1 }],
      checks: [
        { type: 'tcp', interval: 60, timeout: 5, rise: 1, fall: 2 },
        { type: 'http', path: '/', interval: 60, timeout: 5, rise: 1, fall: 2 },
      ],
      onFailure: 'remove',
    }]);
  });

  it('inherits virtual server → real server → checker, with MISC_CHECK retry 0 and DNS_CHECK retry 3', async () => {
    const { config, unsupported } = await importText(`
virtual_server 10.0.0.1 80 {
    protocol TCP
    delay_loop 20
    connect_timeout 4
    retry 2
    weight 5
    inhibit_on_failure
    real_server 10.0.0.2 80 {
        delay_loop 10
        TCP_CHECK {
            retry 0
        }
        MISC_CHECK {
            misc_path /bin/true
            misc_timeout 3
        }
    }
    real_server 10.0.0.3 80 {
        inhibit_on_failure off
        weight 7
        TCP_CHECK {
            connect_timeout 1
        }
        DNS_CHECK {
        }
    }
}`);
    expect(unsupported).toEqual([]);
    expect(config.services[0]!.destinations).toEqual([
      {
        address: '10.0.0.2', port: 80, forward: 'masq', weight: 5, onFailure: 'quiesce',
        checks: [
          { type: 'tcp', interval: 10, timeout: 4, rise: 1, fall: 1 },
          // retry is inherited (2) from the virtual server; misc's own default (0) only applies without one.
          { type: 'exec', command: ['/bin/true'], interval: 10, timeout: 3, rise: 1, fall: 3 },
        ],
      },
      {
        address: '10.0.0.3', port: 80, forward: 'masq', weight: 7, onFailure: 'remove',
        checks: [
          { type: 'tcp', interval: 20, timeout: 1, rise: 1, fall: 3 },
          { type: 'dns', name: '.', queryType: 'SOA', interval: 20, timeout: 4, rise: 1, fall: 3 },
        ],
      },
    ]);
  });

  it('MISC_CHECK without retry anywhere goes down at the first failure; its timeout defaults to delay_loop, halved for the director', async () => {
    const { config, unsupported } = await importText(`
virtual_server 10.0.0.1 80 {
    protocol TCP
    delay_loop 4
    real_server 10.0.0.2 80 {
        MISC_CHECK {
            misc_path "/usr/local/bin/check 'a b'" ignored-word
        }
    }
}`);
    expect(config.services[0]!.checks).toEqual([
      { type: 'exec', command: ['/usr/local/bin/check', 'a b'], interval: 4, timeout: 2, rise: 1, fall: 1 },
    ]);
    expect(unsupported.map(({ line, directive, reason }) => [line, directive, reason])).toEqual([
      [6, 'MISC_CHECK', "the default misc_timeout (the virtual server's delay_loop) of 4 s is not below the check interval of 4 s, which the director requires; imported as 2 s"],
      [7, 'misc_path', 'words after the command are ignored by keepalived; quote the whole command line (ignored-word)'],
    ]);
  });

  it('a delay_loop at or below connect_timeout keeps the interval and halves the timeout, reporting where it came from', async () => {
    const { config, unsupported } = await importText(`
virtual_server 10.0.0.1 80 {
    protocol TCP
    delay_loop 1
    real_server 10.0.0.2 80 {
        HTTP_GET {
            url {
                path /health
            }
        }
    }
}`);
    expect(config.services[0]!.checks).toEqual([{ type: 'http', path: '/health', interval: 1, timeout: 0.5, rise: 1, fall: 2 }]);
    expect(unsupported.map(({ line, directive }) => [line, directive])).toEqual([[6, 'HTTP_GET']]);
    expect(unsupported[0]!.reason).toBe('the default connect_timeout (5 s) of 5 s is not below the check interval of 1 s, which the director requires; imported as 0.5 s');
  });

  it('port 0 without persistence becomes persistent for 360 s; DR and TUN destinations take the service port', async () => {
    const { config, unsupported } = await importText(`
virtual_server 10.0.0.1 0 {
    protocol TCP
    lb_kind DR
    real_server 10.0.0.2 8080 {
    }
    real_server 10.0.0.3 {
        lvs_method TUN type gre csum
    }
    real_server 10.0.0.4 8080 {
        lvs_method NAT
    }
}`);
    expect(config.services).toEqual([{
      protocol: 'tcp', address: '10.0.0.1', port: 0, scheduler: 'wlc', persistent: 360,
      destinations: [
        { address: '10.0.0.2', port: 0, forward: 'route', weight: 1 },
        { address: '10.0.0.3', port: 0, forward: 'tunnel', tunnel: { type: 'gre', checksum: 'csum' }, weight: 1 },
        { address: '10.0.0.4', port: 8080, forward: 'masq', weight: 1 },
      ],
      checks: [{ type: 'none' }],
      onFailure: 'remove',
    }]);
    expect(unsupported.map(({ line, directive }) => [line, directive])).toEqual([[2, 'virtual_server'], [5, 'real_server']]);
  });
});

describe('importKeepalived: syntax', () => {
  it('reads comments (# and !) anywhere, braces on the keyword line, the next line or inline, and quoted strings', async () => {
    const { config, unsupported } = await importText(`
virtual_server 10.0.0.1 80   ! the VIP
{
    protocol TCP   # comment
    virtualhost "www.example.com"
    real_server 10.0.0.2 80 { weight 3 }
    real_server 10.0.0.3 80 {
        HTTP_GET { url { path "/a#b{c}" } }
    }
}`);
    expect(unsupported).toEqual([]);
    expect(config.services[0]!.destinations).toEqual([
      { address: '10.0.0.2', port: 80, forward: 'masq', weight: 3, checks: [{ type: 'none' }] },
      {
        address: '10.0.0.3', port: 80, forward: 'masq', weight: 1,
        checks: [{ type: 'http', path: '/a#b{c}', host: 'www.example.com', interval: 60, timeout: 5, rise: 1, fall: 2 }],
      },
    ]);
  });

  it('includes relative to the including file, with globs and braces, in sorted order', async () => {
    const { file, config, unsupported } = await importText('include services/{web,dns}/*.conf\nincludea none/*.conf\n', {
      'services/web/b.conf': 'virtual_server 10.0.0.2 80 {\n protocol TCP\n real_server 10.1.0.2 80 {\n }\n}\n',
      'services/web/a.conf': 'include ../../shared/rs.inc\n',
      'shared/rs.inc': 'virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.1.0.1 80 {\n }\n}\n',
      'services/dns/x.conf': 'virtual_server 10.0.0.3 53 {\n protocol UDP\n real_server 10.1.0.3 53 {\n }\n}\n',
    });
    expect(config.services.map((s) => 'address' in s && s.address)).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    expect(unsupported.map(({ file: f, line, directive, reason }) => [f, line, directive, reason])).toEqual([
      [file, 2, 'include', 'no file matches none/*.conf; nothing was included'],
    ]);
  });

  it('reports conditional lines (@id) and rejects parameter substitution it cannot expand', async () => {
    const { unsupported } = await importText(`
virtual_server 10.0.0.1 80 {
    protocol TCP
    @main quorum 2
    real_server 10.0.0.2 80 {
    }
}`);
    expect(unsupported.map(({ line, directive }) => [line, directive])).toEqual([[4, 'quorum']]);
    const error = await importError('$VIP=10.0.0.1\nvirtual_server $VIP 80 {\n}\n');
    expect(error.line).toBe(1);
    expect(error.message).toMatch(/keepalived\.conf:1: parameter substitution/);
  });
});

describe('importKeepalived: malformed input names the file and line', () => {
  it('a block that is never closed names the line that opened it', async () => {
    const error = await importError('virtual_server 10.0.0.1 80 {\n  protocol TCP\n  real_server 10.0.0.2 80 {\n}\n');
    expect(error.message).toBe(`${error.file}:1: 'virtual_server' block is never closed (missing '}')`);
  });

  it("an extra '}' names its own line, in the included file it is in", async () => {
    const error = await importError('include extra.conf\n', { 'extra.conf': '\n\n}\n' });
    expect(error.file).toMatch(/extra\.conf$/);
    expect(error.line).toBe(3);
    expect(error.reason).toBe("unexpected '}' (no block is open)");
  });

  it.each([
    ['lb_algo roundrobin', 3, "lb_algo: unknown scheduler 'roundrobin'"],
    ['lb_kind FOO', 3, "lb_kind: unknown forwarding method 'FOO' (NAT, DR or TUN)"],
    ['protocol ICMP', 3, "protocol: unknown protocol 'ICMP'"],
    ['delay_loop soon', 3, "delay_loop: 'soon' is not a time in seconds ≥ 0.000001"],
    ['real_server www.example.com 80 {\n}', 3, "real_server: 'www.example.com' is not an IPv4 or IPv6 address (keepalived does not resolve names)"],
    ['real_server 10.0.0.9 80 {\n  HTTP_GET {\n    url {\n      status_code 200\n    }\n  }\n}', 5, 'url: needs a path'],
    ['real_server 10.0.0.9 80 {\n  HTTP_GET {\n    url {\n      path /\n      digest xyz\n    }\n  }\n}', 7, "digest: 'xyz' is not 32 hex digits"],
    ['real_server 10.0.0.9 80 {\n  MISC_CHECK {\n  }\n}', 4, 'MISC_CHECK: needs misc_path'],
    ['lvs_method TUN type gue', 3, 'lvs_method: a GUE tunnel needs a port, and only GUE takes one'],
  ])('%s', async (line, lineNumber, reason) => {
    const error = await importError(`virtual_server 10.0.0.1 80 {\n  protocol TCP\n  ${line}\n  real_server 10.0.0.2 80 {\n  }\n}\n`);
    expect(error.line).toBe(lineNumber);
    expect(error.reason).toBe(reason);
  });

  it('an include of a file that cannot be read names the include line', async () => {
    const error = await importError('\ninclude missing.conf\n');
    expect(error.line).toBe(2);
    expect(error.reason).toMatch(/^include: cannot read .*missing\.conf \(ENOENT\)$/);
  });
});
