import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { resolveConfig } from '../../../../lib/director/config';
import { importLdirectord } from '../../../../lib/director/import/ldirectord';
import { ConfigImportError } from '../../../../lib/director/import/result';

const fixture = join(__dirname, 'fixtures', 'ldirectord', 'ldirectord.cf');

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'ld-import-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

let counter = 0;
async function importText(text: string) {
  const file = join(dir, `ldirectord-${counter += 1}.cf`);
  await writeFile(file, text);
  return { file, ...await importLdirectord(file) };
}

async function importError(text: string): Promise<ConfigImportError> {
  const error = await importText(text).then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(ConfigImportError);
  return error as ConfigImportError;
}

describe('importLdirectord: the runbook fixture', () => {
  it('maps the globals and every virtual section', async () => {
    const { config } = await importLdirectord(fixture);
    const http = { type: 'http', host: 'www.example.com', interval: 5, timeout: 4, rise: 1, fall: 3 } as const;
    expect(config).toEqual({
      services: [
        {
          protocol: 'tcp', address: '192.168.6.240', port: 80, scheduler: 'rr', persistent: 600, netmask: '255.255.255.0',
          destinations: [
            // request="health" gets its leading slash, as ldirectord adds it; receive is a regular expression.
            { address: '192.168.6.2', port: 80, forward: 'route', weight: 1, checks: [{ ...http, path: '/health', bodyRegex: '^OK' }] },
            { address: '192.168.6.3', port: 80, forward: 'route', weight: 3, checks: [{ ...http, path: '/health', bodyRegex: '^OK' }] },
            // The real server's own "request", "receive" pair replaces the section's.
            { address: '192.168.6.6', port: 80, forward: 'route', weight: 2, checks: [{ ...http, path: '/alive.html', bodyRegex: "I'm alive" }] },
          ],
          onFailure: 'quiesce',
          sorryServers: [{ address: '127.0.0.1', port: 80, forward: 'route', weight: 1 }],
        },
        {
          protocol: 'tcp', address: '192.168.6.240', port: 443, scheduler: 'wrr',
          destinations: [
            { address: '10.0.0.10', port: 8443, forward: 'masq', weight: 5 },
            { address: '10.0.0.11', port: 8443, forward: 'masq', weight: 5 },
          ],
          checks: [{ type: 'https', path: '/status', bodyRegex: 'healthy', interval: 5, timeout: 3, rise: 1, fall: 3 }],
          onFailure: 'remove',
        },
        {
          fwmark: 1, scheduler: 'wlc',
          destinations: [
            { address: '10.1.0.1', forward: 'tunnel', weight: 1 },
            { address: '10.1.0.2', forward: 'tunnel', weight: 1 },
            { address: '10.1.0.3', forward: 'tunnel', weight: 1 },
          ],
          checks: [{ type: 'tcp', port: 8080, interval: 5, timeout: 3, rise: 1, fall: 3 }],
          onFailure: 'quiesce',
        },
        {
          protocol: 'udp', address: '192.168.6.240', port: 53, scheduler: 'wrr',
          destinations: [{ address: '10.2.0.1', port: 53, forward: 'masq', weight: 1 }],
          checks: [{ type: 'exec', command: ['ping', '-c', '1', '-W', '3', '10.2.0.1'], interval: 5, timeout: 4, rise: 1, fall: 3 }],
          onFailure: 'quiesce',
        },
        {
          protocol: 'tcp', address: '192.168.6.241', port: 25, scheduler: 'wrr',
          destinations: [{ address: '10.3.0.1', port: 25, forward: 'route', weight: 1 }],
          checks: [{ type: 'none', result: 'up' }],
          onFailure: 'quiesce',
        },
      ],
    });
    expect(() => resolveConfig(config)).not.toThrow();
  });

  it('lists the directives it does not carry, with their lines', async () => {
    const { unsupported } = await importLdirectord(fixture);
    expect(unsupported.map(({ file, line, directive, reason }) => [file, line, directive, reason])).toEqual([
      [fixture, 5, 'autoreload', "the director reloads through director.update(config); file watching is the caller's"],
      [fixture, 6, 'logfile', 'the director reports through events, not a log file'],
      [fixture, 34, 'emailalert', 'email alerts are not sent; subscribe to the director events instead'],
      [fixture, 49, 'checkinterval', "ldirectord ignores a virtual section's checkinterval unless fork = yes; the global checkinterval applies"],
    ]);
  });
});

