// The sandbox command without booting anything: argument errors and a host without qemu.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../../..');
const cli = path.join(root, 'dist/cli/bin.js');
const run = promisify(execFile);

async function ipvsNetlink(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { env, cwd: root });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A PATH with every command the VM needs except those named. */
function pathWithout(...excluded: string[]): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sandbox-path-'));
  dirs.push(dir);
  const wanted = ['bash', 'timeout', 'apt-get', 'apt-cache', 'dpkg-deb', 'busybox', 'cpio', 'depmod', 'modprobe', 'xz', 'gzip', 'flock', 'sha256sum', 'qemu-system-x86_64'];
  for (const command of wanted.filter((c) => !excluded.includes(c))) {
    const found = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'].map((d) => path.join(d, command)).find((p) => existsSync(p));
    if (found) symlinkSync(found, path.join(dir, command));
  }
  return dir;
}

const dirs: string[] = [];
afterAll(() => { for (const dir of dirs) rmSync(dir, { recursive: true, force: true }); });

describe('ipvs-netlink sandbox (no VM)', () => {
  it('refuses clearly when qemu is missing, naming the package, and runs nothing', async () => {
    const cache = mkdtempSync(path.join(os.tmpdir(), 'sandbox-cache-'));
    dirs.push(cache);
    const result = await ipvsNetlink(['sandbox', '--', 'touch', 'should-not-exist'], { PATH: pathWithout('qemu-system-x86_64'), IPVS_VM_CACHE: cache, HOME: cache });
    expect(result.code).toBe(125);
    expect(result.stderr).toContain('ipvs-netlink sandbox: this host cannot boot the IPVS VM (Linux 6.17); it lacks:');
    expect(result.stderr).toContain('qemu-system-x86_64 (boots the VM; Debian/Ubuntu package qemu-system-x86)');
    expect(result.stderr).toContain('Install with: sudo apt-get install qemu-system-x86\n');
    expect(result.stderr).not.toMatch(/- (bash|busybox|cpio) /);
  });

  it('lists everything a bare host lacks to prepare the first kernel', async () => {
    const cache = mkdtempSync(path.join(os.tmpdir(), 'sandbox-cache-'));
    dirs.push(cache);
    const result = await ipvsNetlink(['sandbox', '--kernel', '6.1', '--', 'true'], { PATH: pathWithout('qemu-system-x86_64', 'busybox', 'cpio', 'xz'), IPVS_VM_CACHE: cache, HOME: cache });
    expect(result.code).toBe(125);
    expect(result.stderr).toContain('(Linux 6.1)');
    expect(result.stderr).toContain('Install with: sudo apt-get install qemu-system-x86 busybox-static cpio xz-utils\n');
  });

  it('rejects a bad kernel series, a missing command and unknown commands', async () => {
    const env = { PATH: process.env.PATH };
    const badKernel = await ipvsNetlink(['sandbox', '--kernel', '5.10', '--', 'true'], env);
    expect(badKernel.code).toBe(125);
    expect(badKernel.stderr).toMatch(/--kernel <series>' argument '5.10' is invalid. Allowed choices are 6.1, 6.17/);
    const noCommand = await ipvsNetlink(['sandbox'], env);
    expect(noCommand.code).toBe(125);
    expect(noCommand.stderr).toContain("missing required argument 'command'");
    const unknown = await ipvsNetlink(['nope'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'nope'");
    expect(unknown.stderr).toContain('sandbox');
  });
});
