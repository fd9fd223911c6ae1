// Configuration validation (paths in every message), defaults, and the YAML/JSON loader
// (file, path and line in every error).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { CHECK_DEFAULTS, resolveConfig } from '../../../lib/director/config';
import { ConfigFileError, loadConfig, parseConfig, parseDuration } from '../../../lib/director/loader';
import { Director } from '../../../lib/director/index';

const web = { protocol: 'tcp', address: '10.0.0.1', port: 80 };
const one = (extra: Record<string, unknown> = {}, dest: Record<string, unknown> = {}) => ({
  services: [{ ...web, destinations: [{ address: '10.0.1.1', ...dest }], ...extra }],
});

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

describe('resolveConfig', () => {
  it('applies the documented defaults', () => {
    const config = resolveConfig(one());
    const [svc] = config.services;
    expect(config).toMatchObject({ scope: 'listed', resyncInterval: 10 });
    expect(svc).toMatchObject({ id: 'tcp 10.0.0.1:80', quorum: 1, hysteresis: 0, drainTimeout: 300, sorryServers: [] });
    expect(svc!.destinations[0]).toMatchObject({
      id: '10.0.1.1:80', onFailure: 'quiesce', slowStart: 0, spec: { address: '10.0.1.1', port: 80, weight: 1 },
      checks: [{ type: 'tcp', ...CHECK_DEFAULTS }],
    });
    expect(CHECK_DEFAULTS).toEqual({ interval: 5, timeout: 2, rise: 2, fall: 2 });
  });

  it('inherits checks and policies: defaults < service < destination', () => {
    const config = resolveConfig({
      defaults: { checks: [{ type: 'http', path: '/h' }], onFailure: 'remove', slowStart: 5, drainTimeout: 30 },
      services: [
        { ...web, destinations: [{ address: '10.0.1.1' }, { address: '10.0.1.2', checks: [{ type: 'none' }], onFailure: 'quiesce' }] },
        { ...web, port: 443, checks: [{ type: 'tcp', interval: 1 }], slowStart: 0, destinations: [{ address: '10.0.1.1' }] },
      ],
    });
    const [a, b] = config.services;
    expect(a!.drainTimeout).toBe(30);
    expect(a!.destinations[0]).toMatchObject({ onFailure: 'remove', slowStart: 5, checks: [{ type: 'http', path: '/h' }] });
    expect(a!.destinations[1]).toMatchObject({ onFailure: 'quiesce', slowStart: 5, checks: [{ type: 'none' }] });
    expect(b!.destinations[0]).toMatchObject({ slowStart: 0, checks: [{ type: 'tcp', interval: 1, timeout: 0.5 }] });
  });

  it.each([
    [one({}, { weight: -1 }), RangeError, 'services[0].destinations[0].weight must be between 0 and 2147483647, got -1'],
    [one({ checks: [{ type: 'tcp', interval: 1, timeout: 1 }] }), RangeError, 'services[0].checks[0].timeout (1 s) must be less than services[0].checks[0].interval (1 s)'],
    [one({ checks: [{ type: 'tcp', rise: 0 }] }), RangeError, 'services[0].checks[0].rise must be between 1 and 1000, got 0'],
    [one({ checks: [{ type: 'tcp', interval: '1s' }] }), TypeError, 'services[0].checks[0].interval must be a number of seconds, got "1s"'],
    [one({ checks: [{ type: 'ping' }] }), RangeError, "services[0].checks[0].type must be one of 'tcp', 'http', 'https', 'udp', 'dns', 'exec', 'none', got \"ping\""],
    [one({ checks: [{ type: 'http', expectStatus: ['2xx'] }] }), RangeError, "services[0].checks[0].expectStatus[0] must be a status code or a 'low-high' range"],
    [one({ checks: [{ type: 'http', bodyRegex: '(' }] }), RangeError, 'services[0].checks[0].bodyRegex is not a valid regular expression'],
    [one({ checks: [{ type: 'http', sni: 'x' }] }), RangeError, "services[0].checks[0]: tlsVerify and sni apply only to type 'https'"],
    [one({ checks: [{ type: 'dns' }] }), TypeError, 'services[0].checks[0].name must be a string'],
    [one({ checks: [{ type: 'dns', name: 'a.test', queryType: 'WKS' }] }), RangeError, 'services[0].checks[0].queryType must be one of'],
    [one({ checks: [{ type: 'exec', command: [] }] }), RangeError, 'services[0].checks[0].command must have at least 1 element(s)'],
    [one({ checks: [{ type: 'tcp', tiemout: 1 }] }), TypeError, 'services[0].checks[0].tiemout is not a known option'],
    [one({ checks: [] }), RangeError, 'services[0].checks must have at least one check'],
    [one({ onFailure: 'drop' }), RangeError, "services[0].onFailure must be one of 'quiesce', 'remove'"],
    [one({ quorum: 1, hysteresis: 2 }), RangeError, 'services[0].hysteresis (2) must not exceed quorum (1)'],
    [one({ sorryServers: [{ address: '10.0.1.1' }] }), RangeError, 'services[0].sorryServers[0] duplicates services[0].destinations[0] (10.0.1.1:80)'],
    [{ services: [{ ...web, destinations: [] }, { ...web, destinations: [] }] }, RangeError, 'services[1] duplicates services[0] (tcp 10.0.0.1:80)'],
    [{ services: [{ fwmark: 7, destinations: [{ address: '10.0.1.1' }] }] }, RangeError, 'services[0].destinations[0] (checks from the service): a tcp check needs a port'],
    [{ services: [], scope: 'some' }, RangeError, "scope must be 'listed', 'all' or a filter object"],
    [{ services: [{ ...web, destinations: [] }], scope: { addresses: ['192.168.0.0/16'] } }, RangeError, 'services[0]'],
    [{ services: [], resyncInterval: 0 }, RangeError, 'resyncInterval must be more than 0 seconds'],
    [{ service: [] }, TypeError, 'config.service is not a known option'],
  ])('rejects %j', (config, type, message) => {
    const error = errorOf(() => resolveConfig(config));
    expect(error).toBeInstanceOf(type);
    expect(error.message).toContain(message);
  });

  it('is what the Director constructor checks, before anything is opened', () => {
    expect(() => new Director(one({}, { weight: 'heavy' }) as never)).toThrow('services[0].destinations[0].weight must be an integer');
    expect(() => new Director(one() as never, { netns: '/x', ipvs: {} } as never)).toThrow(TypeError);
  });
});

