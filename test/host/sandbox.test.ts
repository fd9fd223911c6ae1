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
    // What the command saw goes to a file in the working directory: the VM's console carries
    // the kernel's messages too, which can land inside a line of the command's output.
    const script = '{ pwd; id -u; test -e /proc/net/ip_vs && echo ipvs-present; } > proof.txt; echo output-passed-through; exit 3';
    const result = spawnSync(process.execPath, [path.join(root, 'dist/cli/bin.js'), 'sandbox', '--', 'sh', '-c', script], {
      cwd: workdir, encoding: 'utf8', env: { ...process.env, IPVS_VM_CACHE: process.env.IPVS_VM_CACHE ?? path.join(root, '.cache/vm') },
    });
    const output = result.stdout + result.stderr;
    expect(result.status, output).toBe(3);
    expect(output).toContain('output-passed-through');
    expect(readFileSync(path.join(workdir, 'proof.txt'), 'utf8')).toBe(`${workdir}\n0\nipvs-present\n`);
  });
});
