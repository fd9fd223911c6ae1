// The package's bin (dist/cli/bin.js): the command runs from dist/cli/bundle.js with its V8 code
// cache (scripts/bundle-cli.mjs, at build time), prints what main.js prints, and falls back to
// main.js when the bundle is missing or stale. Needs `npm run build:ts`; no kernel.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../../..');
const temp = mkdtempSync(path.join(os.tmpdir(), 'ipvs-netlink-bin-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

const rules = path.join(temp, 'rules.txt');
writeFileSync(rules, '-A -t 10.0.0.1:80 -s wrr\n-a -t 10.0.0.1:80 -r 192.168.0.1:8080 -m -w 2\n');
const badRules = path.join(temp, 'bad-rules.txt');
writeFileSync(badRules, '-A -t 10.0.0.1:80 -s wrr\n-a -t 10.0.0.1:80 -r 192.168.0.1:8080 -m -w 70000\n');

/** Command lines that end before any kernel request: help, usage and parse errors, dry runs. */
const LINES = [
  ['--help'], [], ['nope'], ['ipvsadm', '-h'], ['ipvsadm', '-v'], ['ipvsadm', '--bogus'], ['ipvsadm', '-L', '-Z'],
  ['ipvsadm', '-A', '-t', '10.0.0.1'], ['ipvsadm', '-a', '-t', '10.0.0.1:80', '-r', '1.2.3.4', '-w', 'x'],
  ['restore', '--dry-run', rules], ['restore', '--dry-run', badRules], ['restore', '--help'],
  ['conns', '--by', 'nobody'], ['conns', '--help'], ['list', '--help'], ['--netns'],
];

function run(script: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [script, ...args], {
    encoding: 'utf8', cwd: root, env: { ...process.env, IPVS_NETLINK_PREBUILD: root },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A copy of dist/ (and package.json) in the temp directory; returns its dist/cli. */
function copyOfDist(name: string): string {
  const dir = path.join(temp, name);
  cpSync(path.join(root, 'dist'), path.join(dir, 'dist'), { recursive: true });
  cpSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  return path.join(dir, 'dist', 'cli');
}

describe('the bin', () => {
  it('prints what main.js prints, with the same exit status, for each command line', () => {
    for (const args of LINES) {
      expect(run('dist/cli/bin.js', args), args.join(' ')).toEqual(run('dist/cli/main.js', args));
    }
  }, 180_000);

  it('runs the bundle, whose code cache this Node accepts', () => {
    const cli = copyOfDist('bundled');
    const bundle = readFileSync(path.join(cli, 'bundle.js'), 'utf8');
    const stamp = bundle.slice(0, bundle.indexOf('\n') + 1);
    expect(stamp).toBe(`// ipvs-netlink bundle ${stamp.split(' ')[3]} v8 ${process.versions.v8}\n`);
    expect(readFileSync(path.join(cli, 'main.js'), 'utf8').endsWith(stamp)).toBe(true);
    // A main.js with the bundle's stamp that would print something else: the bundle runs.
    writeFileSync(path.join(cli, 'main.js'), `process.stdout.write('main.js ran\\n');\n${stamp}`);
    const help = run(path.join(cli, 'bin.js'), ['ipvsadm', '-h']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^ipvsadm v1\.31 /);
    const check = spawnSync(process.execPath, ['-e', `
      const fs = require('fs'), vm = require('vm');
      const file = ${JSON.stringify(path.join(root, 'dist/cli/bundle.js'))};
      const script = new vm.Script(fs.readFileSync(file, 'utf8'), { filename: file, cachedData: fs.readFileSync(file.replace(/js$/, 'cache')) });
      process.stdout.write(String(script.cachedDataRejected));`], { encoding: 'utf8' });
    expect(check.stdout).toBe('false');
  }, 20_000);

  it('runs main.js when tsc rewrote it after the bundle (no stamp), under another V8, or without a bundle', () => {
    const stale = copyOfDist('stale');
    writeFileSync(path.join(stale, 'main.js'), "exports.runAsProcess = () => process.stdout.write('main.js ran\\n');\n");
    expect(run(path.join(stale, 'bin.js'), ['--help']).stdout).toBe('main.js ran\n');
    const bundle = readFileSync(path.join(stale, 'bundle.js'), 'utf8');
    const stamp = bundle.slice(0, bundle.indexOf('\n') + 1);
    // Stamped, but by another V8: its code cache would not be used.
    const otherV8 = stamp.replace(/ v8 \S+\n$/, ' v8 1.2.3\n');
    writeFileSync(path.join(stale, 'bundle.js'), otherV8 + bundle.slice(stamp.length));
    writeFileSync(path.join(stale, 'main.js'), `exports.runAsProcess = () => process.stdout.write('main.js ran\\n');\n${otherV8}`);
    expect(run(path.join(stale, 'bin.js'), ['--help']).stdout).toBe('main.js ran\n');
    rmSync(path.join(stale, 'bundle.js'));
    expect(run(path.join(stale, 'bin.js'), ['--help']).stdout).toBe('main.js ran\n');
  }, 20_000);

  it('starts the head start from its own copy of head-start.js and the modules it needs', () => {
    const cli = copyOfDist('prelude');
    const bin = readFileSync(path.join(cli, 'bin.js'), 'utf8');
    expect(bin).not.toContain('require("./head-start")');
    expect(bin.split("/* the bin's head start */")).toHaveLength(2);
    // Without their files the bin still starts the read (the host has no IPVS: both fail alike).
    for (const file of ['head-start.js', 'conns-args.js', 'io.js', '../native.js']) rmSync(path.join(cli, file));
    for (const args of [['conns', '--by', 'client', '--state', 'ESTABLISHED', '--min', '101'], ['ipvsadm', '-Ln'], ['ipvsadm', '-Sn']]) {
      expect(run(path.join(cli, 'bin.js'), args), args.join(' ')).toEqual(run('dist/cli/main.js', args));
    }
  }, 20_000);

  it('still runs with a code cache V8 rejects', () => {
    const cli = copyOfDist('rejected');
    writeFileSync(path.join(cli, 'bundle.cache'), Buffer.alloc(4096, 7));
    const bundle = readFileSync(path.join(cli, 'bundle.js'), 'utf8');
    writeFileSync(path.join(cli, 'main.js'), `process.stdout.write('main.js ran\\n');\n${bundle.slice(0, bundle.indexOf('\n') + 1)}`);
    expect(run(path.join(cli, 'bin.js'), ['ipvsadm', '-h'])).toEqual(run('dist/cli/main.js', ['ipvsadm', '-h']));
  }, 20_000);

  it('is built without an addon too (a code cache without the listings), and runs', () => {
    const cli = copyOfDist('no-addon');
    const dir = path.dirname(path.dirname(cli));
    mkdirSync(path.join(dir, 'scripts'));
    for (const script of ['bundle-cli.mjs', 'synthetic-table.cjs']) cpSync(path.join(root, 'scripts', script), path.join(dir, 'scripts', script));
    symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
    const { IPVS_NETLINK_PREBUILD: _unused, ...env } = process.env;
    const build = spawnSync(process.execPath, [path.join(dir, 'scripts', 'bundle-cli.mjs')], { encoding: 'utf8', env });
    expect(build.status, build.stderr).toBe(0);
    expect(build.stdout).toMatch(/no restore check or listing in the code cache/);
    // Built a second time: the bin's head start is replaced, not written twice.
    expect(readFileSync(path.join(cli, 'bin.js'), 'utf8').split("/* the bin's head start */")).toHaveLength(2);
    expect(run(path.join(cli, 'bin.js'), ['ipvsadm', '-h'])).toEqual(run('dist/cli/main.js', ['ipvsadm', '-h']));
  }, 30_000);
});