describe('importLdirectord: defaults and semantics', () => {
  it("uses ldirectord's code defaults: wrr, negotiate, checkinterval 10, negotiatetimeout 30 (halved below the interval), failurecount 1, quiescent no", async () => {
    const { config, unsupported } = await importText('virtual=10.0.0.1:80\n\treal=10.0.0.2:80 masq\n');
    expect(config.services).toEqual([{
      protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'wrr',
      destinations: [{ address: '10.0.0.2', port: 80, forward: 'masq', weight: 1 }],
      checks: [{ type: 'http', path: '/', interval: 10, timeout: 5, rise: 1, fall: 1 }],
      onFailure: 'remove',
    }]);
    expect(unsupported.map(({ line, directive, reason }) => [line, directive, reason])).toEqual([
      [1, 'virtual', 'a check timeout of 30 s is not below checkinterval 10 s, which the director requires; imported as 5 s'],
    ]);
  });

  it('connect checks use checktimeout and ping for udp; on/off become none checks; fork=yes honours a section checkinterval', async () => {
    const { config, unsupported } = await importText([
      'fork=yes',
      'checktimeout=2',
      'virtual=10.0.0.1:22',
      '    real=10.0.0.2 gate',
      '    checktype=connect',
      '    checkinterval=7',
      'virtual=10.0.0.1:5000',
      '    real=10.0.0.3:5000 gate',
      '    protocol=udp',
      '    checktype=connect',
      'virtual=10.0.0.1:5001',
      '    real=10.0.0.4:5001 gate',
      '    checktype=off',
      '',
    ].join('\n'));
    expect(config.services.map((s) => s.checks)).toEqual([
      [{ type: 'tcp', interval: 7, timeout: 2, rise: 1, fall: 1 }],
      [{ type: 'exec', command: ['ping', '-c', '1', '-W', '2', '10.0.0.3'], interval: 10, timeout: 3, rise: 1, fall: 1 }],
      [{ type: 'none', result: 'down' }],
    ]);
    // A real server without a port takes the virtual's (gate forces it anyway).
    expect(config.services[0]!.destinations).toEqual([{ address: '10.0.0.2', port: 22, forward: 'route', weight: 1 }]);
    expect(unsupported.map(({ line, directive }) => [line, directive])).toEqual([[1, 'fork']]);
  });

  it('ranges, thresholds, HEAD, virtualhost, checkport, a global fallback without port, IPv6 and other negotiations', async () => {
    const { config, unsupported } = await importText([
      'fallback=192.168.0.9 masq',
      'virtual=10.0.0.1:8080',
      '\treal=10.0.0.5->10.0.0.6:8080 masq 4 l:10 u:100',
      '\tservice=http',
      '\thttpmethod=head',
      '\tvirtualhost="app.example.com"',
      '\tchecktimeout=3',
      '\tcheckport=9000',
      'virtual6=[2001:db8::1]:25',
      '\treal6=[2001:db8::10]:25 gate',
      '\tnegotiatetimeout=2',
      '\tfallback6=[2001:db8::99]:25',
      '',
    ].join('\n'));
    expect(config.services[0]).toEqual({
      protocol: 'tcp', address: '10.0.0.1', port: 8080, scheduler: 'wrr',
      destinations: [
        { address: '10.0.0.5', port: 8080, forward: 'masq', weight: 4, upperThreshold: 100, lowerThreshold: 10 },
        { address: '10.0.0.6', port: 8080, forward: 'masq', weight: 4, upperThreshold: 100, lowerThreshold: 10 },
      ],
      checks: [{ type: 'http', method: 'HEAD', path: '/', host: 'app.example.com', port: 9000, interval: 10, timeout: 3, rise: 1, fall: 1 }],
      onFailure: 'remove',
      sorryServers: [{ address: '192.168.0.9', port: 8080, forward: 'masq', weight: 1 }],
    });
    expect(config.services[1]).toEqual({
      protocol: 'tcp', address: '2001:db8::1', port: 25, scheduler: 'wrr',
      destinations: [{ address: '2001:db8::10', port: 25, forward: 'route', weight: 1 }],
      checks: [{ type: 'tcp', interval: 10, timeout: 2, rise: 1, fall: 1 }],
      onFailure: 'remove',
      sorryServers: [{ address: '2001:db8::99', port: 25, forward: 'route', weight: 1 }],
    });
    expect(unsupported.map(({ line, directive, reason }) => [line, directive, reason])).toEqual([
      [9, 'virtual6', 'negotiating the smtp protocol is not supported; imported as a TCP connect check'],
    ]);
  });
});

describe('importLdirectord: malformed input names the file and line', () => {
  it.each([
    ['virtual=10.0.0.1:80\n\treal=10.0.0.2:80 direct\n', 2, 'forward method must be gate, masq or ipip'],
    ['virtual=10.0.0.1:80\n\treal=web1.example.com:80 gate\n', 2, "'web1.example.com' is not an IPv4 address (host names are not resolved by the import)"],
    ['virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tquiescent=maybe\n', 3, 'quiescent must be \'yes\' or \'no\''],
    ['virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tfrobnicate=1\n', 3, "unknown directive 'frobnicate' in a virtual section (ldirectord refuses it)"],
    ['checkinterval=0\n', 1, "checkinterval: '0' is not a positive integer"],
    ['timeout=5\n', 1, 'timeout is deprecated in favour of checktimeout and negotiatetimeout (ldirectord refuses it)'],
    ['virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\n\tchecktype=connect\n', 4, "indented line outside a virtual section (a blank or unindented line ends one): 'checktype=connect'"],
    ['virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tchecktype=sometimes\n', 3, 'checktype must be connect, negotiate, on, off, ping, external, external-perl or a number'],
    ['virtual=10.0.0.1\n', 1, "virtual '10.0.0.1' needs a port (or is a fwmark number)"],
    ['virtual=0\n', 1, 'fwmark 0 is not in 1–4294967295'],
    ['fork=sometimes\n', 1, "fork must be 'yes' or 'no'"],
  ])('%j', async (text, line, reason) => {
    const error = await importError(text);
    expect([error.line, error.reason]).toEqual([line, reason]);
    expect(error.message).toBe(`${error.file}:${line}: ${reason}`);
  });
});
