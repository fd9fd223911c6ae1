import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { main } from '../../../lib/cli/convert';
import { importKeepalived } from '../../../lib/director/import/keepalived';
import { importLdirectord } from '../../../lib/director/import/ldirectord';

const FIXTURES = join(__dirname, '..', 'director', 'import', 'fixtures');

async function run(argv: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const status = await main(argv, { stdout: (t) => { stdout += t; }, stderr: (t) => { stderr += t; } });
  return { status, stdout, stderr };
}

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'convert-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

describe('ipvs-netlink convert', () => {
  it('prints the keepalived import as YAML and the unsupported lines on stderr', async () => {
    const file = join(FIXTURES, 'keepalived', 'keepalived.conf');
    const { status, stdout, stderr } = await run(['--from', 'keepalived', file]);
    expect(status).toBe(0);
    const expected = await importKeepalived(file);
    expect(parse(stdout)).toEqual(expected.config);
    const shown = relative(process.cwd(), file);
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(expected.unsupported.length);
    expect(lines[0]).toBe(`${shown}:2: global_defs: global settings (router id, notification email, scripts, netlink buffers) are not director configuration`);
    expect(lines[6]).toBe(`${relative(process.cwd(), join(FIXTURES, 'keepalived', 'conf.d', '10-fwmark.conf'))}:8: alpha: alpha (start servers down until their first check passes) is not imported: the director keeps a serving destination up until its checks fail`);
  });

  it('prints the ldirectord import', async () => {
    const file = join(FIXTURES, 'ldirectord', 'ldirectord.cf');
    const { status, stdout, stderr } = await run(['--from=ldirectord', file]);
    expect(status).toBe(0);
    expect(parse(stdout)).toEqual((await importLdirectord(file)).config);
    expect(stderr.trimEnd().split('\n').map((line) => line.split(': ')[0]!.split(':').pop())).toEqual(['5', '6', '34', '49']);
  });

  it('a malformed file: status 1 and file:line on stderr, nothing on stdout', async () => {
    const file = join(dir, 'bad.conf');
    await writeFile(file, 'virtual_server 10.0.0.1 80 {\n  lb_algo nope\n}\n');
    const { status, stdout, stderr } = await run(['--from', 'keepalived', file]);
    expect([status, stdout]).toEqual([1, '']);
    expect(stderr).toBe(`ipvs-netlink convert: ${file}:2: lb_algo: unknown scheduler 'nope'\n`);
  });

  it('usage mistakes: status 2', async () => {
    expect((await run(['--from', 'haproxy', 'x'])).status).toBe(2);
    expect((await run(['x'])).status).toBe(2);
    const missing = await run(['--from', 'keepalived']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/missing required argument 'file'/);
    const help = await run(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/--from <format>/);
  });
});
