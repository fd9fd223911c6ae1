// `ipvs-netlink sandbox` boots the VM from the host: one boot, checking that the command runs
// as root in the current directory, can write there, sees IPVS, and that its exit status comes
// back. (scripts/check-package.sh boots it once more, for a user project whose tests pass.)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');
const hasQemu = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' }).status === 0;
const workdir = mkdtempSync(path.join(os.tmpdir(), 'sandbox-work-'));
afterAll(() => rmSync(workdir, { recursive: true, force: true }));

describe.skipIf(!hasQemu)('ipvs-netlink sandbox (boots the VM)', () => {
  it('runs the command as root in the current directory, writable, with IPVS, and returns its exit status', () => {
    const script = 'pwd; id -u; test -e /proc/net/ip_vs && echo ipvs-present; echo written-in-vm > proof.txt; exit 3';
    const result = spawnSync(process.execPath, [path.join(root, 'dist/cli/bin.js'), 'sandbox', '--', 'sh', '-c', script], {
      cwd: workdir, encoding: 'utf8', env: { ...process.env, IPVS_VM_CACHE: process.env.IPVS_VM_CACHE ?? path.join(root, '.cache/vm') },
    });
    const output = result.stdout + result.stderr;
    expect(result.status, output).toBe(3);
    const lines = output.split('\n').map((l) => l.trim());
    expect(lines).toContain(workdir);
    expect(lines).toContain('0');
    expect(lines).toContain('ipvs-present');
    expect(readFileSync(path.join(workdir, 'proof.txt'), 'utf8')).toBe('written-in-vm\n');
  });
});
