// `ipvs-netlink director` on the host: argument and configuration errors, and the event lines.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it, vi } from 'vitest';

import { eventJson, formatEvent, main } from '../../../lib/cli/director';

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
  });
});
