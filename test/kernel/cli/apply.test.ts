// `ipvs-netlink apply` against the kernel, through its main() (the dispatcher passes the
// arguments after `apply`).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { main } from '../../../lib/cli/apply';
import { createNetns, ipvsadmSave, type TestNetns } from '../helpers';

let ns: TestNetns;
let out = '';
let err = '';
const dir = mkdtempSync(path.join(tmpdir(), 'ipvs-apply-'));

beforeAll(() => { ns = createNetns('rc-cli'); });
afterAll(() => { ns?.remove(); });
beforeEach(() => {
  out = '';
  err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { err += String(chunk); return true; });
});
afterEach(() => { vi.restoreAllMocks(); });

function file(name: string, text: string): string {
  const full = path.join(dir, name);
  writeFileSync(full, text);
  return full;
}

const WEB_YAML = `
services:
  - protocol: tcp
    address: 10.0.0.1
    port: 80
    scheduler: wrr
    destinations:
      - { address: 10.1.0.1, weight: 3 }
      - { address: 10.1.0.2, forward: masq, port: 8080 }
`;

describe('ipvs-netlink apply', () => {
  it('prints the plan and applies it; a second run has nothing to do', async () => {
    ns.run('ipvsadm', ['-R'], { input: '-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -g -w 1\n-a -t 10.0.0.1:80 -r 10.1.0.9:80 -g -w 1\n-A -t 10.0.0.5:80\n' });
    const f = file('web.yaml', WEB_YAML);
    expect(await main([f, '--dry-run', '--netns', ns.path])).toBe(0);
    expect(out).toBe([
      'Plan: 1 to add, 2 to change, 1 to remove (scope: listed, removal: delete).',
      '',
      '  ~ service tcp 10.0.0.1:80',
      '        scheduler: wlc -> wrr',
      '      + destination 10.1.0.2:8080  (forward masq, weight 1)',
      '      ~ destination 10.1.0.1:80',
      '          weight: 1 -> 3',
      '      - destination 10.1.0.9:80  # not in the desired state',
      '',
    ].join('\n'));
    expect(ipvsadmSave(ns)).toContain('-a -t 10.0.0.1:80 -r 10.1.0.9:80 -g -w 1');

    out = '';
    expect(await main([f, '--netns', ns.path])).toBe(0);
    expect(out).toContain('Plan: 1 to add, 2 to change, 1 to remove');
    expect(out).toContain('Applied 4 of 4 operations.');
    expect(err).toBe('');
    expect(ipvsadmSave(ns)).toEqual([
      '-A -t 10.0.0.1:80 -s wrr', '-A -t 10.0.0.5:80 -s wlc',
      '-a -t 10.0.0.1:80 -r 10.1.0.1:80 -g -w 3', '-a -t 10.0.0.1:80 -r 10.1.0.2:8080 -m -w 1',
    ]);

    out = '';
    expect(await main([f, '--netns', ns.path, '--scope', 'all'])).toBe(0);
    expect(out).toContain("- service tcp 10.0.0.5:80  (with 0 destinations)  # not in the desired state (scope 'all')");
    out = '';
    expect(await main([f, '--netns', ns.path, '--scope', 'all'])).toBe(0);
    expect(out).toBe('No changes: the owned services already match the desired state (scope: all, removal: delete).\n');
  });

  it('--json prints the plan and one result per operation; a refused operation gives status 1', async () => {
    ns.run('ipvsadm', ['-C']);
    const f = file('bad.json', JSON.stringify({
      removal: 'quiesce',
      services: [{ protocol: 'udp', address: '10.0.0.2', port: 53, destinations: [{ address: '10.1.0.3' }, { address: '224.0.0.5' }] }],
    }));
    expect(await main([f, '--json', '--netns', ns.path])).toBe(1);
    const report = JSON.parse(out);
    expect(report.ok).toBe(false);
    expect(report.plan.removal).toBe('quiesce');
    expect(report.results.map((r: { ok: boolean; error?: { code: string } }) => (r.ok ? 'ok' : r.error!.code))).toEqual(['ok', 'ok', 'EINVAL']);
    expect(report.drift).toEqual([expect.objectContaining({ op: 'addDestination', destination: expect.objectContaining({ address: '224.0.0.5' }) })]);
    expect(ipvsadmSave(ns)).toEqual(['-A -u 10.0.0.2:53 -s wlc', '-a -u 10.0.0.2:53 -r 10.1.0.3:53 -g -w 1']);

    out = '';
    expect(await main([f, '--netns', ns.path])).toBe(1);
    expect(err).toMatch(/^failed: service udp 10\.0\.0\.2:53 \/ \+ destination 224\.0\.0\.5:53 .*: addDestination: .*\(EINVAL\)$/m);
    expect(out).toContain('Applied 0 of 1 operations; 1 failed.');
    expect(out).toContain('Drift: the table still differs');
  });

  it('exits 1 with the reason when the namespace does not exist', async () => {
    const f = file('ok.yaml', WEB_YAML);
    expect(await main([f, '--netns', '/run/netns/no-such-namespace'])).toBe(1);
    expect(err).toContain('network namespace not found: /run/netns/no-such-namespace');
  });
});
