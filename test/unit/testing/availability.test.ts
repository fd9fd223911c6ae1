// skipUnlessIpvs from node:test and vitest on the host, which has no IPVS (the kernel suite
// checks the other side inside the VM).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { describe, expect, it } from 'vitest';

import { ipvsAvailable, ipvsUnavailableReason, skipUnlessIpvs } from '../../../lib/testing';

const hostHasIpvs = existsSync('/proc/net/ip_vs') && process.getuid?.() === 0;

describe.skipIf(hostHasIpvs)('on a host without IPVS', () => {
  it('explains why and points at the sandbox', () => {
    expect(ipvsAvailable()).toBe(false);
    expect(ipvsUnavailableReason()).toMatch(/no IPVS.*ipvs-netlink sandbox|root/);
  });

  it('skips through a vitest-style or node:test-style context and returns the reason', () => {
    const notes: string[] = [];
    const reason = skipUnlessIpvs({ skip: (note) => { notes.push(String(note)); } });
    expect(reason).toBe(ipvsUnavailableReason());
    expect(notes).toEqual([reason]);
    expect(() => skipUnlessIpvs({} as never)).toThrow(TypeError);
  });

  it('skips a node:test test given { skip: skipUnlessIpvs() }', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'skip-node-test-'));
    try {
      const file = path.join(dir, 'kit.test.cjs');
      writeFileSync(file, `
const test = require('node:test');
const { skipUnlessIpvs } = require(${JSON.stringify(path.resolve(__dirname, '../../../dist/testing/index.js'))});
test('needs ipvs', { skip: skipUnlessIpvs() }, () => { throw new Error('ran without IPVS'); });
test('needs ipvs too', (t) => { if (skipUnlessIpvs(t)) return; throw new Error('ran without IPVS'); });
`);
      const { stdout } = await promisify(execFile)(process.execPath, ['--test', '--test-reporter=tap', file]);
      expect(stdout).toMatch(/ok 1 - needs ipvs # SKIP .*IPVS/);
      expect(stdout).toMatch(/ok 2 - needs ipvs too # SKIP .*IPVS/);
      expect(stdout).toContain('# skipped 2');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