describe('loader', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'director-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('parses durations with units', () => {
    expect([parseDuration('500ms'), parseDuration('2s'), parseDuration('1.5m'), parseDuration('1h'), parseDuration('2')]).toEqual([0.5, 2, 90, 3600, undefined]);
  });

  it('loads YAML with duration strings', async () => {
    const file = path.join(dir, 'ok.yaml');
    writeFileSync(file, [
      'resyncInterval: 30s',
      'services:',
      '  - protocol: tcp',
      '    address: 10.0.0.1',
      '    port: 80',
      '    checks: [{ type: http, path: /health, interval: 1s, timeout: 300ms }]',
      '    destinations:',
      '      - { address: 10.0.1.1, weight: 3 }',
    ].join('\n'));
    const config = await loadConfig(file);
    expect(config.resyncInterval).toBe(30);
    expect(config.services[0]!.checks).toEqual([{ type: 'http', path: '/health', interval: 1, timeout: 0.3 }]);
  });

  it('loads JSON', () => {
    expect(parseConfig(JSON.stringify(one()), 'c.json').services).toHaveLength(1);
  });

  it('names the file, line and path of an invalid value', () => {
    const text = [
      'services:',
      '  - protocol: tcp',
      '    address: 10.0.0.1',
      '    port: 80',
      '    destinations:',
      '      - address: 10.0.1.1',
      '        weight: -3',
    ].join('\n');
    const error = errorOf(() => parseConfig(text, 'lb.yaml')) as ConfigFileError;
    expect(error).toBeInstanceOf(ConfigFileError);
    expect(error).toMatchObject({ code: 'ERR_DIRECTOR_CONFIG', file: 'lb.yaml', line: 7, path: 'services[0].destinations[0].weight' });
    expect(error.message).toBe('lb.yaml:7:9: services[0].destinations[0].weight must be between 0 and 2147483647, got -3');
    expect(error.cause).toBeInstanceOf(RangeError);
  });

  it('points at an unknown key, a bad duration, and a YAML syntax error', () => {
    const unknown = errorOf(() => parseConfig('services:\n  - protocol: tcp\n    address: 10.0.0.1\n    port: 80\n    destinatons: []\n', 'a.yaml')) as ConfigFileError;
    expect(unknown.message).toMatch(/^a\.yaml:5:5: services\[0\]\.destinatons is not a known option/);
    const duration = errorOf(() => parseConfig('resyncInterval: soon\nservices: []\n', 'b.yaml')) as ConfigFileError;
    expect(duration.message).toBe("b.yaml:1:1: resyncInterval must be seconds or a duration such as '500ms', '2s', '1m', '1h', got \"soon\"");
    const syntax = errorOf(() => parseConfig('services:\n  - [unclosed\n', 'c.yaml')) as ConfigFileError;
    expect(syntax).toMatchObject({ file: 'c.yaml', line: expect.any(Number) });
    expect(syntax.message).toMatch(/^c\.yaml:\d+:\d+: /);
    const duplicate = errorOf(() => parseConfig('services: []\nservices: []\n', 'd.yaml')) as ConfigFileError;
    expect(duplicate.message).toMatch(/^d\.yaml:2:1: /);
  });

  it('names the file when it cannot be read', async () => {
    await expect(loadConfig(path.join(dir, 'missing.yaml'))).rejects.toMatchObject({
      name: 'ConfigFileError', file: path.join(dir, 'missing.yaml'), cause: expect.objectContaining({ code: 'ENOENT' }),
    });
  });
});
