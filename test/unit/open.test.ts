import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { Ipvs, IpvsError, IpvsUnavailableError } from '../../lib/index';
import { explainLoadError } from '../../lib/native';

const root = path.join(__dirname, '..', '..');

describe('on a host without IPVS', () => {
  it('Ipvs.open() rejects with the typed "IPVS not available" error', async () => {
    expect(existsSync('/proc/net/ip_vs')).toBe(false);  // this suite's premise: no IPVS here
    const error = await Ipvs.open().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(IpvsUnavailableError);
    expect(error).toBeInstanceOf(IpvsError);
    const typed = error as IpvsUnavailableError;
    expect(typed.code).toBe('ENOENT');
    expect(typed.errno).toBe(2);
    expect(typed.operation).toBe('open');
    expect(typed.message).toMatch(/IPVS is not available in this kernel/);
    expect(typed.message).toMatch(/modprobe ip_vs/);
  });

  it('a missing namespace path is named in the error', async () => {
    const error = (await Ipvs.open({ netns: '/run/netns/does-not-exist' }).catch((e: unknown) => e)) as IpvsError;
    expect(error).toBeInstanceOf(IpvsError);
    expect(error.code).toBe('ENOENT');
    expect(error.path).toBe('/run/netns/does-not-exist');
    expect(error.message).toMatch(/network namespace not found: \/run\/netns\/does-not-exist/);
  });

  it('rejects malformed options before touching the kernel', async () => {
    await expect(Ipvs.open({ netns: '' })).rejects.toThrow(TypeError);
    await expect(Ipvs.open({ netns: 42 as unknown as string })).rejects.toThrow(/options\.netns must be a string/);
    await expect(Ipvs.open({ netnss: '/x' } as never)).rejects.toThrow(/options\.netnss is not a known option/);
    await expect(Ipvs.open(null as never)).rejects.toThrow(/options must be an object/);
  });
});

describe('loading the addon', () => {
  it('passes a missing libnl through with a hint naming the package', () => {
    const dlopen = new Error('libnl-genl-3.so.200: cannot open shared object file: No such file or directory');
    const explained = explainLoadError(dlopen);
    expect(explained.message).toContain('libnl-genl-3.so.200: cannot open shared object file');
    expect(explained.message).toContain('libnl-genl-3-200');
    expect(explained.cause).toBe(dlopen);
  });

  it('passes other load errors through unchanged', () => {
    const other = new Error('invalid ELF header');
    expect(explainLoadError(other)).toBe(other);
  });
});

describe('packaging', () => {
  // The built package (dist/) through its exports map, as users load it.
  it('works with require() and import, sharing one class', () => {
    const script = `
      const cjs = require('ipvs-netlink');
      import('ipvs-netlink').then((esm) => {
        if (typeof cjs.Ipvs !== 'function') throw new Error('require: no Ipvs');
        if (esm.Ipvs !== cjs.Ipvs) throw new Error('import and require give different classes');
        if (esm.IpvsError !== cjs.IpvsError) throw new Error('IpvsError differs');
        console.log('ok');
      });`;
    expect(execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' }).trim()).toBe('ok');
  });

  it('loads a prebuilt binary from prebuilds/ when there is no build/', () => {
    // The layout an npm install of the published package has: dist/ and prebuilds/, no build/.
    const pkg = mkdtempSync(path.join(tmpdir(), 'ipvs-netlink-pkg-'));
    try {
      cpSync(path.join(root, 'dist'), path.join(pkg, 'dist'), { recursive: true });
      cpSync(path.join(root, 'package.json'), path.join(pkg, 'package.json'));
      mkdirSync(path.join(pkg, 'prebuilds', `linux-${process.arch}`), { recursive: true });
      cpSync(
        path.join(root, 'build', 'Release', 'ipvs_netlink.node'),
        path.join(pkg, 'prebuilds', `linux-${process.arch}`, 'ipvs-netlink.glibc.node'),
      );
      symlinkSync(path.join(root, 'node_modules'), path.join(pkg, 'node_modules'));
      const script = `
        const { Ipvs, IpvsUnavailableError } = require(${JSON.stringify(pkg)});
        const resolved = require('node-gyp-build').resolve(${JSON.stringify(pkg)});
        Ipvs.open().catch((e) => console.log(e instanceof IpvsUnavailableError, resolved));`;
      const [unavailable, resolved] = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }).trim().split(' ');
      expect(unavailable).toBe('true');  // the addon loaded and answered
      expect(resolved).toContain(path.join('prebuilds', `linux-${process.arch}`));
    } finally {
      rmSync(pkg, { recursive: true, force: true });
    }
  });

  it('ships type declarations for the entry point', () => {
    expect(existsSync(path.join(root, 'dist', 'index.d.ts'))).toBe(true);
  });
});
