// The apply command on the host: argument and file errors, which are all found before the
// kernel is touched (applying is tested in the VM, test/kernel/reconcile-cli.test.ts).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { main } from '../../../lib/cli/apply';

let out = '';
let err = '';
beforeEach(() => {
  out = '';
  err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { err += String(chunk); return true; });
});
afterEach(() => { vi.restoreAllMocks(); });

const dir = mkdtempSync(path.join(tmpdir(), 'ipvs-apply-'));
function file(name: string, text: string): string {
  const full = path.join(dir, name);
  writeFileSync(full, text);
  return full;
}

describe('ipvs-netlink apply: bad input', () => {
  it('names file, line and path of an invalid value in YAML', async () => {
    const f = file('weight.yaml', [
      '# web tier',
      'services:',
      '  - protocol: tcp',
      '    address: 10.0.0.1',
      '    port: 80',
      '    destinations:',
      '      - address: 10.1.0.1',
      '      - address: 10.1.0.2',
      '        weight: -4',
      '',
    ].join('\n'));
    expect(await main([f, '--dry-run'])).toBe(2);
    expect(err).toBe(`ipvs-netlink apply: ${f}:9: services[0].destinations[1].weight must be between 0 and 2147483647, got -4\n`);
    expect(out).toBe('');
  });

  it('names the line in JSON too, and duplicate keys', async () => {
    const f = file('dup.json', JSON.stringify({
      services: [
        { protocol: 'tcp', address: '10.0.0.1', port: 80, destinations: [] },
        { protocol: 'tcp', address: '10.0.0.1', port: 80, destinations: [] },
      ],
    }, null, 2));
    expect(await main([f])).toBe(2);
    expect(err).toMatch(new RegExp(`^ipvs-netlink apply: ${f.replace(/[.]/g, '\\.')}:9: services\\[1\\] has the same key \\(tcp 10\\.0\\.0\\.1:80\\) as services\\[0\\]\\n$`));
  });

  it('points a missing field at its parent, and the file scope at its line', async () => {
    const missing = file('missing.yaml', 'services:\n  - protocol: tcp\n    address: 10.0.0.1\n    port: 80\n');
    expect(await main([missing])).toBe(2);
    expect(err).toContain(`${missing}:2: services[0].destinations must be an array`);
    err = '';
    const scope = file('scope.yaml', 'services: []\nremoval: delete\nscope:\n  ports: [80, [90, 85]]\n');
    expect(await main([scope])).toBe(2);
    expect(err).toBe(`ipvs-netlink apply: ${scope}:4: scope.ports[1] is an empty range: 90 > 85\n`);
  });

  it('reports YAML syntax errors and unknown top-level fields with their line', async () => {
    const broken = file('broken.yaml', 'services:\n  - protocol: tcp\n    address: [oops\n');
    expect(await main([broken])).toBe(2);
    expect(err).toMatch(new RegExp(`^ipvs-netlink apply: ${broken.replace(/[.]/g, '\\.')}:\\d+: `));
    err = '';
    const unknown = file('unknown.yaml', 'services: []\nservers: []\n');
    expect(await main([unknown])).toBe(2);
    expect(err).toBe(`ipvs-netlink apply: ${unknown}:2: 'servers' is not a known top-level field (known: services, scope, removal)\n`);
    err = '';
    const duplicateKey = file('dupkey.yaml', 'services: []\nservices: []\n');
    expect(await main([duplicateKey])).toBe(2);
    expect(err).toContain(`${duplicateKey}:2: `);
  });

  it('refuses a missing file, bad options and a missing argument with status 2', async () => {
    expect(await main([path.join(dir, 'nope.yaml')])).toBe(2);
    expect(err).toContain('(ENOENT)');
    expect(await main([path.join(dir, 'nope.yaml'), '--scope', 'some'])).toBe(2);
    expect(err).toContain("argument 'some' is invalid. Allowed choices are listed, all");
    expect(await main([])).toBe(2);
    expect(err).toContain("missing required argument 'file'");
  });

  it('prints help with status 0', async () => {
    expect(await main(['--help'])).toBe(0);
    expect(out).toContain('Usage: ipvs-netlink apply [options] <file>');
    expect(out).toContain('--removal <policy>');
  });
});
